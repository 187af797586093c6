"""The change list: file -> object -> changes (Flux's ResultV2, design §4).

Sorted on output: files by path, objects by (apiVersion, kind, namespace,
name), changes in document order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, order=True)
class ObjectId:
    """The YAML document holding a marker (empty strings when a field is missing)."""

    api_version: str = ""
    kind: str = ""
    namespace: str = ""
    name: str = ""

    def __str__(self) -> str:
        # The PR body's spelling, e.g. ``Deployment/default/podinfo``.
        return f"{self.kind}/{self.namespace}/{self.name}"

    def to_json(self) -> dict[str, str]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
        }


@dataclass(frozen=True)
class Change:
    old_value: str
    new_value: str
    setter: str

    def to_json(self) -> dict[str, str]:
        return {"oldValue": self.old_value, "newValue": self.new_value, "setter": self.setter}


@dataclass
class Result:
    """Every change one automation run made, keyed by path relative to ``update.path``."""

    files: dict[str, dict[ObjectId, list[Change]]] = field(default_factory=dict)

    def add_change(self, file: str, obj: ObjectId, *changes: Change) -> None:
        self.files.setdefault(file, {}).setdefault(obj, []).extend(changes)

    def __bool__(self) -> bool:
        return any(changes for objs in self.files.values() for changes in objs.values())

    def sorted_files(self) -> list[tuple[str, list[tuple[ObjectId, list[Change]]]]]:
        return [
            (path, sorted(self.files[path].items(), key=lambda item: item[0]))
            for path in sorted(self.files)
        ]

    def objects(self) -> dict[ObjectId, list[Change]]:
        """Flux's ``Objects()``: object -> changes concatenated over all files."""
        merged: dict[ObjectId, list[Change]] = {}
        for _path, objects in self.sorted_files():
            for obj, changes in objects:
                merged.setdefault(obj, []).extend(changes)
        return dict(sorted(merged.items(), key=lambda item: item[0]))

    def changes(self) -> list[Change]:
        """Flux's ``Changes()``: unique on (old, new, setter), first occurrence kept."""
        seen: set[Change] = set()
        unique: list[Change] = []
        for _path, objects in self.sorted_files():
            for _obj, changes in objects:
                for change in changes:
                    if change not in seen:
                        seen.add(change)
                        unique.append(change)
        return unique

    def to_json(self) -> dict[str, Any]:
        return {
            "files": {
                path: {
                    "objects": [
                        {**obj.to_json(), "changes": [c.to_json() for c in changes]}
                        for obj, changes in objects
                    ]
                }
                for path, objects in self.sorted_files()
            }
        }
