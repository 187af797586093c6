"""Apply setter values to marked YAML scalars, editing only their bytes.

Which scalars are marked follows Flux exactly (flux-behaviour §4.2, §4.5):
the file is read by libyaml (`yamlscan`), the marker comments found and
attached as go-yaml does (`comments`). How they are rewritten does not follow
Flux: instead of re-emitting the file, each marked scalar's character span is
replaced in the original text (design §3). Every other byte (comments, blank
lines, ``---``, CRLF, BOM, indentation, anchors, the quotes of values that do
not change) stays as it was.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field

from bot.imageref import ImageRefError, parse_reference
from bot.policy.model import LatestRef
from bot.problems import Problem, warning
from bot.update.comments import Attached, CommentFinder
from bot.update.markercheck import Marked
from bot.update.markers import has_marker, parse_marker
from bot.update.quoting import render
from bot.update.result import Change, ObjectId, Result
from bot.update.selfcheck import Edit, Entry, edited_text_reparses
from bot.update.yamlscan import (
    Collection,
    Node,
    ScalarEvent,
    Stream,
    YamlSyntaxError,
    parse_stream,
)

#: Larger files are skipped with a warning: manifests carrying markers are far
#: smaller, and every event of a file is held in memory while it is edited.
MAX_FILE_BYTES = 2 * 1024 * 1024


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
    #: Every marker Flux would honour in the file, known setter or not (`bot.update.markercheck`).
    marked: list[Marked] = field(default_factory=list)


@dataclass
class UpdateOutcome:
    """All files of one automation: ``edited`` is keyed by path relative to the update path."""

    result: Result
    edited: dict[str, bytes] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)
    #: Per file, the first line that changes (where a problem about the file points).
    first_lines: dict[str, int] = field(default_factory=dict)
    #: Every marker Flux would honour, in every file.
    marked: list[Marked] = field(default_factory=list)


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
        outcome.marked.extend(update.marked)
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
        plan = _plan(text, setters)
    except YamlSyntaxError as exc:
        return _skipped(path, exc.line, f"not a YAML file the setters can read: {exc.message}")
    marked = [Marked(path, *found) for found in plan.marked]
    if not plan.edits:
        return FileUpdate(content=None, changes=plan.changes, lines=plan.lines, marked=marked)
    new_text = _apply_edits(text, plan.edits)
    # Self-check: the edited text parses to the same document, but for the new values.
    if not edited_text_reparses(plan.stream, new_text, plan.edits):
        return _skipped(path, 1, "editing the marked values in place failed; file left unchanged")
    # A BOM stays: it is the text's first character, never inside an edited span.
    return FileUpdate(
        content=new_text.encode("utf-8"), changes=plan.changes, lines=plan.lines, marked=marked
    )


def _skipped(path: str, line: int, reason: str) -> FileUpdate:
    return FileUpdate(content=None, warnings=[warning(path, line, 0, f"skipped: {reason}")])


# --- finding the marked scalars -------------------------------------------------------------


@dataclass
class _Plan:
    stream: Stream
    edits: list[Edit] = field(default_factory=list)
    changes: list[tuple[ObjectId, Change]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    #: (line, column, setter, value) of each honoured marker.
    marked: list[tuple[int, int, str, str]] = field(default_factory=list)


def _plan(text: str, setters: MappingABC[str, str]) -> _Plan:
    stream = parse_stream(text)
    plan = _Plan(stream)
    attached: dict[ScalarEvent, Attached] = {}
    for comment in CommentFinder(stream).attached():
        attached.setdefault(comment.scalar, comment)
    if not attached:
        return plan
    offsets = sorted(s.start_mark.index + stream.bom for s in attached)
    for doc in stream.documents:
        if doc.root is None or not _holds_any(doc.root, offsets):
            continue
        for scalar, obj, block_item, in_flow, entry in _candidates(doc.root, attached, offsets):
            comment = attached[scalar]
            if (comment.head and not block_item) or (comment.after_comma and not in_flow):
                continue
            setter = parse_marker(comment.comment)
            if setter is None:
                continue
            mark = scalar.start_mark
            plan.marked.append((mark.line + 1, mark.column + 1, setter, scalar.value))
            if setter not in setters:
                continue
            new = setters[setter]
            if new == scalar.value:
                continue  # never touched: not even re-quoted, unlike Flux (docs/decisions.md)
            start, end = stream.span(scalar)
            plan.changes.append((obj, Change(scalar.value, new, setter)))
            plan.lines.append(scalar.start_mark.line + 1)
            written = render(new, scalar.style or None)
            plan.edits.append(Edit(start, end, written, scalar, new, entry))
    return plan


def _holds_any(node: Collection, offsets: list[int]) -> bool:
    """Whether one of the sorted ``offsets`` lies within the collection's span."""
    i = bisect_left(offsets, node.start)
    return i < len(offsets) and offsets[i] <= node.end


def _candidates(
    doc: Collection, attached: MappingABC[ScalarEvent, Attached], offsets: list[int]
) -> list[tuple[ScalarEvent, ObjectId, bool, bool, Entry | None]]:
    """The scalars with an attached comment that the setters may replace, in document
    order, with their object, whether they are a block-sequence item (the only place a
    head comment counts), whether they are inside a flow collection, and the innermost
    mapping entry holding them (for the self-check).

    Keys, block scalars and values under a duplicate key are never candidates;
    collections holding none of ``offsets`` are not entered, and aliases are never
    followed (the anchored node is visited where it is defined).
    """
    doc_id = _object_id(doc)
    unwrap_list = doc_id.kind == "List"  # items of a kind: List report their own object (as Flux)
    found: list[tuple[ScalarEvent, ObjectId, bool, bool, Entry | None]] = []
    stack: list[tuple[Collection, ObjectId, bool, Entry | None]] = [(doc, doc_id, doc.flow, None)]

    def visit(node: Node, obj: ObjectId, item: bool, flow: bool, entry: Entry | None) -> None:
        if node.__class__ is ScalarEvent:
            if node in attached and node.style not in ("|", ">"):
                found.append((node, obj, item, flow, entry))
        elif node.__class__ is Collection and _holds_any(node, offsets):
            stack.append((node, obj, flow or node.flow, entry))

    while stack:
        node, obj, in_flow, entry = stack.pop()
        children = node.children
        if not node.mapping:
            for item in children:
                visit(item, obj, not node.flow, in_flow, entry)
            continue
        seen: set[str] = set()  # only the first of duplicate keys counts (as Flux)
        for i in range(0, len(children) - 1, 2):
            key, value = children[i], children[i + 1]
            if key.__class__ is ScalarEvent:
                if key.value in seen:
                    continue
                seen.add(key.value)
                if unwrap_list and node is doc and key.value == "items" and _is_sequence(value):
                    inner = Entry(node, i, entry)
                    for item in value.children:
                        item_id = _object_id(item) if _is_mapping(item) else obj
                        visit(item, item_id, not value.flow, in_flow or value.flow, inner)
                    continue
            if value.__class__ is ScalarEvent:
                if value in attached and value.style not in ("|", ">"):
                    found.append((value, obj, False, in_flow, Entry(node, i, entry)))
            elif value.__class__ is Collection and _holds_any(value, offsets):
                stack.append((value, obj, in_flow or value.flow, Entry(node, i, entry)))
    found.sort(key=lambda candidate: candidate[0].start_mark.index)
    return found


def _is_sequence(node: Node) -> bool:
    return node.__class__ is Collection and not node.mapping


def _is_mapping(node: Node) -> bool:
    return node.__class__ is Collection and node.mapping


def _first_values(node: Collection, names: tuple[str, ...]) -> dict[str, Node]:
    """The values of the first entry with each of ``names`` as its key."""
    values: dict[str, Node] = {}
    children = node.children
    for i in range(0, len(children) - 1, 2):
        key = children[i]
        if key.__class__ is ScalarEvent and key.value in names and key.value not in values:
            values[key.value] = children[i + 1]
    return values


def _object_id(doc: Collection) -> ObjectId:
    fields = _first_values(doc, ("apiVersion", "kind", "metadata"))
    metadata = fields.get("metadata")
    meta = _first_values(metadata, ("name", "namespace")) if _is_mapping(metadata) else {}

    def text(node: Node | None) -> str:
        return node.value if node.__class__ is ScalarEvent else ""

    return ObjectId(
        api_version=text(fields.get("apiVersion")),
        kind=text(fields.get("kind")),
        namespace=text(meta.get("namespace")),
        name=text(meta.get("name")),
    )


# --- writing the new values -----------------------------------------------------------------


def _apply_edits(text: str, edits: list[Edit]) -> str:
    """``edits`` are in text order, and never overlap."""
    parts, last = [], 0
    for edit in edits:
        parts.append(text[last : edit.start])
        parts.append(edit.text)
        last = edit.end
    parts.append(text[last:])
    return "".join(parts)
