"""The config as a whole: the file's ``version``, ``namespace`` and ``fluxManifests``,
its three lists and the Flux manifests' objects, and the references between them
(a policy's ``imageRepositoryRef``, unique names, one automation per branch).

Every entry, from the file or from a manifest, is read by the same section
reader; then all are joined. One broken entry is dropped and reported; the
others load.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode

from bot.config import automations, manifests, policies, repositories
from bot.config.checker import Checker, Reader, did_you_mean, line_of, value_node
from bot.config.grammar import is_dns_label
from bot.config.model import Config
from bot.config.yaml import compose_yaml
from bot.problems import Problem

_TOP_FIELDS = (
    "version",
    "namespace",
    "fluxManifests",
    "imageRepositories",
    "imagePolicies",
    "imageUpdateAutomations",
)

_SECTIONS = (
    ("imageRepositories", repositories.read_repository, repositories.FIELDS),
    ("imagePolicies", policies.read_policy, policies.FIELDS),
    ("imageUpdateAutomations", automations.read_automation, automations.FIELDS),
)


@dataclass
class _Entry:
    """One object read without errors, and where it came from (for later errors)."""

    obj: Any
    check: Checker  # its file's
    item: Node
    where: str  # "imagePolicies[0]" or "ImagePolicy flux-system/app"

    @property
    def place(self) -> str:
        """The entry, as another entry's error names it."""
        where = line_of(self.item)
        return (
            f"'{self.obj.name}' ({self.check.path}:{where})"
            if self.check.manifest
            else (f"'{self.obj.name}' (line {where})")
        )


def read_config(
    data: str | bytes | None,
    path: str,
    default_branch: str | None = None,
    manifests_by_path: Mapping[str, bytes] | None = None,
) -> tuple[Config, list[Problem]]:
    """``data`` is the config file (None: there is none); ``manifests_by_path`` the Flux
    manifests to read besides it (`bot.config.manifests`), by repository path."""
    config = Config(path=path)
    check = Checker(path)
    entries: dict[str, list[_Entry]] = {section: [] for section, _, _ in _SECTIONS}
    declared_repositories: set[str] = set()
    checkers = [check]
    if data is not None and not _read_file(check, config, data, entries, declared_repositories):
        return config, check.finish()
    for manifest_path, content in sorted((manifests_by_path or {}).items()):
        manifest_check = Checker(manifest_path, manifest=True)
        checkers.append(manifest_check)
        _read_manifest(manifest_check, config, content, entries, declared_repositories)

    for entry in entries["imageRepositories"]:
        _add_unique(config, config.repositories, entry, "imageRepositories")
    for entry in entries["imagePolicies"]:
        if _resolve_repository(config, entry, declared_repositories):
            _add_unique(config, config.policies, entry, "imagePolicies")
    items: dict[str, _Entry] = {}
    for entry in entries["imageUpdateAutomations"]:
        if _add_unique(config, config.automations, entry, "imageUpdateAutomations"):
            items[entry.obj.name] = entry
    _one_automation_per_push_branch(config, items, default_branch)
    return config, [problem for each in checkers for problem in each.finish()]


def _read_file(
    check: Checker,
    config: Config,
    data: str | bytes,
    entries: dict[str, list[_Entry]],
    declared_repositories: set[str],
) -> bool:
    """The config file's own fields and entries; False if it cannot be read at all."""
    root, problem = compose_yaml(data, check.path)
    if problem is not None or root is None:
        assert problem is not None
        check.add(problem)
        return False
    top = check.mapping(root, "", _TOP_FIELDS)
    if top is None:
        return False

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
    if "fluxManifests" in top:
        config.flux_manifests = _flux_manifests(check, top["fluxManifests"])

    for section, reader, allowed in _SECTIONS:
        declared = declared_repositories if section == "imageRepositories" else None
        for obj, item, where in _entries(check, top, section, reader, allowed, declared):
            obj.namespace = config.namespace
            entries[section].append(_Entry(obj, check, item, where))
    return True


def _flux_manifests(check: Checker, node: Node) -> tuple[str, ...]:
    patterns = check.string_list(node, "fluxManifests")
    if patterns is None:
        return ()
    kept = []
    for index, (pattern, item) in enumerate(zip(patterns, node.value, strict=True)):
        problem = manifests.pattern_problem(pattern)
        if problem is None:
            kept.append(pattern)
        else:
            check.error(item, f"fluxManifests[{index}]", problem)
    return tuple(kept)


def _read_manifest(
    check: Checker,
    config: Config,
    content: bytes,
    entries: dict[str, list[_Entry]],
    declared_repositories: set[str],
) -> None:
    """The image objects of one Flux manifest, each read by its section's reader."""
    for obj in manifests.read_objects(check, content, default_namespace=config.namespace):
        where = f"{obj.kind.name} {obj.namespace}/{obj.name}"
        before = check.count
        check.namespace = obj.namespace
        fields = check.mapping(obj.spec, f"{where}.spec", obj.kind.fields)
        if fields is None:
            continue
        fields["name"] = obj.name_node
        if obj.labels is not None:
            fields["labels"] = obj.labels
        source_ref = fields.pop("sourceRef", None)
        if source_ref is not None:
            _source_ref_notice(check, source_ref, f"{where}.spec.sourceRef")
        if obj.kind.section == "imageRepositories":
            declared_repositories.add(obj.name)
        item = obj.document
        result = obj.kind.reader(check, item, f"{where}.spec", fields, obj.name)
        if check.count != before or result is None:
            continue
        result.namespace, result.path = obj.namespace, check.path
        if obj.kind.section == "imageRepositories":
            # The cluster's Secret has a name; the operator may keep credentials under it.
            result.credentials = _secret_name(obj.spec)
        if obj.kind.section == "imageUpdateAutomations":
            _push_as_flux_does(result, obj.spec)
        entries[obj.kind.section].append(_Entry(result, check, item, where))


def _keys(node: Node) -> dict[str, Node]:
    if not isinstance(node, MappingNode):
        return {}
    return {k.value: v for k, v in node.value if isinstance(k, ScalarNode)}


def _secret_name(spec: Node) -> str | None:
    secret_ref = _keys(spec).get("secretRef")
    name = _keys(secret_ref).get("name") if secret_ref is not None else None
    if isinstance(name, ScalarNode) and isinstance(name.value, str) and name.value:
        return name.value
    return None


def _source_ref_notice(check: Checker, node: Node, where: str) -> None:
    """A GitRepository is taken to be this repository (the manifest lives in it); any
    other kind of source is one the bot does not update."""
    kind = _keys(node).get("kind")
    if kind is None or (isinstance(kind, ScalarNode) and kind.value == "GitRepository"):
        return
    check.warning(
        node,
        where,
        f"cluster-only, not used: a source of kind {kind.value!r}; the bot always updates "
        "the repository that holds the manifest",
        only_notice=True,
    )


def _push_as_flux_does(automation: Any, spec: Node) -> None:
    """Flux pushes to the checkout branch when ``git.push.branch`` is absent: a direct
    commit. Without a checkout branch either, Flux would take the GitRepository's (the
    cluster's); the bot cannot read it, so it keeps its own default (a pull request)."""
    git = _keys(spec).get("git")
    push = _keys(git).get("push") if git is not None else None
    if (push is not None and "branch" in _keys(push)) or automation.checkout_branch is None:
        return
    automation.push_branch = automation.checkout_branch


def _resolve_repository(config: Config, entry: _Entry, declared: set[str]) -> bool:
    """Whether the policy's image repository is there, in the namespace it names."""
    policy, check = entry.obj, entry.check
    ref_node = value_node(_spec_node(entry), "imageRepositoryRef")
    path = f"{entry.where}.imageRepositoryRef"
    repository = config.repositories.get(policy.repository)
    if repository is None:
        if policy.repository in declared:
            check.error(
                ref_node,
                path,
                f"image repository '{policy.repository}' has errors (reported above); "
                "this policy is skipped until they are fixed",
            )
        else:
            check.error(
                ref_node,
                path,
                f"no image repository named '{policy.repository}'"
                f"{did_you_mean(policy.repository, config.repositories)}; "
                "add it under imageRepositories or fix the name",
            )
        return False
    wanted = policy.repository_namespace or policy.namespace
    if repository.namespace != wanted:
        check.error(
            ref_node,
            path,
            f"image repository '{policy.repository}' is in namespace "
            f"'{repository.namespace}', not '{wanted}'; fix the namespace of the reference",
        )
        return False
    return True


def _one_automation_per_push_branch(
    config: Config, items: dict[str, _Entry], default_branch: str | None
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
            entry = items[name]
            others = ", ".join(items[other].place for other in names if other != name)
            spec = _spec_node(entry)
            node = value_node(value_node(value_node(spec, "git"), "push"), "branch")
            entry.check.error(
                node if node is not spec else _name_node(entry),
                f"{entry.where}.git.push.branch",
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


def _add_unique(config: Config, into: dict[str, Any], entry: _Entry, section: str) -> bool:
    """Names are unique per kind across the file and the manifests, in every namespace."""
    obj = entry.obj
    first = into.get(obj.name)
    if first is None:
        into[obj.name] = obj
        return True
    if not entry.check.manifest and not first.path:
        message = (
            f"'{obj.name}' is already used in {section} (line {first.line}); "
            "names must be unique, rename one"
        )
    else:
        message = (
            f"'{obj.name}' is defined twice: at {config.file_of(first)}:{first.line} and at "
            f"{entry.check.path}:{line_of(entry.item)}; names must be unique across the config "
            "file and the Flux manifests (in every namespace), so remove or rename one"
        )
    entry.check.error(_name_node(entry), f"{entry.where}.name", message)
    return False


def _name_node(entry: _Entry) -> Node:
    if entry.check.manifest:
        return value_node(value_node(entry.item, "metadata"), "name")
    return value_node(entry.item, "name")


def _spec_node(entry: _Entry) -> Node:
    """Where the entry's fields are: the list item, or the manifest's spec."""
    return value_node(entry.item, "spec") if entry.check.manifest else entry.item
