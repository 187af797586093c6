"""What a template may make: sizes worked out before an operation runs, and a work allowance.

Jinja2's sandbox guards secrets, not resources, and ``serve`` is one process
for every installation. So every operation that makes a value (an operator, a
filter, a method, ``~``, printing, a block's output) has the size of its result
worked out from its operands *before* it runs, and is refused above
`MAX_VALUE_SIZE`; what one render makes in all is counted against
`MAX_TEMPLATE_WORK`. None of it reads a clock, so a template fails or succeeds
the same way every time. `bot.update.templates` wires these checks into its
sandbox; refusals are Jinja2's `SecurityError`, which it reports at the
template's line.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from types import MethodType
from typing import Any, NamedTuple

from jinja2 import (
    Undefined,
)
from jinja2.runtime import Macro
from jinja2.sandbox import SecurityError
from jinja2.utils import Namespace
from markupsafe import Markup, escape

from bot.update.template_data import JOINED_FIELDS

#: The most characters of a text, or items of a list, tuple or dict, that one
#: operation of a template may make (``"x" * n``, ``| join``, ``.center(n)``...).
MAX_VALUE_SIZE = 64 * 1024
#: The most bits of an integer a template may compute (``2 ** n``, ``a * b``).
MAX_INT_BITS = 4096
#: What one render may make in all: one unit per character of every text it
#: makes, `ITEM_WORK` per item of every list, tuple or dict, `OPERATION_WORK`
#: per operation. Every value made was counted, so this bounds the memory a
#: render can hold (about 5 bytes a unit at worst) and the work done inside
#: library code, where `MAX_TEMPLATE_STEPS` does not look.
MAX_TEMPLATE_WORK = 8 * 1024 * 1024
#: A list item: a pointer, and often a new small object behind it.
ITEM_WORK = 16
#: Any operation, so that many cheap ones on one line are bounded too.
OPERATION_WORK = 16
#: ``tojson(indent=n)`` repeats the indent on every line, times the depth.
MAX_JSON_INDENT = 16
#: ``markupsafe.escape`` turns one character into at most five (``&#34;``).
ESCAPE_GROWTH = 5
#: What ``str.splitlines`` splits at.
_LINE_BREAKS = ("\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


# --- the limits ---------------------------------------------------------------------------


class Allowance:
    """What is left of one render's `MAX_TEMPLATE_WORK`."""

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_TEMPLATE_WORK


#: The render under way in this thread or task (None while compiling: then only
#: constants from the template's own text are folded).
ALLOWANCE: ContextVar[Allowance | None] = ContextVar("template_allowance", default=None)


def spend(units: int) -> None:
    allowance = ALLOWANCE.get()
    if allowance is None:
        return
    allowance.left -= units
    if allowance.left < 0:
        raise SecurityError(
            f"the template makes more than {MAX_TEMPLATE_WORK:,} characters and items in all;"
            " simplify it"
        )


def check_text(size: int, what: str) -> None:
    if size > MAX_VALUE_SIZE:
        raise SecurityError(
            f"{what} would make a text of at least {size:,} characters"
            f" (the limit is {MAX_VALUE_SIZE:,})"
        )


def check_items(count: int, what: str) -> None:
    if count > MAX_VALUE_SIZE:
        raise SecurityError(
            f"{what} would make at least {count:,} items (the limit is {MAX_VALUE_SIZE:,})"
        )


def check_bits(bits: int, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise SecurityError(
            f"{what} would make a number of {bits:,} bits (the limit is {MAX_INT_BITS:,})"
        )


def made(value: Any, what: str) -> Any:
    """Check and count a value an operation has just made (or handed back)."""
    if isinstance(value, str | bytes):
        check_text(len(value), what)
        spend(len(value) + OPERATION_WORK)
    elif isinstance(value, list | tuple | dict | set | frozenset):
        check_items(len(value), what)
        spend(len(value) * ITEM_WORK + OPERATION_WORK)
    elif isinstance(value, int):
        spend(value.bit_length() // 8 + OPERATION_WORK)
    else:
        spend(OPERATION_WORK)
    return value


def as_int(value: Any) -> int:
    """A width or count as Python will use it (anything else makes the call fail)."""
    return value if isinstance(value, int) else 0


def line_count(text: Any) -> int:
    if not isinstance(text, str):
        return 1
    return 1 + sum(text.count(brk) for brk in _LINE_BREAKS)


# --- sizes, worked out without making the text --------------------------------------------


class _Shape(NamedTuple):
    size: int  # >= len(repr(value)), or > the limit when counting stopped there
    nodes: int
    depth: int


def text_size(value: Any, limit: int = MAX_VALUE_SIZE) -> int:
    """At least ``len(str(value))``; once that passes ``limit``, some number above it."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Undefined):
        return 0  # prints as "" (or fails)
    if isinstance(value, JOINED_FIELDS):  # their __str__ joins their fields with "/" or " -> "
        return sum(len(field) + 4 for field in vars(value).values())
    return measure(value, limit).size


def repr_size(value: Any, limit: int = MAX_VALUE_SIZE) -> int:
    if isinstance(value, str):
        return _str_repr_size(value)
    return measure(value, limit).size


def _str_repr_size(text: str) -> int:
    if text.isprintable():
        return len(text) + 2 + text.count("\\") + text.count("'")
    return 2 + len(text) * (4 if text.isascii() else 10)  # '\x00', '\U000e0000'


def _digits(number: int) -> int:
    return number.bit_length() * 30103 // 100000 + 2  # log10(2), a sign, rounding


def measure(value: Any, limit: int) -> _Shape:
    """How long ``repr(value)`` is at most, walking containers without formatting them.

    The walk stops once the size passes ``limit`` (so a list holding one long
    text 65536 times costs one step per item up to the limit, not 4 GB), and
    each step counts as work: measuring is not free either.
    """
    size = nodes = depth = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack and size <= limit:
        item, level = stack.pop()
        nodes += 1
        depth = max(depth, level)
        own, children = _parts(item)
        size += own + 2 * len(children)  # brackets, then ", " (and ": ") between children
        if size <= limit:
            stack.extend((child, level + 1) for child in children)
    spend(nodes)
    return _Shape(size, nodes, depth)


_DICT_VIEWS = (type({}.keys()), type({}.values()), type({}.items()))


def _parts(item: Any) -> tuple[int, list[Any] | tuple[Any, ...]]:
    """The characters ``repr(item)`` adds itself, and the values it shows inside."""
    if isinstance(item, str):
        return _str_repr_size(item), ()
    if item is None or isinstance(item, bool):
        return 5, ()
    if isinstance(item, int):
        return _digits(item), ()
    if isinstance(item, float):
        return 24, ()
    if isinstance(item, bytes | bytearray):
        return 14 + 4 * len(item), ()
    if isinstance(item, Undefined):
        return 9, ()
    if isinstance(item, list):
        return 2, item
    if isinstance(item, tuple):  # a named tuple also names its type and fields
        extra = 0 if type(item) is tuple else len(type(item).__name__) + 16 * len(item)
        return 3 + extra, item
    if isinstance(item, set | frozenset):
        return 12, list(item)
    if isinstance(item, dict):
        return 2 + len(type(item).__name__), [*item.keys(), *item.values()]
    if isinstance(item, _DICT_VIEWS):
        return 14, list(item)
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        fields = dataclasses.fields(item)
        own = len(type(item).__name__) + 2 + sum(len(f.name) + 1 for f in fields)
        return own, [getattr(item, f.name) for f in fields]
    if isinstance(item, Namespace):
        return 13, [object.__getattribute__(item, "_Namespace__attrs")]
    if isinstance(item, MethodType):  # "<bound method X.m of <repr of X>>"
        return 40 + len(item.__qualname__), [item.__self__]
    if isinstance(item, Macro):
        return 12 + len(item.name), ()
    return 100, ()  # functions, classes, generators, ranges, loops: a name and an address


def printf_size(fmt: str | bytes, args: Any, *, escaping: bool) -> int:
    """At most how long ``fmt % args`` is: ``"%2000000000d" % 1`` is refused unmade."""
    if isinstance(fmt, bytes):
        fmt = fmt.decode("latin-1")
    positional = iter(args if isinstance(args, tuple) else (args,))
    grow = ESCAPE_GROWTH if escaping else 1
    size, i, end = len(fmt), 0, len(fmt)
    while (i := fmt.find("%", i)) >= 0:
        i += 1
        key = None
        if i < end and fmt[i] == "(":  # a mapping key, parentheses nest
            depth, start = 1, i + 1
            i += 1
            while i < end and depth:
                depth += {"(": 1, ")": -1}.get(fmt[i], 0)
                i += 1
            key = fmt[start : i - 1]
        while i < end and fmt[i] in "-+ #0":
            i += 1
        width, i = _printf_number(fmt, i, positional)
        precision = None
        if i < end and fmt[i] == ".":
            precision, i = _printf_number(fmt, i + 1, positional)
        while i < end and fmt[i] in "hlL":
            i += 1
        kind = fmt[i] if i < end else ""
        i += 1
        if kind == "%":
            size += max(width, 1)
            continue
        if key is None:
            value = next(positional, None)
        else:
            try:
                value = args[key] if isinstance(args, Mapping) else None
            except Exception:  # noqa: BLE001 - Python's own % reports the missing key
                value = None
        size += max(width, _conversion_size(value, kind, precision) * grow)
    return size


def _printf_number(fmt: str, i: int, positional: Iterator[Any]) -> tuple[int, int]:
    """A width or precision at ``fmt[i]``: digits, or ``*`` taking the next argument."""
    if i < len(fmt) and fmt[i] == "*":
        value = next(positional, 0)
        return (abs(value) if isinstance(value, int) else 0), i + 1
    start = i
    while i < len(fmt) and fmt[i] in "0123456789":
        i += 1
    return _decimal(fmt[start:i]), i


def _decimal(digits: str | None) -> int:
    if not digits:
        return 0
    return int(digits) if len(digits) <= 18 else 10**18


def _conversion_size(value: Any, kind: str, precision: int | None) -> int:
    if kind in ("s", "r", "a"):
        # ascii() escapes more than repr()
        size = text_size(value) if kind == "s" else repr_size(value) * (10 if kind == "a" else 1)
        return size if precision is None else min(size, precision)
    bits = value.bit_length() if isinstance(value, int) else 1030  # a float: 2**1024 at most
    if kind in ("d", "i", "u", "o", "x", "X"):
        return max(bits + 3, precision or 0) + 3
    if kind in ("e", "E", "f", "F", "g", "G"):
        return 330 + (6 if precision is None else precision)
    return 1  # "c", or a character Python refuses


#: Python's format-spec mini-language: ``[[fill]align][sign][z][#][0][width][,][.precision][type]``.
_FORMAT_SPEC = re.compile(
    r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d*))?[a-zA-Z%]?",
    re.DOTALL,
)
_NUMBERS = re.compile(r"\d+")


def format_size(value: Any, spec: str) -> int:
    """At most how long ``format(value, spec)`` is: ``'{:>999999999}'`` is refused unmade."""
    match = _FORMAT_SPEC.fullmatch(spec)
    if match is not None:
        width = _decimal(match["width"])
        precision = None if match["precision"] is None else _decimal(match["precision"])
    else:  # not the standard mini-language: take its largest number both ways
        width = max((_decimal(n) for n in _NUMBERS.findall(spec)), default=0)
        precision = width
    if isinstance(value, str):
        size = len(value) if precision is None else min(len(value), precision)
    elif isinstance(value, int | float):
        bits = value.bit_length() if isinstance(value, int) else 1030
        size = 2 * (bits + 330) + (precision or 0)  # digits, grouping, a float's decimals
    else:
        size = text_size(value)
    return max(width, size)


# --- what each amplifying operation would make --------------------------------------------


def joined_size(parts: Iterable[Any]) -> int:
    """``a + b`` of texts; with Markup on one side, the other side is escaped."""
    parts = list(parts)
    markup = any(isinstance(part, Markup) for part in parts)
    return sum(
        len(part) * (ESCAPE_GROWTH if markup and not isinstance(part, Markup) else 1)
        for part in parts
    )


def replaced_size(text: str | bytes, old: str | bytes, new_size: int, count: Any) -> int:
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(new_size - len(old), 0)


def join_items(separator: Any, iterable: Any, what: str) -> list[Any]:
    """The items ``separator.join(iterable)`` would join, once its size is known to fit."""
    items = iterable if isinstance(iterable, list) else list(iterable)  # join makes a list too
    check_items(len(items), what)
    spend(len(items) * ITEM_WORK)
    grow = ESCAPE_GROWTH if isinstance(separator, Markup) else 1
    size = len(separator) * max(len(items) - 1, 0)
    for item in items:
        if isinstance(item, str | bytes):
            size += len(item) * (1 if isinstance(item, Markup) else grow)
        if size > MAX_VALUE_SIZE:
            break
    check_text(size, what)
    return items


def _padded(text: str | bytes, width: Any, *_: Any) -> int:
    return max(len(text), as_int(width))


def _expanded(text: str | bytes, tabsize: Any = 8) -> int:
    tab = "\t" if isinstance(text, str) else b"\t"
    return len(text) + text.count(tab) * max(as_int(tabsize) - 1, 0)  # type: ignore[arg-type]


def _method_replaced(text: str | bytes, old: Any, new: Any, count: Any = -1) -> int:
    if not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return 0  # the method refuses them
    if isinstance(text, Markup):  # Markup.replace escapes its arguments
        old, new = escape(old), escape(new)
    return replaced_size(text, old, len(new), count)


def _translated(text: str | bytes, table: Any, *_: Any) -> int:
    """``str.translate``: every character may become a whole text of ``table``."""
    if isinstance(text, bytes):
        return len(text)  # a byte becomes one byte, or none
    size = 0
    for char, count in Counter(text).items():
        try:
            replacement = table[ord(char)]
        except LookupError:
            replacement = char
        size += count * (len(replacement) if isinstance(replacement, str) else 1)
    return size


def _to_bytes(number: int, length: Any = 1, *_: Any, **__: Any) -> int:
    return as_int(length)


#: Methods that can make far more than they are given, by receiver type and name:
#: how long their result would be, from the receiver and the arguments.
_METHOD_SIZES: dict[tuple[type, str], Callable[..., int]] = {
    **{(kind, name): _padded for kind in (str, bytes) for name in ("center", "ljust", "rjust")},
    **{(kind, "zfill"): _padded for kind in (str, bytes)},
    **{(kind, "expandtabs"): _expanded for kind in (str, bytes)},
    **{(kind, "replace"): _method_replaced for kind in (str, bytes)},
    (str, "translate"): _translated,
    (int, "to_bytes"): _to_bytes,
}


def method_size(receiver: Any, name: str) -> Callable[..., int] | None:
    kind = next(kind for kind in (str, bytes, int) if isinstance(receiver, kind))
    return _METHOD_SIZES.get((kind, name))


def grows_as_power(base: Any, exponent: Any) -> bool:
    """0, 1 and -1 stay small whatever the exponent; a negative one makes a float."""
    return isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 and exponent > 0
