"""A YAML stream read by libyaml: its events, and a light tree of collections over them.

libyaml, through PyYAML's C extension, is the parser that Flux's go-yaml v3
was ported from: what libyaml accepts, Flux accepts (a tab before a comment,
for one). Nothing is constructed: aliases stay references (a billion-laughs
file costs what its text costs), duplicate keys are kept as written, and each
node knows the character span it occupies in the text. The tree is built
iteratively, so deep nesting cannot blow the Python stack.

Offsets are ``str`` indices. libyaml's marks count characters (code points),
as Python does, with one exception: a BOM at the very start is not counted,
so `Stream.bom` is added back to every mark.

This module is where a missing C extension is caught, once for the whole
bot: importing it (which importing `bot.update`, and so ``plan`` and
``serve``, does) fails with `LibyamlMissingError`, rather than the setters
running ten times slower in pure Python.
"""

from __future__ import annotations

import yaml
from yaml import events as ev
from yaml.error import MarkedYAMLError, YAMLError
from yaml.reader import ReaderError


class LibyamlMissingError(ImportError):
    """PyYAML is installed without libyaml; the setters refuse the pure-Python fallback."""


try:
    from yaml.cyaml import CParser
except ImportError:
    CParser = None

if CParser is None or not getattr(yaml, "__with_libyaml__", False):
    raise LibyamlMissingError(
        "PyYAML's libyaml C extension (yaml._yaml) is missing, and the setters need it: "
        "reinstall PyYAML from a binary wheel "
        "(pip install --force-reinstall --only-binary=:all: PyYAML)"
    )

#: Deeper nesting is refused: no manifest needs it.
MAX_DEPTH = 100
_TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"

ScalarEvent = ev.ScalarEvent
AliasEvent = ev.AliasEvent
_MAPPING_START = ev.MappingStartEvent
_SEQUENCE_START = ev.SequenceStartEvent
_MAPPING_END = ev.MappingEndEvent
_SEQUENCE_END = ev.SequenceEndEvent
_DOCUMENT_START = ev.DocumentStartEvent
_DOCUMENT_END = ev.DocumentEndEvent
_STREAM_END = ev.StreamEndEvent


class YamlSyntaxError(Exception):
    """The text is not a YAML stream this updater handles; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class Collection:
    """A mapping or sequence. ``children`` holds `ScalarEvent`, `AliasEvent` and
    `Collection` values in document order; a mapping's are flat: key, value, key, value."""

    __slots__ = ("event", "mapping", "flow", "start", "end", "children")

    def __init__(self, event: ev.CollectionStartEvent, start: int) -> None:
        self.event = event
        self.mapping = event.__class__ is ev.MappingStartEvent
        self.flow = bool(event.flow_style)
        self.start = start  # character offset of its first token
        self.end = start  # one past its last token, set when it closes
        self.children: list[Node] = []


Node = ScalarEvent | AliasEvent | Collection


class Document:
    """One document: its root mapping (None if empty), and where it lies in the events and text."""

    __slots__ = ("root", "first_event", "end_event", "start", "end")

    def __init__(self, root: Collection | None, first: int, end: int, start: int, stop: int):
        self.root = root
        self.first_event = first  # index of its DocumentStartEvent in `Stream.events`
        self.end_event = end  # index of its DocumentEndEvent
        self.start = start  # character span: from the end of the previous document
        self.end = stop  # to the end of its own last token (``...`` if explicit)


class Stream:
    """The parsed text: every event (for the self-check), and its documents."""

    __slots__ = ("text", "bom", "events", "scalars", "documents")

    def __init__(self, text: str, bom: int) -> None:
        self.text = text
        self.bom = bom
        self.events: list[ev.Event] = []
        self.scalars: list[ScalarEvent] = []  # in text order: their spans never overlap
        self.documents: list[Document] = []

    def span(self, scalar: ScalarEvent) -> tuple[int, int]:
        """The character span of the scalar's own text, after any anchor or tag."""
        start = scalar.start_mark.index + self.bom
        if scalar.anchor is not None or scalar.tag is not None:
            start = _skip_properties(self.text, start)
        return start, scalar.end_mark.index + self.bom


_BREAKS = "\r\n\x85\u2028\u2029"
_WHITE = " \t" + _BREAKS  # YAML's separation: not Python's isspace, which takes in more


def _skip_properties(text: str, pos: int) -> int:
    """Skip an anchor/tag prefix (and the separation after it) to the scalar's own text."""
    while pos < len(text) and text[pos] in "&!":
        while pos < len(text) and text[pos] not in _WHITE:
            pos += 1
        while pos < len(text):
            if text[pos] in _WHITE:
                pos += 1
            elif text[pos] == "#":
                while pos < len(text) and text[pos] not in _BREAKS:
                    pos += 1
            else:
                break
    return pos


def parse_stream(text: str) -> Stream:
    """Parse every document of ``text``.

    Raises `YamlSyntaxError` for invalid YAML, a document that is not a
    mapping, nesting deeper than `MAX_DEPTH`, aliases to undefined anchors, and
    ``%YAML``/``%TAG`` directives before the first document (Flux cannot read
    such files either; a directive that opens a later document is fine).
    """
    bom = 1 if text.startswith("\ufeff") else 0
    stream = Stream(text, bom)
    events = stream.events
    documents = stream.documents
    add_event = events.append
    add_scalar = stream.scalars.append
    stack: list[Collection] = []
    siblings: list[Node] | None = None  # the children of the innermost open collection
    anchors: set[str] = set()
    root: Collection | None = None
    root_problem: YamlSyntaxError | None = None
    first_event = 0
    parser = CParser(text)
    try:
        get_event = parser.get_event
        while True:
            event = get_event()
            add_event(event)
            cls = event.__class__
            if cls is ScalarEvent:
                if siblings is not None:
                    siblings.append(event)
                elif event.value or event.style or event.end_mark.index > event.start_mark.index:
                    root_problem = root_problem or _not_a_mapping(event, "scalar")
                if event.anchor is not None:
                    anchors.add(event.anchor)
                add_scalar(event)
            elif cls is _MAPPING_END or cls is _SEQUENCE_END:
                stack.pop().end = event.end_mark.index + bom
                siblings = stack[-1].children if stack else None
            elif cls is _MAPPING_START or cls is _SEQUENCE_START:
                node = Collection(event, event.start_mark.index + bom)
                if siblings is not None:
                    siblings.append(node)
                elif cls is _MAPPING_START:
                    root = node
                else:
                    root_problem = root_problem or _not_a_mapping(event, "sequence")
                stack.append(node)
                siblings = node.children
                if len(stack) > MAX_DEPTH:
                    raise YamlSyntaxError(event.start_mark.line + 1, _TOO_DEEP)
                if event.anchor is not None:
                    anchors.add(event.anchor)
            elif cls is AliasEvent:
                if event.anchor not in anchors:
                    raise YamlSyntaxError(
                        event.start_mark.line + 1, f"alias *{event.anchor} has no anchor"
                    )
                if siblings is not None:
                    siblings.append(event)
                else:
                    root_problem = root_problem or _not_a_mapping(event, "alias")
            elif cls is _DOCUMENT_START:
                if not documents and (event.version or event.tags):
                    raise YamlSyntaxError(
                        event.start_mark.line + 1,
                        "%YAML/%TAG directives are not supported before the first document",
                    )
                root = None
                anchors.clear()
                first_event = len(events) - 1
            elif cls is _DOCUMENT_END:
                start = documents[-1].end if documents else 0
                end = event.end_mark.index + bom
                documents.append(Document(root, first_event, len(events) - 1, start, end))
            elif cls is _STREAM_END:
                break
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        if problem == "exceeded maximum nesting depth":  # libyaml's own limit, scanning ahead
            problem = _TOO_DEEP
        raise YamlSyntaxError(line, problem) from None
    except ReaderError as exc:
        # Its position counts bytes of the UTF-8 text.
        before = text.encode("utf-8")[: max(exc.position, 0)].decode("utf-8", "ignore")
        raise YamlSyntaxError(
            line_of(before, len(before)), f"character {chr(exc.character)!r}: {exc.reason}"
        ) from None
    except YAMLError as exc:
        raise YamlSyntaxError(1, (str(exc) or "invalid YAML").splitlines()[0]) from None
    finally:
        parser.dispose()
    if root_problem is not None:
        raise root_problem
    return stream


def _not_a_mapping(event: ev.NodeEvent, kind: str) -> YamlSyntaxError:
    return YamlSyntaxError(event.start_mark.line + 1, f"a document is a {kind}, not a mapping")


def line_of(text: str, pos: int) -> int:
    """The 1-based line of character ``pos``, counting line breaks as YAML (and libyaml) do."""
    before = text[:pos]
    crlf = before.count("\r\n")
    return (
        1
        + before.count("\n")
        + before.count("\r")
        - crlf
        + before.count("\x85")
        + before.count("\u2028")
        + before.count("\u2029")
    )
