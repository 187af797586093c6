"""Which scalar a marker-like comment belongs to, the way go-yaml v3 attaches comments.

libyaml reports no comments, so they are found lexically: a marker always
starts ``#…{`` on its first line (flux-behaviour §4.1), so a regex finds the
few candidates, and each is checked against the scalar spans of the events
(a ``#`` inside a quoted or block scalar is text, not a comment). Then, as
§4.2 says:

* a **line comment** is the ``#`` after the end of a scalar on the same line,
  with only blanks between (spaces or tabs: libyaml accepts a tab there), or,
  in a flow collection, after the comma that follows it: ``[old:v1, # …``;
* a **head comment** is the block of comment lines directly above a line,
  with no blank line in between; it counts only for a block-sequence scalar
  item on that line, and only if that item has no line comment of its own
  (go-yaml looks at a scalar's line comment, and only when it has none at its
  head comment). A multi-line head comment reaches `parse_marker` whole, which
  honours it only when it is a long ``$ref`` form on its first line.

Which of the owners are really values that the setters replace (not keys, not
under a duplicate key, not block scalars) is for the caller to decide.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from bot.update.yamlscan import ScalarEvent, Stream

#: The end of the first line's prefix of every possible marker: leading ``#`` (the last of
#: them is matched) and blanks, then the ``{`` of a JSON object.
_CANDIDATE = re.compile(r"#[ \t]*\{")
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_LINE_END = re.compile("[\r\n\x85\u2028\u2029]|\\Z")
_EOL = "\r\n\x85\u2028\u2029"
_BLANK = " \t"


@dataclass(frozen=True, slots=True)
class Attached:
    """A comment that may be a marker, and the scalar that owns it."""

    scalar: ScalarEvent
    comment: str  # from its first ``#``; the lines of a head comment joined by "\n"
    head: bool  # a head comment: honoured only above a block-sequence item
    after_comma: bool  # a line comment after ``, ``: honoured only in a flow collection


class CommentFinder:
    """Finds the comments of one parsed text that may be markers, with their owners."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.text = stream.text
        self._scalars: _ScalarIndex | None = None
        self._line_starts: list[int] | None = None

    def attached(self) -> list[Attached]:
        """Every marker-like comment that has an owner, in text order of the comments."""
        found = []
        text = self.text
        for match in _CANDIDATE.finditer(text):
            pos = match.start()
            while pos > 0 and text[pos - 1] == "#":
                pos -= 1  # the comment starts at the first `#` of a run
            blank_start = pos
            while blank_start > 0 and text[blank_start - 1] in _BLANK:
                blank_start -= 1
            if blank_start == 0 or text[blank_start - 1] in _EOL or blank_start == self.stream.bom:
                owner = self._head_owner(pos)
            elif blank_start == pos:
                continue  # `#` right after a character: inside a scalar or a comment, or a tag
            else:
                owner = self._line_owner(pos, blank_start)
            if owner is not None:
                found.append(owner)
        return found

    # --- line comments

    def _line_owner(self, pos: int, blank_start: int) -> Attached | None:
        scalar = self._scalar_ending_at(blank_start)
        if scalar is not None:
            return Attached(scalar, self._rest_of_line(pos), head=False, after_comma=False)
        if self.text[blank_start - 1] != ",":
            return None
        end = blank_start - 1
        while end > 0 and self.text[end - 1] in _BLANK:
            end -= 1
        scalar = self._scalar_ending_at(end)
        if scalar is None:
            return None
        return Attached(scalar, self._rest_of_line(pos), head=False, after_comma=True)

    def _scalar_ending_at(self, end: int) -> ScalarEvent | None:
        return self._index().ending_at(end)

    def has_line_comment(self, scalar: ScalarEvent) -> bool:
        """Whether any comment (marker or not) follows the scalar on its line."""
        text, pos = self.text, scalar.end_mark.index + self.stream.bom
        start = pos
        while pos < len(text) and text[pos] in _BLANK:
            pos += 1
        return pos > start and pos < len(text) and text[pos] == "#"

    def _rest_of_line(self, pos: int) -> str:
        return self.text[pos : _LINE_END.search(self.text, pos).start()]

    # --- head comments

    def _head_owner(self, pos: int) -> Attached | None:
        if self._inside_scalar(pos):
            return None  # a line of a block or multi-line scalar
        line = self._line_of(pos)
        if line > 0 and self._comment_on_line(line - 1) is not None:
            return None  # not the first line of its comment block
        lines = []
        while (comment := self._comment_on_line(line)) is not None:
            lines.append(comment)
            line += 1
        item = self._block_item_on_line(line)
        if item is None or self.has_line_comment(item):
            return None
        return Attached(item, "\n".join(lines), head=True, after_comma=False)

    def _comment_on_line(self, line: int) -> str | None:
        """The comment on ``line`` if the line holds only a comment (outside every scalar)."""
        starts = self._line_starts_list()
        if line >= len(starts):
            return None
        begin = starts[line]
        end = starts[line + 1] if line + 1 < len(starts) else len(self.text)
        content = self.text[begin:end].rstrip(_EOL)
        stripped = content.lstrip(_BLANK + ("\ufeff" if begin == 0 else ""))
        if not stripped.startswith("#"):
            return None
        if self._inside_scalar(begin + len(content) - len(stripped)):
            return None
        return stripped

    def _block_item_on_line(self, line: int) -> ScalarEvent | None:
        """The first non-empty scalar that starts on ``line`` (0-based); the caller checks
        that it is a block-sequence item."""
        line_starts = self._line_starts_list()
        if line >= len(line_starts):
            return None
        return self._index().first_on_line(line, line_starts[line])

    def _inside_scalar(self, pos: int) -> bool:
        return self._index().containing(pos)

    def _line_of(self, pos: int) -> int:
        return bisect_right(self._line_starts_list(), pos) - 1

    # --- indexes, built when first needed

    def _index(self) -> _ScalarIndex:
        if self._scalars is None:
            self._scalars = _ScalarIndex(self.stream)
        return self._scalars

    def _line_starts_list(self) -> list[int]:
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in _LINE_BREAK.finditer(self.text)]
        return self._line_starts


class _ScalarIndex:
    """Every scalar in text order, with its offsets. Non-empty scalars' spans never
    overlap, and an empty scalar sits where libyaml found the next token, so both lists
    are sorted."""

    __slots__ = ("stream", "scalars", "ends", "_starts")

    def __init__(self, stream: Stream) -> None:
        bom = stream.bom
        self.stream = stream
        self.scalars = stream.scalars
        self.ends = [s.end_mark.index + bom for s in self.scalars]
        self._starts: list[int] | None = None

    @property
    def starts(self) -> list[int]:
        """Where each scalar starts, with its anchor and tag (only head comments need this)."""
        if self._starts is None:
            bom = self.stream.bom
            self._starts = [s.start_mark.index + bom for s in self.scalars]
        return self._starts

    def ending_at(self, end: int) -> ScalarEvent | None:
        """The non-empty scalar whose text ends exactly at ``end``."""
        i = bisect_left(self.ends, end)
        while i < len(self.ends) and self.ends[i] == end:
            if self.scalars[i].start_mark.index + self.stream.bom < end:
                return self.scalars[i]
            i += 1
        return None

    def containing(self, pos: int) -> bool:
        """Whether ``pos`` lies inside a scalar's own text (after its anchor and tag)."""
        i = bisect_right(self.starts, pos) - 1
        while i >= 0 and self.ends[i] == self.starts[i]:
            i -= 1  # an empty scalar holds nothing
        return i >= 0 and self.stream.span(self.scalars[i])[0] < pos < self.ends[i]

    def first_on_line(self, line: int, line_start: int) -> ScalarEvent | None:
        """The first non-empty scalar that starts on ``line`` (0-based)."""
        starts = self.starts
        i = bisect_left(starts, line_start)
        while i < len(starts) and self.scalars[i].start_mark.line == line:
            if self.ends[i] > starts[i]:
                return self.scalars[i]
            i += 1
        return None
