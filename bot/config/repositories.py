"""``imageRepositories[]``: Flux's ImageRepository spec, one list entry each."""

from __future__ import annotations

from ruamel.yaml.nodes import Node

from bot.config.checker import Checker, line_of
from bot.config.model import (
    DEFAULT_REPOSITORY_INTERVAL,
    MAX_EXCLUSION_LIST,
    MIN_TIMEOUT,
    ImageRepositoryConfig,
)
from bot.imageref import ImageRefError, parse_repository
from bot.policy.model import DEFAULT_EXCLUSION_LIST

FIELDS = (
    "name",
    "image",
    "interval",
    "timeout",
    "exclusionList",
    "insecure",
    "credentials",
)


def read_repository(
    check: Checker, item: Node, where: str, fields: dict[str, Node], name: str
) -> ImageRepositoryConfig | None:
    ref = None
    image = check.required_string(fields, "image", item, where)
    if image is not None:
        try:
            ref = parse_repository(image)
        except ImageRefError as err:
            check.error(fields["image"], f"{where}.image", str(err))
    interval = check.duration_field(fields, "interval", where, DEFAULT_REPOSITORY_INTERVAL)
    timeout = None
    if "timeout" in fields:
        timeout = check.duration(fields["timeout"], f"{where}.timeout", hours=False, zero=True)
        timeout = None if timeout is None else max(timeout, MIN_TIMEOUT)
    exclusion_list = DEFAULT_EXCLUSION_LIST
    if "exclusionList" in fields:
        patterns = check.string_list(fields["exclusionList"], f"{where}.exclusionList")
        if patterns is not None and len(patterns) > MAX_EXCLUSION_LIST:
            check.error(
                fields["exclusionList"],
                f"{where}.exclusionList",
                f"has {len(patterns)} patterns; at most {MAX_EXCLUSION_LIST} are allowed",
            )
        elif patterns:
            exclusion_list = tuple(patterns)
            for index, (pattern, node) in enumerate(
                zip(patterns, fields["exclusionList"].value, strict=True)
            ):
                check.regex(node, f"{where}.exclusionList[{index}]", pattern)
    insecure = check.optional(fields, "insecure", where, check.boolean)
    credentials = check.optional(fields, "credentials", where, check.nonempty_string)
    if ref is None or interval is None:
        return None
    return ImageRepositoryConfig(
        name=name,
        image=image or "",
        ref=ref,
        interval=interval,
        timeout=timeout,
        exclusion_list=exclusion_list,
        insecure=insecure,
        credentials=credentials,
        line=line_of(item),
    )
