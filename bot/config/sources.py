"""What a repository's config is read from, as one value: the config file's bytes and the
Flux manifests' (`bot.config.manifests`), stored whole so an unchanged head reads nothing.

`encode` is what the store keeps (``repositories.config_text``) and what the parsed
config cache is keyed by. A config without manifests encodes as the config file's
bytes themselves, as a database written before manifests were read holds them; a
bundle starts with a NUL byte, which no config file can (YAML refuses it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from bot.config.model import CONFIG_PATH, Config
from bot.problems import Problem

_BUNDLE = b"\x00image-automation config sources 1\n"


@dataclass(frozen=True)
class ConfigSources:
    config: bytes | None  # None: no config file, the manifests alone
    manifests: tuple[tuple[str, bytes], ...] = ()  # (repository path, bytes), by path

    @classmethod
    def of(cls, config: bytes | None, manifests: Mapping[str, bytes]) -> ConfigSources:
        return cls(config, tuple(sorted(manifests.items())))

    def encode(self) -> bytes:
        # A config file that happens to start like a bundle is stored as one, so its
        # bytes are never read as a bundle the repository forged.
        if not self.manifests and self.config is not None and not self.is_bundle(self.config):
            return self.config
        header = {
            "config": None if self.config is None else len(self.config),
            "manifests": [[path, len(data)] for path, data in self.manifests],
        }
        parts = [_BUNDLE, json.dumps(header).encode(), b"\n", self.config or b""]
        parts += [data for _path, data in self.manifests]
        return b"".join(parts)

    @staticmethod
    def is_bundle(data: bytes) -> bool:
        """Whether ``data`` holds manifests (else it is a config file alone)."""
        return data.startswith(_BUNDLE)

    @classmethod
    def decode(cls, data: bytes) -> ConfigSources:
        """What `encode` made (only the store's own bytes come here; anything else that
        looks like a bundle is read as a config file, which then fails to parse)."""
        if not data.startswith(_BUNDLE):
            return cls(data)
        try:
            return cls._bundle(data)
        except (ValueError, KeyError, TypeError, IndexError):
            return cls(data)

    @classmethod
    def _bundle(cls, data: bytes) -> ConfigSources:
        header_end = data.index(b"\n", len(_BUNDLE))
        header = json.loads(data[len(_BUNDLE) : header_end])
        offset = header_end + 1
        config = None
        if header["config"] is not None:
            config = data[offset : offset + header["config"]]
            offset += header["config"]
        manifests = []
        for path, size in header["manifests"]:
            manifests.append((path, data[offset : offset + size]))
            offset += size
        return cls(config, tuple(manifests))

    def load(self, default_branch: str | None = None) -> tuple[Config, list[Problem]]:
        from bot.config import load_config

        return load_config(
            self.config,
            path=CONFIG_PATH,
            default_branch=default_branch,
            manifests=dict(self.manifests),
        )


def load_sources(encoded: bytes, default_branch: str | None = None) -> tuple[Config, list[Problem]]:
    """The config of encoded sources (a function, so a worker process can run it)."""
    return ConfigSources.decode(encoded).load(default_branch)


def sources_identity(config_sha: str | None, manifest_shas: Mapping[str, str] | None) -> str | None:
    """What the sources are, from git's blob ids: equal ids, equal sources.

    ``manifest_shas`` is None when no manifests were looked for (a config file without
    ``fluxManifests``): the identity is then the config file's blob id, as before manifests
    were read. Otherwise it covers every candidate file, even none, so that a file added,
    changed or removed is looked at again.
    """
    if manifest_shas is None:
        return config_sha
    digest = hashlib.blake2b(digest_size=20)
    digest.update((config_sha or "-").encode())
    for path, sha in sorted(manifest_shas.items()):
        digest.update(b"\x00" + path.encode("utf-8", "surrogatepass") + b"\x00" + sha.encode())
    return "sources:" + digest.hexdigest()
