"""SemVer ranges (Masterminds/semver v3) and Flux's semver tag parsing and selection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.policy import InvalidPolicyError, PolicyError, PolicySpec, evaluate, rank
from bot.policy.semver import latest, parse_range, parse_tag, parse_version

# --- Masterminds/semver v3 constraints_test.go, ported as data -------------------------
# (range, version, satisfied). Versions are parsed with Masterminds' NewVersion
# rules (``1`` and ``1.4`` are valid there); ranges go through the full parser.

# TestConstraintCheck
CONSTRAINT_CHECK = [
    ("=2.0.0", "1.2.3", False),
    ("=2.0.0", "2.0.0", True),
    ("=2.0", "1.2.3", False),
    ("=2.0", "2.0.0", True),
    ("=2.0", "2.0.1", True),
    ("4.1", "4.1.0", True),
    ("!=4.1.0", "4.1.0", False),
    ("!=4.1.0", "4.1.1", True),
    ("!=4.1", "4.1.0", False),
    ("!=4.1", "4.1.1", False),
    ("!=4.1", "5.1.0-alpha.1", False),
    ("!=4.1-alpha", "4.1.0", True),
    ("!=4.1", "5.1.0", True),
    ("<11", "0.1.0", True),
    ("<11", "11.1.0", False),
    ("<1.1", "0.1.0", True),
    ("<1.1", "1.1.0", False),
    ("<1.1", "1.1.1", False),
    ("<=11", "1.2.3", True),
    ("<=11", "12.2.3", False),
    ("<=11", "11.2.3", True),
    ("<=1.1", "1.2.3", False),
    ("<=1.1", "0.1.0", True),
    ("<=1.1", "1.1.0", True),
    ("<=1.1", "1.1.1", True),
    (">1.1", "4.1.0", True),
    (">1.1", "1.1.0", False),
    (">0", "0", False),
    (">0", "1", True),
    (">0", "0.0.1-alpha", False),
    (">0.0", "0.0.1-alpha", False),
    (">0-0", "0.0.1-alpha", False),
    (">0.0-0", "0.0.1-alpha", False),
    (">0", "0.0.0-alpha", False),
    (">0-0", "0.0.0-alpha", False),
    (">0.0.0-0", "0.0.0-alpha", True),
    (">1.2.3-alpha.1", "1.2.3-alpha.2", True),
    (">1.2.3-alpha.1", "1.3.3-alpha.2", True),
    (">11", "11.1.0", False),
    (">11.1", "11.1.0", False),
    (">11.1", "11.1.1", False),
    (">11.1", "11.2.1", True),
    (">=11", "11.1.2", True),
    (">=11.1", "11.1.2", True),
    (">=11.1", "11.0.2", False),
    (">=1.1", "4.1.0", True),
    (">=1.1", "1.1.0", True),
    (">=1.1", "0.0.9", False),
    (">=0", "0.0.1-alpha", False),
    (">=0.0", "0.0.1-alpha", False),
    (">=0-0", "0.0.1-alpha", True),
    (">=0.0-0", "0.0.1-alpha", True),
    (">=0", "0.0.0-alpha", False),
    (">=0-0", "0.0.0-alpha", True),
    (">=0.0.0-0", "0.0.0-alpha", True),
    (">=0.0.0-0", "1.2.3", True),
    (">=0.0.0-0", "3.4.5-beta.1", True),
    ("<0", "0.0.0-alpha", False),
    ("<0-z", "0.0.0-alpha", True),
    (">=0", "0", True),
    ("=0", "1", False),
    ("*", "1", True),
    ("*", "4.5.6", True),
    ("*", "1.2.3-alpha.1", False),
    ("*-0", "1.2.3-alpha.1", True),
    ("2.*", "1", False),
    ("2.*", "3.4.5", False),
    ("2.*", "2.1.1", True),
    ("2.1.*", "2.1.1", True),
    ("2.1.*", "2.2.1", False),
    ("2", "1", False),
    ("2", "3.4.5", False),
    ("2", "2.1.1", True),
    ("2.1", "2.1.1", True),
    ("2.1", "2.2.1", False),
    ("~1.2.3", "1.2.4", True),
    ("~1.2.3", "1.3.4", False),
    ("~1.2", "1.2.4", True),
    ("~1.2", "1.3.4", False),
    ("~1", "1.2.4", True),
    ("~1", "2.3.4", False),
    ("~0.2.3", "0.2.5", True),
    ("~0.2.3", "0.3.5", False),
    ("~1.2.3-beta.2", "1.2.3-beta.4", True),
    ("~1.2.3-beta.2", "1.2.4-beta.2", True),
    ("~1.2.3-beta.2", "1.3.4-beta.2", False),
    ("^1.2.3", "1.8.9", True),
    ("^1.2.3", "2.8.9", False),
    ("^1.2.3", "1.2.1", False),
    ("^1.1.0", "2.1.0", False),
    ("^1.2.0", "2.2.1", False),
    ("^1.2.0", "1.2.1-alpha.1", False),
    ("^1.2.0-alpha.0", "1.2.1-alpha.1", True),
    ("^1.2.0-alpha.0", "1.2.1-alpha.0", True),
    ("^1.2.0-alpha.2", "1.2.0-alpha.1", False),
    ("^1.2", "1.8.9", True),
    ("^1.2", "2.8.9", False),
    ("^1", "1.8.9", True),
    ("^1", "2.8.9", False),
    ("^0.2.3", "0.2.5", True),
    ("^0.2.3", "0.5.6", False),
    ("^0.2", "0.2.5", True),
    ("^0.2", "0.5.6", False),
    ("^0.0.3", "0.0.3", True),
    ("^0.0.3", "0.0.4", False),
    ("^0.0", "0.0.3", True),
    ("^0.0", "0.1.4", False),
    ("^0.0", "1.0.4", False),
    ("^0", "0.2.3", True),
    ("^0", "1.1.4", False),
    ("^0.2.3-beta.2", "0.2.3-beta.4", True),
    ("^0.2.3-beta.2", "0.2.4-beta.2", True),
    ("^0.2.3-beta.2", "0.3.4-beta.2", False),
    ("^0.2.3-beta.2", "0.2.3-beta.2", True),
]

# TestConstraintsCheck
CONSTRAINTS_CHECK = [
    ("*", "1.2.3", True),
    ("~0.0.0", "1.2.3", True),
    ("0.x.x", "1.2.3", False),
    ("0.0.x", "1.2.3", False),
    ("0.0.0", "1.2.3", False),
    ("^0.0.0", "1.2.3", False),
    ("= 2.0", "1.2.3", False),
    ("= 2.0", "2.0.0", True),
    ("4.1", "4.1.0", True),
    ("4.1.x", "4.1.3", True),
    ("1.x", "1.4", True),
    ("!=4.1", "4.1.0", False),
    ("!=4.1-alpha", "4.1.0-alpha", False),
    ("!=4.1-alpha", "4.1.1-alpha", False),
    ("!=4.1-alpha", "4.1.0", True),
    ("!=4.1", "5.1.0", True),
    ("!=4.x", "5.1.0", True),
    ("!=4.x", "4.1.0", False),
    ("!=4.1.x", "4.2.0", True),
    ("!=4.2.x", "4.2.3", False),
    (">1.1", "4.1.0", True),
    (">1.1", "1.1.0", False),
    ("<1.1", "0.1.0", True),
    ("<1.1", "1.1.0", False),
    ("<1.1", "1.1.1", False),
    ("<1.x", "1.1.1", False),
    ("<1.x", "0.1.1", True),
    ("<1.x", "2.0.0", False),
    ("<1.1.x", "1.2.1", False),
    ("<1.1.x", "1.1.500", False),
    ("<1.1.x", "1.0.500", True),
    ("<1.2.x", "1.1.1", True),
    (">=1.1", "4.1.0", True),
    (">=1.1", "4.1.0-beta", False),
    (">=1.1", "1.1.0", True),
    (">=1.1", "0.0.9", False),
    ("<=1.1", "0.1.0", True),
    ("<=1.1", "0.1.0-alpha", False),
    ("<=1.1-a", "0.1.0-alpha", True),
    ("<=1.1", "1.1.0", True),
    ("<=1.x", "1.1.0", True),
    ("<=2.x", "3.0.0", False),
    ("<=1.1", "1.1.1", True),
    ("<=1.1.x", "1.2.500", False),
    ("<=4.5", "3.4.0", True),
    ("<=4.5", "3.7.0", True),
    ("<=4.5", "4.6.3", False),
    (">1.1, <2", "1.1.1", False),
    (">1.1, <2", "1.2.1", True),
    (">1.1, <3", "4.3.2", False),
    (">=1.1, <2, !=1.2.3", "1.2.3", False),
    (">1.1 <2", "1.1.1", False),
    (">1.1 <2", "1.2.1", True),
    (">1.1    <3", "4.3.2", False),
    (">=1.1    <2    !=1.2.3", "1.2.3", False),
    (">=1.1, <2, !=1.2.3 || > 3", "4.1.2", True),
    (">=1.1, <2, !=1.2.3 || > 3", "3.1.2", False),
    (">=1.1, <2, !=1.2.3 || >= 3", "3.0.0", True),
    (">=1.1, <2, !=1.2.3 || > 3", "3.0.0", False),
    (">=1.1, <2, !=1.2.3 || > 3", "1.2.3", False),
    (">=1.1 <2 !=1.2.3", "1.2.3", False),
    (">=1.1 <2 !=1.2.3 || > 3", "4.1.2", True),
    (">=1.1 <2 !=1.2.3 || > 3", "3.1.2", False),
    (">=1.1 <2 !=1.2.3 || >= 3", "3.0.0", True),
    (">=1.1 <2 !=1.2.3 || > 3", "3.0.0", False),
    (">=1.1 <2 !=1.2.3 || > 3", "1.2.3", False),
    ("> 1.1, <     2", "1.1.1", False),
    (">   1.1, <2", "1.2.1", True),
    (">1.1, <  3", "4.3.2", False),
    (">= 1.1, <     2, !=1.2.3", "1.2.3", False),
    ("> 1.1 < 2", "1.1.1", False),
    (">1.1 < 2", "1.2.1", True),
    ("> 1.1    <3", "4.3.2", False),
    (">=1.1    < 2    != 1.2.3", "1.2.3", False),
    (">= 1.1, <2, !=1.2.3 || > 3", "4.1.2", True),
    (">= 1.1, <2, != 1.2.3 || > 3", "3.1.2", False),
    (">= 1.1, <2, != 1.2.3 || >= 3", "3.0.0", True),
    (">= 1.1, <2, !=1.2.3 || > 3", "3.0.0", False),
    (">= 1.1, <2, !=1.2.3 || > 3", "1.2.3", False),
    (">= 1.1 <2 != 1.2.3", "1.2.3", False),
    (">= 1.1 <2 != 1.2.3 || > 3", "4.1.2", True),
    (">= 1.1 <2 != 1.2.3 || > 3", "3.1.2", False),
    (">= 1.1 <2 != 1.2.3 || >= 3", "3.0.0", True),
    (">= 1.1 < 2 !=1.2.3 || > 3", "3.0.0", False),
    (">=1.1 < 2 !=1.2.3 || > 3", "1.2.3", False),
    ("1.1 - 2", "1.1.1", True),
    ("1.5.0 - 4.5", "3.7.0", True),
    ("1.1-3", "4.3.2", False),
    ("^1.1", "1.1.1", True),
    ("^1.1", "4.3.2", False),
    ("^1.x", "1.1.1", True),
    ("^2.x", "1.1.1", False),
    ("^1.x", "2.1.1", False),
    ("^1.x", "1.1.1-beta1", False),
    ("^1.1.2-alpha", "1.2.1-beta1", True),
    ("^1.2.x-alpha", "1.1.1-beta1", False),
    ("^0.0.1", "0.0.1", True),
    ("^0.0.1", "0.3.1", False),
    ("~*", "2.1.1", True),
    ("~1", "2.1.1", False),
    ("~1", "1.3.5", True),
    ("~1", "1.4", True),
    ("~1.x", "2.1.1", False),
    ("~1.x", "1.3.5", True),
    ("~1.x", "1.4", True),
    ("~1.1", "1.1.1", True),
    ("~1.1", "1.1.1-alpha", False),
    ("~1.1-alpha", "1.1.1-beta", True),
    ("~1.1.1-beta", "1.1.1-alpha", False),
    ("~1.1.1-beta", "1.1.1", True),
    ("~1.2.3", "1.2.5", True),
    ("~1.2.3", "1.2.2", False),
    ("~1.2.3", "1.3.2", False),
    ("~1.1", "1.2.3", False),
    ("~1.3", "2.4.5", False),
    ("1.0.0 - 2.0.0 <=2.0.0", "1.5.0", True),
    ("1.0.0 - 2.0.0, <=2.0.0", "1.5.0", True),
]

# TestConstraintsValidate rows not already above (same verdicts as Check).
CONSTRAINTS_VALIDATE = [
    ("<2.x", "1.1.1", True),
    ("<=2.x", "3.1.0", False),
    ("^1.1", "1.1.1-alpha", False),
    ("^1.1.1-alpha", "1.1.1-beta", True),
    ("^1.1.1-beta", "1.1.1-alpha", False),
    ("^0.0.1", "0.1.3", False),
    ("~1", "1.3.5-beta", False),
    ("~1.x", "1.3.5-beta", False),
    ("~1.3.6-alpha", "1.3.5-beta", False),
    ("~1.3.5-alpha", "1.3.5-beta", True),
    ("~1.3.5-beta", "1.3.5-alpha", False),
]

# The Flux docs' own statements about ranges (flux-behaviour §3.3).
FLUX_RANGE_FACTS = [
    ("~1.2.3", "1.2.3", True),
    ("~1.2.3", "1.2.99", True),
    ("~1.2.3", "1.3.0", False),
    ("~1.2", "1.2.0", True),
    ("~1", "1.99.0", True),
    ("~1", "2.0.0", False),
    ("^1.2.3", "1.99.99", True),
    ("^1.2.3", "2.0.0", False),
    ("^0.2.3", "0.2.9", True),
    ("^0.2.3", "0.3.0", False),
    ("^0.0.3", "0.0.3", True),
    ("^0.0.3", "0.0.4", False),
    ("^0", "0.99.0", True),
    ("^0", "1.0.0", False),
    ("1.2.x", "1.2.7", True),
    ("1.2", "1.3.0", False),
    (">1.1", "1.1.9", False),
    (">1.1", "1.2.0", True),
    (">11", "11.9.9", False),
    (">11", "12.0.0", True),
    ("<=1.1", "1.1.999", True),
    ("<=1.1", "1.2.0", False),
    ("=> 1.2", "1.2.0", True),
    ("=< 1.2", "1.2.5", True),
    ("~> 1.2", "1.2.5", True),
    ("v1.0.x", "1.0.1", True),
    ("v1.0.x", "v1.0.1", True),
    ("X", "3.0.0", True),
    ("1.X.x", "1.9.0", True),
    # prereleases need a prerelease in the same OR-group
    (">=1.0.0", "1.1.0-rc.1", False),
    ("*", "2.0.0-rc.1", False),
    (">=1.0.0-0", "1.1.0-rc.1", True),
    ("^1.x-0", "1.2.0-rc.1", True),
    ("*-0", "9.0.0-alpha", True),
    (">1.0.0-rc <2.0.0-rc", "1.5.0-beta", True),
    (">=2.0.0-0 || 1.x", "1.5.0-rc.1", False),
    (">=2.0.0-0 || 1.x", "2.1.0-rc.1", True),
    (">=2.0.0-0 || 1.x", "1.5.0", True),
    # build metadata never counts
    ("=1.2.3", "1.2.3+build.7", True),
    ("=1.2.3+other", "1.2.3", True),
]

CHECK_CASES = list(
    dict.fromkeys(CONSTRAINT_CHECK + CONSTRAINTS_CHECK + CONSTRAINTS_VALIDATE + FLUX_RANGE_FACTS)
)


def test_the_ported_table_is_large():
    assert len(CHECK_CASES) >= 200
    assert sum(1 for _r, v, _ok in CHECK_CASES if "-" in v) >= 40  # prerelease cases


@pytest.mark.parametrize(("range_text", "version", "expected"), CHECK_CASES)
def test_range_check_matches_masterminds(range_text, version, expected):
    v = parse_version(version)
    assert v is not None, version
    assert parse_range(range_text).check(v) is expected


# TestNewConstraint, plus TestRewriteRange as group/AND counts: (range, ORs, ANDs in group 0).
NEW_CONSTRAINT = [
    (">= 1.1", 1, 1),
    (">40.50.60, < 50.70", 1, 2),
    ("2.0", 1, 1),
    ("v2.3.5-20161202202307-sha.e8fc5e5", 1, 1),
    (">= 1.2.3 < 2.0", 1, 2),
    (">= 1.2.3 < 2.0 || => 3.0 < 4", 2, 2),
    (">= 1.2.3, < 2.0", 1, 2),
    (">= 1.2.3, < 2.0 || => 3.0, < 4", 2, 2),
    ("3 - 4 || => 3.0, < 4", 2, 2),
    ("12.3.34 ~1.2.3", 1, 2),
    ("1.0.0 - 2.0.0, <=2.0.0", 1, 3),
    ("2 - 3", 1, 2),
    ("2 - 3, 2 - 3", 1, 4),
    ("2 - 3, 4.0.0 - 5.1", 1, 4),
    ("2 - 3 4.0.0 - 5.1", 1, 4),
    ("1.0.0 - 2.0.0 <=2.0.0", 1, 3),
]


@pytest.mark.parametrize(("range_text", "ors", "ands"), NEW_CONSTRAINT)
def test_range_structure_matches_masterminds(range_text, ors, ands):
    parsed = parse_range(range_text)
    assert len(parsed.groups) == ors
    assert len(parsed.groups[0]) == ands


def test_hyphen_range_bounds_are_inclusive():
    parsed = parse_range("1.2 - 2.3.4")
    assert [(c.op, str(c.version)) for c in parsed.groups[0]] == [
        (">=", "1.2.0"),
        ("<=", "2.3.4"),
    ]
    assert parsed.check(parse_version("2.3.4"))
    assert not parsed.check(parse_version("2.3.5"))


INVALID_RANGES = [
    "",  # Masterminds' old parseConstraint took "" as "*"; NewConstraint rejects it
    "foo",
    ">= bar",
    "BAR >= 1.2.3",
    "12.3.4.1234",
    "12.23.4.1234",
    "12.3.34.1234",
    "12.3.34~ 1.2.3",
    "*-*",
    "1.2.",
    ">1 ||",
    "|| >1",
    ">=1.0.0,",
    ">=1.0.0 <",
    "1.0.0-rc.01",
    "1.2x",
    "~1.2.3-",
    ">=1.0.0 &&",
]


@pytest.mark.parametrize("range_text", INVALID_RANGES)
def test_invalid_ranges_are_rejected(range_text):
    with pytest.raises(InvalidPolicyError, match="improper constraint"):
        parse_range(range_text)


def test_overlong_range_is_rejected_quickly():
    import time

    start = time.perf_counter()
    for text in (">=1.0.0 " * 65, "1" + "    1" * 100 + " !", " " * 511 + "!"):
        with pytest.raises(InvalidPolicyError):
            parse_range(text)
    assert time.perf_counter() - start < 1
    assert len(parse_range(">=1.0.0 " * 63).groups[0]) == 63


def test_empty_range_message_matches_flux():
    with pytest.raises(InvalidPolicyError) as info:
        parse_range("")
    assert 'improper constraint: ""' in str(info.value)


# --- Flux tag parsing --------------------------------------------------------------------

TAGS = [
    ("1.2.3", "1.2.3"),
    ("v1.2.3", "1.2.3"),
    ("1.2-rc.1", "1.2.0-rc.1"),
    ("2025.02.03", "2025.2.3"),
    ("1.0.0-rc.1+build.5", "1.0.0-rc.1+build.5"),
    ("0.0.0", "0.0.0"),
    ("1.0.0-alpha-beta.0", "1.0.0-alpha-beta.0"),
    ("1.2", None),
    ("v1", None),
    ("1.2-rc1", None),
    ("V1.2.3", None),
    ("1.0.0-rc.01", None),
    ("1.0.0.1", None),
    ("1.0.0p", None),
    ("latest", None),
    ("sha-abc", None),
    ("1.2.3 ", None),
    ("１.2.3", None),  # full-width digit: ASCII digits only
    ("1.2.3\n", None),
    ("1.2.3-", None),
    ("1.2.3+", None),
    ("1..3", None),
    ("18446744073709551616.0.0", None),  # beyond uint64
]


@pytest.mark.parametrize(("tag", "expected"), TAGS)
def test_flux_tag_parsing(tag, expected):
    parsed = parse_tag(tag)
    assert (None if parsed is None else str(parsed)) == expected
    if parsed is not None:
        assert parsed.original == tag


# --- selection -------------------------------------------------------------------------


def test_upstream_example_picks_highest_match():
    tags = ["1.0.0", "1.0.0.1", "1.0.0p", "1.0.1", "1.2.0", "0.1.0"]
    assert latest(parse_range("1.0.x"), tags) == "1.0.1"


def test_upstream_example_reports_original_tag():
    assert latest(parse_range("1.0.x"), ["v1.2.3", "v1.0.0", "v0.1.0"]) == "v1.0.0"


def test_no_match_gives_none_and_evaluate_errors():
    assert latest(parse_range("1.0.x"), ["1.2.0"]) is None


async def test_evaluate_semver_errors_like_flux():
    spec = PolicySpec("semver", semver_range="1.0.x")
    with pytest.raises(
        PolicyError, match="^unable to determine latest version from provided list$"
    ):
        await evaluate(spec, "img", ["1.2.0", "latest"])
    with pytest.raises(PolicyError, match="^version list argument cannot be empty$"):
        await evaluate(spec, "img", [])


def test_equal_versions_first_in_list_order_wins():
    assert latest(parse_range(">=1.0.0"), ["1.0.0", "v1.0.0"]) == "1.0.0"
    assert latest(parse_range(">=1.0.0"), ["v1.0.0", "1.0.0"]) == "v1.0.0"
    assert latest(parse_range(">=1.0.0"), ["1.0.0+b", "1.0.0+a"]) == "1.0.0+b"


async def test_evaluate_sorts_tags_into_flux_order_first():
    # Descending byte order puts "v1.0.0" before "1.0.0", so it wins the tie.
    spec = PolicySpec("semver", semver_range=">=1.0.0")
    assert (await evaluate(spec, "img", ["1.0.0", "v1.0.0"])).tag == "v1.0.0"
    assert rank(spec, ["1.0.0", "v1.0.0", "0.9.0", "1.0.1"]) == ["1.0.1", "v1.0.0", "1.0.0"]


def test_prerelease_only_with_prerelease_range():
    tags = ["1.0.0", "1.1.0-rc.1", "1.1.0-rc.2", "1.0.1"]
    assert latest(parse_range(">=1.0.0"), tags) == "1.0.1"
    assert latest(parse_range(">=1.0.0-0"), tags) == "1.1.0-rc.2"
    assert latest(parse_range("*"), tags) == "1.0.1"


def test_prerelease_precedence():
    tags = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2", "1.0.0-beta.11"]
    assert latest(parse_range(">=1.0.0-0"), tags) == "1.0.0-beta.11"
    ranked = rank(PolicySpec("semver", semver_range=">=1.0.0-0"), [*tags, "1.0.0-rc.1", "1.0.0"])
    assert ranked == [
        "1.0.0",
        "1.0.0-rc.1",
        "1.0.0-beta.11",
        "1.0.0-beta.2",
        "1.0.0-alpha.beta",
        "1.0.0-alpha.1",
        "1.0.0-alpha",
    ]


# --- property: selection equals a brute-force reference ---------------------------------

_release = st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3))


@st.composite
def _tag(draw):
    major, minor, patch = draw(_release)
    prefix = draw(st.sampled_from(["", "v"]))
    suffix = draw(st.sampled_from(["", "", "", "-rc.1", "+build"]))
    return f"{prefix}{major}.{minor}.{patch}{suffix}", (major, minor, patch), suffix.startswith("-")


@given(st.lists(_tag(), max_size=25), _release)
def test_greater_equal_selection_matches_brute_force(tags, bound):
    texts = [text for text, _v, _pre in tags]
    eligible = [(v, text) for text, v, pre in tags if not pre and v >= bound]
    expected = None
    for v, text in eligible:  # first of the highest versions, in list order
        if expected is None or v > expected[0]:
            expected = (v, text)
    got = latest(parse_range(">={}.{}.{}".format(*bound)), texts)
    assert got == (None if expected is None else expected[1])


def test_ten_thousand_tags_are_fast():
    import time

    tags = [f"{i // 1000}.{i // 10 % 100}.{i % 10}" for i in range(10_000)]
    tags += [f"sha-{i:07x}" for i in range(2_000)]
    start = time.perf_counter()
    assert latest(parse_range("<9.50"), tags) == "9.49.9"  # "<" ignores wildcards
    assert rank(PolicySpec("semver", semver_range="^3.0.0"), tags)[0] == "3.99.9"
    assert time.perf_counter() - start < 5
