"""The self-check: the edited text parses to the same document, but for the new values.

Parsing the whole edited file again would cost as much as reading it did, so
only the text around each edit is parsed again, from a place where libyaml
starts afresh, and its events are compared with the original's:

* the **entry** of a block mapping whose key is the first token of its line,
  from that line's start to the next key of the mapping (or the mapping's
  end), parsed on its own, with its indentation: its lines are at least as
  indented as the key, so libyaml reads them as it did in place, and a line at
  that indentation closes everything the entry opened, in place as on its own;
* failing that (no such entry, or one that cannot be read alone, such as a tag
  whose ``%TAG`` handle is declared above it), the whole **document**: libyaml
  starts each document afresh, as ``---``, ``...`` and directives sit at
  column 0, where its scanner drops every indentation level and pending key.

The text outside those pieces is unchanged, so it parses as it did. Positions
are not compared: they shift by design.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter

from yaml import events as ev
from yaml.error import YAMLError

from bot.update.yamlscan import AliasEvent, Collection, CParser, Node, ScalarEvent, Stream


@dataclass(frozen=True, slots=True)
class Entry:
    """The entry ``mapping.children[index]: mapping.children[index + 1]`` of a block
    mapping, and the entry that holds that mapping (None at the document's root)."""

    mapping: Collection
    index: int
    outer: Entry | None


@dataclass(frozen=True, slots=True)
class Edit:
    """One marked scalar's new text: its character span in the old text, its
    replacement, and the innermost block-mapping entry holding it."""

    start: int
    end: int
    text: str
    scalar: ScalarEvent
    value: str
    entry: Entry | None


def edited_text_reparses(stream: Stream, new_text: str, edits: Sequence[Edit]) -> bool:
    """Whether ``new_text`` (``stream.text`` with ``edits``, in text order, applied)
    parses to ``stream``'s events, with each edited scalar holding its new value."""
    replaced = {edit.scalar: edit.value for edit in edits}
    ends = [edit.end for edit in edits]
    growth = [0]  # growth[i]: how much longer the new text is after the first i edits
    for edit in edits:
        growth.append(growth[-1] + len(edit.text) - (edit.end - edit.start))

    def new(pos: int) -> int:
        """Where old offset ``pos`` (never inside an edited span) is in the new text."""
        return pos + growth[bisect_right(ends, pos)]

    results: dict[tuple[int, int], bool] = {}
    fallback = []
    for edit in edits:
        piece = _entry_piece(stream, edit.entry)
        if piece is not None:
            start, end, key, value = piece
            if (start, end) not in results:
                events = _entry_events(key, value)
                results[start, end] = _same_events(
                    new_text[new(start) : new(end)], events, replaced
                )
            if results[start, end]:
                continue
        fallback.append(edit)
    starts = [edit.start for edit in fallback]
    for doc in stream.documents:
        i = bisect_right(starts, doc.start - 1)
        if i == len(starts) or starts[i] >= doc.end:
            continue  # no edit left to check in this document
        events = iter(stream.events[doc.first_event : doc.end_event + 1])
        if not _same_events(new_text[new(doc.start) : new(doc.end)], events, replaced):
            return False
    return True


def _entry_piece(stream: Stream, entry: Entry | None) -> tuple[int, int, ScalarEvent, Node] | None:
    """The innermost entry, from ``entry`` outwards, whose key starts its line: its text
    span (from the line's start) and its key and value."""
    text, bom = stream.text, stream.bom
    while entry is not None:
        mapping, index = entry.mapping, entry.index
        key = mapping.children[index]
        if key.__class__ is ScalarEvent and not mapping.flow:
            start = key.start_mark.index + bom
            line_start = start
            while line_start > bom and text[line_start - 1] == " ":
                line_start -= 1
            if line_start == bom or text[line_start - 1] in "\r\n\x85\u2028\u2029":
                if line_start == bom:
                    line_start = 0
                siblings = mapping.children
                end = _node_start(siblings[index + 2], bom) if index + 2 < len(siblings) else None
                return line_start, mapping.end if end is None else end, key, siblings[index + 1]
        entry = entry.outer
    return None


def _node_start(node: Node, bom: int) -> int:
    if node.__class__ is Collection:
        return node.start
    return node.start_mark.index + bom


def _entry_events(key: Node, value: Node) -> Iterator[ev.Event]:
    """The events of one entry parsed alone: a document holding a one-entry block mapping."""
    yield ev.DocumentStartEvent(explicit=False)
    yield ev.MappingStartEvent(None, None, True, flow_style=False)
    yield from _node_events(key)
    yield from _node_events(value)
    yield ev.MappingEndEvent()
    yield ev.DocumentEndEvent(explicit=False)


def _node_events(node: Node) -> Iterator[ev.Event]:
    stack: list[tuple[Node, bool]] = [(node, False)]
    while stack:
        item, closing = stack.pop()
        if item.__class__ is not Collection:
            yield item
        elif closing:
            yield ev.MappingEndEvent() if item.mapping else ev.SequenceEndEvent()
        else:
            yield item.event
            stack.append((item, True))
            stack.extend((child, False) for child in reversed(item.children))


_REPLACED = attrgetter("anchor", "tag")
_SAME: dict[type, attrgetter] = {
    ev.MappingStartEvent: attrgetter("anchor", "tag", "flow_style"),
    ev.SequenceStartEvent: attrgetter("anchor", "tag", "flow_style"),
    AliasEvent: attrgetter("anchor"),
    ev.DocumentStartEvent: attrgetter("explicit", "version", "tags"),
    ev.DocumentEndEvent: attrgetter("explicit"),
}


def _same_events(
    text: str,
    expected: Iterator[ev.Event],
    replaced: dict[ScalarEvent, str],
) -> bool:
    """Whether ``text``, parsed on its own, gives the ``expected`` events (between the
    stream's start and end), with the ``replaced`` scalars holding their new values."""
    parser = CParser(text)
    try:
        get_event = parser.get_event
        if get_event().__class__ is not ev.StreamStartEvent:
            return False
        for old in expected:
            new = get_event()
            cls = old.__class__
            if new.__class__ is not cls:
                return False
            if cls is ScalarEvent:
                if old in replaced:
                    if new.value != replaced[old] or _REPLACED(new) != _REPLACED(old):
                        return False
                elif (
                    new.value != old.value
                    or new.style != old.style
                    or new.anchor != old.anchor
                    or new.tag != old.tag
                ):
                    return False
            else:
                same = _SAME.get(cls)  # none for the end of a collection: nothing to compare
                if same is not None and same(new) != same(old):
                    return False
        return get_event().__class__ is ev.StreamEndEvent
    except YAMLError:
        return False
    finally:
        parser.dispose()
