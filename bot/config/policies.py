"""``imagePolicies[]``: Flux's ImagePolicy spec plus ``rolling`` and ``aliasOf``.

Ranges and regexes are judged by the policy layer itself (`compile_policy`),
the code that must run them; this module puts its verdict on the right node.
"""

from __future__ import annotations

from dataclasses import replace

from ruamel.yaml.nodes import MappingNode, Node

from bot.config.checker import Checker, line_of
from bot.config.grammar import parse_age
from bot.config.model import DEFAULT_POLICY_INTERVAL, ImagePolicyConfig
from bot.policy import compile_policy
from bot.policy.model import DIGEST_REFLECTIONS, ORDERS, POLICY_KINDS, PolicySpec

FIELDS = (
    "name",
    "imageRepositoryRef",
    "labels",
    "policy",
    "filterTags",
    "aliasOf",
    "digestReflectionPolicy",
    "interval",
    "minimumReleaseAge",
)

_CHOICES = "semver: {range: ...}, alphabetical: {order: ...}, numerical: {order: ...} or rolling: {tag: ...}"


def read_policy(
    check: Checker, item: Node, where: str, fields: dict[str, Node], name: str
) -> ImagePolicyConfig | None:
    before = check.count
    repository, repository_namespace = _repository_ref(check, item, where, fields)
    labels = check.optional(fields, "labels", where, check.labels) or {}
    kind_fields = _policy_kind(check, item, where, fields)
    filter_pattern, filter_extract = _filter_tags(check, where, fields)
    alias_of = check.optional(fields, "aliasOf", where, check.tag_name)
    reflection: str | None = PolicySpec.digest_reflection  # the dataclass default: Never
    if "digestReflectionPolicy" in fields:
        reflection = check.enum(
            fields["digestReflectionPolicy"], f"{where}.digestReflectionPolicy", DIGEST_REFLECTIONS
        )
    # Flux allows `interval` only with Always; design §2's own example pairs it with Never,
    # so elsewhere it is accepted and ignored (the digest is then not re-checked on a timer).
    interval = None
    if "interval" in fields:
        interval = check.duration(fields["interval"], f"{where}.interval")
    if reflection != "Always":
        interval = None
    elif interval is None and "interval" not in fields:
        interval = DEFAULT_POLICY_INTERVAL
    minimum_age = 0.0
    if "minimumReleaseAge" in fields:
        minimum_age = _age(check, fields["minimumReleaseAge"], f"{where}.minimumReleaseAge")
    if repository is None or kind_fields is None or reflection is None:
        return None
    spec = PolicySpec(
        filter_pattern=filter_pattern,
        filter_extract=filter_extract,
        alias_of=alias_of,
        digest_reflection=reflection,  # type: ignore[arg-type]
        **kind_fields,
    )
    if check.count == before:  # a range or regex already reported needs no second error
        _check_compiles(check, where, fields, spec)
    return ImagePolicyConfig(
        name=name,
        repository=repository,
        labels=labels,
        spec=spec,
        interval=interval,
        line=line_of(item),
        repository_namespace=repository_namespace,
        minimum_age=minimum_age,
    )


def _age(check: Checker, node: Node, where: str) -> float:
    text = check.string(node, where)
    if text is None:
        return 0.0
    seconds = parse_age(text)
    if seconds is None:
        check.error(
            node, where, f"'{text}' is not an age; write a number with w, d, h, m or s, like '3d'"
        )
        return 0.0
    return seconds


def _repository_ref(
    check: Checker, item: Node, where: str, fields: dict[str, Node]
) -> tuple[str | None, str]:
    """The image repository's name, and its namespace if the reference gives one."""
    node = fields.get("imageRepositoryRef")
    path = f"{where}.imageRepositoryRef"
    if node is None:
        check.error(item, path, "missing; name an entry of imageRepositories")
        return None, ""
    if isinstance(node, MappingNode):  # Flux's {name: ..., namespace: ...}
        ref = check.mapping(node, path, ("name", "namespace"))
        if ref is None:
            return None, ""
        namespace = ""
        if "namespace" in ref:
            namespace = check.string(ref["namespace"], f"{path}.namespace") or ""
            # A Flux manifest may point into another namespace (`accessFrom` is the
            # cluster's business); the config file has only the one.
            if namespace and namespace != check.namespace and not check.manifest:
                check.error(
                    ref["namespace"],
                    f"{path}.namespace",
                    "cross-namespace references are not supported; remove it",
                )
        if "name" not in ref:
            check.error(node, path, "missing 'name'; name an entry of imageRepositories")
            return None, namespace
        return check.nonempty_string(ref["name"], f"{path}.name"), namespace
    return check.nonempty_string(node, path), ""


def _policy_kind(
    check: Checker, item: Node, where: str, fields: dict[str, Node]
) -> dict[str, str] | None:
    node = fields.get("policy")
    path = f"{where}.policy"
    if node is None:
        check.error(item, path, f"missing; choose one of {_CHOICES}")
        return None
    kinds = check.mapping(node, path, POLICY_KINDS)
    if kinds is None:
        return None
    if not kinds:
        check.error(node, path, f"empty; choose one of {_CHOICES}")
        return None
    if len(kinds) > 1:
        names = list(kinds)
        check.error(
            kinds[names[1]],
            f"{path}.{names[1]}",
            f"only one of semver, alphabetical, numerical or rolling may be set; "
            f"found {' and '.join(names)}, keep one",
        )
        return None
    kind, body = next(iter(kinds.items()))
    kind_path = f"{path}.{kind}"
    if kind == "semver":
        values = check.mapping(body, kind_path, ("range",))
        if values is None:
            return None
        if "range" not in values:
            check.error(body, kind_path, "missing 'range', e.g. range: '>=1.0.0 <2.0.0'")
            return None
        semver_range = check.nonempty_string(values["range"], f"{kind_path}.range")
        return None if semver_range is None else {"kind": kind, "semver_range": semver_range}
    if kind == "rolling":
        values = check.mapping(body, kind_path, ("tag",))
        if values is None:
            return None
        if "tag" not in values:
            check.error(body, kind_path, "missing 'tag', e.g. tag: latest")
            return None
        tag = check.tag_name(values["tag"], f"{kind_path}.tag")
        return None if tag is None else {"kind": kind, "rolling_tag": tag}
    # alphabetical / numerical: `alphabetical:` with no value means the defaults.
    if check.is_null(body):
        return {"kind": kind}
    values = check.mapping(body, kind_path, ("order",))
    if values is None:
        return None
    order = "asc"
    if "order" in values:
        order = check.enum(values["order"], f"{kind_path}.order", ORDERS)
    return None if order is None else {"kind": kind, "order": order}


def _filter_tags(check: Checker, where: str, fields: dict[str, Node]) -> tuple[str | None, str]:
    node = fields.get("filterTags")
    if node is None:
        return None, ""
    path = f"{where}.filterTags"
    if check.is_null(node):
        return "", ""
    values = check.mapping(node, path, ("pattern", "extract"))
    if values is None:
        return None, ""
    pattern = check.optional(values, "pattern", path, check.string) or ""
    extract = check.optional(values, "extract", path, check.string) or ""
    if "pattern" in values and pattern:
        check.regex(values["pattern"], f"{path}.pattern", pattern)
    return pattern, extract


def _check_compiles(check: Checker, where: str, fields: dict[str, Node], spec: PolicySpec) -> None:
    """Let the policy layer judge ranges and regexes; report on the field it objects to."""
    try:
        compile_policy(spec)
    except Exception as err:  # the policy layer's verdict on the user's policy
        node, path = fields["policy"], f"{where}.policy"
        without_range = replace(spec, kind="alphabetical", semver_range="")
        if spec.kind == "semver" and _compiles(without_range):
            semver = node.value[0][1]
            node = next(v for k, v in semver.value if k.value == "range")
            path = f"{where}.policy.semver.range"
            err = f"{err}; write a range such as '>=1.2.0 <2.0.0' or '~1.2'"
        elif "filterTags" in fields and _compiles(replace(spec, filter_pattern=None)):
            node, path = fields["filterTags"], f"{where}.filterTags"
        elif "aliasOf" in fields and _compiles(replace(spec, alias_of=None)):
            node, path = fields["aliasOf"], f"{where}.aliasOf"
        check.error(node, path, str(err))


def _compiles(spec: PolicySpec) -> bool:
    try:
        compile_policy(spec)
    except Exception:
        return False
    return True
