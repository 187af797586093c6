"""A YAML stream as a light tree of nodes with their source offsets.

Built from ruamel.yaml's parser events, so nothing is ever constructed:
aliases stay references (a billion-laughs file costs what its text costs),
duplicate keys are kept as written, and every scalar knows the character span
it occupies in the text. The builder is iterative: deep nesting cannot blow
the Python stack here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ruamel.yaml import YAML
from ruamel.yaml import events as ev
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

#: Deeper nesting is refused: no manifest needs it, and the scanner slows down badly on it.
MAX_DEPTH = 100


class YamlSyntaxError(Exception):
    """The text is not a YAML stream this updater handles; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass
class Scalar:
    value: str
    style: str | None  # None plain, "'", '"', "|", ">"
    start: int  # first character of the scalar itself (after any anchor/tag)
    end: int  # one past its last character
    line: int  # 0-based line where the node (with its anchor/tag) starts
    in_flow: bool


@dataclass
class Alias:
    anchor: str
    line: int


@dataclass
class Mapping:
    line: int
    flow: bool
    pairs: list[tuple[Node, Node]] = field(default_factory=list)


@dataclass
class Sequence:
    line: int
    flow: bool
    items: list[Node] = field(default_factory=list)


Node = Scalar | Alias | Mapping | Sequence


@dataclass
class Stream:
    documents: list[Node | None]  # None for an empty document
    multiline_spans: list[tuple[int, int]]  # character spans of scalars covering several lines


def _skip_properties(text: str, pos: int) -> int:
    """Skip an anchor/tag prefix (and the separation after it) to the scalar's own text."""
    while pos < len(text) and text[pos] in "&!":
        while pos < len(text) and not text[pos].isspace():
            pos += 1
        while pos < len(text):
            if text[pos].isspace():
                pos += 1
            elif text[pos] == "#":
                while pos < len(text) and text[pos] not in "\r\n":
                    pos += 1
            else:
                break
    return pos


def parse_stream(text: str) -> Stream:
    """Parse every document of ``text``.

    Raises `YamlSyntaxError` for invalid YAML, ``%`` directives (Flux cannot
    read such files either) and aliases to undefined anchors.
    """
    documents: list[Node | None] = []
    multiline: list[tuple[int, int]] = []
    stack: list[Mapping | Sequence] = []
    flat: list[list[Node]] = []  # children collected per open collection
    anchors: set[str] = set()
    root: Node | None = None
    try:
        for event in YAML(typ="safe", pure=True).parse(text):
            node: Node | None = None
            if isinstance(event, ev.DocumentStartEvent):
                if event.version or event.tags:
                    directive = text.rfind("\n%", 0, event.start_mark.index) + 1
                    raise YamlSyntaxError(
                        text.count("\n", 0, directive) + 1,
                        "%YAML/%TAG directives are not supported",
                    )
                root = None
                anchors.clear()
            elif isinstance(event, ev.DocumentEndEvent):
                documents.append(root)
            elif isinstance(event, ev.ScalarEvent):
                start = event.start_mark.index
                if event.anchor is not None or event.tag is not None:
                    start = _skip_properties(text, start)
                node = Scalar(
                    value=event.value,
                    style=event.style,
                    start=start,
                    end=event.end_mark.index,
                    line=event.start_mark.line,
                    in_flow=any(c.flow for c in stack),
                )
                if event.end_mark.line != event.start_mark.line:
                    multiline.append((start, node.end))
            elif isinstance(event, ev.AliasEvent):
                if event.anchor not in anchors:
                    raise YamlSyntaxError(
                        event.start_mark.line + 1, f"alias *{event.anchor} has no anchor"
                    )
                node = Alias(event.anchor, event.start_mark.line)
            elif isinstance(event, ev.MappingStartEvent | ev.SequenceStartEvent):
                kind = Mapping if isinstance(event, ev.MappingStartEvent) else Sequence
                stack.append(kind(line=event.start_mark.line, flow=bool(event.flow_style)))
                if len(stack) > MAX_DEPTH:
                    raise YamlSyntaxError(
                        event.start_mark.line + 1, f"nested more than {MAX_DEPTH} levels deep"
                    )
                flat.append([])
                if event.anchor is not None:
                    anchors.add(event.anchor)
                continue
            elif isinstance(event, ev.MappingEndEvent | ev.SequenceEndEvent):
                node = stack.pop()
                children = flat.pop()
                if isinstance(node, Mapping):
                    node.pairs = list(zip(children[0::2], children[1::2], strict=True))
                else:
                    node.items = children
            if node is None:
                continue
            if isinstance(event, ev.ScalarEvent) and event.anchor is not None:
                anchors.add(event.anchor)
            if flat:
                flat[-1].append(node)
            else:
                root = None if isinstance(node, Scalar) and _is_empty(node) else node
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlSyntaxError(line, exc.problem or exc.context or "invalid YAML") from None
    except ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise YamlSyntaxError(line, f"character {exc.character!r} is not allowed in YAML") from None
    except YAMLError as exc:
        raise YamlSyntaxError(1, (str(exc) or "invalid YAML").splitlines()[0]) from None
    except RecursionError:
        raise YamlSyntaxError(1, "nested too deeply") from None
    return Stream(documents, multiline)


def _is_empty(node: Scalar) -> bool:
    return node.style is None and node.value == "" and node.start == node.end
