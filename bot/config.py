"""The repository config file ``.github/image-automation.yml`` (design §2, a contract).

`load_config` turns the file's text into a `Config` plus a list of
`ConfigError`s, each with the file, line and column of the offending YAML node
and a message naming the field and what to do. It never raises. One broken
repository, policy or automation is dropped and reported; the others load.

Pure: text in, objects out (no files, no environment).
"""

from __future__ import annotations

import difflib
import posixpath
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.config_yaml import compose_yaml
from bot.imageref import ImageRef, ImageRefError, parse_repository
from bot.policy.model import DEFAULT_EXCLUSION_LIST, PolicySpec

DEFAULT_PATH = ".github/image-automation.yml"
DEFAULT_NAMESPACE = "default"
DEFAULT_REPOSITORY_INTERVAL = 300.0  # 5m
DEFAULT_AUTOMATION_INTERVAL = 1800.0  # 30m
DEFAULT_POLICY_INTERVAL = 600.0  # 10m, Flux's default for digestReflectionPolicy: Always
MIN_TIMEOUT = 1.0  # Flux raises any shorter timeout to 1s
MAX_EXCLUSION_LIST = 25  # Flux's CRD limit
DEFAULT_AUTHOR_NAME = "image-automation[bot]"
PUSH_BRANCH_PREFIX = "image-automation/"
MAX_REPORTED_ERRORS = 100

_TAG = "tag:yaml.org,2002:"
_DURATION_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+")
_DURATION_NO_HOURS_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?(?:ms|s|m))+")
_DURATION_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DNS_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_NAME_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_TAG_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_EMAIL_RE = re.compile(r"[^@\s<>]+@[^@\s<>]+")
_GO_TEMPLATE_RE = re.compile(r"\{\{-?\s*(\.|range\b|end\b|if\s+\.)")
_BAD_REF_CHARS = frozenset(" ~^:?*[\\\x7f")

# Flux fields with no meaning here: say why instead of "unknown field".
_UNSUPPORTED_HINTS = {
    "secretRef": "credentials never live in the repository; set 'credentials:' to the name of "
    "credentials the bot's operator provides",
    "serviceAccountName": "there is no cluster; use 'credentials:' instead",
    "certSecretRef": "extra CAs are set by the bot's operator with the credentials; remove it",
    "proxySecretRef": "proxies are set by the bot's operator; remove it",
    "provider": "cloud provider logins are not supported; use 'credentials:'",
    "accessFrom": "all objects of this file share one namespace; remove it",
    "suspend": "suspending is not supported; remove the object to stop updates",
    "sourceRef": "the bot always updates the repository holding this file; remove it",
    "signingKey": "commits made through the GitHub API are signed by GitHub; remove it",
    "refspec": "push refspecs are not supported; the bot opens a pull request instead",
    "options": "push options are not supported; remove them",
    "metadata": "this looks like a Flux object: put metadata.name in 'name' and the fields "
    "of spec: directly in this list entry",
    "spec": "this looks like a Flux object: move the fields of spec: up into this list entry",
    "apiVersion": "this looks like a Flux object: keep only 'name' and the fields of spec:",
    "kind": "this looks like a Flux object: keep only 'name' and the fields of spec:",
}


@dataclass(frozen=True)
class ConfigError:
    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


@dataclass
class ImageRepositoryConfig:
    name: str
    image: str  # verbatim; becomes LatestRef.name
    ref: ImageRef
    interval: float = DEFAULT_REPOSITORY_INTERVAL
    timeout: float | None = None  # None: the scanner's default (30s), not the interval as in Flux
    exclusion_list: tuple[str, ...] = DEFAULT_EXCLUSION_LIST  # effective list
    insecure: bool | None = None  # None: plain http only for loopback
    credentials: str | None = None
    line: int = 0


@dataclass
class ImagePolicyConfig:
    name: str
    repository: str
    spec: PolicySpec
    labels: dict[str, str] = field(default_factory=dict)
    interval: float | None = None  # set only with digestReflectionPolicy: Always
    line: int = 0


@dataclass
class LabelSelector:
    match_labels: dict[str, str] = field(default_factory=dict)
    match_expressions: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Kubernetes semantics: every matchLabels pair and every expression must hold."""
        if any(labels.get(key) != value for key, value in self.match_labels.items()):
            return False
        for key, operator, values in self.match_expressions:
            present = key in labels
            if operator == "In" and not (present and labels[key] in values):
                return False
            if operator == "NotIn" and present and labels[key] in values:
                return False
            if operator == "Exists" and not present:
                return False
            if operator == "DoesNotExist" and present:
                return False
        return True


@dataclass
class AutomationConfig:
    name: str
    interval: float = DEFAULT_AUTOMATION_INTERVAL
    checkout_branch: str | None = None  # None: the repository's default branch
    push_branch: str = ""  # "" is replaced by image-automation/<name>
    author_name: str = DEFAULT_AUTHOR_NAME
    author_email: str = ""  # "": the GitHub App's own bot identity
    message_template: str | None = None
    message_template_values: dict[str, str] = field(default_factory=dict)
    update_path: str = "."
    strategy: str = "Setters"
    policy_selector: LabelSelector | None = None  # None: every policy
    pr_title: str | None = None
    pr_body_template: str | None = None
    pr_labels: list[str] = field(default_factory=list)
    pr_draft: bool = False
    line: int = 0

    def __post_init__(self) -> None:
        if not self.push_branch:
            self.push_branch = f"{PUSH_BRANCH_PREFIX}{self.name}"

    def selects(self, policy: ImagePolicyConfig) -> bool:
        return self.policy_selector is None or self.policy_selector.matches(policy.labels)


@dataclass
class Config:
    version: int = 1
    namespace: str = DEFAULT_NAMESPACE
    repositories: dict[str, ImageRepositoryConfig] = field(default_factory=dict)
    policies: dict[str, ImagePolicyConfig] = field(default_factory=dict)
    automations: dict[str, AutomationConfig] = field(default_factory=dict)


def load_config(text: str | bytes, *, path: str = DEFAULT_PATH) -> tuple[Config, list[ConfigError]]:
    """Parse and validate the config; never raises (worst case: one error at 1:1)."""
    try:
        return _load(text, path)
    except Exception as err:  # a bug here must not take the bot down with a bad file
        return Config(), [
            ConfigError(
                path,
                1,
                1,
                f"could not read the config ({type(err).__name__}); "
                "please report this with the file",
            )
        ]


def is_valid_branch_name(name: str) -> bool:
    """``git check-ref-format --branch`` rules."""
    if not name or name in ("@", "HEAD") or name.startswith("-"):
        return False
    if ".." in name or "@{" in name or name.endswith(".") or name.endswith("/"):
        return False
    if any(ord(c) < 0x20 or c in _BAD_REF_CHARS for c in name):
        return False
    return all(
        part and not part.startswith(".") and not part.endswith(".lock") for part in name.split("/")
    )


def parse_duration(text: str, *, hours: bool = True) -> float | None:
    """Seconds in a Flux duration (``1h30m``, ``500ms``), or None if it is not one."""
    pattern = _DURATION_RE if hours else _DURATION_NO_HOURS_RE
    if not pattern.fullmatch(text):
        return None
    return sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART_RE.findall(text))


# --- reading ------------------------------------------------------------------------------------


def _load(text: str | bytes, path: str) -> tuple[Config, list[ConfigError]]:
    check = _Checker(path)
    root, problem = compose_yaml(text)
    if problem is not None or root is None:
        assert problem is not None
        return Config(), [ConfigError(path, problem.line, problem.column, problem.message)]
    top = check.mapping(
        root,
        "",
        ("version", "namespace", "imageRepositories", "imagePolicies", "imageUpdateAutomations"),
    )
    config = Config()
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
            if _DNS_LABEL_RE.fullmatch(namespace) and len(namespace) <= 63:
                config.namespace = check.namespace = namespace
            else:
                check.error(
                    top["namespace"],
                    "namespace",
                    f"'{namespace}' is not a valid namespace; use up to 63 lowercase letters, "
                    "digits and '-', starting and ending with a letter or digit",
                )

    declared_repositories: set[str] = set()
    for item, where in check.items(top.get("imageRepositories"), "imageRepositories"):
        repo = _read_object(
            check, item, where, _repository, _REPOSITORY_FIELDS, declared_repositories
        )
        if repo is not None:
            _add_unique(check, config.repositories, repo, item, where, "imageRepositories")

    declared_policies: set[str] = set()
    for item, where in check.items(top.get("imagePolicies"), "imagePolicies"):
        policy = _read_object(check, item, where, _policy, _POLICY_FIELDS, declared_policies)
        if policy is None:
            continue
        if policy.repository not in config.repositories:
            ref_node = _value_node(item, "imageRepositoryRef")
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
                    f"{_did_you_mean(policy.repository, config.repositories)}; "
                    "add it under imageRepositories or fix the name",
                )
            continue
        _add_unique(check, config.policies, policy, item, where, "imagePolicies")

    declared_automations: set[str] = set()
    for item, where in check.items(top.get("imageUpdateAutomations"), "imageUpdateAutomations"):
        automation = _read_object(
            check, item, where, _automation, _AUTOMATION_FIELDS, declared_automations
        )
        if automation is not None:
            _add_unique(
                check, config.automations, automation, item, where, "imageUpdateAutomations"
            )
    return config, check.finish()


def _read_object(
    check: _Checker,
    item: Node,
    where: str,
    reader: Callable[[_Checker, Node, str, dict[str, Node], str], Any],
    allowed: tuple[str, ...],
    declared: set[str],
) -> Any:
    """Read one list entry; None (and errors recorded) if anything in it is wrong."""
    before = check.count
    fields = check.mapping(item, where, allowed)
    if fields is None:
        return None
    name = check.object_name(fields, item, where)
    if name is not None:
        declared.add(name)
    obj = reader(check, item, where, fields, name or "")
    if check.count > before or name is None:
        return None
    return obj


def _add_unique(
    check: _Checker, into: dict[str, Any], obj: Any, item: Node, where: str, section: str
) -> None:
    if obj.name in into:
        check.error(
            _value_node(item, "name"),
            f"{where}.name",
            f"'{obj.name}' is already used in {section} (line {into[obj.name].line}); "
            "names must be unique, rename one",
        )
        return
    into[obj.name] = obj


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _value_node(mapping: Node, key: str) -> Node:
    """The value of ``key`` in a mapping node already read without errors (else the mapping)."""
    return next((value for k, value in mapping.value if k.value == key), mapping)


# --- imageRepositories ----------------------------------------------------------------------------


def _repository(
    check: _Checker, item: Node, where: str, fields: dict[str, Node], name: str
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
        line=_line(item),
    )


_REPOSITORY_FIELDS = (
    "name",
    "image",
    "interval",
    "timeout",
    "exclusionList",
    "insecure",
    "credentials",
)


# --- imagePolicies --------------------------------------------------------------------------------

_POLICY_KINDS = ("semver", "alphabetical", "numerical", "rolling")


def _policy(
    check: _Checker, item: Node, where: str, fields: dict[str, Node], name: str
) -> ImagePolicyConfig | None:
    before = check.count
    repository = _repository_ref(check, item, where, fields)
    labels = check.optional(fields, "labels", where, check.labels) or {}
    kind_fields = _policy_kind(check, item, where, fields)
    filter_pattern, filter_extract = _filter_tags(check, where, fields)
    alias_of = check.optional(fields, "aliasOf", where, check.tag_name)
    reflection = "Never"
    if "digestReflectionPolicy" in fields:
        reflection = check.enum(
            fields["digestReflectionPolicy"],
            f"{where}.digestReflectionPolicy",
            ("Never", "IfNotPresent", "Always"),
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
        line=_line(item),
    )


_POLICY_FIELDS = (
    "name",
    "imageRepositoryRef",
    "labels",
    "policy",
    "filterTags",
    "aliasOf",
    "digestReflectionPolicy",
    "interval",
)


def _repository_ref(check: _Checker, item: Node, where: str, fields: dict[str, Node]) -> str | None:
    node = fields.get("imageRepositoryRef")
    path = f"{where}.imageRepositoryRef"
    if node is None:
        check.error(item, path, "missing; name an entry of imageRepositories")
        return None
    if isinstance(node, MappingNode):  # Flux's {name: ..., namespace: ...}
        ref = check.mapping(node, path, ("name", "namespace"))
        if ref is None:
            return None
        if "namespace" in ref:
            namespace = check.string(ref["namespace"], f"{path}.namespace")
            if namespace is not None and namespace != check.namespace:
                check.error(
                    ref["namespace"],
                    f"{path}.namespace",
                    "cross-namespace references are not supported; remove it",
                )
        if "name" not in ref:
            check.error(node, path, "missing 'name'; name an entry of imageRepositories")
            return None
        return check.nonempty_string(ref["name"], f"{path}.name")
    return check.nonempty_string(node, path)


def _policy_kind(
    check: _Checker, item: Node, where: str, fields: dict[str, Node]
) -> dict[str, str] | None:
    node = fields.get("policy")
    path = f"{where}.policy"
    choices = "semver: {range: ...}, alphabetical: {order: ...}, numerical: {order: ...} or rolling: {tag: ...}"
    if node is None:
        check.error(item, path, f"missing; choose one of {choices}")
        return None
    kinds = check.mapping(node, path, _POLICY_KINDS)
    if kinds is None:
        return None
    if not kinds:
        check.error(node, path, f"empty; choose one of {choices}")
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
        order = check.enum(values["order"], f"{kind_path}.order", ("asc", "desc"))
    return None if order is None else {"kind": kind, "order": order}


def _filter_tags(check: _Checker, where: str, fields: dict[str, Node]) -> tuple[str | None, str]:
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


def _check_compiles(check: _Checker, where: str, fields: dict[str, Node], spec: PolicySpec) -> None:
    """Let the policy layer judge ranges and regexes (it is the one that must run them)."""
    try:
        from bot.policy import compile_policy
    except Exception:  # policy layer not importable (yet): ranges are checked when it runs
        return
    try:
        compile_policy(spec)
    except Exception as err:  # the policy layer's verdict on the user's policy
        node, path = fields["policy"], f"{where}.policy"
        without_range = replace(spec, kind="alphabetical", semver_range="")
        if spec.kind == "semver" and _compiles(compile_policy, without_range):
            semver = node.value[0][1]
            node = next(v for k, v in semver.value if k.value == "range")
            path = f"{where}.policy.semver.range"
            err = f"{err}; write a range such as '>=1.2.0 <2.0.0' or '~1.2'"
        elif "filterTags" in fields and _compiles(
            compile_policy, replace(spec, filter_pattern=None)
        ):
            node, path = fields["filterTags"], f"{where}.filterTags"
        elif "aliasOf" in fields and _compiles(compile_policy, replace(spec, alias_of=None)):
            node, path = fields["aliasOf"], f"{where}.aliasOf"
        check.error(node, path, str(err))


def _compiles(compile_policy: Callable[[PolicySpec], Any], spec: PolicySpec) -> bool:
    try:
        compile_policy(spec)
    except Exception:
        return False
    return True


# --- imageUpdateAutomations -----------------------------------------------------------------------


def _automation(
    check: _Checker, item: Node, where: str, fields: dict[str, Node], name: str
) -> AutomationConfig | None:
    name_node = fields.get("name")
    automation = AutomationConfig(name=name, line=_line(item))
    default_push_branch = automation.push_branch
    interval = check.duration_field(fields, "interval", where, DEFAULT_AUTOMATION_INTERVAL)
    if interval is not None:
        automation.interval = interval
    if "git" in fields:
        _git(check, fields["git"], f"{where}.git", automation)
    default_kept = automation.push_branch == default_push_branch
    if default_kept and name_node is not None and not is_valid_branch_name(default_push_branch):
        check.error(
            name_node,
            f"{where}.name",
            f"the default push branch '{default_push_branch}' is not a valid git "
            "branch name; set git.push.branch",
        )
    if "update" in fields:
        _update(check, fields["update"], f"{where}.update", automation)
    if "policySelector" in fields:
        automation.policy_selector = check.selector(
            fields["policySelector"], f"{where}.policySelector"
        )
    if "pullRequest" in fields:
        _pull_request(check, fields["pullRequest"], f"{where}.pullRequest", automation)
    return automation


_AUTOMATION_FIELDS = (
    "name",
    "interval",
    "git",
    "update",
    "policySelector",
    "pullRequest",
)


def _git(check: _Checker, node: Node, path: str, automation: AutomationConfig) -> None:
    git = check.mapping(node, path, ("checkout", "commit", "push"))
    if git is None:
        return
    if "checkout" in git:
        checkout = check.mapping(git["checkout"], f"{path}.checkout", ("ref",))
        if checkout and "ref" in checkout:
            ref = check.mapping(checkout["ref"], f"{path}.checkout.ref", ("branch",), _REF_HINTS)
            if ref and "branch" in ref:
                automation.checkout_branch = check.branch(
                    ref["branch"], f"{path}.checkout.ref.branch"
                )
    if "commit" in git:
        _commit(check, git["commit"], f"{path}.commit", automation)
    if "push" in git:
        push = check.mapping(git["push"], f"{path}.push", ("branch",))
        if push and "branch" in push:
            branch = check.branch(push["branch"], f"{path}.push.branch")
            if branch:
                automation.push_branch = branch


_REF_HINTS = {
    key: "only 'branch' is supported: the bot proposes changes to a branch"
    for key in ("tag", "semver", "name", "commit")
}


def _commit(check: _Checker, node: Node, path: str, automation: AutomationConfig) -> None:
    commit = check.mapping(node, path, ("author", "messageTemplate", "messageTemplateValues"))
    if commit is None:
        return
    if "author" in commit:
        author = check.mapping(commit["author"], f"{path}.author", ("name", "email"))
        if author is not None:
            if "email" not in author:
                check.error(
                    commit["author"],
                    f"{path}.author",
                    "missing 'email'; an author needs an email address",
                )
            else:
                email = check.string(author["email"], f"{path}.author.email")
                if email is not None and not _EMAIL_RE.fullmatch(email):
                    check.error(
                        author["email"],
                        f"{path}.author.email",
                        f"'{email}' is not an email address; write one like bot@example.com",
                    )
                elif email is not None:
                    automation.author_email = email
            name = check.optional(author, "name", f"{path}.author", check.nonempty_string)
            if name:
                automation.author_name = name
    if "messageTemplate" in commit:
        automation.message_template = check.template(
            commit["messageTemplate"], f"{path}.messageTemplate"
        )
    if "messageTemplateValues" in commit:
        automation.message_template_values = (
            check.string_map(commit["messageTemplateValues"], f"{path}.messageTemplateValues") or {}
        )


def _update(check: _Checker, node: Node, path: str, automation: AutomationConfig) -> None:
    update = check.mapping(node, path, ("path", "strategy"))
    if update is None:
        return
    if "strategy" in update:
        check.enum(update["strategy"], f"{path}.strategy", ("Setters",))
    if "path" in update:
        raw = check.nonempty_string(update["path"], f"{path}.path")
        if raw is None:
            return
        normal = posixpath.normpath(raw)
        if raw.startswith("/") or "\\" in raw or "\x00" in raw:
            check.error(
                update["path"],
                f"{path}.path",
                f"'{raw}' must be a relative path inside the repository, like ./clusters/prod",
            )
        elif normal == ".." or normal.startswith("../"):
            check.error(
                update["path"],
                f"{path}.path",
                f"'{raw}' points outside the repository; remove the '..'",
            )
        else:
            automation.update_path = normal


def _pull_request(check: _Checker, node: Node, path: str, automation: AutomationConfig) -> None:
    pr = check.mapping(node, path, ("title", "bodyTemplate", "labels", "draft"))
    if pr is None:
        return
    if "title" in pr:
        automation.pr_title = check.template(pr["title"], f"{path}.title")
    if "bodyTemplate" in pr:
        automation.pr_body_template = check.template(pr["bodyTemplate"], f"{path}.bodyTemplate")
    if "labels" in pr:
        labels = check.string_list(pr["labels"], f"{path}.labels") or []
        for index, label in enumerate(labels):
            if not label.strip() or len(label) > 50:
                check.error(
                    pr["labels"].value[index],
                    f"{path}.labels[{index}]",
                    "a GitHub label is 1-50 characters; shorten or fill it",
                )
        automation.pr_labels = labels
    if "draft" in pr:
        draft = check.boolean(pr["draft"], f"{path}.draft")
        automation.pr_draft = bool(draft)


# --- node checks --------------------------------------------------------------------------------


class _Checker:
    """Typed reads of YAML nodes; every failure becomes a ConfigError at the node."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[ConfigError] = []
        self.count = 0
        self.namespace = DEFAULT_NAMESPACE

    def error(self, node: Node, where: str, message: str) -> None:
        self.count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            text = f"{where}: {message}" if where else message
            line, column = node.start_mark.line + 1, node.start_mark.column + 1
            self.errors.append(ConfigError(self.path, line, column, text))

    def finish(self) -> list[ConfigError]:
        errors = sorted(self.errors, key=lambda e: (e.line, e.column))
        if self.count > len(errors):
            more = self.count - len(errors)
            errors.append(
                ConfigError(self.path, 1, 1, f"{more} more errors not shown; fix these first")
            )
        return errors

    # structure

    def mapping(
        self,
        node: Node,
        where: str,
        allowed: Collection[str],
        hints: Mapping[str, str] | None = None,
    ) -> dict[str, Node] | None:
        if not isinstance(node, MappingNode) or node.tag != f"{_TAG}map":
            self.error(node, where or "the file", f"expected a mapping, got {_describe(node)}")
            return None
        fields: dict[str, Node] = {}
        seen: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key_path = where + "." if where else ""
            if key_node.tag == f"{_TAG}merge":
                self.error(
                    key_node,
                    where or "the file",
                    "merge keys ('<<') are not supported; write the fields out",
                )
                continue
            if not isinstance(key_node, ScalarNode) or key_node.tag != f"{_TAG}str":
                self.error(
                    key_node,
                    where or "the file",
                    f"keys must be field names, got {_describe(key_node)}",
                )
                continue
            key = key_node.value
            if key in seen:
                self.error(
                    key_node,
                    key_path + key,
                    f"duplicate key (first at line {_line(seen[key])}); remove one",
                )
                continue
            seen[key] = key_node
            if key not in allowed:
                hint = (hints or {}).get(key) or _UNSUPPORTED_HINTS.get(key)
                if hint is None:
                    hint = f"expected one of {', '.join(allowed)}{_did_you_mean(key, allowed)}"
                self.error(key_node, key_path + key, f"unknown field; {hint}")
                continue
            fields[key] = value_node
        return fields

    def items(self, node: Node | None, where: str) -> list[tuple[Node, str]]:
        if node is None or self.is_null(node):
            return []
        if not isinstance(node, SequenceNode) or node.tag != f"{_TAG}seq":
            self.error(
                node, where, f"expected a list of entries ('- name: ...'), got {_describe(node)}"
            )
            return []
        return [(item, f"{where}[{index}]") for index, item in enumerate(node.value)]

    def optional(
        self,
        fields: Mapping[str, Node],
        key: str,
        where: str,
        read: Callable[[Node, str], Any],
    ) -> Any:
        if key not in fields:
            return None
        return read(fields[key], f"{where}.{key}")

    def object_name(self, fields: dict[str, Node], item: Node, where: str) -> str | None:
        if "name" not in fields:
            self.error(item, where, "missing 'name'; give every entry a unique name")
            return None
        name = self.string(fields["name"], f"{where}.name")
        if name is None:
            return None
        if not (_DNS_SUBDOMAIN_RE.fullmatch(name) and len(name) <= 253):
            self.error(
                fields["name"],
                f"{where}.name",
                f"'{name}' is not a valid name; use lowercase letters, digits, '-' and '.', "
                "starting and ending with a letter or digit",
            )
            return None
        return name

    # scalars

    @staticmethod
    def is_null(node: Node) -> bool:
        return isinstance(node, ScalarNode) and node.tag == f"{_TAG}null"

    def string(self, node: Node, where: str) -> str | None:
        if isinstance(node, ScalarNode) and node.tag == f"{_TAG}str":
            return node.value
        hint = "; quote it" if isinstance(node, ScalarNode) and not self.is_null(node) else ""
        self.error(node, where, f"expected a string, got {_describe(node)}{hint}")
        return None

    def nonempty_string(self, node: Node, where: str) -> str | None:
        value = self.string(node, where)
        if value is not None and not value.strip():
            self.error(node, where, "must not be empty")
            return None
        return value

    def required_string(
        self, fields: Mapping[str, Node], key: str, item: Node, where: str
    ) -> str | None:
        if key not in fields:
            self.error(item, where, f"missing '{key}'")
            return None
        return self.nonempty_string(fields[key], f"{where}.{key}")

    def boolean(self, node: Node, where: str) -> bool | None:
        if isinstance(node, ScalarNode) and node.tag == f"{_TAG}bool":
            return node.value.lower() == "true"
        self.error(node, where, f"expected true or false, got {_describe(node)}")
        return None

    def integer(self, node: Node, where: str) -> int | None:
        if isinstance(node, ScalarNode) and node.tag == f"{_TAG}int":
            try:
                return int(node.value.replace("_", ""), 0)
            except ValueError:
                pass
        self.error(node, where, f"expected a whole number, got {_describe(node)}")
        return None

    def enum(self, node: Node, where: str, choices: tuple[str, ...]) -> str | None:
        value = self.string(node, where)
        if value is None:
            return None
        if value not in choices:
            self.error(
                node,
                where,
                f"'{value}' is not allowed; expected one of {', '.join(choices)}",
            )
            return None
        return value

    def duration(
        self, node: Node, where: str, *, hours: bool = True, zero: bool = False
    ) -> float | None:
        units = "ms, s, m or h" if hours else "ms, s or m"
        example = "'5m' or '1h30m'" if hours else "'30s' or '1m30s'"
        text = node.value if isinstance(node, ScalarNode) and node.tag == f"{_TAG}str" else None
        if text is None:
            self.error(node, where, f"expected a duration like {example}, got {_describe(node)}")
            return None
        seconds = parse_duration(text, hours=hours)
        if seconds is None:
            self.error(
                node,
                where,
                f"'{text}' is not a duration; write numbers with units {units}, like {example}",
            )
            return None
        if seconds <= 0 and not zero:
            self.error(node, where, f"'{text}' must be longer than zero")
            return None
        return seconds

    def duration_field(
        self, fields: Mapping[str, Node], key: str, where: str, default: float
    ) -> float | None:
        if key not in fields:
            return default
        return self.duration(fields[key], f"{where}.{key}")

    def tag_name(self, node: Node, where: str) -> str | None:
        value = self.nonempty_string(node, where)
        if value is not None and not _TAG_NAME_RE.fullmatch(value):
            self.error(
                node,
                where,
                f"'{value}' is not an image tag; a tag is 1-128 letters, digits, '_', '.' or "
                "'-', not starting with '.' or '-'",
            )
            return None
        return value

    def branch(self, node: Node, where: str) -> str | None:
        value = self.nonempty_string(node, where)
        if value is not None and not is_valid_branch_name(value):
            self.error(
                node,
                where,
                f"'{value}' is not a valid git branch name (no spaces, '..', '~', '^', ':', "
                "'?', '*', '[', '\\', leading '-' or '/', or trailing '/', '.' or '.lock')",
            )
            return None
        return value

    def regex(self, node: Node, where: str, pattern: str) -> None:
        try:
            _compile_re2(pattern)
        except Exception as err:  # whatever the RE2 layer raises, it is about the user's pattern
            self.error(node, where, str(err))

    def template(self, node: Node, where: str) -> str | None:
        text = self.string(node, where)
        if text is None:
            return None
        try:
            SandboxedEnvironment().parse(text)
        except jinja2.TemplateSyntaxError as err:
            hint = ""
            if _GO_TEMPLATE_RE.search(text):
                hint = (
                    "; this looks like a Flux Go template: Jinja2 writes {{ .AutomationObject }}"
                    " as {{ AutomationObject }} and {{ range ... }} as {% for ... %}"
                )
            self.error(node, where, f"template error on its line {err.lineno}: {err.message}{hint}")
            return None
        return text

    # collections

    def string_list(self, node: Node, where: str) -> list[str] | None:
        if not isinstance(node, SequenceNode) or node.tag != f"{_TAG}seq":
            self.error(node, where, f"expected a list of strings, got {_describe(node)}")
            return None
        values = [self.string(item, f"{where}[{i}]") for i, item in enumerate(node.value)]
        return None if any(v is None for v in values) else values  # type: ignore[return-value]

    def string_map(self, node: Node, where: str) -> dict[str, str] | None:
        fields = self._free_mapping(node, where)
        if fields is None:
            return None
        values = {key: self.string(value, f"{where}.{key}") for key, (_, value) in fields.items()}
        if any(v is None for v in values.values()):
            return None
        return values  # type: ignore[return-value]

    def labels(self, node: Node, where: str) -> dict[str, str] | None:
        values = self.string_map(node, where)
        if values is None:
            return None
        fields = self._free_mapping(node, where, report=False) or {}
        ok = True
        for key, value in values.items():
            key_node, value_node = fields[key]
            ok &= self._label_key(key_node, f"{where}.{key}", key)
            ok &= self._label_value(value_node, f"{where}.{key}", value)
        return values if ok else None

    def selector(self, node: Node, where: str) -> LabelSelector | None:
        if self.is_null(node):
            return LabelSelector()
        fields = self.mapping(node, where, ("matchLabels", "matchExpressions"))
        if fields is None:
            return None
        selector = LabelSelector()
        if "matchLabels" in fields:
            selector.match_labels = self.labels(fields["matchLabels"], f"{where}.matchLabels") or {}
        if "matchExpressions" in fields:
            for item, item_path in self.items(
                fields["matchExpressions"], f"{where}.matchExpressions"
            ):
                expression = self._expression(item, item_path)
                if expression is not None:
                    selector.match_expressions.append(expression)
        return selector

    def _expression(self, node: Node, where: str) -> tuple[str, str, tuple[str, ...]] | None:
        fields = self.mapping(node, where, ("key", "operator", "values"))
        if fields is None:
            return None
        if "key" not in fields or "operator" not in fields:
            self.error(node, where, "needs 'key' and 'operator'")
            return None
        key = self.string(fields["key"], f"{where}.key")
        if key is not None and not self._label_key(fields["key"], f"{where}.key", key):
            return None
        operator = self.enum(
            fields["operator"], f"{where}.operator", ("In", "NotIn", "Exists", "DoesNotExist")
        )
        values: list[str] = []
        if "values" in fields:
            values = self.string_list(fields["values"], f"{where}.values") or []
        if operator in ("In", "NotIn") and not values:
            self.error(node, where, f"operator {operator} needs a non-empty 'values' list")
            return None
        if operator in ("Exists", "DoesNotExist") and values:
            self.error(fields["values"], f"{where}.values", f"must be empty with {operator}")
            return None
        if key is None or operator is None:
            return None
        return key, operator, tuple(values)

    def _free_mapping(
        self, node: Node, where: str, report: bool = True
    ) -> dict[str, tuple[Node, Node]] | None:
        """A mapping whose keys are data (labels, template values), not field names."""
        if not isinstance(node, MappingNode) or node.tag != f"{_TAG}map":
            if report:
                self.error(node, where, f"expected a mapping, got {_describe(node)}")
            return None
        fields: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag != f"{_TAG}str":
                if report:
                    self.error(key_node, where, f"keys must be strings, got {_describe(key_node)}")
                continue
            if key_node.value in fields:
                if report:
                    self.error(key_node, f"{where}.{key_node.value}", "duplicate key; remove one")
                continue
            fields[key_node.value] = (key_node, value_node)
        return fields

    def _label_key(self, node: Node, where: str, key: str) -> bool:
        prefix, slash, name = key.rpartition("/")
        valid = _LABEL_NAME_RE.fullmatch(name) and len(name) <= 63
        if slash:
            valid = valid and _DNS_SUBDOMAIN_RE.fullmatch(prefix) and len(prefix) <= 253
        if not valid:
            self.error(
                node,
                where,
                f"'{key}' is not a valid label key; use up to 63 letters, digits, '-', '_' "
                "and '.', starting and ending with a letter or digit (optionally prefixed "
                "by a DNS name and '/')",
            )
        return bool(valid)

    def _label_value(self, node: Node, where: str, value: str) -> bool:
        if value == "" or (_LABEL_NAME_RE.fullmatch(value) and len(value) <= 63):
            return True
        self.error(
            node,
            where,
            f"'{value}' is not a valid label value; use up to 63 letters, digits, '-', '_' "
            "and '.', starting and ending with a letter or digit",
        )
        return False


def _compile_re2(pattern: str) -> Any:
    try:
        from bot.policy import compile_re2
    except Exception:  # the policy layer's wrapper is not there: use the binding itself
        import re2

        try:
            return re2.compile(pattern)
        except re2.error as err:
            raise ValueError(
                f"invalid regular expression pattern '{pattern}': {err}; use RE2 syntax"
            ) from None
    return compile_re2(pattern)


def _describe(node: Node) -> str:
    kinds = {
        "null": "nothing",
        "bool": "a boolean",
        "int": "a number",
        "float": "a number",
        "str": "a string",
        "timestamp": "a date",
    }
    tag = node.tag or ""
    if isinstance(node, MappingNode) and tag == f"{_TAG}map":
        return "a mapping"
    if isinstance(node, SequenceNode) and tag == f"{_TAG}seq":
        return "a list"
    kind = kinds.get(tag.removeprefix(_TAG)) if tag.startswith(_TAG) else None
    if kind is None or not isinstance(node, ScalarNode):
        return f"a value tagged '{tag}'"
    return f"{kind} ({node.value!r})" if node.value else kind


def _did_you_mean(word: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
