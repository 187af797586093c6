"""Alphabetical and numerical policies (Flux §3.4, §3.5)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.policy import PolicyError, PolicySpec, alphabetical, evaluate, numerical, rank
from bot.policy.numerical import parse_go_float

# --- alphabetical ----------------------------------------------------------------------

UBUNTU = ["xenial", "yakkety", "zesty", "artful", "bionic"]


async def test_alphabetical_upstream_examples():
    asc = await evaluate(PolicySpec("alphabetical", order="asc"), "ubuntu", UBUNTU)
    desc = await evaluate(PolicySpec("alphabetical", order="desc"), "ubuntu", UBUNTU)
    assert (asc.tag, desc.tag) == ("zesty", "artful")


@pytest.mark.parametrize(
    ("tags", "asc", "desc"),
    [
        (["Zeta", "alpha"], "alpha", "Zeta"),  # uppercase sorts first
        (["v9", "v10"], "v9", "v10"),
        (["1.9.0", "1.10.0"], "1.9.0", "1.10.0"),
        (["2024-01-02T10:00:00Z", "2024-01-10T09:00:00Z"], "2024-01-10T09:00:00Z", None),
        (["é", "z"], "é", "z"),  # UTF-8 byte order
        (["only"], "only", "only"),
    ],
)
def test_alphabetical_byte_order(tags, asc, desc):
    assert alphabetical.latest("asc", tags) == asc
    if desc is not None:
        assert alphabetical.latest("desc", tags) == desc


async def test_alphabetical_empty_list_is_the_only_error():
    with pytest.raises(PolicyError, match="^version list argument cannot be empty$"):
        await evaluate(PolicySpec("alphabetical"), "img", [])


def test_alphabetical_rank():
    assert rank(PolicySpec("alphabetical"), UBUNTU) == sorted(UBUNTU, reverse=True)
    assert rank(PolicySpec("alphabetical", order="desc"), UBUNTU) == sorted(UBUNTU)


# --- numerical: Go strconv.ParseFloat grammar -------------------------------------------

ACCEPTED = [
    ("0", 0.0),
    ("1e3", 1000.0),
    ("1E3", 1000.0),
    ("1_000", 1000.0),
    ("-1.5", -1.5),
    ("+2", 2.0),
    (".5", 0.5),
    ("5.", 5.0),
    ("1e-3", 0.001),
    ("1e+3", 1000.0),
    ("1_0.2_5e1_0", 10.25e10),
    ("Inf", math.inf),
    ("-inf", -math.inf),
    ("+Infinity", math.inf),
    ("INFINITY", math.inf),
    ("nan", math.nan),
    ("NaN", math.nan),
    ("0x1p-2", 0.25),
    ("0X1P+2", 4.0),
    ("0x1.8p1", 3.0),
    ("0x.8p1", 1.0),
    ("0x_1p0", 1.0),
    ("0x1_0p0", 16.0),
    ("-0x1p0", -1.0),
    ("1e-400", 0.0),  # underflow is not an error in Go
    ("00012", 12.0),
    ("20240102103000", 20240102103000.0),
]

REJECTED = [
    "",
    " 1",
    "1 ",
    "1_",
    "_1",
    "1__0",
    "1_.5",
    "1._5",
    "1e_5",
    "1e",
    "e3",
    ".",
    "0x1",  # hex needs a p exponent
    "0x",
    "0x_p1",
    "0x_.8p1",
    "0x1e3",
    "١",  # Arabic-Indic digit one
    "１",  # full-width one
    "+nan",
    "-NaN",
    "infin",
    "infinit",
    "infinityy",
    "1e400",  # out of range
    "-1e400",
    "0x1p2000",
    "1.0.0",
    "v1",
    "1,5",
    "0b101",
    "0o17",
    "1\n",
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_go_float_accepts(text, expected):
    value = parse_go_float(text)
    assert value is not None
    if math.isnan(expected):
        assert math.isnan(value)
    else:
        assert value == expected


@pytest.mark.parametrize("text", REJECTED)
def test_go_float_rejects(text):
    assert parse_go_float(text) is None


async def test_numerical_non_number_fails_whole_evaluation():
    with pytest.raises(PolicyError, match="^failed to parse invalid numeric value 'latest'$"):
        await evaluate(PolicySpec("numerical"), "img", ["1", "2", "latest"])


# --- numerical: Flux's walk ------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "tags", "expected"),
    [
        ("asc", ["1", "3", "2"], "3"),
        ("desc", ["1", "3", "2"], "1"),
        ("asc", ["3", "3.0", "1"], "3.0"),  # ties go to the later tag
        ("desc", ["1", "1e0", "3"], "1e0"),
        ("asc", ["5", "NaN", "1"], "1"),  # NaN replaces, then is replaced
        ("asc", ["5", "1", "NaN"], "NaN"),
        ("desc", ["NaN"], "NaN"),
        ("asc", ["-Inf", "Inf", "1e308"], "Inf"),
    ],
)
def test_numerical_walk(order, tags, expected):
    assert numerical.latest(order, tags) == expected
    assert numerical.ranked(order, tags)[0] == expected


def _successive_picks(order, tags):
    """Reference ranking: pick with the walk, remove the pick, repeat."""
    remaining = list(tags)
    picks = []
    while remaining:
        best = numerical.latest(order, remaining)
        picks.append(best)
        remaining.remove(best)
    return picks


_number = st.sampled_from(["1", "2", "2.0", "3", "-1", "NaN", "nan", "Inf", "0x1p1", "1e0"])


@given(st.sampled_from(["asc", "desc"]), st.lists(_number, max_size=12, unique=True))
def test_numerical_rank_is_successive_picks(order, tags):
    assert numerical.ranked(order, tags) == _successive_picks(order, tags)


@given(st.sampled_from(["asc", "desc"]), st.lists(_number, min_size=1, max_size=12, unique=True))
async def test_numerical_rank_head_equals_evaluate(order, tags):
    spec = PolicySpec("numerical", order=order)
    assert rank(spec, tags)[0] == (await evaluate(spec, "img", tags)).tag


def test_numerical_ten_thousand_tags_are_fast():
    import time

    tags = [str(i) for i in range(10_000)] + [f"{i}.5" for i in range(0, 10_000, 7)]
    start = time.perf_counter()
    assert numerical.latest("asc", tags) == "9999"
    assert numerical.ranked("desc", tags)[:2] == ["0", "0.5"]
    assert time.perf_counter() - start < 5
