"""compile_policy / evaluate / rank: digest reflection, rolling, aliasOf, errors."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.policy import (
    InvalidPolicyError,
    LatestRef,
    PolicyError,
    PolicySpec,
    compile_policy,
    evaluate,
    rank,
)

IMAGE = "ghcr.io/example/app"


class Registry:
    """A fake registry edge: tag -> digest, counting lookups (sync or async)."""

    def __init__(self, digests: dict[str, str], *, asynchronous: bool = True) -> None:
        self.digests = dict(digests)
        self.calls: list[str] = []
        self.asynchronous = asynchronous

    def __call__(self, tag: str):
        self.calls.append(tag)
        if not self.asynchronous:
            return self.digests[tag]

        async def lookup() -> str:
            return self.digests[tag]

        return lookup()


SEMVER = PolicySpec("semver", semver_range=">=1.0.0")
TAGS = ["1.0.0", "1.1.0", "latest"]
DIGESTS = {"1.0.0": "sha256:100", "1.1.0": "sha256:110", "latest": "sha256:110"}


# --- basics ------------------------------------------------------------------------------


async def test_name_is_the_image_verbatim_and_digest_empty_by_default():
    registry = Registry(DIGESTS)
    ref = await evaluate(SEMVER, "stefanprodan/podinfo", TAGS, digest_of=registry)
    assert ref == LatestRef("stefanprodan/podinfo", "1.1.0", "")
    assert registry.calls == []


async def test_compiled_policy_can_be_reused():
    compiled = compile_policy(SEMVER)
    assert compile_policy(compiled) is compiled
    assert (await evaluate(compiled, IMAGE, TAGS)).tag == "1.1.0"
    assert (await evaluate(compiled, IMAGE, [*TAGS, "2.0.0"])).tag == "2.0.0"


# --- digest reflection -----------------------------------------------------------------


@pytest.mark.parametrize("asynchronous", [True, False])
async def test_always_looks_up_every_time(asynchronous):
    registry = Registry(DIGESTS, asynchronous=asynchronous)
    spec = replace(SEMVER, digest_reflection="Always")
    previous = LatestRef(IMAGE, "1.1.0", "sha256:old")
    ref = await evaluate(spec, IMAGE, TAGS, previous=previous, digest_of=registry)
    assert ref == LatestRef(IMAGE, "1.1.0", "sha256:110")
    assert registry.calls == ["1.1.0"]


async def test_if_not_present_keeps_the_stored_digest_for_the_same_tag():
    registry = Registry(DIGESTS)
    spec = replace(SEMVER, digest_reflection="IfNotPresent")
    previous = LatestRef(IMAGE, "1.1.0", "sha256:old")
    ref = await evaluate(spec, IMAGE, TAGS, previous=previous, digest_of=registry)
    assert ref.digest == "sha256:old"  # tags are treated as immutable
    assert registry.calls == []


@pytest.mark.parametrize(
    "previous",
    [
        None,
        LatestRef(IMAGE, "1.0.0", "sha256:100"),  # tag changed
        LatestRef("other/image", "1.1.0", "sha256:old"),  # name changed
        LatestRef(IMAGE, "1.1.0", ""),  # Never -> IfNotPresent fills it
    ],
)
async def test_if_not_present_fetches_when_needed(previous):
    registry = Registry(DIGESTS)
    spec = replace(SEMVER, digest_reflection="IfNotPresent")
    ref = await evaluate(spec, IMAGE, TAGS, previous=previous, digest_of=registry)
    assert ref.digest == "sha256:110"
    assert registry.calls == ["1.1.0"]


async def test_never_clears_a_previous_digest():
    registry = Registry(DIGESTS)
    previous = LatestRef(IMAGE, "1.1.0", "sha256:110")
    ref = await evaluate(SEMVER, IMAGE, TAGS, previous=previous, digest_of=registry)
    assert ref.digest == ""
    assert registry.calls == []


async def test_missing_digest_lookup_is_a_policy_error():
    spec = replace(SEMVER, digest_reflection="Always")
    with pytest.raises(PolicyError, match="^digest lookup not available"):
        await evaluate(spec, IMAGE, TAGS)


class Unreachable(Exception):
    pass


def _raising(exc: Exception):
    def lookup(tag: str) -> str:
        raise exc

    return lookup


def _raising_async(exc: Exception):
    async def lookup(tag: str) -> str:
        raise exc

    return lookup


@pytest.mark.parametrize(
    ("digest_of", "detail"),
    [
        (_raising(Unreachable("registry timed out")), "registry timed out"),
        (_raising_async(Unreachable("401 unauthorized")), "401 unauthorized"),
        (_raising(KeyError("x")), "'x'"),
        (_raising(RuntimeError()), "RuntimeError"),
        (lambda tag: None, "the registry gave none"),
        (lambda tag: "", "the registry gave none"),
    ],
)
async def test_digest_lookup_failures_become_policy_errors(digest_of, detail):
    spec = replace(SEMVER, digest_reflection="Always")
    with pytest.raises(PolicyError) as info:
        await evaluate(spec, IMAGE, TAGS, digest_of=digest_of)
    assert type(info.value) is PolicyError
    assert str(info.value) == f"failed to look up the digest of {IMAGE}:1.1.0: {detail}"


# --- rolling -----------------------------------------------------------------------------

ROLLING = PolicySpec("rolling", rolling_tag="latest")


@pytest.mark.parametrize("reflection", ["Never", "IfNotPresent", "Always"])
async def test_rolling_tracks_the_tag_digest(reflection):
    registry = Registry(DIGESTS)
    spec = replace(ROLLING, digest_reflection=reflection)
    previous = LatestRef(IMAGE, "latest", "sha256:old")
    ref = await evaluate(spec, IMAGE, TAGS, previous=previous, digest_of=registry)
    assert ref == LatestRef(IMAGE, "latest", "sha256:110")
    assert registry.calls == ["latest"]
    registry.digests["latest"] = "sha256:new"
    ref = await evaluate(spec, IMAGE, TAGS, previous=ref, digest_of=registry)
    assert ref.digest == "sha256:new"


async def test_rolling_ignores_filter_tags():
    spec = replace(ROLLING, filter_pattern="^[0-9]")
    assert (await evaluate(spec, IMAGE, TAGS, digest_of=Registry(DIGESTS))).tag == "latest"
    assert rank(spec, TAGS) == ["latest"]


async def test_rolling_tag_missing():
    with pytest.raises(PolicyError, match="rolling tag 'stable' is not among the tags of"):
        await evaluate(PolicySpec("rolling", rolling_tag="stable"), IMAGE, TAGS)
    assert rank(PolicySpec("rolling", rolling_tag="stable"), TAGS) == []


async def test_rolling_needs_a_digest_lookup():
    with pytest.raises(PolicyError, match="^digest lookup not available"):
        await evaluate(ROLLING, IMAGE, TAGS)


# --- aliasOf -----------------------------------------------------------------------------

ALIAS_TAGS = ["latest", "sha-aaa", "sha-bbb", "1.0.0", "1.1.0", "1.2.0"]
ALIAS_DIGESTS = {
    "latest": "sha256:d2",
    "sha-aaa": "sha256:d1",
    "sha-bbb": "sha256:d2",
    "1.0.0": "sha256:d1",
    "1.1.0": "sha256:d2",
    "1.2.0": "sha256:d3",
}


async def test_alias_picks_best_tag_sharing_the_digest_cheaply():
    registry = Registry(ALIAS_DIGESTS)
    spec = replace(SEMVER, alias_of="latest")
    ref = await evaluate(spec, IMAGE, ALIAS_TAGS, digest_of=registry)
    assert ref == LatestRef(IMAGE, "1.1.0", "")
    # the alias once, then best-first until the first match: 1.2.0 (no), 1.1.0 (yes)
    assert registry.calls == ["latest", "1.2.0", "1.1.0"]


async def test_alias_with_digest_reflection_reuses_the_known_digest():
    registry = Registry(ALIAS_DIGESTS)
    spec = replace(SEMVER, alias_of="latest", digest_reflection="Always")
    ref = await evaluate(spec, IMAGE, ALIAS_TAGS, digest_of=registry)
    assert ref == LatestRef(IMAGE, "1.1.0", "sha256:d2")
    assert len(registry.calls) == 3


async def test_alias_follows_the_alias_when_it_moves():
    registry = Registry(ALIAS_DIGESTS)
    spec = replace(SEMVER, alias_of="latest")
    registry.digests["latest"] = "sha256:d1"
    ref = await evaluate(spec, IMAGE, ALIAS_TAGS, digest_of=registry)
    assert ref.tag == "1.0.0"
    assert registry.calls == ["latest", "1.2.0", "1.1.0", "1.0.0"]


async def test_alias_tag_itself_is_not_a_candidate():
    registry = Registry(ALIAS_DIGESTS)
    spec = PolicySpec("alphabetical", filter_pattern="^(sha-|latest)", alias_of="latest")
    ref = await evaluate(spec, IMAGE, ALIAS_TAGS, digest_of=registry)
    assert ref.tag == "sha-bbb"
    assert registry.calls == ["latest", "sha-bbb"]


async def test_alias_missing():
    spec = replace(SEMVER, alias_of="stable")
    registry = Registry(ALIAS_DIGESTS)
    with pytest.raises(PolicyError, match="aliasOf tag 'stable' is not among the tags of"):
        await evaluate(spec, IMAGE, ALIAS_TAGS, digest_of=registry)
    assert registry.calls == []


async def test_alias_without_a_sharing_candidate():
    registry = Registry({**ALIAS_DIGESTS, "latest": "sha256:d9"})
    spec = replace(SEMVER, alias_of="latest")
    with pytest.raises(PolicyError) as info:
        await evaluate(spec, IMAGE, ALIAS_TAGS, digest_of=registry)
    assert "sha256:d9" in str(info.value)
    assert "aliasOf tag 'latest'" in str(info.value)
    assert registry.calls == ["latest", "1.2.0", "1.1.0", "1.0.0"]


async def test_alias_keeps_flux_errors():
    spec = PolicySpec("semver", semver_range=">=5.0.0", alias_of="latest")
    with pytest.raises(PolicyError, match="^unable to determine latest version"):
        await evaluate(spec, IMAGE, ALIAS_TAGS, digest_of=Registry(ALIAS_DIGESTS))


async def test_alias_lookup_failure_is_a_policy_error():
    spec = replace(SEMVER, alias_of="latest")
    with pytest.raises(PolicyError, match="failed to look up the digest of .*:latest: boom"):
        await evaluate(spec, IMAGE, ALIAS_TAGS, digest_of=_raising(Unreachable("boom")))


_NUMBERS = r"^(NaN|[0-9]+|[0-9]+\.[0-9]+|2e0)$"
_digest = st.sampled_from(["sha256:a", "sha256:b", "sha256:c"])
_kinds = st.sampled_from(
    [
        PolicySpec("semver", semver_range=">=0.1"),
        PolicySpec("semver", semver_range="*-0"),
        PolicySpec("alphabetical"),
        PolicySpec("alphabetical", order="desc"),
        PolicySpec("numerical", filter_pattern=_NUMBERS),
        PolicySpec("numerical", order="desc", filter_pattern=_NUMBERS),
    ]
)
_alias_tag_pool = ["0.1.0", "0.2.0", "v0.2.0", "1.0.0-rc.1", "1.0.0", "1", "1.0", "NaN", "2e0"]


@settings(max_examples=150, deadline=None)
@given(
    _kinds,
    st.lists(st.sampled_from(_alias_tag_pool), min_size=1, unique=True),
    st.lists(_digest, min_size=len(_alias_tag_pool) + 1, max_size=len(_alias_tag_pool) + 1),
)
async def test_alias_equals_the_policy_over_the_sharing_subset(spec, tags, digests):
    """aliasOf == the policy run over exactly the tags sharing the alias digest."""
    table = dict(zip([*_alias_tag_pool, "latest"], digests, strict=True))
    all_tags = [*tags, "latest"]
    spec = replace(spec, filter_pattern=spec.filter_pattern or "^[^l]")  # alias filtered out
    sharing = [t for t in tags if table[t] == table["latest"]]
    try:
        expected = (await evaluate(spec, IMAGE, sharing)).tag
    except PolicyError:
        expected = None
    try:
        got = (
            await evaluate(
                replace(spec, alias_of="latest"), IMAGE, all_tags, digest_of=table.__getitem__
            )
        ).tag
    except PolicyError:
        got = None
    if got is not None or expected is None:
        assert got == expected
    else:  # the whole list can fail where the subset does not (numerical parse, empty)
        with pytest.raises(PolicyError):
            await evaluate(spec, IMAGE, all_tags)


# --- rank()[0] == evaluate ------------------------------------------------------------

_tag_text = st.one_of(
    st.sampled_from(["latest", "1.0.0", "v1.0.0", "1.0.0+b", "1.2.3-rc.1", "main-10", "main-9"]),
    st.from_regex(r"v?[0-9]{1,2}\.[0-9]\.[0-9](-rc\.[1-3])?", fullmatch=True),
    st.text(alphabet="abc019.-_", max_size=6),
)
_specs = st.sampled_from(
    [
        PolicySpec("semver", semver_range=">=0.0.0-0"),
        PolicySpec("semver", semver_range="~1 || >5"),
        PolicySpec("alphabetical"),
        PolicySpec("alphabetical", order="desc", filter_pattern="^main-(?P<n>[0-9]+)$"),
        PolicySpec("alphabetical", filter_pattern="(?P<d>[0-9])", filter_extract="$d"),
        PolicySpec("numerical", filter_pattern="^main-(?P<n>[0-9]+)$", filter_extract="$n"),
        PolicySpec("numerical", order="desc", filter_pattern="^[0-9]+$"),
    ]
)


@settings(max_examples=200, deadline=None)
@given(_specs, st.lists(_tag_text, max_size=15))
async def test_rank_head_is_the_evaluated_tag(spec, tags):
    try:
        ref = await evaluate(spec, IMAGE, tags)
    except PolicyError:
        ref = None
    if ref is None:
        # nothing to pick: rank finds nothing either, or (numerical) the same parse failure
        try:
            ranked = rank(spec, tags)
        except PolicyError:
            ranked = []
        assert ranked == []
    else:
        ranked = rank(spec, tags)
        assert ranked[0] == ref.tag
        assert len(ranked) == len(set(ranked))
        assert set(ranked) <= set(tags)


# --- compile errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            PolicySpec("semver", semver_range="*-*"),
            'invalid semver range "*-*": improper constraint',
        ),
        (PolicySpec("semver"), 'invalid semver range "": improper constraint: ""'),
        (PolicySpec("semver", semver_range=">= 1.0 || foo"), 'improper constraint: " foo"'),
        (PolicySpec("rolling"), "a rolling policy needs the tag to follow"),
        (PolicySpec("rolling", rolling_tag="latest", alias_of="x"), "aliasOf cannot be combined"),
        (PolicySpec("alphabetical", alias_of=""), "aliasOf must name a tag"),
        (PolicySpec("alphabetical", order="up"), "invalid order 'up': use asc or desc"),
        (PolicySpec("calver"), "invalid policy kind 'calver'"),  # type: ignore[arg-type]
        (
            PolicySpec("numerical", digest_reflection="Sometimes"),  # type: ignore[arg-type]
            "invalid digestReflectionPolicy 'Sometimes'",
        ),
        (
            PolicySpec("numerical", filter_pattern="(?P<n>[0-9]+)(?=x)"),
            "invalid regular expression pattern '(?P<n>[0-9]+)(?=x)'",
        ),
    ],
)
async def test_invalid_specs(spec, message):
    with pytest.raises(InvalidPolicyError) as info:
        compile_policy(spec)
    assert message in str(info.value)
    with pytest.raises(InvalidPolicyError):
        await evaluate(spec, IMAGE, TAGS)


async def test_order_is_case_insensitive_like_flux():
    spec = PolicySpec("alphabetical", order="DESC")  # type: ignore[arg-type]
    assert (await evaluate(spec, IMAGE, ["b", "a"])).tag == "a"


async def test_unexpected_input_still_gives_a_policy_error():
    with pytest.raises(PolicyError):
        await evaluate(SEMVER, IMAGE, ["1.0.0", None])  # type: ignore[list-item]


# --- scale ------------------------------------------------------------------------------


def _main_tag(i: int) -> str:
    return f"main-{i:05d}-{i * 7919 % 65536:04x}"


async def test_ten_thousand_tags_evaluate_quickly():
    tags = [_main_tag(i) for i in range(5_000)]
    tags += [f"{i // 100}.{i % 100}.{i % 7}" for i in range(4_000)]
    tags += [f"{i}.sig" for i in range(1_000)] + ["latest"]
    registry = Registry({t: f"sha256:{t}" for t in tags} | {"latest": f"sha256:{_main_tag(4000)}"})
    specs = [
        PolicySpec("semver", semver_range="^39.0.0"),
        PolicySpec("alphabetical", filter_pattern=r"^main-(?P<n>[0-9]+)-", filter_extract="$n"),
        PolicySpec("numerical", filter_pattern=r"^main-(?P<n>[0-9]+)-", filter_extract="$n"),
    ]
    start = time.perf_counter()
    refs = [await evaluate(spec, IMAGE, tags) for spec in specs]
    aliased = await evaluate(replace(specs[2], alias_of="latest"), IMAGE, tags, digest_of=registry)
    elapsed = time.perf_counter() - start
    assert [r.tag for r in refs] == ["39.99.2", _main_tag(4999), _main_tag(4999)]
    assert aliased.tag == _main_tag(4000)
    assert len(registry.calls) == 1 + 1000  # the alias, then 4999 down to 4000
    assert elapsed < 5
