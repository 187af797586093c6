"""Errors raised by registry scanning: every message names the image and what to do."""

from __future__ import annotations

from bot.policy.model import PolicyError


class RegistryError(PolicyError):
    """Scanning a registry, fetching a digest or resolving credentials failed.

    A `PolicyError`, so a failed scan is handled like any failed policy: the
    previous result stays in use. Messages never contain secrets.
    """


class CredentialsError(RegistryError):
    """The REGISTRY_CREDENTIALS file is invalid, or credentials cannot be used here."""
