"""The file as a whole: ``version``, ``namespace``, the three lists, and the
references between them (a policy's ``imageRepositoryRef``, unique names).

One broken entry is dropped and reported; the others load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ruamel.yaml.nodes import Node

from bot.config import automations, policies, repositories
from bot.config.checker import Checker, did_you_mean, value_node
from bot.config.grammar import is_dns_label
from bot.config.model import Config
from bot.config.yaml import compose_yaml
from bot.problems import Problem

_TOP_FIELDS = (
    "version",
    "namespace",
    "imageRepositories",
    "imagePolicies",
    "imageUpdateAutomations",
)

Reader = Callable[[Checker, Node, str, dict[str, Node], str], Any]


def read_config(
    data: str | bytes, path: str, default_branch: str | None = None
) -> tuple[Config, list[Problem]]:
    check = Checker(path)
    root, problem = compose_yaml(data, path)
    if problem is not None or root is None:
        assert problem is not None
        return Config(path=path), [problem]
    top = check.mapping(root, "", _TOP_FIELDS)
    config = Config(path=path)
    if top is None:
        return config, check.finish()

    version = top.get("version")
    if version is None:
        check.error(root, "version", "missing; add 'version: 1' at the top of the file")
    elif check.integer(version, "version") not in (None, 1):
        check.error(version, "version", "must be 1 (the only config format so far)")

    if "namespace" in top:
        namespace = check.string(top["namespace"], "namespace")
        if namespace is not None:
            if is_dns_label(namespace):
                config.namespace = check.namespace = namespace
            else:
                check.error(
                    top["namespace"],
                    "namespace",
                    f"'{namespace}' is not a valid namespace; use up to 63 lowercase letters, "
                    "digits and '-', starting and ending with a letter or digit",
                )

    declared_repositories: set[str] = set()
    for repo, item, where in _entries(
        check,
        top,
        "imageRepositories",
        repositories.read_repository,
        repositories.FIELDS,
        declared_repositories,
    ):
        _add_unique(check, config.repositories, repo, item, where, "imageRepositories")

    for policy, item, where in _entries(
        check, top, "imagePolicies", policies.read_policy, policies.FIELDS
    ):
        if policy.repository not in config.repositories:
            ref_node = value_node(item, "imageRepositoryRef")
            if policy.repository in declared_repositories:
                check.error(
                    ref_node,
                    f"{where}.imageRepositoryRef",
                    f"image repository '{policy.repository}' has errors (reported above); "
                    "this policy is skipped until they are fixed",
                )
            else:
                check.error(
                    ref_node,
                    f"{where}.imageRepositoryRef",
                    f"no image repository named '{policy.repository}'"
                    f"{did_you_mean(policy.repository, config.repositories)}; "
                    "add it under imageRepositories or fix the name",
                )
            continue
        _add_unique(check, config.policies, policy, item, where, "imagePolicies")

    items: dict[str, tuple[Node, str]] = {}
    for automation, item, where in _entries(
        check,
        top,
        "imageUpdateAutomations",
        automations.read_automation,
        automations.FIELDS,
    ):
        _add_unique(check, config.automations, automation, item, where, "imageUpdateAutomations")
        items[automation.name] = (item, where)
    _one_automation_per_push_branch(check, config, items, default_branch)
    return config, check.finish()


def _one_automation_per_push_branch(
    check: Checker,
    config: Config,
    items: dict[str, tuple[Node, str]],
    default_branch: str | None,
) -> None:
    """Two automations proposing on one branch would overwrite each other: an error on both.

    Direct commits (push branch == checkout branch) fast-forward and never
    clash; an automation whose checkout branch is the unknown default is
    left out.
    """
    by_branch: dict[str, list[str]] = {}
    for name, automation in config.automations.items():
        base = automation.base_branch(default_branch)
        if base is not None and not automation.commits_directly(default_branch):
            by_branch.setdefault(automation.push_branch, []).append(name)
    for branch, names in sorted(by_branch.items()):
        if len(names) < 2:
            continue
        for name in names:
            item, where = items[name]
            others = ", ".join(
                f"'{other}' (line {config.automations[other].line})"
                for other in names
                if other != name
            )
            node = value_node(value_node(value_node(item, "git"), "push"), "branch")
            check.error(
                node if node is not item else value_node(item, "name"),
                f"{where}.git.push.branch",
                f"branch '{branch}' is also the push branch of {others}; each automation "
                "needs its own branch (one pull request each), so set a different git.push.branch",
            )


def _entries(
    check: Checker,
    top: dict[str, Node],
    section: str,
    reader: Reader,
    allowed: tuple[str, ...],
    declared: set[str] | None = None,
) -> Iterator[tuple[Any, Node, str]]:
    """The entries of one list that read without errors, with their node and path.

    A broken entry is skipped, its errors recorded; its name still goes into
    ``declared`` if given, so references to it can say it is broken, not missing.
    """
    for item, where in check.items(top.get(section), section):
        before = check.count
        fields = check.mapping(item, where, allowed)
        if fields is None:
            continue
        name = check.object_name(fields, item, where)
        if name is not None and declared is not None:
            declared.add(name)
        obj = reader(check, item, where, fields, name or "")
        if check.count == before and name is not None:
            yield obj, item, where


def _add_unique(
    check: Checker, into: dict[str, Any], obj: Any, item: Node, where: str, section: str
) -> None:
    if obj.name in into:
        check.error(
            value_node(item, "name"),
            f"{where}.name",
            f"'{obj.name}' is already used in {section} (line {into[obj.name].line}); "
            "names must be unique, rename one",
        )
        return
    into[obj.name] = obj
