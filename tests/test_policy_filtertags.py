"""filterTags: RE2 (Go) patterns and Go ``Regexp.ExpandString`` extraction."""

from __future__ import annotations

import pytest

from bot.policy import (
    InvalidPolicyError,
    PolicyError,
    PolicySpec,
    compile_policy,
    compile_re2,
    evaluate,
)
from bot.policy.filtertags import compile_filter, expand

_PATTERN = r"(?P<num>[0-9]+)-(x)?(?P<name_1>[a-z]*)"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$num", "42"),
        ("${num}", "42"),
        ("$1", "42"),
        ("${1}", "42"),
        ("$1x", ""),  # the name is "1x": no such group
        ("${1}x", "42x"),
        ("$$", "$"),
        ("$$1", "$1"),
        ("$0", "42-abc"),
        ("$2", ""),  # the group did not take part in the match
        ("$9", ""),  # beyond the group count
        ("$01", ""),  # leading zero: a name, not a number
        ("$name_1", "abc"),
        ("${name_1}!", "abc!"),
        ("$num_", ""),  # "_" belongs to the name
        ("$numé", ""),  # so do non-ASCII letters (Go: unicode.IsLetter)
        ("v$num.$3", "v42.abc"),
        ("$", "$"),  # malformed: the "$" stays as text
        ("$-", "$-"),
        ("${1", "${1"),  # missing closing brace
        ("${}", "${}"),
        ("a$num${num}b", "a4242b"),
        ("no reference", "no reference"),
    ],
)
def test_expand_follows_go(template, expected):
    regex = compile_re2(_PATTERN)
    text = "tag-42-abc"
    assert expand(regex, template, text, regex.search(text)) == expected


def test_filter_keys_later_tag_wins_equal_keys():
    tag_filter = compile_filter(r"^(?P<v>[0-9]+)-", "$v")
    keyed = tag_filter.apply(["10-b", "9-a", "10-a", "latest"])
    assert keyed == {"10": "10-a", "9": "9-a"}
    assert list(keyed) == ["10", "9"]  # first position kept


def test_filter_is_unanchored_and_reports_original_tag():
    tag_filter = compile_filter(r"rc\.[0-9]+")
    assert tag_filter.apply(["1.0.0-rc.1", "rc", "x-rc.22-y"]) == {
        "1.0.0-rc.1": "1.0.0-rc.1",
        "x-rc.22-y": "x-rc.22-y",
    }


def test_empty_pattern_matches_everything():
    assert compile_filter("").apply(["a", "", "b"]) == {"a": "a", "": "", "b": "b"}


def test_dollar_is_end_of_text_as_in_go():
    # Python's re would let "$" match before a final newline; Go/RE2 do not.
    assert compile_filter(r"^main-[0-9]+$").apply(["main-1\n", "main-2"]) == {"main-2": "main-2"}
    assert compile_filter(r"^a\z").apply(["a", "a\n"]) == {"a": "a"}


def test_digit_class_is_ascii_only():
    assert compile_filter(r"^\d+$").apply(["123", "١٢٣"]) == {"123": "123"}


def test_unicode_groups_expand_by_character():
    tag_filter = compile_filter(r"^é(?P<rest>.+)$", "${rest}")
    assert tag_filter.apply(["éü1"]) == {"ü1": "éü1"}


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        (r"(a)\1", ["invalid escape sequence", "backreferences"]),
        (r"^(?=x)", ["(?=", "lookahead or lookbehind"]),
        (r"(?!x)y", ["(?!", "lookahead or lookbehind"]),
        (r"(?<=x)y", ["(?<=", "lookahead or lookbehind"]),
        (r"(?<!x)y", ["(?<!", "lookahead or lookbehind"]),
        (r"[a-", ["missing ]"]),
        (r"a)", ["unexpected )"]),
        (r"a**", ["bad repetition operator"]),
    ],
)
def test_invalid_patterns_name_the_pattern_and_reason(pattern, words):
    with pytest.raises(InvalidPolicyError) as info:
        compile_re2(pattern)
    message = str(info.value)
    assert message.startswith(f"invalid regular expression pattern '{pattern}': ")
    for word in words:
        assert word in message


def test_compile_policy_rejects_bad_filter_pattern():
    with pytest.raises(InvalidPolicyError, match="lookahead"):
        compile_policy(PolicySpec("alphabetical", filter_pattern="^(?=v)"))


async def test_numerical_extract_upstream_example():
    spec = PolicySpec(
        "numerical", filter_pattern=r"1.0.0-rc\.(?P<num>[0-9]+)", filter_extract="$num"
    )
    tags = ["1.0.0", "1.0.0-rc.1", "1.0.0-rc.2", "1.0.0-rc.3", "1.0.1-rc.2"]
    assert (await evaluate(spec, "img", tags)).tag == "1.0.0-rc.3"


async def test_no_tag_matches_filter():
    spec = PolicySpec("alphabetical", filter_pattern="^main-")
    with pytest.raises(PolicyError, match="^version list argument cannot be empty$"):
        await evaluate(spec, "img", ["1.0.0", "latest"])


async def test_empty_key_takes_part_in_ordering():
    # "$2" never participates, so every key is "": alphabetical desc selects it.
    spec = PolicySpec("alphabetical", order="desc", filter_pattern="^(a)|(b)$", filter_extract="$2")
    # Flux order is b, a2, a1: "b" -> key "b"; a2 and a1 -> key "", where a1 (later) wins.
    assert (await evaluate(spec, "img", ["a1", "a2", "b"])).tag == "a1"
