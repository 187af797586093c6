"""Commit messages, PR titles and bodies: Jinja2 in a sandbox over Flux's template data.

The data mirrors Flux's (flux-behaviour §5.3–5.4) with Go's field names, so
``{{ change.OldValue }}`` works as ``{{ $change.OldValue }}`` did. Templates come
from repository configs, i.e. from strangers: rendering happens in Jinja2's
immutable sandbox, without access to files, the environment or Python
internals, with ``include``/``import``/``extends`` refused and the size of
every string produced bounded. Every failure is a `TemplateError`.

Choices where Flux's Go templates behave differently:

* a missing key (``{{ Values.nope }}``) renders as an empty string (Go prints
  ``<no value>``), so ``| default("x")`` and ``is defined`` work;
* reaching for internals (``{{ ''.__class__ }}``) is an error, never output;
* ``{{ object_id }}`` prints ``Kind/Namespace/Name`` and ``{{ change }}``
  prints ``old -> new`` (Go printed its ``%v`` structs).
"""

from __future__ import annotations

import hashlib
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from jinja2 import BaseLoader, Template, TemplateNotFound, TemplateSyntaxError, Undefined, nodes
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from bot.policy.model import LatestRef
from bot.update.result import Change as ResultChange
from bot.update.result import ObjectId as ResultObjectId
from bot.update.result import Result

DEFAULT_COMMIT_MESSAGE = "Update from image update automation"
#: GitHub refuses PR bodies over 65536 characters; every text we render stays below.
MAX_OUTPUT_CHARS = 64 * 1024
_MAX_RANGE = 10_000
_TEMPLATE_FILENAME = "<template>"
#: Lines of compiled template code one render may execute: bounds CPU time (a
#: loop over a loop over a long string prints nothing yet never ends) without
#: a clock, so the same template always fails or succeeds the same way.
MAX_TEMPLATE_STEPS = 1_000_000


#: The templates of an automation, by the name problems give them (their config field).
COMMIT_MESSAGE = "messageTemplate"
PR_TITLE = "pullRequest.title"
PR_BODY = "pullRequest.bodyTemplate"


class TemplateError(Exception):
    """A template failed to parse or render; ``str()`` is ``<name>:<line>: <message>``."""

    def __init__(self, name: str, line: int, message: str) -> None:
        super().__init__(name, line, message)
        self.name = name
        self.line = line
        self.message = message

    def __str__(self) -> str:
        return f"{self.name}:{self.line}: {self.message}"


# --- the data, with Go's field names --------------------------------------------------------


@dataclass(frozen=True)
class AutomationObject:
    Namespace: str
    Name: str

    def __str__(self) -> str:
        return f"{self.Namespace}/{self.Name}"


@dataclass(frozen=True)
class ObjectId:
    APIVersion: str
    Kind: str
    Namespace: str
    Name: str

    def __str__(self) -> str:
        return f"{self.Kind}/{self.Namespace}/{self.Name}"


@dataclass(frozen=True)
class Change:
    OldValue: str
    NewValue: str
    Setter: str

    def __str__(self) -> str:
        return f"{self.OldValue} -> {self.NewValue}"


@dataclass(frozen=True)
class Changed:
    """Flux's ``.Changed``: ``FileChanges``, ``Objects`` and ``Changes`` (the latter two
    are methods in Go, called implicitly; here they are plain attributes)."""

    FileChanges: dict[str, dict[ObjectId, list[Change]]]
    Objects: dict[ObjectId, list[Change]]
    Changes: list[Change]

    def __bool__(self) -> bool:
        return bool(self.Changes)


def _object_id(obj: ResultObjectId) -> ObjectId:
    return ObjectId(obj.api_version, obj.kind, obj.namespace, obj.name)


def _changes(changes: list[ResultChange]) -> list[Change]:
    return [Change(c.old_value, c.new_value, c.setter) for c in changes]


def template_data(
    *,
    automation: str,
    result: Result,
    values: Mapping[str, str],
    observed_policies: Mapping[str, LatestRef],
    repository: str,
) -> dict[str, Any]:
    """The names a template sees; ``automation`` is ``"namespace/name"``."""
    namespace, _, name = automation.rpartition("/")
    changed = Changed(
        FileChanges={
            path: {_object_id(obj): _changes(changes) for obj, changes in objects}
            for path, objects in result.sorted_files()
        },
        Objects={_object_id(obj): _changes(changes) for obj, changes in result.objects().items()},
        Changes=_changes(result.changes()),
    )
    return {
        "AutomationObject": AutomationObject(namespace, name),
        "Changed": changed,
        "Values": dict(values),
        "ObservedPolicies": {
            policy: ref.to_json() for policy, ref in sorted(observed_policies.items())
        },
        "Repository": repository,
    }


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


def _bounded(value: Any) -> Any:
    if isinstance(value, str | list | tuple) and len(value) > MAX_OUTPUT_CHARS:
        raise SecurityError(f"a value longer than {MAX_OUTPUT_CHARS} characters was produced")
    return value


class _BoundedCodeGenerator(CodeGenerator):
    """Routes ``~`` through the environment so concatenations are size-checked too."""

    def visit_Concat(self, node: nodes.Concat, frame) -> None:  # noqa: ANN001
        self.write("environment.bounded_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _safe_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > _MAX_RANGE:
        raise SecurityError(f"range() is limited to {_MAX_RANGE} items")
    return numbers


def _printable(value: Any) -> Any:
    """Functions, methods and classes print as nothing: their repr would leak internals."""
    if isinstance(value, Undefined):
        return value  # printing decides: "" when missing, an error when refused
    return "" if callable(value) else value


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
        self.filters = {
            name: _size_checked(f, check_numbers=name in _AMPLIFYING_FILTERS)
            for name, f in self.filters.items()
        }
        self.filters["sha256sum"] = _sha256sum
        self.filters["md_code"] = _markdown_code

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:  # noqa: ANN001
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(count, int)
                if sized and len(seq) * count > MAX_OUTPUT_CHARS:
                    raise SecurityError(f"repetition beyond {MAX_OUTPUT_CHARS} items")
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("exponents are limited to 64")
        return _bounded(super().call_binop(context, operator, left, right))

    def call(self, context, obj, /, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN001
        return _bounded(super().call(context, obj, *args, **kwargs))

    @staticmethod
    def bounded_join(parts: tuple) -> str:
        return _bounded("".join(str(part) for part in parts))


#: Filters whose numeric argument multiplies the output (``"x" | center(10**9)``).
_AMPLIFYING_FILTERS = frozenset({"center", "indent", "wordwrap", "batch", "slice"})


def _sha256sum(value: Any) -> str:
    """Sprig's ``sha256sum``, used by Flux's Gerrit Change-Id example."""
    return hashlib.sha256(str(value).encode()).hexdigest()


def _markdown_code(value: Any) -> str:
    """Text safe inside a Markdown table cell's code span (no backtick, pipe or newline)."""
    text = " ".join(str(value).splitlines())
    return text.replace("`", "'").replace("|", "\\|")


def _size_checked(function, *, check_numbers: bool):  # noqa: ANN001, ANN202 - any Jinja filter
    def checked(*args: Any, **kwargs: Any) -> Any:
        if check_numbers:
            for value in list(args[1:]) + list(kwargs.values()):
                if isinstance(value, int) and value > MAX_OUTPUT_CHARS:
                    raise SecurityError(f"a width or count above {MAX_OUTPUT_CHARS}")
        return _bounded(function(*args, **kwargs))

    for attr in ("jinja_pass_arg",):  # keep Jinja's pass_context/pass_environment markers
        if hasattr(function, attr):
            setattr(checked, attr, getattr(function, attr))
    return checked


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
    try:
        output: list[str] = []
        size = 0
        with _step_budget(MAX_TEMPLATE_STEPS):
            for chunk in template.generate(dict(data)):
                size += len(chunk)
                if size > max_chars:
                    raise SecurityError(f"output is longer than {max_chars} characters")
                output.append(chunk)
    except TemplateSyntaxError as exc:
        raise TemplateError(name, exc.lineno or 1, exc.message or "syntax error") from None
    except Exception as exc:  # noqa: BLE001 - a template must never crash the bot
        raise TemplateError(name, _template_line(exc), _describe(exc)) from None
    return "".join(output)


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
