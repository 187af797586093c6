"""Exclusion lists and Flux's tag order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.policy import DEFAULT_EXCLUSION_LIST, InvalidPolicyError, apply_exclusions, flux_order


def test_flux_order_is_descending_byte_order():
    tags = ["1.9.0", "1.10.0", "v9", "v10", "Latest", "latest", "é", "z"]
    assert flux_order(tags) == ["é", "z", "v9", "v10", "latest", "Latest", "1.9.0", "1.10.0"]


@given(st.lists(st.text(max_size=6), max_size=20))
def test_flux_order_equals_utf8_byte_order(tags):
    expected = sorted(tags, key=lambda t: t.encode("utf-8", "surrogatepass"), reverse=True)
    assert flux_order(tags) == expected


@pytest.mark.parametrize("patterns", [None, [], ()])
def test_default_exclusions_drop_signatures(patterns):
    tags = ["sha256-abc.sig", "1.0.0", "sha256-abc.att", "x.sig.bak"]
    assert apply_exclusions(tags, patterns) == ["x.sig.bak", "sha256-abc.att", "1.0.0"]
    assert DEFAULT_EXCLUSION_LIST == (r"^.*\.sig$",)


def test_custom_patterns_are_unanchored_searches():
    tags = ["1.0.0", "1.0.0-debug", "nightly-2024", "2.0.0", "a.sig"]
    assert apply_exclusions(tags, ["debug", "^nightly"]) == ["a.sig", "2.0.0", "1.0.0"]


def test_bad_exclusion_pattern_is_reported():
    with pytest.raises(InvalidPolicyError) as info:
        apply_exclusions(["a"], ["ok", "(?=x)"])
    message = str(info.value)
    assert message.startswith("failed to compile regex '(?=x)': ")
    assert "lookahead" in message
