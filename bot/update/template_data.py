"""The data a template sees: Flux's template data, with Go's field names.

``{{ change.OldValue }}`` works as ``{{ $change.OldValue }}`` did in Flux
(flux-behaviour §5.3–5.4). Pure values, built from a `Result`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.policy.model import LatestRef
from bot.update.result import Change as ResultChange
from bot.update.result import ObjectId as ResultObjectId
from bot.update.result import Result


@dataclass(frozen=True)
class AutomationObject:
    Namespace: str
    Name: str

    def __str__(self) -> str:
        return f"{self.Namespace}/{self.Name}"


@dataclass(frozen=True)
class ObjectId:
    APIVersion: str
    Kind: str
    Namespace: str
    Name: str

    def __str__(self) -> str:
        return f"{self.Kind}/{self.Namespace}/{self.Name}"


@dataclass(frozen=True)
class Change:
    OldValue: str
    NewValue: str
    Setter: str

    def __str__(self) -> str:
        return f"{self.OldValue} -> {self.NewValue}"


@dataclass(frozen=True)
class Changed:
    """Flux's ``.Changed``: ``FileChanges``, ``Objects`` and ``Changes`` (the latter two
    are methods in Go, called implicitly; here they are plain attributes)."""

    FileChanges: dict[str, dict[ObjectId, list[Change]]]
    Objects: dict[ObjectId, list[Change]]
    Changes: list[Change]

    def __bool__(self) -> bool:
        return bool(self.Changes)


def _object_id(obj: ResultObjectId) -> ObjectId:
    return ObjectId(obj.api_version, obj.kind, obj.namespace, obj.name)


def _changes(changes: list[ResultChange]) -> list[Change]:
    return [Change(c.old_value, c.new_value, c.setter) for c in changes]


def template_data(
    *,
    automation: str,
    result: Result,
    values: Mapping[str, str],
    observed_policies: Mapping[str, LatestRef],
    repository: str,
) -> dict[str, Any]:
    """The names a template sees; ``automation`` is ``"namespace/name"``."""
    namespace, _, name = automation.rpartition("/")
    changed = Changed(
        FileChanges={
            path: {_object_id(obj): _changes(changes) for obj, changes in objects}
            for path, objects in result.sorted_files()
        },
        Objects={_object_id(obj): _changes(changes) for obj, changes in result.objects().items()},
        Changes=_changes(result.changes()),
    )
    return {
        "AutomationObject": AutomationObject(namespace, name),
        "Changed": changed,
        "Values": dict(values),
        "ObservedPolicies": {
            policy: ref.to_json() for policy, ref in sorted(observed_policies.items())
        },
        "Repository": repository,
    }


#: Values whose ``__str__`` joins their fields ("/" or " -> "), sized as such.
JOINED_FIELDS = (AutomationObject, ObjectId, Change)
