"""Flux's own objects as config: ``ImageRepository``, ``ImagePolicy`` and
``ImageUpdateAutomation`` manifests (``image.toolkit.fluxcd.io`` v1, v1beta2, v1beta1).

Which files (`manifest_paths`): those that ``fluxManifests:`` lists (paths,
directories and globs), or, with no config file, every YAML file of the tree;
of those, only files that `mentions_flux_objects` are parsed. `read_objects`
splits one file into documents and returns each image object's metadata and
spec nodes, with their positions; `bot.config.document` reads each spec with
the same section readers as a config entry.

Pure: paths and bytes in, nodes and problems out.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass

import re2
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode

from bot.config import automations, policies, repositories
from bot.config.checker import Checker, Reader
from bot.config.grammar import is_dns_label
from bot.config.yaml import MAX_MANIFEST_BYTES, compose_yaml_documents
from bot.problems import Problem, warning

GROUP = "image.toolkit.fluxcd.io"
API_VERSIONS = tuple(f"{GROUP}/{version}" for version in ("v1", "v1beta2", "v1beta1"))

#: Bytes a file must hold to be parsed at all: most YAML files never get that far.
SCREEN = GROUP.encode()
# An object of the group (not, say, a CRD that names it): an `apiVersion:` line.
_API_VERSION_LINE = re.compile(rb"(?m)^[ \t]*apiVersion:[ \t]*[\"']?image\.toolkit\.fluxcd\.io/")

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Kind:
    """How a kind's spec is read: its reader, the fields it takes, the config section."""

    name: str
    section: str  # the config file's list of the same objects
    reader: Reader
    fields: tuple[str, ...]


KINDS = {
    kind.name: kind
    for kind in (
        Kind(
            "ImageRepository",
            "imageRepositories",
            repositories.read_repository,
            tuple(f for f in repositories.FIELDS if f not in ("name", "credentials")),
        ),
        Kind(
            "ImagePolicy",
            "imagePolicies",
            policies.read_policy,
            tuple(
                f
                for f in policies.FIELDS
                if f not in ("name", "labels", "aliasOf", "minimumReleaseAge")
            ),
        ),
        Kind(
            "ImageUpdateAutomation",
            "imageUpdateAutomations",
            automations.read_automation,
            (*(f for f in automations.FIELDS if f not in ("name", "pullRequest")), "sourceRef"),
        ),
    )
}


@dataclass(frozen=True)
class FluxObject:
    """One image object of a manifest: where it is, its identity, and its spec's fields."""

    path: str
    kind: Kind
    api_version: str
    name: str
    namespace: str
    document: Node  # the whole object: where "missing ..." points
    name_node: Node
    labels: Node | None
    spec: Node


def mentions_flux_objects(data: bytes) -> bool:
    """Whether a file may hold an image object: the group's bytes, on an apiVersion line."""
    return SCREEN in data and _API_VERSION_LINE.search(data) is not None


def too_large(path: str, size: int) -> Problem:
    """The warning for a listed manifest too large to read as config (not read at all)."""
    return warning(
        path,
        0,
        0,
        f"not read for Flux objects: {size} bytes, more than {MAX_MANIFEST_BYTES}; "
        "split the file or leave it out of fluxManifests",
    )


def is_yaml_path(path: str) -> bool:
    return path.endswith(YAML_SUFFIXES)


def pattern_problem(pattern: str) -> str | None:
    """Why a `fluxManifests` entry cannot be used, or None."""
    if not pattern.strip():
        return "must not be empty"
    if pattern.startswith("/") or "\\" in pattern or "\x00" in pattern:
        return f"'{pattern}' must be a path inside the repository, like clusters/prod"
    if ".." in pattern.split("/"):
        return f"'{pattern}' points outside the repository; remove the '..'"
    if len(pattern) > 256 or pattern.count("**") > MAX_DOUBLE_STARS:
        return f"'{pattern[:60]}' is too long or has too many '**'; list directories instead"
    return None


#: `fluxManifests` entries, and `**` in one entry, at most: a list is a handful of paths.
MAX_PATTERNS = 100
MAX_DOUBLE_STARS = 4


def manifest_paths(patterns: Iterable[str] | None, paths: Iterable[str]) -> list[str]:
    """The YAML files whose Flux objects are config, of the tree's ``paths``.

    ``patterns`` is ``fluxManifests`` (a file, a directory meaning every YAML file
    under it, or a glob where ``*`` and ``?`` stay within a directory and ``**``
    crosses them); None means no config file: every YAML file is a candidate.
    The patterns become one RE2 expression: linear in each path, whatever they say.
    """
    yaml_paths = [p for p in paths if is_yaml_path(p)]
    if patterns is None:
        return sorted(yaml_paths)
    alternatives = [_pattern_regex(pattern) for pattern in list(patterns)[:MAX_PATTERNS]]
    if not alternatives:
        return []
    regex = re2.compile("|".join(f"(?:{a})" for a in alternatives))
    return sorted(p for p in yaml_paths if regex.fullmatch(p) is not None)


def _pattern_regex(pattern: str) -> str:
    normal = posixpath.normpath(pattern.strip()).removeprefix("./")
    if not any(c in normal for c in "*?"):
        if normal == ".":
            return ".*"
        return re.escape(normal) + "(?:/.*)?"
    return _glob_regex(normal)


def _glob_regex(pattern: str) -> str:
    while "**/**/" in pattern:
        pattern = pattern.replace("**/**/", "**/")
    parts = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return "".join(parts)


def read_objects(check: Checker, data: bytes, *, default_namespace: str) -> list[FluxObject]:
    """The image objects of one file (``check.path``), in order; problems go to ``check``.

    Documents of other groups (a Deployment, a Kustomization...) are skipped
    without a word; an image object of a version the bot does not read gets a
    warning. A file that is not YAML at all is one error.
    """
    path = check.path
    documents, problem = compose_yaml_documents(data, path)
    if problem is not None:
        check.add(problem)
        return []
    objects = []
    for document in documents:
        header = _header(document)
        if header is None:
            continue
        api_version, kind_name = header
        if kind_name not in KINDS:
            continue
        if api_version not in API_VERSIONS:
            check.warning(
                document,
                f"{kind_name}",
                f"apiVersion {api_version} is not read (the bot reads {', '.join(API_VERSIONS)}); "
                "this object is not part of the config",
            )
            continue
        found = _object(check, path, document, api_version, KINDS[kind_name], default_namespace)
        if found is not None:
            objects.append(found)
    return objects


def _header(document: Node) -> tuple[str, str] | None:
    """(apiVersion, kind) of a document of the image group, else None."""
    if not isinstance(document, MappingNode):
        return None
    values = {
        key.value: value.value
        for key, value in document.value
        if isinstance(key, ScalarNode) and isinstance(value, ScalarNode)
    }
    api_version, kind = values.get("apiVersion"), values.get("kind")
    if not isinstance(api_version, str) or not api_version.startswith(GROUP + "/"):
        return None
    return api_version, kind if isinstance(kind, str) else ""


def _object(
    check: Checker,
    path: str,
    document: Node,
    api_version: str,
    kind: Kind,
    default_namespace: str,
) -> FluxObject | None:
    before = check.count  # any error about this object drops it
    where = kind.name
    top = check.mapping(document, where, ("apiVersion", "kind", "metadata", "spec", "status"))
    if top is None:
        return None
    if "metadata" not in top:
        check.error(document, where, "missing 'metadata'; give the object a metadata.name")
        return None
    metadata = check.mapping(
        top["metadata"], f"{where}.metadata", ("name", "namespace", "labels", "annotations")
    )
    if metadata is None:
        return None
    name = check.object_name(metadata, top["metadata"], f"{where}.metadata")
    namespace = default_namespace
    if "namespace" in metadata:
        value = check.string(metadata["namespace"], f"{where}.metadata.namespace")
        if value is not None and not is_dns_label(value):
            check.error(
                metadata["namespace"],
                f"{where}.metadata.namespace",
                f"'{value}' is not a valid namespace",
            )
            return None
        namespace = value or default_namespace
    if name is None or check.count != before:
        return None
    where = f"{kind.name} {namespace}/{name}"
    spec = top.get("spec")
    if spec is None:
        check.error(document, where, "missing 'spec'")
        return None
    return FluxObject(
        path=path,
        kind=kind,
        api_version=api_version,
        name=name,
        namespace=namespace,
        document=document,
        name_node=metadata["name"],
        labels=metadata.get("labels"),
        spec=spec,
    )
