"""What an image says about itself: OCI annotations, or the config's labels, and when it
was created (issue 12 §1 and §4). Pure: manifest and config JSON in, values out.

Keys read (annotations win over labels; the older label-schema keys are the fallback):
``org.opencontainers.image.source``, ``.revision``, ``.version``, ``.url``, ``.title``,
``.description``, ``.created``; ``org.label-schema.vcs-url``, ``.vcs-ref``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bot.imageref import DIGEST_RE

OCI = "org.opencontainers.image."
_LEGACY = {"source": "org.label-schema.vcs-url", "revision": "org.label-schema.vcs-ref"}
FIELDS = ("source", "revision", "version", "url", "title", "description", "created")
#: A value longer than this is cut: it goes into a PR body.
MAX_VALUE = 1024

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


@dataclass(frozen=True)
class ImageMetadata:
    digest: str
    annotations: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Unix time from the config's ``created`` (or the annotation), None when unknown.
    created: float | None = None

    def value(self, name: str) -> str | None:
        """One of `FIELDS`, from the annotations, else the labels, else the legacy keys."""
        for source in (self.annotations, self.labels):
            found = source.get(OCI + name)
            if found:
                return found[:MAX_VALUE]
        legacy = _LEGACY.get(name)
        for source in (self.annotations, self.labels):
            if legacy and source.get(legacy):
                return source[legacy][:MAX_VALUE]
        return None

    @property
    def needs_config(self) -> bool:
        """Whether the annotations leave out what the config's labels may hold."""
        return not (self.value("source") and (self.created is not None))


def is_index(manifest: Mapping) -> bool:
    return manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest


def platform_child(index: Mapping) -> str | None:
    """The digest of the index's linux/amd64 manifest, else its first one."""
    listed = index.get("manifests")
    entries = [e for e in listed if isinstance(e, Mapping)] if isinstance(listed, list) else []
    for entry in entries:
        platform = entry.get("platform")
        if isinstance(platform, Mapping) and (platform.get("os"), platform.get("architecture")) == (
            "linux",
            "amd64",
        ):
            return _digest(entry)
    return _digest(entries[0]) if entries else None


def config_digest(manifest: Mapping) -> str | None:
    config = manifest.get("config")
    return _digest(config) if isinstance(config, Mapping) else None


def from_manifest(digest: str, manifest: Mapping, index: Mapping | None = None) -> ImageMetadata:
    """The manifest's annotations (an index's too, the manifest's winning)."""
    annotations = {**_strings(index.get("annotations") if index else None),
                   **_strings(manifest.get("annotations"))}  # fmt: skip
    return ImageMetadata(digest, annotations, {}, parse_time(annotations.get(OCI + "created")))


def with_config(metadata: ImageMetadata, config: Mapping) -> ImageMetadata:
    """Add the config blob's labels and ``created``."""
    inner = config.get("config")
    inner = inner if isinstance(inner, Mapping) else {}
    labels = _strings(inner.get("Labels"))
    created = metadata.created
    if created is None:
        created = parse_time(config.get("created")) or parse_time(labels.get(OCI + "created"))
    return ImageMetadata(metadata.digest, metadata.annotations, labels, created)


_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def parse_time(value: object) -> float | None:
    """An RFC 3339 time as Unix seconds (nanoseconds cut to microseconds), or None."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _digest(entry: Mapping) -> str | None:
    digest = entry.get("digest")
    return digest if isinstance(digest, str) and DIGEST_RE.fullmatch(digest) else None


#: The keys kept: an image may carry megabytes of labels; the bot reads these alone.
KEPT_KEYS = frozenset({OCI + name for name in FIELDS} | set(_LEGACY.values()))


def _strings(values: object) -> dict[str, str]:
    """The values of `KEPT_KEYS`, each cut to `MAX_VALUE`."""
    if not isinstance(values, Mapping):
        return {}
    return {k: v[:MAX_VALUE] for k, v in values.items() if k in KEPT_KEYS and isinstance(v, str)}
