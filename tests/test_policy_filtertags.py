"""filterTags: RE2 (Go) patterns and Go ``Regexp.ExpandString`` extraction."""

from __future__ import annotations

import pytest

from bot.config import load_config
from bot.policy import (
    InvalidPolicyError,
    PolicyError,
    PolicySpec,
    apply_exclusions,
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


# -- group names: Go's rule, not the RE2 library's (issue 9, Flux difference 5) ------------


@pytest.mark.parametrize(
    "pattern",
    [
        r"^(?P<é>[0-9]+)$",  # a letter outside ASCII
        r"^(?<é>[0-9]+)$",  # the same in the (?<name>) spelling
        r"^(?P<n٣>[0-9]+)$",  # an Arabic-Indic digit
        r"^(?P<Ⅻ>[0-9]+)$",  # a letter-like number
        r"^(?P<ａ>[0-9]+)$",  # a fullwidth letter
        r"^(?P<ok>a)(?P<ñ>b)$",  # one bad name among good ones
    ],
)
def test_a_non_ascii_group_name_is_refused_as_go_does(pattern):
    with pytest.raises(InvalidPolicyError) as info:
        compile_re2(pattern)
    message = str(info.value)
    assert message.startswith(f"invalid regular expression pattern '{pattern}': ")
    assert "invalid named capture group: (?" in message
    assert "only ASCII letters, digits and _ in a group name" in message


def test_the_message_quotes_the_group_as_written():
    with pytest.raises(InvalidPolicyError, match=r"invalid named capture group: \(\?<é>"):
        compile_re2(r"(?<é>x)")
    with pytest.raises(InvalidPolicyError, match=r"invalid named capture group: \(\?P<é>"):
        compile_re2(r"(?P<é>x)")


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        (r"(?P<num>[0-9]+)", {"num": 1}),
        (r"(?P<1st>[0-9]+)", {"1st": 1}),  # Go allows a leading digit (Python's re does not)
        (r"(?P<_>x)(?P<A_9>y)", {"_": 1, "A_9": 2}),
        (r"(?<name>x)", {"name": 1}),
        (r"(?P<a>x)|(?P<a>y)", {"a": 1}),  # Go allows a repeated name; the leftmost counts
        (r"[(?P<é>)]", {}),  # inside a class: characters, not a group
        (r"\(?P<é>\)", {}),  # an escaped parenthesis opens no group
    ],
)
def test_ascii_group_names_compile(pattern, names):
    assert dict(compile_re2(pattern).groupindex) == names


def test_an_empty_group_name_is_still_refused():
    with pytest.raises(InvalidPolicyError, match="invalid named capture group"):
        compile_re2(r"(?P<>x)")


def test_the_rule_holds_for_filter_tags_and_exclusion_lists():
    with pytest.raises(InvalidPolicyError, match="invalid named capture group"):
        compile_policy(PolicySpec("numerical", filter_pattern=r"^(?P<é>\d+)$", filter_extract="$é"))
    with pytest.raises(InvalidPolicyError, match=r"^failed to compile regex '\(\?P<é>x\)': "):
        apply_exclusions(["1"], [r"(?P<é>x)"])


def test_the_config_reports_a_non_ascii_group_name_at_its_pattern():
    config = (
        "version: 1\n"
        "imageRepositories:\n"
        "  - {name: app, image: ghcr.io/x/app}\n"
        "imagePolicies:\n"
        "  - name: app\n"
        "    imageRepositoryRef: app\n"
        "    filterTags:\n"
        "      pattern: '^main-(?P<é>[0-9]+)$'\n"
        "      extract: '$é'\n"
        "    policy: {numerical: {order: asc}}\n"
    )
    _config, problems = load_config(config)
    (problem,) = problems
    assert (problem.line, problem.is_error) == (8, True)
    assert "imagePolicies[0].filterTags.pattern" in problem.message
    assert "invalid named capture group: (?P<é>" in problem.message
