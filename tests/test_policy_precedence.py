"""SemVer precedence (SemVer 2.0 §11) of `bot.policy.semver.Version`: the rules it keeps."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.policy.semver import Version, parse_version

# The specification's own example, lowest first, and more edge cases.
ASCENDING = [
    "1.0.0-0",
    "1.0.0-1",
    "1.0.0-2",
    "1.0.0-10",  # numbers compare as numbers, not text
    "1.0.0--",  # any text outranks any number ("-" is text)
    "1.0.0-0a",  # a digit-led identifier that is not all digits is text
    "1.0.0-A",  # text compares in ASCII order: upper case first
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0-rc.1.0",  # more identifiers rank higher when the first ones are equal
    "1.0.0",
    "1.0.1-0",
    "1.0.1",
    "1.1.0",
    "2.0.0",
    "10.0.0",
    "18446744073709551615.0.0",  # the largest major Masterminds takes
]


def _version(text: str) -> Version:
    version = parse_version(text)
    assert version is not None, text
    return version


@pytest.mark.parametrize(("lower", "higher"), list(itertools.combinations(ASCENDING, 2)))
def test_precedence_follows_the_specification(lower: str, higher: str) -> None:
    low, high = _version(lower), _version(higher)
    assert low.compare(high) == -1
    assert high.compare(low) == 1


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("1.0.0+build.1", "1.0.0+build.2"),  # build metadata plays no part
        ("1.0.0-rc.1+a", "1.0.0-rc.1"),
        ("v1.2.3", "1.2.3"),
        ("1.2", "1.2.0"),
        ("1", "1.0.0"),
    ],
)
def test_equal_precedence(left: str, right: str) -> None:
    assert _version(left).compare(_version(right)) == 0
    assert _version(right).compare(_version(left)) == 0


_identifier = st.one_of(
    st.integers(0, 1000).map(str),
    st.text("0123456789abzAZ-", min_size=1, max_size=4).filter(
        lambda s: not (s.isdigit() and len(s) > 1 and s[0] == "0")
    ),
)
_text = st.builds(
    lambda release, pre: ".".join(map(str, release)) + (f"-{'.'.join(pre)}" if pre else ""),
    st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)),
    st.lists(_identifier, max_size=3),
)


@given(st.lists(_text, min_size=1, max_size=12))
def test_precedence_is_a_total_order_consistent_with_compare(texts: list[str]) -> None:
    versions = [_version(text) for text in texts]
    ordered = sorted(versions, key=lambda v: v._precedence)
    for a, b in itertools.pairwise(ordered):
        assert a.compare(b) <= 0
    for a, b in itertools.product(versions, repeat=2):
        assert a.compare(b) == -b.compare(a)
