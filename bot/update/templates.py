"""Commit messages, PR titles and bodies: Jinja2 in a sandbox over Flux's template data.

The data (`bot.update.template_data`) mirrors Flux's with Go's field names.
Templates come from repository configs, i.e. from strangers: rendering happens
in Jinja2's immutable sandbox, without access to files, the environment or
Python internals, with ``include``/``import``/``extends`` refused. The sandbox
guards secrets, not resources, and ``serve`` is one process for every
installation, so every value a template makes is also bounded before it is made
(`bot.update.template_limits`), and the lines it runs are counted against
`MAX_TEMPLATE_STEPS` (docs/templates.md, "Limits"). Every failure is a
`TemplateError`.

Choices where Flux's Go templates behave differently:

* a missing key (``{{ Values.nope }}``) renders as an empty string (Go prints
  ``<no value>``), so ``| default("x")`` and ``is defined`` work;
* reaching for internals (``{{ ''.__class__ }}``) is an error, never output;
* ``{{ object_id }}`` prints ``Kind/Namespace/Name`` and ``{{ change }}``
  prints ``old -> new`` (Go printed its ``%v`` structs).
"""

from __future__ import annotations

import math
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import update_wrapper
from types import BuiltinMethodType, FrameType, MethodType
from typing import Any

from jinja2 import (
    BaseLoader,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    Undefined,
    nodes,
)
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter, SecurityError
from markupsafe import EscapeFormatter, Markup

from bot.update.prbody import markdown_code
from bot.update.template_filters import (
    binds,
    bounded_filter,
    bounded_json_dumps,
    sha256sum,
)
from bot.update.template_limits import (
    ALLOWANCE,
    ESCAPE_GROWTH,
    ITEM_WORK,
    MAX_VALUE_SIZE,
    Allowance,
    check_bits,
    check_items,
    check_text,
    format_size,
    grows_as_power,
    join_items,
    joined_size,
    made,
    method_size,
    printf_size,
    repr_size,
    spend,
    text_size,
)
from bot.update.template_names import COMMIT_MESSAGE as COMMIT_MESSAGE  # re-exported
from bot.update.template_names import DEFAULT_COMMIT_MESSAGE as DEFAULT_COMMIT_MESSAGE
from bot.update.template_names import PR_BODY as PR_BODY
from bot.update.template_names import PR_TITLE as PR_TITLE
from bot.update.template_names import TemplateError as TemplateError

#: GitHub refuses PR bodies over 65536 characters; every text we render stays below.
MAX_OUTPUT_CHARS = 64 * 1024
#: Lines of compiled template code one render may execute: bounds CPU time (a
#: loop over a loop over a long string prints nothing yet never ends) without
#: a clock, so the same template always fails or succeeds the same way.
MAX_TEMPLATE_STEPS = 1_000_000
_MAX_RANGE = 10_000
_TEMPLATE_FILENAME = "<template>"
#: Output chunks kept before they are joined: one-character chunks cost ~50 bytes each.
_OUTPUT_CHUNKS = 1024


# --- the sandbox ----------------------------------------------------------------------------


class _RefusingLoader(BaseLoader):
    def get_source(self, environment, template):  # noqa: ANN001 - Jinja's signature
        raise TemplateNotFound(template, "templates cannot include, import or extend others")


class _Undefined(Undefined):
    """Missing values print as ""; a blocked attribute (a sandbox refusal) is an error."""

    __slots__ = ()

    def __str__(self) -> str:
        if self._undefined_exception is SecurityError:
            self._fail_with_undefined_error()
        return ""

    def __iter__(self):
        if self._undefined_exception is SecurityError:
            self._fail_with_undefined_error()
        return iter(())


class _BoundedCodeGenerator(CodeGenerator):
    """Routes ``~`` and slices through the environment, so they are bounded too."""

    def visit_Concat(self, node: nodes.Concat, frame) -> None:  # noqa: ANN001
        self.write("environment.bounded_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_Getitem(self, node: nodes.Getitem, frame) -> None:  # noqa: ANN001
        if not isinstance(node.arg, nodes.Slice):
            super().visit_Getitem(node, frame)
            return
        # Jinja writes ``x[a:b]`` straight into Python; a copy is work like any other.
        self.write("environment.bounded_slice(")
        self.visit(node.node, frame)
        self.write(", slice(")
        for part in (node.arg.start, node.arg.stop, node.arg.step):
            if part is None:
                self.write("None")
            else:
                self.visit(part, frame)
            self.write(", ")
        self.write("))")


def _safe_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > _MAX_RANGE:
        raise SecurityError(f"range() is limited to {_MAX_RANGE} items")
    return numbers


def _printable(value: Any) -> Any:
    """Functions, methods and classes print as nothing: their repr would leak internals."""
    if isinstance(value, str):
        return value
    if isinstance(value, Undefined):
        return value  # printing decides: "" when missing, an error when refused
    if callable(value):
        return ""
    size = text_size(value)  # str(value) comes next: know its size first
    check_text(size, "printing this value")
    spend(size)
    return value


class _BoundedFormatter(SandboxedFormatter):
    """``str.format`` with every field's size worked out before it is formatted."""

    def __init__(self, env: ImmutableSandboxedEnvironment, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self._grow = ESCAPE_GROWTH if "escape" in kwargs else 1
        self._size = 0

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._size = len(format_string)
        return super().vformat(format_string, args, kwargs)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion == "s":
            check_text(text_size(value), "str.format")
        elif conversion in ("r", "a"):
            check_text(repr_size(value) * (10 if conversion == "a" else 1), "str.format")
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        self._size += format_size(value, format_spec) * self._grow
        check_text(self._size, "str.format")
        return super().format_field(value, format_spec)


class _BoundedEscapeFormatter(_BoundedFormatter, EscapeFormatter):
    pass


class _Sandbox(ImmutableSandboxedEnvironment):
    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(
            loader=_RefusingLoader(),
            undefined=_Undefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=_printable,
        )
        self.globals = {"range": _safe_range, "dict": dict, "namespace": self.globals["namespace"]}
        self.filters["sha256sum"] = sha256sum
        self.filters["md_code"] = markdown_code
        self.filters = {name: bounded_filter(name, f, self) for name, f in self.filters.items()}
        self.policies["json.dumps_function"] = bounded_json_dumps

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:  # noqa: ANN001
        what = f"'{operator}'"
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, str | bytes) and isinstance(count, int):
                    check_text(len(seq) * max(count, 0), what)
                elif isinstance(seq, list | tuple) and isinstance(count, int):
                    check_items(len(seq) * max(count, 0), what)
            if isinstance(left, int) and isinstance(right, int):
                check_bits(left.bit_length() + right.bit_length(), what)
        elif operator == "+":
            if isinstance(left, str | bytes) and isinstance(right, str | bytes):
                check_text(joined_size((left, right)), what)
            elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
                check_items(len(left) + len(right), what)
            elif isinstance(left, int) and isinstance(right, int):
                check_bits(max(left.bit_length(), right.bit_length()) + 1, what)
        elif operator == "%" and isinstance(left, str | bytes):
            check_text(printf_size(left, right, escaping=isinstance(left, Markup)), what)
        elif operator == "**" and grows_as_power(left, right):
            check_bits(math.ceil(math.log2(abs(left)) * right) + 1, what)
        return made(super().call_binop(context, operator, left, right), what)

    def call(self, context, obj, /, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN001
        receiver = getattr(obj, "__self__", None)
        name = getattr(obj, "__name__", None) or "a function"
        if isinstance(obj, BuiltinMethodType | MethodType) and isinstance(
            receiver, str | bytes | int
        ):
            what = f"{type(receiver).__name__}.{name}"
            if name == "join" and isinstance(receiver, str | bytes) and len(args) == 1:
                args = (join_items(receiver, args[0], what),)
            elif (size := method_size(receiver, name)) is not None:
                try:
                    check_text(size(receiver, *args, **kwargs), what)
                except TypeError:
                    if binds(size, (receiver, *args), kwargs):
                        raise
                    # Wrong arguments: the method itself says what is wrong.
        else:
            what = f"calling {name}"
        return made(super().call(context, obj, *args, **kwargs), what)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja's sandboxed ``str.format``/``format_map``, with fields sized first."""
        if not isinstance(value, MethodType | BuiltinMethodType) or value.__name__ not in (
            "format",
            "format_map",
        ):
            return None
        receiver = value.__self__
        if not isinstance(receiver, str):
            return None
        formatter: _BoundedFormatter
        if isinstance(receiver, Markup):
            formatter = _BoundedEscapeFormatter(self, escape=receiver.escape)
        else:
            formatter = _BoundedFormatter(self)
        is_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs, args = args[0], ()
            return type(receiver)(formatter.vformat(receiver, args, kwargs))

        return update_wrapper(wrapper, value)

    @staticmethod
    def concat(parts: Iterable[str]) -> str:  # type: ignore[override]
        """The output of a macro, a block or ``{% set %}...{% endset %}``, as one text."""
        pieces: list[str] = []
        size = 0
        for part in parts:
            size += len(part)
            if size > MAX_VALUE_SIZE:
                check_text(size, "a block's output")
            pieces.append(part)
        return made("".join(pieces), "a block's output")

    @staticmethod
    def bounded_join(parts: tuple) -> str:
        size = 0
        for part in parts:
            size += text_size(part, max(MAX_VALUE_SIZE - size, 0))
            check_text(size, "'~'")
        return made("".join(str(part) for part in parts), "'~'")

    @staticmethod
    def bounded_slice(obj: Any, key: slice) -> Any:
        if isinstance(obj, str | bytes | list | tuple):
            try:
                length = len(range(*key.indices(len(obj))))
            except (TypeError, ValueError):
                length = 0  # the slice itself fails
            spend(length * (1 if isinstance(obj, str | bytes) else ITEM_WORK))
        return obj[key]


_SANDBOX = _Sandbox()

_REMOVED_FIELDS = {
    "Updated": "template uses removed 'Updated' field. Please use 'Changed' instead.",
    "ImageResult": "template uses removed 'Changed.ImageResult' field. "
    "Please use 'Changed.FileChanges' or 'Changed.Objects' instead.",
}


def render_template(
    source: str, data: Mapping[str, Any], *, name: str, max_chars: int = MAX_OUTPUT_CHARS
) -> str:
    """Render ``source`` with ``data``; any failure is a `TemplateError` naming ``name`` and a line."""
    template = _compile(source, name)
    output: list[str] = []
    pending: list[str] = []
    size = 0
    allowance = ALLOWANCE.set(Allowance())
    try:
        with _step_budget(MAX_TEMPLATE_STEPS):
            for chunk in template.generate(dict(data)):
                size += len(chunk)
                if size > max_chars:
                    raise SecurityError(f"output is longer than {max_chars} characters")
                pending.append(chunk)
                if len(pending) >= _OUTPUT_CHUNKS:
                    output.append("".join(pending))
                    pending.clear()
    except TemplateSyntaxError as exc:
        raise TemplateError(name, exc.lineno or 1, exc.message or "syntax error") from None
    except Exception as exc:  # noqa: BLE001 - a template must never crash the bot
        raise TemplateError(name, _template_line(exc), _describe(exc)) from None
    finally:
        ALLOWANCE.reset(allowance)
    return "".join(output) + "".join(pending)


def check_template(source: str, *, name: str) -> None:
    """Raise `TemplateError` if ``source`` cannot run in the sandbox at all.

    The one test of a template's validity: the config checker and the renderer
    both use it, so a template `check-config` accepts is one `plan` can run.
    """
    _compile(source, name)


def _compile(source: str, name: str) -> Template:
    try:
        tree = _SANDBOX.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(name, exc.lineno or 1, exc.message or "syntax error") from None
    except Exception as exc:  # noqa: BLE001 - the lexer's own failures
        raise TemplateError(name, 1, _describe(exc)) from None
    _reject_removed_fields(tree, name)
    for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        raise TemplateError(name, node.lineno, _describe(TemplateNotFound("")))
    try:
        return _SANDBOX.from_string(tree)  # unknown filters and tests fail here
    except TemplateSyntaxError as exc:
        raise TemplateError(name, exc.lineno or 1, exc.message or "syntax error") from None


@contextmanager
def _step_budget(steps: int) -> Iterator[None]:
    """Raise SecurityError once template code has run ``steps`` lines (this thread only)."""
    remaining = steps

    def in_template(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal remaining
        if event == "line":
            remaining -= 1
            if remaining < 0:
                raise SecurityError(f"template ran more than {steps} steps; simplify its loops")
        return in_template

    def on_call(frame: FrameType, event: str, arg: object) -> Any:
        # Only the compiled template's own frames are traced; library code runs untraced.
        return in_template if frame.f_code.co_filename == _TEMPLATE_FILENAME else None

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        yield
    finally:
        sys.settrace(previous)


def _reject_removed_fields(tree: nodes.Template, name: str) -> None:
    for node in tree.find_all((nodes.Name, nodes.Getattr)):
        field = node.name if isinstance(node, nodes.Name) else node.attr
        if field in _REMOVED_FIELDS:
            raise TemplateError(name, node.lineno, _REMOVED_FIELDS[field])


def _template_line(exc: BaseException) -> int:
    line = 1
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == _TEMPLATE_FILENAME and frame.lineno:
            line = frame.lineno
    return line


def _describe(exc: BaseException) -> str:
    message = str(exc).strip() or type(exc).__name__
    if isinstance(exc, SecurityError):
        return f"not allowed: {message}"
    if isinstance(exc, TemplateNotFound):
        return "templates cannot include, import or extend others"
    if isinstance(exc, RecursionError):
        return "template recursion is too deep"
    return message
