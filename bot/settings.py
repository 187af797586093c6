"""Every environment variable `serve` reads: its name, default and meaning, in one table.

`serve --help` prints the table, and `missing` says at once which required
variables are unset. The defaults are the constants of the modules that use
them, shown here, never restated. Imported only by `serve` and its help: the
modules it names are heavy (SQLAlchemy, aiohttp).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot import registryevents
from bot.discovery import REDISCOVERY_INTERVAL
from bot.github.auth import DEFAULT_API_URL
from bot.github.client import DEFAULT_WRITE_INTERVAL
from bot.logs import LOG_FORMATS
from bot.planner import (
    MAX_BYTES_SETTING,
    MAX_FILES_SETTING,
    MAX_MARKED_FILES_SETTING,
    MAX_SECONDS_SETTING,
    PlanBudget,
)
from bot.registry.addresses import ALLOWED_ADDRESSES_VARIABLE
from bot.registry.transport import ClientSettings
from bot.scheduler import DEFAULT_CONCURRENCY, DEFAULT_LEASE, DEFAULT_TICK
from bot.server import DEFAULT_FIRST_RUN_SPREAD, DEFAULT_PORT
from bot.store.database import DEFAULT_DATABASE_URL


@dataclass(frozen=True)
class Setting:
    name: str
    #: What an unset variable means, as shown ("" for a required one).
    default: str
    meaning: str
    #: Required: `serve` cannot start without it (or, with `either`, without one of them).
    required: bool = False
    either: str | None = None


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _limit(value: float | None) -> str:
    if value is None:
        return "no limit"
    return str(int(value)) if value == int(value) else f"{value:g}"


_BUDGET = PlanBudget()
_REGISTRY = ClientSettings()

SETTINGS: tuple[Setting, ...] = (
    # -- who the bot is -------------------------------------------------------------------
    Setting(
        "ENV_FILE",
        ".env",
        "a file of these variables (what `register` writes); the environment wins",
    ),
    Setting("APP_ID", "", "the GitHub App's numeric id", required=True),
    Setting(
        "PRIVATE_KEY",
        "",
        "the App's private key: the PEM text, or it as one line of base64",
        required=True,
        either="PRIVATE_KEY_PATH",
    ),
    Setting("PRIVATE_KEY_PATH", "none", "or: the path of the App's .pem file"),
    Setting(
        "WEBHOOK_SECRET", "", "the App's webhook secret (unsigned deliveries are refused)",
        required=True,
    ),
    Setting("GITHUB_API_URL", DEFAULT_API_URL, "GitHub's API (GitHub Enterprise Server: …/api/v3)"),
    # -- where it listens and keeps its state ---------------------------------------------------
    Setting("HOST", "0.0.0.0", "the address to listen on"),
    Setting("PORT", str(DEFAULT_PORT), "the port to listen on"),
    Setting(
        "DATABASE_URL",
        DEFAULT_DATABASE_URL,
        "sqlite:///FILE (one process) or postgresql://… (replicas)",
    ),
    Setting("REPLICA_NAME", "host-pid-random", "this replica's name in leases and log lines"),
    # -- how much it does at once ------------------------------------------------------------------
    Setting(
        "CONCURRENCY",
        str(DEFAULT_CONCURRENCY),
        "repositories reconciled at once per replica (at most 16 of them past the "
        "short-circuit)",
    ),
    Setting("WORKERS", "one per core", "processes that plan and rank tags, off the event loop"),
    Setting(
        "WRITE_INTERVAL", _seconds(DEFAULT_WRITE_INTERVAL), "between writes, per installation"
    ),
    Setting("TICK_SECONDS", _seconds(DEFAULT_TICK), "how often a replica looks for due work"),
    Setting(
        "LEASE_SECONDS",
        _seconds(DEFAULT_LEASE),
        "how long a dead replica's repositories wait before another takes them over",
    ),
    Setting(
        "FIRST_RUN_SPREAD_SECONDS",
        _seconds(DEFAULT_FIRST_RUN_SPREAD),
        "new repositories' first runs are spread over this window",
    ),
    Setting(
        "REDISCOVERY_SECONDS",
        _seconds(REDISCOVERY_INTERVAL),
        "how often installations and repositories are listed again",
    ),
    # -- what one repository may cost ------------------------------------------------------------
    Setting(MAX_FILES_SETTING, _limit(_BUDGET.max_files), "files under one update.path (0: no limit)"),
    Setting(MAX_BYTES_SETTING, _limit(_BUDGET.max_bytes), "bytes under one update.path (0: no limit)"),
    Setting(
        MAX_MARKED_FILES_SETTING,
        _limit(_BUDGET.max_marked_files),
        "files with markers under one update.path (0: no limit)",
    ),
    Setting(
        MAX_SECONDS_SETTING, _limit(_BUDGET.max_seconds), "seconds to plan one automation (0: no limit)"
    ),
    Setting("REGISTRY_MAX_PAGES", str(_REGISTRY.max_pages), "pages of tags read in one scan"),
    Setting("REGISTRY_MAX_TAGS", str(_REGISTRY.max_tags), "tags kept from one scan"),
    # -- registries --------------------------------------------------------------------------------
    Setting(
        "REGISTRY_CREDENTIALS",
        "none",
        "a YAML file of registry credentials (docs/registries.md)",
    ),
    Setting(
        ALLOWED_ADDRESSES_VARIABLE,
        "public addresses only",
        "internal addresses registries may be reached at (docs/security.md)",
    ),
    *(
        Setting(
            kind.setting,
            "off",
            f"the token {kind.name} push notifications carry to POST /registry/events, as "
            f"{kind.sends_token} (docs/registry-events.md)",
        )
        for kind in registryevents.KINDS
    ),
    # -- what it says ----------------------------------------------------------------------------
    Setting("LOG_FORMAT", LOG_FORMATS[0], f"{' or '.join(LOG_FORMATS)} (json for collectors)"),
    Setting("LOG_LEVEL", "info", "debug, info, warning or error"),
)


def missing(environ: Mapping[str, str]) -> list[str]:
    """The required settings `environ` lacks, each as its name (or 'A or B')."""
    absent = []
    for setting in SETTINGS:
        if not setting.required:
            continue
        names = [setting.name] + ([setting.either] if setting.either else [])
        if not any(environ.get(name, "").strip() for name in names):
            absent.append(" or ".join(names))
    return absent


def help_text() -> str:
    """The table `serve --help` prints."""
    width = max(len(setting.name) for setting in SETTINGS)
    lines = ["environment (default in brackets):"]
    for setting in SETTINGS:
        default = "required" if setting.required else setting.default
        lines.append(f"  {setting.name:<{width}}  {setting.meaning} [{default}]")
    return "\n".join(lines)
