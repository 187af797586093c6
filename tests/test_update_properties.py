"""Property: setters change only the marked scalars' bytes, and exactly their values."""

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from bot.update import apply_setters

TRICKY = [
    "",
    "6",
    "1.10",
    "yes",
    "no",
    "on",
    "true",
    "null",
    "~",
    "0x1F",
    "1e3",
    "0o17",
    "1:20",
    "2001-12-14",
    "-x",
    "- x",
    "*a",
    "&a",
    "!t",
    "? x",
    "a: b",
    "[x]",
    "{x}",
    "a,b",
    "%x",
    "@x",
    "`x",
    "'q'",
    '"q"',
    "back\\slash",
    " lead",
    "trail ",
    "ghcr.io/org/app:v1.2.3",
    "app@sha256:" + "ab" * 32,
    "café",
    "tab\tin",
]
NEW_VALUES = st.one_of(
    st.sampled_from(TRICKY),
    st.text(alphabet="abcxyz0123456789.:/-_@'\"\\ {}[],&*!?|>%", max_size=16),
)
OLD_PLAIN = st.from_regex(r"\Av[a-z0-9]{0,6}(:[a-z0-9.]{1,5})?\Z")
OLD_QUOTED = st.text(alphabet="abc 019:./'\"\\é", max_size=12)


@dataclass
class Leaf:
    value: str
    style: str  # "plain", "single", "double"
    marker: str  # "", "line", "head" (head only as a sequence item), "note"
    new: str


def render_scalar(leaf: Leaf) -> str:
    if leaf.style == "plain":
        return leaf.value
    if leaf.style == "single":
        return "'" + leaf.value.replace("'", "''") + "'"
    escaped = leaf.value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped + '"'


@st.composite
def leaves(draw, in_sequence: bool) -> Leaf:
    style = draw(st.sampled_from(["plain", "single", "double"]))
    value = draw(OLD_PLAIN if style == "plain" else OLD_QUOTED)
    markers = ["", "line", "note"] + (["head"] if in_sequence else [])
    return Leaf(value, style, draw(st.sampled_from(markers)), draw(NEW_VALUES))


def trees(depth: int = 0):
    def mapping(in_sequence: bool = False):
        child = trees(depth + 1) if depth < 3 else leaves(in_sequence=False)
        return st.dictionaries(st.from_regex(r"\A[a-z]{1,6}\Z"), child, min_size=1, max_size=4)

    if depth >= 3:
        return leaves(in_sequence=False)
    seq_item = st.one_of(
        leaves(in_sequence=True), trees(depth + 1).filter(lambda n: isinstance(n, dict))
    )
    return st.one_of(
        leaves(in_sequence=False),
        mapping(),
        st.lists(seq_item, min_size=1, max_size=4),
    )


class Renderer:
    def __init__(self, eol: str, wide: bool) -> None:
        self.eol, self.wide = eol, wide
        self.parts: list[str] = []
        self.size = 0
        self.spans: list[tuple[int, int, Leaf]] = []
        self.count = 0

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)

    def leaf(self, leaf: Leaf) -> None:
        start = self.size
        self.write(render_scalar(leaf))
        if leaf.marker in ("line", "head"):
            self.count += 1
            self.spans.append((start, self.size, leaf))
            leaf.setter = f"ns:s{self.count}"
        if leaf.marker == "line":
            self.write(f' # {{"$imagepolicy": "{leaf.setter}"}}')
        elif leaf.marker == "note":
            self.write(" # a note")
        self.write(self.eol)

    def node(self, node, indent: int) -> None:
        pad = " " * indent
        if isinstance(node, dict):
            for key, value in node.items():
                self.write(f"{pad}{key}:")
                if isinstance(value, Leaf):
                    self.write(" ")
                    self.leaf(value)
                else:
                    self.write(self.eol)
                    self.node(value, indent + (2 if isinstance(value, dict) or self.wide else 0))
        else:
            for item in node:
                if isinstance(item, Leaf):
                    if item.marker == "head":
                        self.count += 1
                        item.setter = f"ns:s{self.count}"
                        self.write(f'{pad}# {{"$imagepolicy": "{item.setter}"}}{self.eol}')
                        self.count -= 1
                    self.write(f"{pad}- ")
                    self.leaf(item)
                else:
                    self.write(f"{pad}- {self.eol}")
                    self.node(item, indent + 2)


def plain(node, replace: bool):
    if isinstance(node, Leaf):
        return node.new if replace and node.marker in ("line", "head") else node.value
    if isinstance(node, dict):
        return {k: plain(v, replace) for k, v in node.items()}
    return [plain(item, replace) for item in node]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    root=st.dictionaries(st.from_regex(r"\A[a-z]{1,6}\Z"), trees(1), min_size=1, max_size=4),
    eol=st.sampled_from(["\n", "\r\n"]),
    wide=st.booleans(),
)
def test_only_marked_scalars_change(root, eol: str, wide: bool) -> None:
    renderer = Renderer(eol, wide)
    renderer.node(root, 0)
    text = "".join(renderer.parts)
    load = YAML(typ="safe", pure=True).load
    assert load(text) == plain(root, replace=False)  # the generator writes what it means

    setters = {leaf.setter: leaf.new for _s, _e, leaf in renderer.spans}
    update = apply_setters("gen.yaml", text.encode(), setters)
    assert update.warnings == []
    expected_changes = [
        (leaf.value, leaf.new, leaf.setter)
        for _s, _e, leaf in renderer.spans
        if leaf.value != leaf.new
    ]
    assert [(c.old_value, c.new_value, c.setter) for _o, c in update.changes] == expected_changes
    if not expected_changes:
        assert update.content is None
        return
    out = update.content.decode()
    assert load(out) == plain(root, replace=True)

    # Outside the marked spans, not one character differs.
    pos, last = 0, 0
    for start, end, leaf in renderer.spans:
        unchanged = text[last:start]
        assert out.startswith(unchanged, pos)
        pos += len(unchanged)
        if leaf.value == leaf.new:
            assert out.startswith(text[start:end], pos)
            stop = pos + end - start
        else:
            stop = min(
                i for i in (out.find(" #", pos), out.find("\r", pos), out.find("\n", pos)) if i >= 0
            )
            assert load("k: " + out[pos:stop])["k"] == leaf.new
        pos, last = stop, end
    assert out[pos:] == text[last:]
