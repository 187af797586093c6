"""`Checker`: typed reads of YAML nodes, each failure a `Problem` at the node.

The section readers ask it for a mapping with known fields, a string, a
duration, a list, a label selector...; it answers with the value or None, and
records why not with the node's line and column and the field's path
(``imagePolicies[0].policy``). Nothing here knows which fields a section has.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.config import grammar
from bot.config.model import (
    DEFAULT_NAMESPACE,
    SELECTOR_OPERATORS,
    AutomationConfig,
    LabelSelector,
)
from bot.problems import Problem, error, notice, warning

MAX_REPORTED_ERRORS = 100

_TAG = "tag:yaml.org,2002:"
# A Go action: a field (`.Name`, also as an argument: `printf "%s" .Name`), a variable, or
# one of the actions Flux's documentation uses.
# Go's `range` and `if` take a pipeline (`.X`, `$x`); Jinja2's `range(10)` is a call.
# `{{/* ... */}}` is a Go comment.
_GO_TEMPLATE_RE = re.compile(
    r"\{\{-?\s*(\.|\$|/\*|range\s+[.$]|end\s*-?\}\}|if\s+[.$]|print(f|ln)?\s+[.$\"])"
    r"|\{\{[^}]*\s\.[A-Z]"
)

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

# The same fields in a Flux manifest (`bot.config.manifests`): they are right there, for the
# cluster, so each is a notice saying what the bot does instead, never an error.
_CLUSTER_ONLY_NOTICES = {
    "secretRef": "a cluster Secret, which the bot cannot read: it uses its operator's registry "
    "credentials of the same name instead (REGISTRY_CREDENTIALS), if they are allowed here",
    "serviceAccountName": "the bot has no service account; registry credentials come from its "
    "operator (REGISTRY_CREDENTIALS), named by secretRef",
    "certSecretRef": "extra CAs are set by the bot's operator with the registry credentials "
    "(caFile)",
    "proxySecretRef": "proxies are set by the bot's operator",
    "provider": "the bot has no cloud identity of its own; its operator sets up ECR, GCP or "
    "ACR logins in the registry credentials (ecr:, gcp:, acr:), named by secretRef",
    "accessFrom": "the bot reads every object listed for this repository, whatever its namespace",
    "suspend": "it pauses Flux's controller, not the bot; to stop the bot, leave this file out "
    "of fluxManifests (or remove the object)",
    "sourceRef": "the bot always updates the repository that holds the manifest",
    "signingKey": "commits made through the GitHub API are signed by GitHub",
    "refspec": "the bot opens a pull request (or pushes its branch) instead of extra refspecs",
    "options": "git push options do not apply to commits made through the GitHub API",
}


#: A section's reader: (checker, the entry's node, its path, its fields, its name) -> the
#: object, or None; failures are recorded on the checker.
Reader = Callable[["Checker", Node, str, dict[str, Node], str], Any]


class Checker:
    """Typed reads of YAML nodes; every failure becomes a `Problem` at the node.

    ``count`` counts every failure, also those past the report cap: a reader
    compares it before and after to know whether what it read is whole.
    """

    def __init__(self, path: str, *, manifest: bool = False) -> None:
        self.path = path
        #: Reading a Flux manifest: its cluster-only fields are notices, fields the bot
        #: does not know are ignored with a warning (the cluster's schema is the judge), and
        #: a Go template the bot cannot run falls back to the default message.
        self.manifest = manifest
        self.errors: list[Problem] = []
        self.others: list[Problem] = []  # warnings and notices: they never make a read fail
        self.count = 0
        self.namespace = DEFAULT_NAMESPACE

    def error(self, node: Node, where: str, message: str) -> None:
        self.error_at(node.start_mark.line + 1, node.start_mark.column + 1, where, message)

    def error_at(self, line: int, column: int, where: str, message: str) -> None:
        self.count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            text = f"{where}: {message}" if where else message
            self.errors.append(error(self.path, line, column, text))

    def add(self, problem: Problem) -> None:
        """A problem found outside the checker (the file could not be parsed at all)."""
        if problem.is_error:
            self.count += 1
            self.errors.append(problem)
        else:
            self.others.append(problem)

    def warning(self, node: Node, where: str, message: str, *, only_notice: bool = False) -> None:
        make = notice if only_notice else warning
        if len(self.others) < MAX_REPORTED_ERRORS:
            line, column = node.start_mark.line + 1, node.start_mark.column + 1
            self.others.append(make(self.path, line, column, f"{where}: {message}"))

    def finish(self) -> list[Problem]:
        """The errors in file order (capped), then the warnings and notices."""
        errors = sorted(self.errors, key=lambda e: (e.line, e.column))
        if self.count > len(errors):
            more = self.count - len(errors)
            errors.append(error(self.path, 1, 1, f"{more} more errors not shown; fix these first"))
        return errors + sorted(self.others, key=lambda p: (p.line, p.column))

    # structure

    def mapping(
        self,
        node: Node,
        where: str,
        allowed: Collection[str],
        hints: Mapping[str, str] | None = None,
    ) -> dict[str, Node] | None:
        if not isinstance(node, MappingNode) or node.tag != f"{_TAG}map":
            self.error(node, where or "the file", f"expected a mapping, got {describe(node)}")
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
                    f"keys must be field names, got {describe(key_node)}",
                )
                continue
            key = key_node.value
            if key in seen:
                self.error(
                    key_node,
                    key_path + key,
                    f"duplicate key (first at line {line_of(seen[key])}); remove one",
                )
                continue
            seen[key] = key_node
            if key not in allowed:
                if self.manifest and not (hints and key in hints):
                    self._ignored_in_manifest(key_node, key_path + key, key)
                    continue
                hint = (hints or {}).get(key) or _UNSUPPORTED_HINTS.get(key)
                if hint is None:
                    hint = f"expected one of {', '.join(allowed)}{did_you_mean(key, allowed)}"
                self.error(key_node, key_path + key, f"unknown field; {hint}")
                continue
            fields[key] = value_node
        return fields

    def _ignored_in_manifest(self, key_node: Node, where: str, key: str) -> None:
        cluster_only = _CLUSTER_ONLY_NOTICES.get(key)
        if cluster_only is not None:
            self.warning(
                key_node, where, f"cluster-only, not used: {cluster_only}", only_notice=True
            )
        else:
            self.warning(
                key_node,
                where,
                "not a field the bot knows; ignored (the cluster drops fields its schema "
                "lacks, so check its spelling)",
            )

    def items(self, node: Node | None, where: str) -> list[tuple[Node, str]]:
        if node is None or self.is_null(node):
            return []
        if not isinstance(node, SequenceNode) or node.tag != f"{_TAG}seq":
            self.error(
                node, where, f"expected a list of entries ('- name: ...'), got {describe(node)}"
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
        if not grammar.is_dns_subdomain(name):
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
        self.error(node, where, f"expected a string, got {describe(node)}{hint}")
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
        self.error(node, where, f"expected true or false, got {describe(node)}")
        return None

    def integer(self, node: Node, where: str) -> int | None:
        if isinstance(node, ScalarNode) and node.tag == f"{_TAG}int":
            try:
                return int(node.value.replace("_", ""), 0)
            except ValueError:
                pass
        self.error(node, where, f"expected a whole number, got {describe(node)}")
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
            self.error(node, where, f"expected a duration like {example}, got {describe(node)}")
            return None
        seconds = grammar.parse_duration(text, hours=hours)
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
        if value is not None and not grammar.is_tag_name(value):
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
        if value is not None and not grammar.is_valid_branch_name(value):
            self.error(
                node,
                where,
                f"'{value}' is not a valid git branch name (no spaces, '..', '~', '^', ':', "
                "'?', '*', '[', '\\', leading '-' or '/', or trailing '/', '.' or '.lock')",
            )
            return None
        return value

    def email(self, node: Node, where: str) -> str | None:
        value = self.string(node, where)
        if value is not None and not grammar.is_email(value):
            self.error(
                node, where, f"'{value}' is not an email address; write one like bot@example.com"
            )
            return None
        return value

    def regex(self, node: Node, where: str, pattern: str) -> None:
        problem = grammar.re2_error(pattern)
        if problem is not None:
            self.error(node, where, problem)

    def template(
        self, node: Node, where: str, name: str, automation: AutomationConfig
    ) -> str | None:
        """A template the sandbox can run (`check_template`); its first line is remembered."""
        from bot.update.templates import TemplateError, check_template  # Jinja2: only now

        text = self.string(node, where)
        if text is None:
            return None
        first_line = template_first_line(node)
        automation.template_lines[name] = first_line
        go_template = _GO_TEMPLATE_RE.search(text) is not None
        if go_template:
            # Before Jinja2 sees it: `{{range .Changed.Changes}}` even parses as Jinja2
            # (`range.Changed.Changes`) and would fail only when rendered.
            translated = _from_go(text, name)
            if translated is not None:
                return translated  # Flux's documented Go forms work as written
        try:
            check_template(text, name=name)
            if not go_template:
                return text
            line, message = 1, "a Go template of a form the bot cannot translate"
        except TemplateError as err:
            line, message = err.line, err.message
        hint = ""
        if go_template:
            hint = (
                "; this looks like a Flux Go template the bot cannot translate (functions such "
                "as printf, pipes): Jinja2 writes {{ .AutomationObject }} as "
                "{{ AutomationObject }} and {{ range ... }} as {% for ... %}"
            )
        at_line, column = first_line + line - 1, 1
        if at_line == node.start_mark.line + 1:  # on the key's own line: point at the value
            column = node.start_mark.column + 1
        message = f"template error on its line {line}: {message}{hint}"
        if self.manifest and go_template:
            # Flux's own object: the bot must not fail where Flux would not.
            message += "; the default message is used instead"
            self.others.append(warning(self.path, at_line, column, f"{where}: {message}"))
            return None
        self.error_at(at_line, column, where, message)
        return None

    # collections

    def string_list(self, node: Node, where: str) -> list[str] | None:
        if not isinstance(node, SequenceNode) or node.tag != f"{_TAG}seq":
            self.error(node, where, f"expected a list of strings, got {describe(node)}")
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
        operator = self.enum(fields["operator"], f"{where}.operator", SELECTOR_OPERATORS)
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
                self.error(node, where, f"expected a mapping, got {describe(node)}")
            return None
        fields: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag != f"{_TAG}str":
                if report:
                    self.error(key_node, where, f"keys must be strings, got {describe(key_node)}")
                continue
            if key_node.value in fields:
                if report:
                    self.error(key_node, f"{where}.{key_node.value}", "duplicate key; remove one")
                continue
            fields[key_node.value] = (key_node, value_node)
        return fields

    def _label_key(self, node: Node, where: str, key: str) -> bool:
        if grammar.is_label_key(key):
            return True
        self.error(
            node,
            where,
            f"'{key}' is not a valid label key; use up to 63 letters, digits, '-', '_' "
            "and '.', starting and ending with a letter or digit (optionally prefixed "
            "by a DNS name and '/')",
        )
        return False

    def _label_value(self, node: Node, where: str, value: str) -> bool:
        if grammar.is_label_value(value):
            return True
        self.error(
            node,
            where,
            f"'{value}' is not a valid label value; use up to 63 letters, digits, '-', '_' "
            "and '.', starting and ending with a letter or digit",
        )
        return False


def line_of(node: Node) -> int:
    """The node's 1-based line."""
    return node.start_mark.line + 1


def value_node(mapping: Node, key: str) -> Node:
    """The value of ``key`` in a mapping node already read without errors (else the mapping)."""
    return next((value for k, value in mapping.value if k.value == key), mapping)


def describe(node: Node) -> str:
    """What a node is, for "expected X, got Y"."""
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


def did_you_mean(word: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def template_first_line(node: Node) -> int:
    """The config line of a template's first line (a block scalar starts below its ``|``)."""
    line = node.start_mark.line + 1
    return line + 1 if getattr(node, "style", None) in ("|", ">") else line


def _from_go(text: str, name: str) -> str | None:
    """A Flux Go template of the documented forms as the Jinja2 the sandbox runs, or None."""
    from bot.update.gotemplate import go_to_jinja
    from bot.update.templates import TemplateError, check_template

    translated = go_to_jinja(text)
    if translated is None:
        return None
    try:
        check_template(translated, name=name)
    except TemplateError:
        return None
    return translated
