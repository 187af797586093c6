"""Compile an image policy once, then evaluate it against a repository's tags.

Pipeline (Flux §3.2): tags in Flux order -> ``filterTags`` (key per tag) ->
selector over the keys -> original tag -> digest per ``digestReflectionPolicy``.
The bot's additions: ``rolling`` (follow one tag's digest) and ``aliasOf``
(only tags sharing the digest of a named tag).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.policy import alphabetical, numerical, semver
from bot.policy.filtertags import TagFilter, compile_filter
from bot.policy.model import (
    DIGEST_REFLECTIONS,
    POLICY_KINDS,
    DigestLookup,
    InvalidPolicyError,
    LatestRef,
    Order,
    PolicyError,
    PolicySpec,
)
from bot.policy.tags import flux_order

EMPTY_LIST_ERROR = "version list argument cannot be empty"
NO_SEMVER_MATCH_ERROR = "unable to determine latest version from provided list"


@dataclass(frozen=True)
class CompiledPolicy:
    """A validated policy, ready to evaluate many times."""

    spec: PolicySpec
    order: Order = "asc"
    semver_range: semver.Range | None = None
    tag_filter: TagFilter | None = None

    def keyed(self, tags: Sequence[str]) -> dict[str, str]:
        """Key -> original tag, keys in Flux order; ``filterTags`` applied."""
        ordered = flux_order(tags)
        if self.tag_filter is None:
            return {tag: tag for tag in ordered}
        return self.tag_filter.apply(ordered)

    def latest_key(self, keys: Sequence[str]) -> str:
        """The selector's pick among ``keys`` (in order); raises `PolicyError` like Flux."""
        if not keys:
            raise PolicyError(EMPTY_LIST_ERROR)
        kind = self.spec.kind
        if kind == "semver":
            assert self.semver_range is not None
            best = semver.latest(self.semver_range, keys)
            if best is None:
                raise PolicyError(NO_SEMVER_MATCH_ERROR)
            return best
        if kind == "numerical":
            best = numerical.latest(self.order, keys)
        else:
            best = alphabetical.latest(self.order, keys)
        assert best is not None  # keys is not empty
        return best

    def ranked_keys(self, keys: Sequence[str]) -> list[str]:
        """Eligible keys, best first; ``[0]`` is `latest_key`'s pick."""
        kind = self.spec.kind
        if kind == "semver":
            assert self.semver_range is not None
            return semver.ranked(self.semver_range, keys)
        if kind == "numerical":
            return numerical.ranked(self.order, keys)
        return alphabetical.ranked(self.order, keys)


def compile_policy(spec: PolicySpec | CompiledPolicy) -> CompiledPolicy:
    """Validate ``spec``; raises `InvalidPolicyError` with a message a person can act on."""
    if isinstance(spec, CompiledPolicy):
        return spec
    return _compile(spec)


# Specs are frozen values, and every repository's run compiles its policies again:
# the same spec compiles once (an invalid one raises each time; errors are not kept).
@functools.lru_cache(maxsize=4096)
def _compile(spec: PolicySpec) -> CompiledPolicy:
    if spec.kind not in POLICY_KINDS:
        raise InvalidPolicyError(
            f"invalid policy kind '{spec.kind}': use one of semver, alphabetical, numerical, rolling"
        )
    order = str(spec.order or "asc").lower()
    if order not in ("asc", "desc"):
        raise InvalidPolicyError(f"invalid order '{spec.order}': use asc or desc")
    if spec.digest_reflection not in DIGEST_REFLECTIONS:
        raise InvalidPolicyError(
            f"invalid digestReflectionPolicy '{spec.digest_reflection}':"
            " use Never, IfNotPresent or Always"
        )
    if spec.alias_of is not None and not spec.alias_of:
        raise InvalidPolicyError("aliasOf must name a tag (e.g. aliasOf: latest)")

    semver_range = None
    if spec.kind == "semver":
        try:
            semver_range = semver.parse_range(spec.semver_range)
        except InvalidPolicyError as exc:
            raise InvalidPolicyError(
                f"invalid semver range {semver.go_quote(spec.semver_range)}: {exc}"
            ) from None
    if spec.kind == "rolling":
        if not spec.rolling_tag:
            raise InvalidPolicyError(
                "a rolling policy needs the tag to follow: policy: {rolling: {tag: latest}}"
            )
        if spec.alias_of is not None:
            raise InvalidPolicyError(
                "aliasOf cannot be combined with a rolling policy: a rolling policy"
                " already follows one tag's digest"
            )
    # Compiled for rolling too, so a bad pattern is reported; rolling ignores it.
    tag_filter = None
    if spec.filter_pattern is not None:
        tag_filter = compile_filter(spec.filter_pattern, spec.filter_extract)
    return CompiledPolicy(
        spec=spec,
        order="asc" if order == "asc" else "desc",
        semver_range=semver_range,
        tag_filter=tag_filter if spec.kind != "rolling" else None,
    )


def rank(policy: PolicySpec | CompiledPolicy, tags: Sequence[str]) -> list[str]:
    """Eligible original tags, best first, with Flux's tie rules.

    Without ``aliasOf``, `evaluate` picks ``rank(...)[0]``. Returns ``[]``
    when nothing is eligible; raises `PolicyError` for a numerical policy
    meeting a non-numeric key, `InvalidPolicyError` for an invalid spec.
    """
    compiled = compile_policy(policy)
    if compiled.spec.kind == "rolling":
        return [compiled.spec.rolling_tag] if compiled.spec.rolling_tag in tags else []
    keyed = compiled.keyed(tags)
    return [keyed[key] for key in compiled.ranked_keys(list(keyed))]


@dataclass(frozen=True)
class Ranking:
    """The CPU-heavy part of an evaluation (filter, sort): pure, and picklable both ways."""

    #: The tag the selector picks among all tags (None for a rolling policy).
    best: str | None
    #: aliasOf only: the candidates as (key, tag), best first, the alias tag left out;
    #: in Flux order instead when numerical keys hold NaN (see `_pick_alias`).
    candidates: tuple[tuple[str, str], ...] = ()
    nan_keys: bool = False


def rank_tags(spec: PolicySpec, tags: Sequence[str]) -> Ranking:
    """Filter and order ``tags`` for `evaluate`; raises Flux's errors (`PolicyError`)."""
    compiled = compile_policy(spec)
    if spec.kind == "rolling":
        return Ranking(None)
    keyed = compiled.keyed(tags)
    best = keyed[compiled.latest_key(list(keyed))]
    if spec.alias_of is None:
        return Ranking(best)
    keys = [key for key, tag in keyed.items() if tag != spec.alias_of]
    if spec.kind == "numerical" and any(map(math.isnan, numerical.parse_all(keys))):
        return Ranking(best, tuple((key, keyed[key]) for key in keys), nan_keys=True)
    return Ranking(best, tuple((key, keyed[key]) for key in compiled.ranked_keys(keys)))


#: Where `rank_tags` runs: inline by default; the server passes a worker process.
RankTags = Callable[[PolicySpec, Sequence[str]], Awaitable[Ranking]]


async def rank_inline(spec: PolicySpec, tags: Sequence[str]) -> Ranking:
    return rank_tags(spec, tags)


async def evaluate(
    policy: PolicySpec | CompiledPolicy,
    image: str,
    tags: Sequence[str],
    *,
    previous: LatestRef | None = None,
    digest_of: DigestLookup | None = None,
    rank: RankTags = rank_inline,
) -> LatestRef:
    """The latest image for ``tags`` (already through the exclusion list).

    ``image`` is the repository's ``image`` verbatim and becomes ``name``.
    Raises `InvalidPolicyError` for an invalid spec and `PolicyError` for
    every evaluation failure; the caller then keeps ``previous`` (as Flux).
    """
    compiled = compile_policy(policy)
    try:
        return await _evaluate(compiled, image, tags, previous, _Digests(image, digest_of), rank)
    except PolicyError:
        raise
    except Exception as exc:  # never let a bug surface as a traceback to users
        raise PolicyError(
            f"evaluating the policy for {image} failed unexpectedly: {type(exc).__name__}: {exc}"
        ) from exc


async def _evaluate(
    compiled: CompiledPolicy,
    image: str,
    tags: Sequence[str],
    previous: LatestRef | None,
    digests: _Digests,
    rank: RankTags,
) -> LatestRef:
    spec = compiled.spec
    if spec.kind == "rolling":
        if spec.rolling_tag not in tags:
            raise PolicyError(
                f"rolling tag '{spec.rolling_tag}' is not among the tags of {image}"
                " (is it pushed, and not excluded by exclusionList?)"
            )
        # A rolling tag is followed by its digest, whatever digestReflectionPolicy says.
        return LatestRef(image, spec.rolling_tag, await digests.of(spec.rolling_tag))

    ranking = await rank(spec, tags)  # also raises Flux's errors for aliasOf
    assert ranking.best is not None
    known_digest = None
    if spec.alias_of is None:
        tag = ranking.best
    else:
        tag, known_digest = await _pick_alias(compiled, image, tags, ranking, digests)

    digest = ""
    if spec.digest_reflection == "IfNotPresent" and _same_ref(previous, image, tag):
        assert previous is not None
        digest = previous.digest  # tags are treated as immutable
    elif spec.digest_reflection != "Never":
        digest = known_digest or await digests.of(tag)
    return LatestRef(image, tag, digest)


def _same_ref(previous: LatestRef | None, image: str, tag: str) -> bool:
    return (
        previous is not None
        and previous.name == image
        and previous.tag == tag
        and bool(previous.digest)
    )


async def _pick_alias(
    compiled: CompiledPolicy,
    image: str,
    tags: Sequence[str],
    ranking: Ranking,
    digests: _Digests,
) -> tuple[str, str]:
    """The policy's pick among tags sharing the alias tag's digest, and that digest.

    Walks the ranking best-first, so it costs one lookup for the alias plus
    one per candidate until the first match (the registry caches digests).
    The alias tag itself is never a candidate: it would always match.
    """
    alias = compiled.spec.alias_of
    assert alias is not None
    if alias not in tags:
        raise PolicyError(
            f"aliasOf tag '{alias}' is not among the tags of {image}"
            " (is it pushed, and not excluded by exclusionList?)"
        )
    alias_digest = await digests.of(alias)

    if ranking.nan_keys:
        # NaN makes Flux's walk depend on positions, so no ranking is exact
        # for every subset: check each candidate, then let the policy pick.
        sharing = [key for key, tag in ranking.candidates if await digests.of(tag) == alias_digest]
        if sharing:
            return dict(ranking.candidates)[compiled.latest_key(sharing)], alias_digest
    else:
        for _key, tag in ranking.candidates:
            if await digests.of(tag) == alias_digest:
                return tag, alias_digest
    raise PolicyError(
        f"no tag of {image} selected by the policy shares the digest {alias_digest}"
        f" of aliasOf tag '{alias}'"
    )


class _Digests:
    """Digest lookups for one evaluation: awaited, checked, errors made `PolicyError`."""

    def __init__(self, image: str, lookup: DigestLookup | None) -> None:
        self._image = image
        self._lookup = lookup
        self._known: dict[str, str] = {}

    async def of(self, tag: str) -> str:
        if tag in self._known:
            return self._known[tag]
        ref = f"{self._image}:{tag}"
        if self._lookup is None:
            raise PolicyError(
                f"digest lookup not available: the policy needs the digest of {ref}"
                " but no registry lookup was provided"
            )
        try:
            digest = self._lookup(tag)
            if inspect.isawaitable(digest):
                digest = await digest
        except Exception as exc:
            detail = str(exc) or type(exc).__name__
            raise PolicyError(f"failed to look up the digest of {ref}: {detail}") from exc
        if not isinstance(digest, str) or not digest:
            raise PolicyError(f"failed to look up the digest of {ref}: the registry gave none")
        self._known[tag] = digest
        return digest
