"""The policy engine: which tag is the latest, per Flux ImagePolicy semantics.

Pure: no network, files, environment or logging. The registry layer supplies
tag lists (through `apply_exclusions`) and a `DigestLookup`.
"""

from bot.policy.evaluate import CompiledPolicy, compile_policy, evaluate, rank
from bot.policy.filtertags import compile_re2
from bot.policy.model import (
    DEFAULT_EXCLUSION_LIST,
    DigestLookup,
    InvalidPolicyError,
    LatestRef,
    PolicyError,
    PolicySpec,
)
from bot.policy.tags import apply_exclusions, flux_order

__all__ = [
    "DEFAULT_EXCLUSION_LIST",
    "CompiledPolicy",
    "DigestLookup",
    "InvalidPolicyError",
    "LatestRef",
    "PolicyError",
    "PolicySpec",
    "apply_exclusions",
    "compile_policy",
    "compile_re2",
    "evaluate",
    "flux_order",
    "rank",
]
