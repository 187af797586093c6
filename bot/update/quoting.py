"""How a new value is written in place of a scalar: in the old quote style, unless the
value needs quotes to read back as the same string (flux-behaviour §4.6)."""

from __future__ import annotations

import re
from functools import lru_cache

from yaml.error import YAMLError
from yaml.events import NodeEvent, ScalarEvent

from bot.update.yamlscan import CParser

# YAML's printable characters, minus line breaks and the BOM (which change meaning in a scalar).
PRINTABLE = re.compile(
    "[\t\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]*"
)
_DOUBLE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"}

#: Plain scalars that some reader takes for something other than a string: the implicit
#: types of YAML 1.1 (kubectl's go-yaml v2) and of YAML 1.2 (Flux's go-yaml v3), and what
#: Go's strconv accepts when go-yaml hands it a number-like scalar. A superset is safe:
#: it only means quotes where none were needed.
_NOT_A_STRING = re.compile(
    r"""
    ~ | null | Null | NULL                                      # null
    | y | Y | yes | Yes | YES | n | N | no | No | NO            # bool, 1.1 and 1.2
    | true | True | TRUE | false | False | FALSE
    | on | On | ON | off | Off | OFF
    | [-+]? 0 [bB] [01_]+                                       # int: binary
    | [-+]? 0 [oO]? [0-7_]+                                     # octal, 1.1 and 1.2
    | [-+]? [0-9_]+                                             # decimal
    | [-+]? 0 [xX] [0-9a-fA-F_]+                                # hexadecimal
    | [-+]? [0-9][0-9_]* (?: : [0-5]?[0-9] )+ (?: \. [0-9_]* )? # base 60, int and float
    | [-+]? [0-9][0-9_]* \. [0-9_]* (?: [eE] [-+]? [0-9]+ )?    # float
    | [-+]? [0-9][0-9_]* [eE] [-+]? [0-9]+
    | [-+]? \. [0-9_]+ (?: [eE] [-+]? [0-9]+ )?
    | [-+]? 0 [xX] [0-9a-fA-F_.]* [pP] [-+]? [0-9]+             # Go's hexadecimal float
    | [-+]? \. (?: inf | Inf | INF ) | \. (?: nan | NaN | NAN )
    | [-+] (?i: inf | infinity )                                # Go's ParseFloat
    | << | =                                                    # merge, value
    | [0-9]{4} - [0-9]{1,2} - [0-9]{1,2}                        # timestamp
      (?: (?: [Tt] | [ \t]+ ) [0-9]{1,2} : [0-9]{2} : [0-9]{2} (?: \. [0-9]* )?
          (?: [ \t]* (?: Z | [-+] [0-9]{1,2} (?: : [0-9]{2} )? ) )? )?
    """,
    re.VERBOSE,
)


@lru_cache(maxsize=4096)
def render(value: str, style: str | None) -> str:
    """The new scalar's text, keeping the old quote style unless the value needs quotes.

    ``style`` is the old scalar's: None (plain), ``'`` or ``"``.
    """
    if not style and plain_is_safe(value):
        return value
    if style == "'" and PRINTABLE.fullmatch(value):
        return "'" + value.replace("'", "''") + "'"
    return double_quoted(value)


def double_quoted(value: str) -> str:
    out = []
    for char in value:
        if char in _DOUBLE_ESCAPES:
            out.append(_DOUBLE_ESCAPES[char])
        elif PRINTABLE.fullmatch(char):
            out.append(char)
        elif ord(char) <= 0xFF:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


@lru_cache(maxsize=4096)
def plain_is_safe(value: str) -> bool:
    """Whether ``value`` reads back, unquoted, as this same string in any context.

    It must be a string under YAML 1.1 and 1.2 (so ``6``, ``1.10``, ``yes``,
    ``~``, ``0x1F`` get quotes) and parse, with libyaml, as one plain scalar in
    block and flow collections (so ``a: b``, ``x #y``, ``a,b``, ``*x`` get quotes).
    """
    if not value or "\t" in value or value[0] == " " or value[-1] == " ":
        return False  # a tab is valid in a plain scalar, but not every reader agrees
    if not PRINTABLE.fullmatch(value):
        return False
    if _NOT_A_STRING.fullmatch(value):
        return False
    contexts = ("k: " + value + "\n", "- " + value + "\n", "[" + value + "]", "{k: " + value + "}")
    return all(_one_plain_scalar(doc, value) for doc in contexts)


def _one_plain_scalar(doc: str, value: str) -> bool:
    parser = CParser(doc)
    nodes = []
    try:
        while parser.check_event():
            event = parser.get_event()
            if isinstance(event, NodeEvent):
                nodes.append(event)
    except YAMLError:
        return False
    finally:
        parser.dispose()
    last = nodes[-1] if nodes else None
    return (
        len(nodes) == 3 - doc.startswith(("-", "["))
        and isinstance(last, ScalarEvent)
        and last.value == value
        and not last.style
        and last.anchor is None
        and last.tag is None
    )
