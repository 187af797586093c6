"""Flux's Go message templates, read as the Jinja2 templates the bot renders.

Flux's ``messageTemplate`` is a Go ``text/template``; the bot's templates are Jinja2
(docs/templates.md). `go_to_jinja` translates the forms Flux's documentation uses,
over the same data (``.AutomationObject``, ``.Changed.FileChanges``,
``.Changed.Objects``, ``.Changed.Changes``, ``.Values``):

* field chains on the data, on ``.`` inside ``range``, and on ``$variables``;
* ``range PIPE``, ``range $v := PIPE``, ``range $k, $v := PIPE`` over the maps and
  lists of that data (a map's key and value, a list's element), ``if``/``else``/``end``;
* ``print X`` and ``println X``, string literals, comments, and ``{{-``/``-}}``.

Anything else (a function such as ``printf``, a pipe, an index variable over a list)
makes it answer None: the caller then keeps its own rule (the config checker reports
the template, with the Jinja2 spelling). Each action is replaced where it stands, so
the translation has the template's lines, and problems keep their line numbers. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Types of the data, as far as ranges need them: a map (key, value), a list (element).
_Type = tuple  # ("map", key, value) | ("list", element) | ("leaf",)
_LEAF: _Type = ("leaf",)
_CHANGES: _Type = ("list", _LEAF)
_OBJECTS: _Type = ("map", _LEAF, _CHANGES)
_ROOT_FIELDS: dict[str, _Type] = {
    "AutomationObject": _LEAF,
    "Changed.FileChanges": ("map", _LEAF, _OBJECTS),
    "Changed.Objects": _OBJECTS,
    "Changed.Changes": _CHANGES,
    "Values": ("map", _LEAF, _LEAF),
}

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_FIELDS = r"(?:\.[A-Za-z_][A-Za-z0-9_]*)+"
_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?((?:\.[A-Za-z_][A-Za-z0-9_]*)*)")
_RANGE = re.compile(r"range\s+(?:\$(\w+)\s*(?:,\s*\$(\w+)\s*)?:=\s*)?(.+)", re.S)
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


class _Unsupported(Exception):
    pass


@dataclass
class _Scope:
    """What ``.`` is here, and the ``$variables`` in force, with their types."""

    dot: str  # the Jinja2 expression for ``.`` ("" at the root)
    dot_type: _Type
    variables: dict[str, tuple[str, _Type]]


def go_to_jinja(template: str) -> str | None:
    """The Jinja2 spelling of a Go template of Flux's documented forms, or None."""
    try:
        return _Translator().translate(template)
    except _Unsupported:
        return None


class _Translator:
    def __init__(self) -> None:
        self.scopes = [_Scope("", ("root",), {})]
        self.blocks: list[str] = []  # "for" or "if", innermost last
        self.loops = 0

    def translate(self, template: str) -> str:
        out: list[str] = []
        position = 0
        for match in _ACTION.finditer(template):
            out.append(template[position : match.start()])
            left = "-" if match.group(1) else ""
            right = "-" if match.group(3) else ""
            out.append(self._action(match.group(2).strip(), left, right))
            position = match.end()
        out.append(template[position:])
        if self.blocks:
            raise _Unsupported("a range or if without its end")
        return "".join(out)

    def _action(self, action: str, left: str, right: str) -> str:
        def tag(body: str) -> str:
            return f"{{%{left} {body} {right}%}}"

        if action.startswith("/*") and action.endswith("*/"):
            return f"{{#{left} {action[2:-2].strip()} {right}#}}"
        if action == "end":
            if not self.blocks:
                raise _Unsupported("end without range or if")
            kind = self.blocks.pop()
            if kind == "for":
                self.scopes.pop()
            return tag(f"end{kind}")
        if action == "else":
            if not self.blocks or self.blocks[-1] != "if":
                raise _Unsupported("else outside if")
            return tag("else")
        if action.startswith("else if "):
            if not self.blocks or self.blocks[-1] != "if":
                raise _Unsupported("else if outside if")
            return tag(f"elif {self._expression(action[8:].strip())[0]}")
        if action.startswith("if "):
            self.blocks.append("if")
            return tag(f"if {self._expression(action[3:].strip())[0]}")
        if action.startswith("range "):
            return tag(self._range(action))
        return f"{{{{{left} {self._output(action)} {right}}}}}"

    def _range(self, action: str) -> str:
        match = _RANGE.fullmatch(action)
        if match is None:
            raise _Unsupported(action)
        first, second, pipe = match.group(1), match.group(2), match.group(3).strip()
        expression, kind = self._expression(pipe)
        scope = self.scopes[-1]
        self.loops += 1
        names = dict(scope.variables)
        if kind[0] == "map":
            key_type, value_type = kind[1], kind[2]
            if second is not None:  # $k, $v: key and value
                key, value = _name(first), _name(second)
                names[first] = (key, key_type)
                names[second] = (value, value_type)
                loop = f"for {key}, {value} in {expression}.items()"
                dot = value
            else:  # $v (or nothing): the value
                value = _name(first) if first else f"_dot{self.loops}"
                if first:
                    names[first] = (value, value_type)
                loop = f"for {value} in {expression}.values()"
                dot = value
            self.scopes.append(_Scope(dot, value_type, names))
        elif kind[0] == "list":
            if second is not None and first not in ("_",):
                raise _Unsupported("an index variable over a list")
            element = second if second is not None else first
            value = _name(element) if element else f"_dot{self.loops}"
            if element:
                names[element] = (value, kind[1])
            loop = f"for {value} in {expression}"
            self.scopes.append(_Scope(value, kind[1], names))
        else:
            raise _Unsupported(f"range over {pipe}")
        self.blocks.append("for")
        return loop

    def _output(self, action: str) -> str:
        words = action.split(None, 1)
        if words and words[0] in ("print", "println") and len(words) == 2:
            expression = self._expression(words[1].strip())[0]
            return f'{expression} ~ "\\n"' if words[0] == "println" else expression
        return self._expression(action)[0]

    def _expression(self, text: str) -> tuple[str, _Type]:
        """A Jinja2 expression for a Go operand, and its type as far as known."""
        if _STRING.fullmatch(text):
            return text, _LEAF
        scope = self.scopes[-1]
        if text == ".":
            if not scope.dot:
                raise _Unsupported("the whole data printed")
            return scope.dot, scope.dot_type
        if re.fullmatch(_FIELDS, text):
            path = text[1:]
            if scope.dot:
                return f"{scope.dot}.{path}", _field_type(scope.dot_type, path)
            return path, _root_type(path)
        variable = _VARIABLE.fullmatch(text)
        if variable and variable.group(1):
            name, fields = variable.group(1), variable.group(2)
            if name not in scope.variables:
                raise _Unsupported(f"${name} is not defined")
            expression, kind = scope.variables[name]
            if fields:
                return expression + fields, _field_type(kind, fields[1:])
            return expression, kind
        raise _Unsupported(text)


def _name(variable: str) -> str:
    return "_" if variable == "_" else f"v_{variable}"


def _root_type(path: str) -> _Type:
    if path in _ROOT_FIELDS:
        return _ROOT_FIELDS[path]
    if path == "Changed" or any(path.startswith(field + ".") for field in _ROOT_FIELDS):
        return _LEAF  # a field of the automation object or a value: printed, not ranged
    raise _Unsupported(f".{path} is not in Flux's template data")


def _field_type(_kind: _Type, _path: str) -> _Type:
    # Below a variable, fields are an object identifier's or a change's: leaves.
    return _LEAF
