"""The Jinja2 filters of the template sandbox, each bounded by `bot.update.template_limits`.

A filter that can grow its input has the size of its result checked before it
runs (a check per filter, taking the filter's own parameters); every filter's
result is checked and counted after it runs.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

from jinja2 import (
    Environment,
    pass_context,
)
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context
from jinja2.sandbox import SecurityError
from jinja2.utils import _PassArg
from markupsafe import Markup

from bot.update.template_limits import (
    ESCAPE_GROWTH,
    MAX_JSON_INDENT,
    MAX_VALUE_SIZE,
    as_int,
    check_bits,
    check_items,
    check_text,
    line_count,
    made,
    measure,
    printf_size,
    replaced_size,
    spend,
    text_size,
)

# --- filters -----------------------------------------------------------------------------
# A check takes what to call the filter in errors, then the filter's own
# parameters, and raises before the filter runs. One that returns a value has
# made a list of the filter's input, which the filter then gets instead of
# reading the input (maybe a generator) a second time.


def _text_filter(what: str, value: Any, *args: Any, **kwargs: Any) -> None:
    """Filters that make a text of their value first (``str(value)``)."""
    check_text(text_size(value), what)


def _center_filter(what: str, value: Any, width: Any = 80) -> None:
    check_text(max(text_size(value), as_int(width)), what)


def _indent_filter(
    what: str, s: Any, width: Any = 4, first: Any = False, blank: Any = False
) -> None:
    size = text_size(s)
    check_text(size, what)
    indention = text_size(width) if isinstance(width, str) else max(as_int(width), 0)
    # The newlines stay; each line (and the first, with first=True) gains an indention.
    check_text(size + 1 + (line_count(s) + 1) * indention, what)


def _wordwrap_filter(
    what: str,
    s: Any,
    width: Any = 79,
    break_long_words: Any = True,
    wrapstring: Any = None,
    break_on_hyphens: Any = True,
) -> None:
    size = text_size(s)
    check_text(size, what)
    separator = 1 if wrapstring is None else text_size(wrapstring)
    # Every line holds at least one character, so there are at most this many breaks.
    check_text(size + (size + line_count(s)) * separator, what)


def _replace_filter(what: str, s: Any, old: Any, new: Any, count: Any = None) -> None:
    for part in (s, old, new):
        check_text(text_size(part), what)
    text = s if isinstance(s, str) else str(s)
    old_text = old if isinstance(old, str) else str(old)
    check_text(replaced_size(text, old_text, text_size(new), count), what)


def _format_filter(what: str, value: Any, *args: Any, **kwargs: Any) -> None:
    check_text(text_size(value), what)
    if args and kwargs:
        return  # the filter refuses that
    fmt = value if isinstance(value, str) else str(value)
    check_text(printf_size(fmt, kwargs or args, escaping=isinstance(fmt, Markup)), what)


def _join_filter(
    what: str, environment: Environment, value: Any, d: Any = "", attribute: Any = None
) -> list[Any] | tuple[Any, ...]:
    items = value if isinstance(value, list | tuple) else list(value)
    check_items(len(items), what)
    get = make_attrgetter(environment, attribute) if attribute is not None else None
    size = text_size(d) * max(len(items) - 1, 0)
    for item in items:
        size += text_size(get(item) if get else item, max(MAX_VALUE_SIZE - size, 0))
        if size > MAX_VALUE_SIZE:
            break
    check_text(size, what)
    return items


def _sum_filter(
    what: str, environment: Environment, iterable: Any, attribute: Any = None, start: Any = 0
) -> list[Any]:
    items = list(iterable)
    check_items(len(items), what)
    get = make_attrgetter(environment, attribute) if attribute is not None else None
    values = [get(item) for item in items] if get else items
    sequences = str | bytes | list | tuple
    if isinstance(start, sequences) or any(isinstance(v, sequences) for v in values):
        # Each partial sum is a new sequence, copied from the last: work grows with the square.
        length = len(start) if isinstance(start, sequences) else 0
        copied = 0
        for v in values:
            length += len(v) if isinstance(v, sequences) else 0
            copied += length
        check_items(length, what)
        spend(copied)
    else:
        widest = max((v.bit_length() for v in values if isinstance(v, int)), default=0)
        check_bits(widest + len(values).bit_length(), what)
    return items


def _batch_filter(what: str, value: Any, linecount: Any, fill_with: Any = None) -> None:
    check_items(as_int(linecount), what)


def _slice_filter(what: str, value: Any, slices: Any, fill_with: Any = None) -> None:
    check_items(as_int(slices), what)


def _urlize_filter(
    what: str,
    value: Any,
    trim_url_limit: Any = None,
    nofollow: Any = False,
    target: Any = None,
    rel: Any = None,
    extra_schemes: Any = None,
) -> None:
    size = text_size(value)
    check_text(size, what)
    # Each link repeats target and rel; the rest is a few times the text at most,
    # and checked once made. A link has a ".", "@" or ":" (and 4 characters and a space).
    links = size // 5 + 1
    if isinstance(value, str):
        links = min(links, value.count(".") + value.count("@") + value.count(":"))
    extra = sum(text_size(part) for part in (target, rel) if part is not None)
    check_text(size + links * extra * ESCAPE_GROWTH, what)


def _tojson_filter(what: str, value: Any, indent: Any = None) -> None:
    if indent is not None:
        width = len(indent) if isinstance(indent, str) else as_int(indent)
        if width > MAX_JSON_INDENT:
            raise SecurityError(f"{what}: an indent of {width:,} (the limit is {MAX_JSON_INDENT})")
    # The text itself is bounded as it is written: see bounded_json_dumps.


def _pprint_filter(what: str, value: Any) -> None:
    shape = measure(value, MAX_VALUE_SIZE)
    # A line per node, indented by its depth; pprint formats each level again.
    check_text(shape.size + shape.nodes * (shape.depth + 2), what)
    spend(shape.size * shape.depth)


_FILTER_CHECKS: dict[str, Callable[..., Any]] = {
    "center": _center_filter,
    "indent": _indent_filter,
    "wordwrap": _wordwrap_filter,
    "replace": _replace_filter,
    "format": _format_filter,
    "join": _join_filter,
    "sum": _sum_filter,
    "batch": _batch_filter,
    "slice": _slice_filter,
    "urlize": _urlize_filter,
    "tojson": _tojson_filter,
    "pprint": _pprint_filter,
    **dict.fromkeys(
        (
            "capitalize",
            "e",
            "escape",
            "forceescape",
            "lower",
            "upper",
            "title",
            "trim",
            "striptags",
            "safe",
            "string",
            "urlencode",
            "xmlattr",
            "wordcount",
            "md_code",
            "sha256sum",
        ),
        _text_filter,
    ),
}


def _counted_rows(rows: Iterable[list[Any]], what: str) -> Iterator[list[Any]]:
    """``batch`` and ``slice`` make a new list per row as they are read: count each."""
    for row in rows:
        yield made(row, what)


def _counted_groups(groups: list[Any], what: str) -> list[Any]:
    """``groupby`` makes a new list per group."""
    for group in groups:
        made(group.list, what)
    return groups


#: Filters whose result holds lists they made, beyond the one `made` counts.
_ROW_FILTERS: dict[str, Callable[[Any, str], Any]] = {
    "batch": _counted_rows,
    "slice": _counted_rows,
    "groupby": _counted_groups,
}


def binds(function: Callable[..., Any], args: tuple, kwargs: dict) -> bool:
    """Do ``args`` fit ``function``'s parameters (a TypeError came from inside it)?"""
    try:
        inspect.signature(function).bind(*args, **kwargs)
    except TypeError:
        return False
    return True


def bounded_filter(
    name: str, function: Callable[..., Any], environment: Environment
) -> Callable[..., Any]:
    """``function`` with its result's size checked before it runs (when it can grow) and after.

    Every filter takes the context, so Jinja never runs one while compiling
    (constant folding), outside a render's allowance. ``environment`` is the
    sandbox, through which filters that read attributes (``join``, ``sum``) read them.
    """
    what = f"the {name} filter"
    check = None
    if name in _FILTER_CHECKS:
        check = partial(_FILTER_CHECKS[name], what)
        if name in _ATTRIBUTE_FILTERS:
            check = partial(check, environment)
    pass_arg = _PassArg.from_obj(function)

    @pass_context
    def bounded(context: Context, *args: Any, **kwargs: Any) -> Any:
        items = None
        if check is not None:
            try:
                items = check(*args, **kwargs)
            except TypeError:
                if binds(check, args, kwargs):
                    raise
                # A check takes the filter's own parameters: the filter says what is wrong.
        if items is not None:
            args = (items, *args[1:])
        if pass_arg is _PassArg.context:
            result = function(context, *args, **kwargs)
        elif pass_arg is _PassArg.eval_context:
            result = function(context.eval_ctx, *args, **kwargs)
        elif pass_arg is _PassArg.environment:
            result = function(context.environment, *args, **kwargs)
        else:
            result = function(*args, **kwargs)
        if name in _ROW_FILTERS:
            result = _ROW_FILTERS[name](result, what)
        return made(result, what)

    return bounded


#: Filters whose checks read attributes of items, as the sandbox allows.
_ATTRIBUTE_FILTERS = {"join", "sum"}


def bounded_json_dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` (the ``tojson`` filter's), stopped once its text passes the limit.

    The encoder streams (``iterencode``), so a large structure is refused
    before its text exists.
    """
    chunks: list[str] = []
    size = 0
    for chunk in json.JSONEncoder(**kwargs).iterencode(obj):
        size += len(chunk)
        check_text(size, "the tojson filter")
        chunks.append(chunk)
    return "".join(chunks)


def sha256sum(value: Any) -> str:
    """Sprig's ``sha256sum``, used by Flux's Gerrit Change-Id example."""
    return hashlib.sha256(str(value).encode()).hexdigest()
