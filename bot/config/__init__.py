"""The repository config file ``.github/image-automation.yml`` (design §2, a contract).

`load_config` turns the file's bytes (or text) into a `Config` plus a list of
`Problem`s, each with the file, line and column of the offending YAML node and
a message naming the field and what to do. It never raises. One broken
repository, policy or automation is dropped and reported; the others load.

Pure: data in, objects out (no files, no environment). The modules, one job each:

* `model`: the dataclasses and their defaults;
* `yaml`: reading untrusted YAML into nodes with positions, safely;
* `grammar`: Kubernetes names and labels, git branches, Go durations, RE2...;
* `checker`: `Checker`, typed reads of nodes that record each failure;
* `document`, `repositories`, `policies`, `automations`: the sections.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.config.document import read_config
from bot.config.grammar import is_valid_branch_name, parse_duration
from bot.config.model import (
    CONFIG_PATH,
    DEFAULT_AUTHOR_NAME,
    DEFAULT_AUTOMATION_INTERVAL,
    DEFAULT_NAMESPACE,
    DEFAULT_POLICY_INTERVAL,
    DEFAULT_REPOSITORY_INTERVAL,
    MAX_EXCLUSION_LIST,
    MIN_TIMEOUT,
    PUSH_BRANCH_PREFIX,
    AutomationConfig,
    Config,
    ImagePolicyConfig,
    ImageRepositoryConfig,
    LabelSelector,
)
from bot.config.yaml import MAX_CONFIG_BYTES
from bot.problems import Problem, error

__all__ = [
    "DEFAULT_AUTHOR_NAME",
    "DEFAULT_AUTOMATION_INTERVAL",
    "DEFAULT_NAMESPACE",
    "CONFIG_PATH",
    "DEFAULT_POLICY_INTERVAL",
    "DEFAULT_REPOSITORY_INTERVAL",
    "MAX_CONFIG_BYTES",
    "MAX_EXCLUSION_LIST",
    "MIN_TIMEOUT",
    "PUSH_BRANCH_PREFIX",
    "AutomationConfig",
    "Config",
    "ImagePolicyConfig",
    "ImageRepositoryConfig",
    "LabelSelector",
    "is_valid_branch_name",
    "load_config",
    "parse_duration",
]


def load_config(
    data: str | bytes | None,
    *,
    path: str = CONFIG_PATH,
    default_branch: str | None = None,
    manifests: Mapping[str, bytes] | None = None,
) -> tuple[Config, list[Problem]]:
    """Parse and validate the config; never raises (worst case: one error at 1:1).

    Give it the file's raw bytes (None: there is no config file): bytes that
    are not UTF-8 are reported as a `Problem` at the first bad byte. ``path``
    is the file's path as the problems should name it. ``manifests``: Flux
    manifests (repository path -> bytes) whose image objects are config too
    (`bot.config.manifests` says which). ``default_branch`` (when known) tells
    which automations without a checkout branch commit directly.
    """
    try:
        return read_config(data, path, default_branch, manifests)
    except Exception as err:  # a bug here must not take the bot down with a bad file
        return Config(path=path), [
            error(
                path,
                1,
                1,
                f"could not read the config ({type(err).__name__}); "
                "please report this with the file",
            )
        ]
