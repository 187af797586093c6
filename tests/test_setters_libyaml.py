"""The setters on libyaml (issue 9): Flux's differences 1-3, the self-check, and byte offsets.

Each reproducer of the issue is a test here. The property tests check that
edits land on the right bytes whatever precedes them: multi-byte UTF-8, a BOM,
and CRLF, CR or LF line breaks.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from bot.update import apply_setters, setters
from bot.update.quoting import render

M = '# {"$imagepolicy": "ns:p"}'
REF = '# {"$ref": "#/definitions/io.k8s.cli.setters.ns:p"}'
SETTERS = {"ns:p": "new/app:v2", "ns:p:tag": "v2"}


def run(text: str) -> tuple[str | None, list[tuple[str, str, str]]]:
    update = apply_setters("f.yaml", text.encode(), SETTERS)
    assert update.warnings == []
    changes = [(c.old_value, c.new_value, c.setter) for _obj, c in update.changes]
    return (None if update.content is None else update.content.decode()), changes


# --- 1. a tab before a line comment ----------------------------------------------------------


@pytest.mark.parametrize(
    "src",
    [
        f"image: old:v1\t{M}\n",
        f"args:\n  - old:v1\t{M}\n",
        f"args:\n- old:v1\t{M}\n",
        f"image: 'old:v1'\t \t{M}\n",
        f"images: [old:v1,\t{M}\n  other]\n",
    ],
)
def test_a_tab_before_a_line_comment_is_valid_and_the_marker_works(src: str) -> None:
    out, changes = run(src)
    assert out == src.replace("old:v1", "new/app:v2")
    assert changes == [("old:v1", "new/app:v2", "ns:p")]


# --- 2. the long $ref form with text after the JSON --------------------------------------------


@pytest.mark.parametrize(
    "src",
    [
        f"image: old:v1 {REF} keep me\n",
        f'image: old:v1 {REF} {{"x": 1}}\n',
        f"image: old:v1 {REF}keep\n",
        f"args:\n  {REF}\n  # a second line of the same head comment\n  - old:v1\n",
        f'args:\n  {REF} and more\n  # {{"$imagepolicy": "ns:q"}}\n  - old:v1\n',
    ],
)
def test_the_long_ref_form_is_honoured_with_text_after_its_json(src: str) -> None:
    out, changes = run(src)
    assert out == src.replace("- old:v1", "- new/app:v2").replace(": old:v1", ": new/app:v2")
    assert changes == [("old:v1", "new/app:v2", "ns:p")]


@pytest.mark.parametrize(
    "src",
    [
        f"image: old:v1 {M} keep me\n",
        f'image: old:v1 {M} {{"x": 1}}\n',
        f"args:\n  {M}\n  # a second line of the same head comment\n  - old:v1\n",
        f"args:\n  # a first line\n  {REF}\n  - old:v1\n",  # $ref not on the first line
        'image: old:v1 # {"$ref": "#/definitions/io.k8s.cli.setters.ns:p"\n',  # incomplete
        f"args:\n  {REF}\n\n  - old:v1\n",  # a blank line: no head comment of the item
        f"args:\n  {REF}\n  - old:v1 # a note of its own\n",  # the line comment is looked at
    ],
)
def test_what_stays_no_marker(src: str) -> None:
    assert run(src) == (None, [])


# --- 3. %YAML directives ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "src",
    [
        f"---\n%YAML 1.2\n---\nimage: old:v1 {M}\n",
        f"a: 1\n...\n%YAML 1.2\n---\nimage: old:v1 {M}\n",
        f"image: old:v1 {M}\n...\n%YAML 1.1\n---\nb: 2\n",
        f"a: 1\n...\n%TAG !e! tag:example.com,2000:\n---\nimage: !e!img old:v1 {M}\n",
    ],
)
def test_a_directive_that_opens_a_later_document_is_read(src: str) -> None:
    out, changes = run(src)
    assert out == src.replace("old:v1", "new/app:v2")
    assert changes == [("old:v1", "new/app:v2", "ns:p")]


@pytest.mark.parametrize(
    ("src", "line"),
    [
        (f"%YAML 1.2\n---\nimage: old:v1 {M}\n", 1),
        (f"# a header\n%YAML 1.1\n---\nimage: old:v1 {M}\n", 2),
        (f"%TAG !e! tag:example.com,2000:\n---\nimage: old:v1 {M}\n", 1),
    ],
)
def test_a_directive_at_the_start_of_the_file_still_skips_it(src: str, line: int) -> None:
    update = apply_setters("f.yaml", src.encode(), SETTERS)
    assert update.content is None and update.changes == []
    assert [str(w) for w in update.warnings] == [
        f"f.yaml:{line}: skipped: not a YAML file the setters can read: "
        "%YAML/%TAG directives are not supported before the first document"
    ]


# --- unchanged values keep their bytes (docs/decisions.md) -------------------------------------


def test_an_unchanged_marked_value_is_not_requoted_when_another_changes() -> None:
    # Flux re-emits the marked `5` as "5" here; we never touch bytes that do not change.
    src = 'image: old:v1 # {"$imagepolicy": "ns:p"}\nb: 5 # {"$imagepolicy": "ns:p:tag"}\n'
    update = apply_setters("f.yaml", src.encode(), {"ns:p": "new/app:v2", "ns:p:tag": "5"})
    assert update.content == src.replace("old:v1", "new/app:v2").encode()
    assert [c.new_value for _obj, c in update.changes] == ["new/app:v2"]


# --- the self-check ----------------------------------------------------------------------------

DEPLOYMENT = f"""\
apiVersion: apps/v1
kind: Deployment
spec:
  containers:
    - name: app
      image: old:v1 {M}
      args: [a, b]
next: 1
"""


@pytest.mark.parametrize(
    "broken",
    [
        '"new/app:v2',  # an unterminated quote
        "a: b",  # a mapping where a scalar was
        "new # x",  # a comment that eats the rest of the value
        "[new]",  # a flow sequence
        "&x new",  # an anchor
        "new\n  more: 1",  # a line break
        "new\n---\nz: 1",  # a new document
    ],
)
def test_an_edit_that_changes_the_document_is_refused(
    broken: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(setters, "render", lambda value, style: broken)
    update = apply_setters("f.yaml", DEPLOYMENT.encode(), SETTERS)
    assert update.content is None
    assert [str(w) for w in update.warnings] == [
        "f.yaml:1: skipped: editing the marked values in place failed; file left unchanged"
    ]


def test_the_self_check_falls_back_to_the_document_when_an_entry_cannot_be_read_alone() -> None:
    # The tag's handle is declared by the document's directive, not visible to the entry alone.
    src = f"a: 1\n...\n%TAG !e! tag:example.com,2000:\n---\nspec:\n  image: !e!i old:v1 {M}\n"
    out, _ = run(src)
    assert out == src.replace("old:v1", "new/app:v2")


def test_many_edits_in_many_documents_and_flow_collections() -> None:
    doc = (
        f"kind: A\nspec:\n  list:\n    - old:v1 {M}\n    - {{image: old:v1, {M}\n      x: 1}}\n"
        f'  tag: v1 # {{"$imagepolicy": "ns:p:tag"}}\n'
    )
    src = f"{doc}---\n{{root: old:v1, {M}\n}}\n---\n{doc}"
    out, changes = run(src)
    assert out == src.replace("old:v1", "new/app:v2").replace("tag: v1", "tag: v2")
    assert len(changes) == 7


# --- byte offsets: multi-byte UTF-8, a BOM, CRLF ---------------------------------------------

WIDE = "é中𝄞🎉\u00a0"  # 2, 3, 4 and 4 bytes in UTF-8, and a no-break space
NOTE = st.text(alphabet="abc #:{}é中𝄞🎉\u2029\x85", max_size=12).map(
    lambda s: s.replace("\u2029", "").replace("\x85", "")
)
OLD = st.from_regex(r"\Av[a-z0-9.:/é中𝄞-]{0,8}\Z").filter(lambda v: not v.endswith(":"))
NEW = st.one_of(
    st.sampled_from(["new:v2", "6", "yes", "a: b", "é中𝄞🎉", "it's", "", " lead", "x #y"]),
    st.text(alphabet="abz09.:/-_ 'é中𝄞🎉\"\\{}[],#", max_size=10),
)


@st.composite
def entries(draw, index: int):
    """One top-level entry: (segments, marked), where each segment is (text, leaf or None)."""
    key = f"k{index}{draw(st.sampled_from(['', 'é', '中']))}"
    kind = draw(st.sampled_from(["filler", "line", "head", "flow"]))
    if kind == "filler":
        value = draw(st.text(alphabet=WIDE + "abc ", max_size=8))
        return [(f'{key}: "{value}" # {draw(NOTE)}', None)]
    style = draw(st.sampled_from(["plain", "single", "double"]))
    old = draw(OLD)
    text = {"plain": old, "single": f"'{old}'", "double": f'"{old}"'}[style]
    where = {"line": None, "flow": 1, "head": 0}[kind]  # where the value is under the key
    leaf = {"old": old, "new": draw(NEW), "style": {"plain": None}.get(style, text[0])}
    leaf.update(key=key, where=where)
    sep = draw(st.sampled_from([" ", "\t", "  \t "]))
    setter = f"ns:s{index}"
    marker = f'# {{"$imagepolicy": "{setter}"}}'
    leaf["setter"] = setter
    if kind == "line":
        return [(f"{key}: ", None), (text, leaf), (f"{sep}{marker}", None)]
    if kind == "flow":
        return [
            (f"{key}: [{WIDE}, ", None),
            (text, leaf),
            (f",{sep}{marker}", None),
            ("EOL  x]", None),
        ]
    return [(f"{key}:EOL  {marker}EOL  - ", None), (text, leaf)]


@st.composite
def documents(draw):
    bom = draw(st.booleans())
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    segments: list[tuple[str, dict | None]] = [("\ufeff" if bom else "", None)]
    segments.append((f"# {draw(NOTE)}{WIDE}", None))
    for i in range(draw(st.integers(1, 6))):
        segments.append(("EOL", None))
        segments.extend(draw(entries(i)))
    segments.append(("EOL", None))
    return [(text.replace("EOL", eol), leaf) for text, leaf in segments]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(segments=documents())
def test_edits_land_on_the_right_bytes(segments: list[tuple[str, dict | None]]) -> None:
    text = "".join(t for t, _ in segments)
    leaves = [leaf for _, leaf in segments if leaf is not None]
    update = apply_setters("f.yaml", text.encode("utf-8"), {x["setter"]: x["new"] for x in leaves})
    assert update.warnings == []
    changed = [x for x in leaves if x["new"] != x["old"]]
    assert [(c.old_value, c.new_value, c.setter) for _o, c in update.changes] == [
        (x["old"], x["new"], x["setter"]) for x in changed
    ]
    if not changed:
        assert update.content is None
        return
    expected = "".join(
        render(leaf["new"], leaf["style"]) if leaf and leaf["new"] != leaf["old"] else t
        for t, leaf in segments
    )
    assert update.content == expected.encode("utf-8")  # every other byte is where it was
    # An independent parser reads every marked value as it should now be (it refuses the
    # tabs before comments, which libyaml reads; no value holds a tab).
    out = update.content.decode("utf-8").lstrip("\ufeff").replace("\t", " ")
    loaded = YAML(typ="safe", pure=True).load(out)
    for leaf in leaves:
        value = loaded[leaf["key"]]
        if leaf["where"] is not None:
            value = value[leaf["where"]]
        assert value == leaf["new"]
