"""Why a policy picks the tag it picks (`plan --explain`, and the check run when a policy
picks nothing): each tag's fate, step by step, as `evaluate` decides it.

Steps, after the exclusion list (the tag source applies it): ``filterTags`` (tags it
does not match; tags whose key a later tag took), then the selector (semver: not a
version, or outside the range; numerical: not a number; alphabetical admits every
key), then the winner. Pure, and computed from the same functions `evaluate` uses,
so the explanation cannot disagree with the pick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.policy import numerical, semver
from bot.policy.evaluate import compile_policy
from bot.policy.model import PolicyError, PolicySpec

#: Tags shown per reason; the rest are counted.
SHOWN = 20

NOT_MATCHED = "filterTags.pattern does not match"
KEY_TAKEN = "filterTags gave the same key to a later tag"
NOT_SEMVER = "not a semantic version"
OUT_OF_RANGE = "outside the semver range"
NOT_NUMBER = "the key is not a number"
NOT_ROLLING = "not the rolling tag"
TOO_YOUNG = "younger than minimumReleaseAge"


@dataclass
class Explanation:
    policy: str
    tags: int  # after the exclusion list
    #: (tag, key) of the tags past filterTags, in Flux order (key == tag without extract).
    keyed: list[tuple[str, str]] = field(default_factory=list)
    #: reason -> tags, in Flux order
    dropped: dict[str, list[str]] = field(default_factory=dict)
    #: tags the selector admits, best first
    admitted: list[str] = field(default_factory=list)
    winner: str | None = None
    error: str | None = None

    def text(self, shown: int = SHOWN) -> str:
        """The explanation as Markdown-friendly text (the CLI and the check run)."""
        lines = [f"policy {self.policy}: {self.tags} tags after the exclusion list"]
        extracted = [(tag, key) for tag, key in self.keyed if key != tag]
        if extracted:
            lines.append(f"- keys extracted by filterTags ({len(extracted)}):")
            lines += [f"  - {tag} -> {key}" for tag, key in extracted[:shown]]
            if len(extracted) > shown:
                lines.append(f"  - … and {len(extracted) - shown} more")
        for reason, tags in self.dropped.items():
            lines.append(f"- dropped, {reason} ({len(tags)}): {_some(tags, shown)}")
        lines.append(
            f"- admitted, best first ({len(self.admitted)}): {_some(self.admitted, shown)}"
        )
        if self.error is not None:
            lines.append(f"- no pick: {self.error}")
        else:
            lines.append(f"- winner: {self.winner}")
        return "\n".join(lines)


def _some(tags: Sequence[str], shown: int) -> str:
    if not tags:
        return "none"
    text = ", ".join(tags[:shown])
    return text + (f", … and {len(tags) - shown} more" if len(tags) > shown else "")


def explain(
    name: str, spec: PolicySpec, tags: Sequence[str], *, too_young: Sequence[str] = ()
) -> Explanation:
    """Each tag's fate under ``spec``; ``tags`` are past the exclusion list, and those in
    ``too_young`` were passed over for ``minimumReleaseAge`` before the policy saw them."""
    compiled = compile_policy(spec)
    explanation = Explanation(policy=name, tags=len(tags))
    if too_young:
        young = set(too_young)
        _add(explanation, TOO_YOUNG, [t for t in sorted(tags, reverse=True) if t in young])
        tags = [t for t in tags if t not in young]
    if spec.kind == "rolling":
        others = [tag for tag in tags if tag != spec.rolling_tag]
        if others:
            explanation.dropped[NOT_ROLLING] = sorted(others, reverse=True)
        explanation.admitted = [spec.rolling_tag] if spec.rolling_tag in tags else []
        explanation.winner = explanation.admitted[0] if explanation.admitted else None
        if explanation.winner is None:
            explanation.error = f"rolling tag '{spec.rolling_tag}' is not among the tags"
        return explanation

    keyed = compiled.keyed(tags)
    explanation.keyed = [(tag, key) for key, tag in keyed.items()]
    if compiled.tag_filter is not None:
        past = set(keyed.values())
        regex = compiled.tag_filter.regex
        unmatched = [t for t in sorted(tags, reverse=True) if regex.search(t) is None]
        taken = [t for t in sorted(tags, reverse=True) if t not in past and regex.search(t)]
        _add(explanation, NOT_MATCHED, unmatched)
        _add(explanation, KEY_TAKEN, taken)

    keys = list(keyed)
    if spec.kind == "semver":
        assert compiled.semver_range is not None
        versions = {key: semver.parse_tag(key) for key in keys}
        _add(explanation, NOT_SEMVER, [keyed[k] for k, v in versions.items() if v is None])
        _add(
            explanation,
            OUT_OF_RANGE,
            [
                keyed[k]
                for k, v in versions.items()
                if v is not None and not compiled.semver_range.check(v)
            ],
        )
    elif spec.kind == "numerical":
        _add(
            explanation,
            NOT_NUMBER,
            [keyed[k] for k in keys if numerical.parse_go_float(k) is None],
        )
    try:
        explanation.admitted = [keyed[key] for key in compiled.ranked_keys(keys)]
        explanation.winner = keyed[compiled.latest_key(keys)]
    except PolicyError as exc:
        explanation.admitted = []
        explanation.error = str(exc)
    if spec.alias_of is not None and explanation.winner is not None:
        # The pick is then the best tag sharing the alias's digest: the registry knows.
        explanation.winner += f" (then aliasOf {spec.alias_of}: the best tag with its digest)"
    return explanation


def _add(explanation: Explanation, reason: str, tags: list[str]) -> None:
    if tags:
        explanation.dropped[reason] = tags
