"""Data shared by every policy: what a policy is asked, and what it answers.

Pure data, no I/O. The registry layer produces tag lists and digests; the
policy layer turns them into a `LatestRef`, Flux's `status.latestRef`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, get_args

PolicyKind = Literal["semver", "alphabetical", "numerical", "rolling"]
Order = Literal["asc", "desc"]
DigestReflection = Literal["Never", "IfNotPresent", "Always"]

#: The same values as tuples, for validation and messages (one home: the Literals above).
POLICY_KINDS: tuple[str, ...] = get_args(PolicyKind)
ORDERS: tuple[str, ...] = get_args(Order)
DIGEST_REFLECTIONS: tuple[str, ...] = get_args(DigestReflection)

#: Looks up the digest of ``tag`` in the policy's image repository.
#: May return the digest directly or an awaitable of it; raises
#: `PolicyError` (or any exception, which becomes one) when it cannot.
DigestLookup = Callable[[str], "str | Awaitable[str]"]

DEFAULT_EXCLUSION_LIST: tuple[str, ...] = (r"^.*\.sig$",)


class PolicyError(Exception):
    """Evaluating a policy failed (no tags, nothing matched, a bad tag...).

    As in Flux, the caller keeps the previous `LatestRef` in use.
    """


class InvalidPolicyError(PolicyError):
    """The policy itself is invalid (bad semver range, bad regex...).

    Raised by `compile_policy`; config validation reports it with file:line.
    """


@dataclass(frozen=True)
class LatestRef:
    """Flux's ``latestRef``: ``name`` is the repository's ``image`` verbatim."""

    name: str
    tag: str
    digest: str = ""

    def __str__(self) -> str:
        ref = f"{self.name}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "tag": self.tag, "digest": self.digest}


@dataclass(frozen=True)
class PolicySpec:
    """One image policy, as the config file states it (design §2).

    Exactly one `kind`. ``filter_pattern is None`` means no ``filterTags``;
    an empty pattern matches every tag (Flux).
    """

    kind: PolicyKind
    semver_range: str = ""
    order: Order = "asc"
    rolling_tag: str = ""
    filter_pattern: str | None = None
    filter_extract: str = ""
    alias_of: str | None = None
    digest_reflection: DigestReflection = "Never"
