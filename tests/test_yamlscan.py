"""Reading YAML with libyaml: the C extension is required, and marks map to the right characters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.update.comments import CommentFinder
from bot.update.yamlscan import ScalarEvent, YamlSyntaxError, line_of, parse_stream

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "break_it",
    [
        "sys.modules['yaml.cyaml'] = None",  # PyYAML built without libyaml: no yaml.cyaml
        "import yaml; yaml.__with_libyaml__ = False",
    ],
)
def test_importing_the_setters_without_libyaml_fails_loudly(break_it: str) -> None:
    code = f"import sys\n{break_it}\nimport bot.update"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "LibyamlMissingError: PyYAML's libyaml C extension (yaml._yaml) is missing" in (
        proc.stderr
    )


def spans(text: str) -> list[tuple[str, str]]:
    stream = parse_stream(text)
    return [(s.value, text[slice(*stream.span(s))]) for s in stream.scalars if s.value]


def test_marks_count_characters_and_skip_the_bom() -> None:
    text = "\ufeffé: 'x中'\r\nb: &a !!str 𝄞🎉\rc: \"d\"\x85e: f\u2028g: [h, 'i']\n"
    assert spans(text) == [
        ("é", "é"),
        ("x中", "'x中'"),
        ("b", "b"),
        ("𝄞🎉", "𝄞🎉"),  # after its anchor and tag
        ("c", "c"),
        ("d", '"d"'),
        ("e", "e"),
        ("f", "f"),
        ("g", "g"),
        ("h", "h"),
        ("i", "'i'"),
    ]


WIDE = (
    st.text(alphabet="aé中𝄞🎉\u00a0 -", min_size=1, max_size=6)
    .map(str.strip)
    .filter(lambda s: s and s[0] != "-")
)
BREAK = st.sampled_from(["\n", "\r\n", "\r", "\x85", "\u2028", "\u2029"])


@settings(max_examples=200, deadline=None)
@given(
    bom=st.booleans(),
    lines=st.lists(
        st.tuples(WIDE, st.sampled_from(["plain", "single", "double"]), WIDE, BREAK),
        min_size=1,
        max_size=8,
        unique_by=lambda line: line[0],
    ),
)
def test_every_scalar_span_holds_its_text(bom: bool, lines: list) -> None:
    text, expected = "\ufeff" if bom else "", []
    for key, style, value, eol in lines:
        written = {"plain": value, "single": f"'{value}'", "double": f'"{value}"'}[style]
        text += f"{key}: {written} # {value}{eol}"
        expected += [(key, key), (value, written)]
    assert spans(text) == expected


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("é: 1\r\nb: 2\x01\n", 2),  # the reader's position counts UTF-8 bytes
        ("\ufeffa: 中\rb: \x01", 2),
        ("a: 1\u2028b: 2\x85c: \x00", 3),
    ],
)
def test_a_bad_character_is_reported_on_its_line(text: str, line: int) -> None:
    with pytest.raises(YamlSyntaxError) as raised:
        parse_stream(text)
    assert raised.value.line == line
    assert raised.value.message.startswith("character ")


def test_a_no_break_space_after_a_tag_belongs_to_the_scalar() -> None:
    assert spans("a: !!str \u00a0x\n") == [("a", "a"), ("\u00a0x", "\u00a0x")]


def test_line_of_counts_yaml_line_breaks() -> None:
    text = "a\r\nb\rc\nd\x85e\u2028f\u2029g"
    assert [line_of(text, text.index(c)) for c in "abcdefg"] == [1, 2, 3, 4, 5, 6, 7]


def test_documents_and_their_spans() -> None:
    text = "a: 1\n---\n%YAML 1.2\n---\nb: 2\n...\n# c\n---\n"
    stream = parse_stream(text)
    assert [text[d.start : d.end] for d in stream.documents] == [
        "a: 1\n",
        "---\n",
        "%YAML 1.2\n---\nb: 2\n...",
        "\n# c\n---\n",
    ]
    assert [d.root is not None for d in stream.documents] == [True, False, True, False]


M = '# {"$imagepolicy": "ns:p"}'


@pytest.mark.parametrize(
    ("text", "owners"),
    [
        (f"a: x {M}\n", [("x", False)]),
        (f"a: x\t{M}\n", [("x", False)]),
        (f"a: [x, {M}\n  y]\n", [("x", False)]),
        (f"a:\n  {M}\n  - x\n", [("x", True)]),
        (f"a:\n  {M}\n  # more\n  - x\n", [("x", True)]),
        (f"a: 'q {M}'\n", []),  # inside a quoted scalar
        (f"a: 'q\n  {M}\n  r'\nb:\n- x\n", []),  # on a quoted scalar's continuation line
        (f"a: |\n  {M}\nb:\n  - x\n", []),  # a line of a block scalar
        (f"a:\n  # note\n  {M}\n  - x\n", []),  # not the first line of its comment block
        (f"a: x ##{M[1:]}\n", [("x", False)]),
        (f"a: x # #{M[2:]}\n", []),  # `# #{...`: the comment starts at the first `#`
        ('a: x y#{"$imagepolicy":"ns:p"}\n', []),  # no blank before `#`: in the plain scalar
        (f"a: x # {'#' * 500}{M}\n", []),
    ],
)
def test_which_scalar_a_marker_like_comment_belongs_to(text: str, owners: list) -> None:
    found = CommentFinder(parse_stream(text)).attached()
    assert all(isinstance(a.scalar, ScalarEvent) for a in found)
    assert [(a.scalar.value, a.head) for a in found] == owners
