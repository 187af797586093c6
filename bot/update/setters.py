"""Apply setter values to marked YAML scalars, editing only their bytes.

Which scalars are marked follows Flux exactly (flux-behaviour §4.2, §4.5);
how they are rewritten does not: instead of re-emitting the file, each marked
scalar's character span is replaced in the original text (design §3). Every
other byte (comments, blank lines, ``---``, CRLF, BOM, indentation, anchors)
stays as it was.
"""

from __future__ import annotations

import re
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from functools import lru_cache

from ruamel.yaml import YAML
from ruamel.yaml import events as ev
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver

from bot.imageref import ImageRefError, parse_reference
from bot.policy.model import LatestRef
from bot.problems import Problem, warning
from bot.update.markers import has_marker, parse_marker
from bot.update.result import Change, ObjectId, Result
from bot.update.yamlscan import (
    Mapping,
    Node,
    Scalar,
    Sequence,
    YamlSyntaxError,
    parse_stream,
)

#: Larger files are skipped with a warning: the pure-Python YAML parser needs
#: about 2.5 s per MB, and manifests carrying markers are far smaller.
MAX_FILE_BYTES = 2 * 1024 * 1024

_EOL = "\r\n\x85\u2028\u2029"
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
# YAML's printable characters, minus line breaks and the BOM (which change meaning in a scalar).
_PRINTABLE = re.compile(
    "[\t\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]*"
)
_DOUBLE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"}
_STR_TAG = "tag:yaml.org,2002:str"


class UpdateError(Exception):
    """Aborts an automation's update (invalid image ref, ``update.path`` escaping the tree)."""


@dataclass
class FileUpdate:
    """What the setters did to one file. ``content`` is None when it is unchanged."""

    content: bytes | None
    changes: list[tuple[ObjectId, Change]] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    #: The 1-based line of each change's value, in the order of ``changes``.
    lines: list[int] = field(default_factory=list)


@dataclass
class UpdateOutcome:
    """All files of one automation: ``edited`` is keyed by path relative to the update path."""

    result: Result
    edited: dict[str, bytes] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)
    #: Per file, the first line that changes (where a problem about the file points).
    first_lines: dict[str, int] = field(default_factory=dict)


def build_setters(namespace: str, latest: MappingABC[str, LatestRef]) -> dict[str, str]:
    """The four setters of each policy (flux-behaviour §4.3), keyed ``ns:policy[:suffix]``.

    Like Flux, every policy's image must parse as an image reference before
    any file is touched; otherwise the whole update fails.
    """
    _check_image_refs(latest)
    setters: dict[str, str] = {}
    for policy, ref in latest.items():
        prefix = f"{namespace}:{policy}"
        setters[prefix] = str(ref)
        setters[f"{prefix}:tag"] = ref.tag
        setters[f"{prefix}:name"] = ref.name
        setters[f"{prefix}:digest"] = ref.digest
    return setters


def _check_image_refs(latest: MappingABC[str, LatestRef]) -> None:
    for ref in latest.values():
        try:
            parse_reference(str(ref))
        except ImageRefError as exc:
            raise UpdateError(f'encountered invalid image ref "{ref}": {exc}') from None


def update_files(files: MappingABC[str, bytes], setters: MappingABC[str, str]) -> UpdateOutcome:
    """Apply ``setters`` to every file (keyed by path relative to the update path).

    Files without the marker bytes are skipped without being parsed.
    """
    outcome = UpdateOutcome(result=Result())
    for path in sorted(files):
        content = files[path]
        if not has_marker(content):
            continue
        update = apply_setters(path, content, setters)
        outcome.warnings.extend(update.warnings)
        for obj, change in update.changes:
            outcome.result.add_change(path, obj, change)
        if update.lines:
            outcome.first_lines[path] = min(update.lines)
        if update.content is not None:
            outcome.edited[path] = update.content
    return outcome


def apply_setters(path: str, content: bytes, setters: MappingABC[str, str]) -> FileUpdate:
    """Replace the marked scalars of one file; a file that cannot be read is skipped with a warning."""
    if len(content) > MAX_FILE_BYTES:
        return _skipped(path, 1, f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        return _skipped(path, line, "file is not valid UTF-8")
    try:
        edits, changes, lines = _plan(text, setters)
    except YamlSyntaxError as exc:
        return _skipped(path, exc.line, f"not a YAML file the setters can read: {exc.message}")
    if not edits:
        return FileUpdate(content=None, changes=changes, lines=lines)
    new_text = _apply_edits(text, edits)
    # Self-check: the edited text must parse and already hold every value.
    try:
        again, _, _ = _plan(new_text, setters)
    except YamlSyntaxError:
        again = edits
    if again:
        return _skipped(path, 1, "editing the marked values in place failed; file left unchanged")
    # A BOM stays: it is the text's first character, never inside an edited span.
    return FileUpdate(content=new_text.encode("utf-8"), changes=changes, lines=lines)


def _skipped(path: str, line: int, reason: str) -> FileUpdate:
    return FileUpdate(content=None, warnings=[warning(path, line, 0, f"skipped: {reason}")])


# --- finding the marked scalars -------------------------------------------------------------

_Edit = tuple[int, int, str]  # character span and its replacement


def _plan(
    text: str, setters: MappingABC[str, str]
) -> tuple[list[_Edit], list[tuple[ObjectId, Change]], list[int]]:
    stream = parse_stream(text)
    for doc in stream.documents:
        if doc is not None and not isinstance(doc, Mapping):
            kind = type(doc).__name__.lower()
            raise YamlSyntaxError(doc.line + 1, f"a document is a {kind}, not a mapping")
    scanner = _MarkerScanner(text, stream.multiline_spans)
    edits: list[_Edit] = []
    changes: list[tuple[ObjectId, Change]] = []
    lines: list[int] = []
    for doc in stream.documents:
        if doc is None:
            continue
        for scalar, obj, block_item in _marked_candidates(doc):
            setter = scanner.marker_of(scalar, block_item)
            if setter is None or setter not in setters:
                continue
            new = setters[setter]
            if new == scalar.value:
                continue
            changes.append((obj, Change(scalar.value, new, setter)))
            lines.append(scalar.line + 1)
            edits.append((scalar.start, scalar.end, _render(new, scalar.style)))
    return edits, changes, lines


def _marked_candidates(doc: Mapping):
    """Scalars that may carry a marker, in document order, with their object and
    whether they are a block-sequence item (the only place a head comment counts)."""
    doc_id = _object_id(doc)
    unwrap_list = doc_id.kind == "List"  # items of a kind: List report their own object (as Flux)
    stack: list[tuple[Node, ObjectId, bool, bool]] = [(doc, doc_id, False, True)]
    while stack:
        node, obj, block_item, is_root = stack.pop()
        if isinstance(node, Scalar):
            if node.style not in ("|", ">") and node.start < node.end:
                yield node, obj, block_item
        elif isinstance(node, Mapping):
            children = []
            for key, value in _first_keys(node):
                if unwrap_list and is_root and _key(key) == "items" and isinstance(value, Sequence):
                    children.extend(
                        (
                            item,
                            _object_id(item) if isinstance(item, Mapping) else obj,
                            not value.flow,
                            False,
                        )
                        for item in value.items
                    )
                else:
                    children.append((value, obj, False, False))
            stack.extend(reversed(children))
        elif isinstance(node, Sequence):
            stack.extend((item, obj, not node.flow, False) for item in reversed(node.items))
        # Aliases are never followed: the anchored node was visited where it is defined.


def _first_keys(node: Mapping) -> list[tuple[Node, Node]]:
    """The mapping's entries, keeping only the first of duplicate keys (as Flux)."""
    seen: set[str] = set()
    entries = []
    for key, value in node.pairs:
        name = _key(key)
        if name is not None:
            if name in seen:
                continue
            seen.add(name)
        entries.append((key, value))
    return entries


def _key(node: Node) -> str | None:
    return node.value if isinstance(node, Scalar) else None


def _object_id(doc: Mapping) -> ObjectId:
    fields = {_key(k): v for k, v in reversed(_first_keys(doc))}
    metadata = fields.get("metadata")
    meta = {_key(k): v for k, v in _first_keys(metadata)} if isinstance(metadata, Mapping) else {}

    def text(node: Node | None) -> str:
        return node.value if isinstance(node, Scalar) else ""

    return ObjectId(
        api_version=text(fields.get("apiVersion")),
        kind=text(fields.get("kind")),
        namespace=text(meta.get("namespace")),
        name=text(meta.get("name")),
    )


class _MarkerScanner:
    """Finds the comment a scalar owns, the way yaml.v3 attaches comments."""

    def __init__(self, text: str, multiline_spans: list[tuple[int, int]]) -> None:
        self.text = text
        self.multiline_spans = multiline_spans
        self._line_starts: list[int] | None = None

    def marker_of(self, scalar: Scalar, block_item: bool) -> str | None:
        comment = self._line_comment(scalar)
        if comment is not None:
            # A scalar's own comment is looked at once: a non-marker line comment hides the head.
            return parse_marker(comment)
        if block_item:
            head = self._head_comment(scalar.line)
            if head is not None:
                return parse_marker(head)
        return None

    def _line_comment(self, scalar: Scalar) -> str | None:
        text, n = self.text, len(self.text)
        pos = scalar.end
        while pos < n and text[pos] in " \t":
            pos += 1
        if scalar.in_flow and pos < n and text[pos] == ",":  # `[old:v1, # marker`
            pos += 1
            after_comma = pos
            while pos < n and text[pos] in " \t":
                pos += 1
            if pos == after_comma:
                return None
        elif pos == scalar.end:
            return None
        if pos >= n or text[pos] != "#":
            return None
        end = pos
        while end < n and text[end] not in _EOL:
            end += 1
        return text[pos:end]

    def _head_comment(self, line: int) -> str | None:
        """The comment line directly above ``line``, if it is a one-line comment block."""
        if line == 0:
            return None
        above = self._comment_line(line - 1)
        if above is None or (line >= 2 and self._comment_line(line - 2) is not None):
            return None  # several comment lines form one comment, which is then no JSON
        return above

    def _comment_line(self, line: int) -> str | None:
        starts = self._starts()
        if line >= len(starts):
            return None
        begin = starts[line]
        end = starts[line + 1] if line + 1 < len(starts) else len(self.text)
        content = self.text[begin:end].rstrip(_EOL).lstrip(" \t")
        if not content.startswith("#"):
            return None
        if any(start < begin < stop for start, stop in self.multiline_spans):
            return None  # text inside a block or multi-line scalar, not a comment
        return content

    def _starts(self) -> list[int]:
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in _LINE_BREAK.finditer(self.text)]
        return self._line_starts


# --- writing the new values -----------------------------------------------------------------


def _apply_edits(text: str, edits: list[_Edit]) -> str:
    parts, last = [], 0
    for start, end, replacement in sorted(edits):
        parts.append(text[last:start])
        parts.append(replacement)
        last = end
    parts.append(text[last:])
    return "".join(parts)


def _render(value: str, style: str | None) -> str:
    """The new scalar's text, keeping the old quote style unless the value needs quotes."""
    if style is None and _plain_is_safe(value):
        return value
    if style == "'" and _PRINTABLE.fullmatch(value):
        return "'" + value.replace("'", "''") + "'"
    return _double_quoted(value)


def _double_quoted(value: str) -> str:
    out = []
    for char in value:
        if char in _DOUBLE_ESCAPES:
            out.append(_DOUBLE_ESCAPES[char])
        elif _PRINTABLE.fullmatch(char):
            out.append(char)
        elif ord(char) <= 0xFF:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


_RESOLVERS = (VersionedResolver(version=(1, 1)), VersionedResolver(version=(1, 2)))


@lru_cache(maxsize=4096)
def _plain_is_safe(value: str) -> bool:
    """Whether ``value`` reads back, unquoted, as this same string in any context.

    It must be a string under YAML 1.1 and 1.2 (so ``6``, ``1.10``, ``yes``,
    ``~``, ``0x1F`` get quotes) and parse as one plain scalar in block and flow
    collections (so ``a: b``, ``x #y``, ``a,b``, ``*x`` get quotes).
    """
    if not value or value != value.strip(" \t") or not _PRINTABLE.fullmatch(value):
        return False
    for resolver in _RESOLVERS:
        if str(resolver.resolve(ScalarNode, value, (True, False))) != _STR_TAG:
            return False
    contexts = ("k: " + value + "\n", "- " + value + "\n", "[" + value + "]", "{k: " + value + "}")
    return all(_single_plain_scalar(doc, value) for doc in contexts)


def _single_plain_scalar(doc: str, value: str) -> bool:
    try:
        events = list(YAML(typ="safe", pure=True).parse(doc))
    except YAMLError:
        return False
    nodes = [e for e in events if isinstance(e, ev.NodeEvent)]
    last = nodes[-1] if nodes else None
    return (
        len(nodes) == 3 - doc.startswith(("-", "["))
        and isinstance(last, ev.ScalarEvent)
        and last.value == value
        and last.style is None
        and last.anchor is None
        and last.tag is None
    )
