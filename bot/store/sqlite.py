"""The app's persisted state in one sqlite3 database.

What is kept, and why:

* webhook delivery ids, so a redelivered event is handled once;
* installations and the repositories they grant, so ticks know what to visit;
* per repository: the default-branch head and config of the last complete run,
  and the latest image of each policy (with them, the short-circuit key; a
  failed policy keeps its latest image, as in Flux);
* per automation: the last commit the bot wrote to its branch, its open PR and
  what that PR says, and whether someone else pushed to the branch;
* change sets of PRs closed unmerged, never proposed again.

All calls are short synchronous statements; the app calls them from its event
loop thread only.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from bot.policy.model import LatestRef

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY, event TEXT NOT NULL, received_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS installations (
    id INTEGER PRIMARY KEY, account TEXT NOT NULL DEFAULT '',
    suspended INTEGER NOT NULL DEFAULT 0, permissions TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS repositories (
    full_name TEXT PRIMARY KEY, installation_id INTEGER NOT NULL,
    default_branch TEXT, head_sha TEXT, config_sha TEXT, config_text BLOB,
    dirty INTEGER NOT NULL DEFAULT 1, policy_errors TEXT);
CREATE TABLE IF NOT EXISTS policies (
    repository TEXT NOT NULL, policy TEXT NOT NULL,
    name TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL,
    PRIMARY KEY (repository, policy));
CREATE TABLE IF NOT EXISTS automations (
    repository TEXT NOT NULL, automation TEXT NOT NULL,
    push_branch TEXT NOT NULL DEFAULT '', base_branch TEXT NOT NULL DEFAULT '',
    base_sha TEXT, written_sha TEXT, prior_sha TEXT, pr_number INTEGER,
    pr_title TEXT, pr_body TEXT, pr_labels TEXT, change_set TEXT,
    taken_over INTEGER NOT NULL DEFAULT 0, taken_over_noted INTEGER NOT NULL DEFAULT 0,
    released_head TEXT,
    PRIMARY KEY (repository, automation));
CREATE TABLE IF NOT EXISTS declined (
    repository TEXT NOT NULL, automation TEXT NOT NULL, change_set TEXT NOT NULL,
    pr_number INTEGER, closed_at REAL NOT NULL,
    PRIMARY KEY (repository, automation, change_set));
CREATE TABLE IF NOT EXISTS merged (
    repository TEXT NOT NULL, automation TEXT NOT NULL, pr_number INTEGER NOT NULL,
    change_set TEXT, merged_at REAL NOT NULL,
    PRIMARY KEY (repository, pr_number));
CREATE TABLE IF NOT EXISTS health (
    id INTEGER PRIMARY KEY CHECK (id = 1), probed_at REAL NOT NULL);
"""

#: Columns renamed or added since the first schema: (table, old name or None, new, type).
MIGRATIONS = (
    ("automations", "human_edited", "taken_over", ""),
    ("automations", "human_noted", "taken_over_noted", ""),
    ("automations", None, "released_head", "TEXT"),
    ("repositories", None, "policy_errors", "TEXT"),
)

#: Indexes added since the first schema: (name, table, columns); made at start-up when
#: missing (on a large existing table that takes a moment, once).
INDEXES = (("deliveries_received_at", "deliveries", "received_at"),)

DEFAULT_DATABASE_URL = "sqlite:///image-automation.db"

#: Delivery ids older than this are forgotten (GitHub redelivers for about 3 days).
DELIVERY_RETENTION = 14 * 24 * 3600.0
#: At most this many expired delivery ids are deleted with each recorded delivery: an
#: indexed, bounded delete instead of a scan of the table. Deliveries expire as fast as
#: they arrive, so this keeps up, and drains a backlog by up to this many at a time.
DELIVERY_EXPIRY_BATCH = 100


class StoreError(Exception):
    """The database cannot be opened or written (bad DATABASE_URL, unwritable path...)."""


@dataclass
class RepositoryRecord:
    full_name: str
    installation_id: int
    default_branch: str | None = None
    head_sha: str | None = None  # default-branch head at the last complete run
    config_sha: str | None = None
    config_text: bytes | None = None
    # Something happened that the short-circuit cannot see (a count, so a run can
    # tell whether more happened while it ran).
    dirty: int = 1
    #: Policy name -> message of the policies that failed in the last complete run.
    policy_errors: dict[str, str] = field(default_factory=dict)


@dataclass
class AutomationState:
    repository: str
    automation: str
    push_branch: str = ""
    base_branch: str = ""
    base_sha: str | None = None
    written_sha: str | None = None  # the last commit the bot wrote to push_branch
    # The one before: a crash between moving the branch and saving must not look
    # like someone else's push.
    prior_sha: str | None = None
    pr_number: int | None = None
    pr_title: str | None = None
    pr_body: str | None = None
    pr_labels: list[str] = field(default_factory=list)
    change_set: str | None = None
    #: Someone else pushed to the branch: the bot leaves it alone (see bot/pullrequest.py).
    taken_over: bool = False
    taken_over_noted: bool = False
    #: The head of the bot's PR when it was closed: its commits stay reachable in the
    #: closed PR, so the branch may be rebuilt from there.
    released_head: str | None = None
    #: What the row said when read: a webhook may mark the branch taken over while a run
    #: holds this object, and the run's save must not undo it (`Store.save_automation_state`).
    loaded_taken_over: bool = field(default=False, compare=False, repr=False)
    #: False for an automation the store has no row for (new, or the database was lost).
    stored: bool = field(default=False, compare=False, repr=False)

    def bot_wrote(self, sha: str | None) -> bool:
        """Is `sha` a commit this bot put on its branch?"""
        return sha is not None and sha in (self.written_sha, self.prior_sha)

    def may_move(self, sha: str | None) -> bool:
        """May the bot force its branch away from `sha`? Only from its own commit."""
        return self.bot_wrote(sha) or (sha is not None and sha == self.released_head)

    def forget_pull_request(self, *, head: str | None = None) -> None:
        """The PR is gone (merged or closed at `head`): the branch is the bot's to rebuild."""
        self.pr_number = None
        self.pr_title = self.pr_body = None
        self.pr_labels = []
        self.change_set = None
        self.taken_over = self.taken_over_noted = False
        self.released_head = head


def database_path(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise StoreError(
            f"DATABASE_URL {url!r} is not supported: use sqlite:///path/to/file.db "
            "(or sqlite:///:memory:)"
        )
    return url[len(prefix) :]


class Store:
    def __init__(self, connection: sqlite3.Connection, *, clock=time.time) -> None:
        self._db = connection
        self._clock = clock
        self._db.executescript(SCHEMA)
        self._migrate()
        self._db.commit()

    def _migrate(self) -> None:
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
        if "rejected" in tables:  # the first schema's name for declined change sets
            self._db.execute("DROP TABLE IF EXISTS declined")
            self._db.execute("ALTER TABLE rejected RENAME TO declined")
        for table, old, new, kind in MIGRATIONS:
            columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if new in columns:
                continue
            if old is not None and old in columns:
                self._db.execute(f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}")
            elif old is None:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {new} {kind}")
        for name, table, columns in INDEXES:
            self._db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")

    @classmethod
    def open(cls, url: str = DEFAULT_DATABASE_URL, *, clock=time.time) -> Store:
        path = database_path(url)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            return cls(connection, clock=clock)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {path!r} (DATABASE_URL): {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def _exec(self, sql: str, params: Iterable = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, tuple(params))

    # -- webhook deliveries -------------------------------------------------

    def delivery_seen(self, delivery_id: str) -> bool:
        row = self._exec("SELECT 1 FROM deliveries WHERE id = ?", [delivery_id]).fetchone()
        return row is not None

    def record_delivery(self, delivery_id: str, event: str) -> None:
        """Remember the delivery; forget at most `DELIVERY_EXPIRY_BATCH` expired ones."""
        now = self._clock()
        with self._transaction():
            self._exec(
                "INSERT OR IGNORE INTO deliveries (id, event, received_at) VALUES (?, ?, ?)",
                [delivery_id, event, now],
            )
            self._exec(
                "DELETE FROM deliveries WHERE rowid IN (SELECT rowid FROM deliveries "
                "WHERE received_at < ? ORDER BY received_at LIMIT ?)",
                [now - DELIVERY_RETENTION, DELIVERY_EXPIRY_BATCH],
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One commit for the statements inside; rolled back on any error, so a failed
        write (disk full, read-only file) leaves no transaction open behind it."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    # -- health -------------------------------------------------------------

    def check_writable(self) -> None:
        """Readiness: commit one tiny write now; raise `StoreError` saying why it failed.

        A real write, not a look at permissions: only a commit that reaches the
        file proves the next delivery can be stored (read-only file or mount,
        full disk, lost lock). It updates one row, so it costs one small WAL
        append. After a failure nothing is left half-done, and the next probe or
        write simply tries again: no restart is needed once the cause is gone.
        """
        if self._db.in_transaction:
            # Store calls are synchronous: nothing may be open between them. A leftover
            # transaction would make every later write vanish at close; drop it.
            self._rollback()
            raise StoreError("database: a transaction was left open; rolled back")
        try:
            self._exec(
                "INSERT INTO health (id, probed_at) VALUES (1, ?) "
                "ON CONFLICT(id) DO UPDATE SET probed_at = excluded.probed_at",
                [self._clock()],
            )
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError(f"database not writable: {exc}") from exc

    # -- installations ------------------------------------------------------

    def upsert_installation(
        self, installation_id: int, *, account: str = "", permissions: Mapping | None = None
    ) -> None:
        self._exec(
            "INSERT INTO installations (id, account, permissions) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET account = excluded.account, "
            "permissions = excluded.permissions",
            [installation_id, account, json.dumps(dict(permissions or {}), sort_keys=True)],
        )

    def installation_known(self, installation_id: int) -> bool:
        row = self._exec("SELECT 1 FROM installations WHERE id = ?", [installation_id]).fetchone()
        return row is not None

    def installation_permissions(self, installation_id: int) -> dict[str, str]:
        row = self._exec(
            "SELECT permissions FROM installations WHERE id = ?", [installation_id]
        ).fetchone()
        return json.loads(row[0]) if row else {}

    def set_suspended(self, installation_id: int, suspended: bool) -> None:
        self._exec(
            "UPDATE installations SET suspended = ? WHERE id = ?",
            [int(suspended), installation_id],
        )

    def is_suspended(self, installation_id: int) -> bool:
        row = self._exec(
            "SELECT suspended FROM installations WHERE id = ?", [installation_id]
        ).fetchone()
        return bool(row and row[0])

    def delete_installation(self, installation_id: int) -> list[str]:
        """Forget the installation and everything about its repositories; returns them."""
        repos = self.installation_repositories(installation_id)
        for full_name in repos:
            self.remove_repository(full_name)
        self._exec("DELETE FROM installations WHERE id = ?", [installation_id])
        return repos

    def installation_ids(self) -> list[int]:
        rows = self._exec("SELECT id FROM installations ORDER BY id")
        return [r[0] for r in rows]

    def installation_repositories(self, installation_id: int) -> list[str]:
        rows = self._exec(
            "SELECT full_name FROM repositories WHERE installation_id = ? ORDER BY full_name",
            [installation_id],
        )
        return [r[0] for r in rows]

    # -- repositories -------------------------------------------------------

    def add_repository(
        self, full_name: str, installation_id: int, *, default_branch: str | None = None
    ) -> None:
        if not self.installation_known(installation_id):
            self.upsert_installation(installation_id)
        self._exec(
            "INSERT INTO repositories (full_name, installation_id, default_branch) "
            "VALUES (?, ?, ?) ON CONFLICT(full_name) DO UPDATE SET "
            "installation_id = excluded.installation_id, "
            "default_branch = COALESCE(excluded.default_branch, default_branch)",
            [full_name, installation_id, default_branch],
        )

    def remove_repository(self, full_name: str) -> None:
        for table, column in (
            ("repositories", "full_name"),
            ("policies", "repository"),
            ("automations", "repository"),
            ("declined", "repository"),
        ):
            self._exec(f"DELETE FROM {table} WHERE {column} = ?", [full_name])

    def repository(self, full_name: str) -> RepositoryRecord | None:
        row = self._exec(
            "SELECT full_name, installation_id, default_branch, head_sha, config_sha, "
            "config_text, dirty, policy_errors FROM repositories "
            "WHERE full_name = ?",
            [full_name],
        ).fetchone()
        if row is None:
            return None
        return RepositoryRecord(
            full_name=row[0],
            installation_id=row[1],
            default_branch=row[2],
            head_sha=row[3],
            config_sha=row[4],
            config_text=row[5],
            dirty=int(row[6]),
            policy_errors=json.loads(row[7] or "{}"),
        )

    def repositories(self) -> list[RepositoryRecord]:
        names = [r[0] for r in self._exec("SELECT full_name FROM repositories ORDER BY 1")]
        return [rec for name in names if (rec := self.repository(name)) is not None]

    def save_repository(self, record: RepositoryRecord) -> None:
        self._exec(
            "UPDATE repositories SET installation_id = ?, default_branch = ?, head_sha = ?, "
            "config_sha = ?, config_text = ?, policy_errors = ? "
            "WHERE full_name = ?",
            [
                record.installation_id,
                record.default_branch,
                record.head_sha,
                record.config_sha,
                record.config_text,
                json.dumps(record.policy_errors, sort_keys=True),
                record.full_name,
            ],
        )

    def mark_dirty(self, full_name: str) -> None:
        """Something changed that the short-circuit key does not cover: run fully next time."""
        self._exec("UPDATE repositories SET dirty = dirty + 1 WHERE full_name = ?", [full_name])

    def clear_dirty(self, full_name: str, *, seen: int) -> None:
        """A full run that started at mark count `seen` is done; later marks stay."""
        self._exec(
            "UPDATE repositories SET dirty = MAX(0, dirty - ?) WHERE full_name = ?",
            [seen, full_name],
        )

    # -- the latest image per policy --------------------------------------

    def latest(self, repository: str) -> dict[str, LatestRef]:
        """The latest image of each policy, as the last complete run saw it."""
        rows = self._exec(
            "SELECT policy, name, tag, digest FROM policies WHERE repository = ?", [repository]
        )
        return {r[0]: LatestRef(name=r[1], tag=r[2], digest=r[3]) for r in rows}

    def save_latest(self, repository: str, latest: Mapping[str, LatestRef]) -> None:
        self._exec("DELETE FROM policies WHERE repository = ?", [repository])
        for policy, ref in latest.items():
            self._exec(
                "INSERT INTO policies (repository, policy, name, tag, digest) "
                "VALUES (?, ?, ?, ?, ?)",
                [repository, policy, ref.name, ref.tag, ref.digest],
            )

    # -- automations ----------------------------------------------------------

    _AUTOMATION_COLUMNS = tuple(f.name for f in fields(AutomationState) if f.compare)

    def _automation_from_row(self, row: tuple) -> AutomationState:
        values = dict(zip(self._AUTOMATION_COLUMNS, row, strict=True))
        values["pr_labels"] = json.loads(values["pr_labels"] or "[]")
        values["taken_over"] = bool(values["taken_over"])
        values["taken_over_noted"] = bool(values["taken_over_noted"])
        return AutomationState(**values, loaded_taken_over=values["taken_over"], stored=True)

    def automation_state(self, repository: str, automation: str) -> AutomationState:
        row = self._exec(
            f"SELECT {', '.join(self._AUTOMATION_COLUMNS)} FROM automations "
            "WHERE repository = ? AND automation = ?",
            [repository, automation],
        ).fetchone()
        if row is None:
            return AutomationState(repository=repository, automation=automation)
        return self._automation_from_row(row)

    def automation_states(self, repository: str) -> list[AutomationState]:
        rows = self._exec(
            f"SELECT {', '.join(self._AUTOMATION_COLUMNS)} FROM automations "
            "WHERE repository = ? ORDER BY automation",
            [repository],
        )
        return [self._automation_from_row(row) for row in rows]

    def automation_for_branch(self, repository: str, push_branch: str) -> AutomationState | None:
        for state in self.automation_states(repository):
            if state.push_branch == push_branch:
                return state
        return None

    def save_automation_state(self, state: AutomationState) -> None:
        """Write the row; taken over, marked meanwhile by a webhook, survives a save that did not see it."""
        values = [getattr(state, name) for name in self._AUTOMATION_COLUMNS]
        values[self._AUTOMATION_COLUMNS.index("pr_labels")] = json.dumps(state.pr_labels)
        columns = ", ".join(self._AUTOMATION_COLUMNS)
        placeholders = ", ".join("?" for _ in values)
        updates = ", ".join(
            f"{c} = excluded.{c}" for c in self._AUTOMATION_COLUMNS if c != "taken_over"
        )
        keep_mark = "" if state.loaded_taken_over else " OR automations.taken_over"
        self._exec(
            f"INSERT INTO automations ({columns}) VALUES ({placeholders}) "
            f"ON CONFLICT(repository, automation) DO UPDATE SET {updates}, "
            f"taken_over = (excluded.taken_over{keep_mark})",
            [int(v) if isinstance(v, bool) else v for v in values],
        )
        state.loaded_taken_over = state.taken_over
        state.stored = True

    def forget_automation(self, repository: str, automation: str) -> None:
        """The automation left the config: its branch and PR are no longer the bot's."""
        self._exec(
            "DELETE FROM automations WHERE repository = ? AND automation = ?",
            [repository, automation],
        )

    # -- outcomes of PRs ----------------------------------------------------------

    def decline_change_set(
        self, repository: str, automation: str, change_set: str, *, pr_number: int | None
    ) -> None:
        self._exec(
            "INSERT OR REPLACE INTO declined (repository, automation, change_set, pr_number, "
            "closed_at) VALUES (?, ?, ?, ?, ?)",
            [repository, automation, change_set, pr_number, self._clock()],
        )

    def forget_declined(self, repository: str, automation: str, change_set: str) -> None:
        self._exec(
            "DELETE FROM declined WHERE repository = ? AND automation = ? AND change_set = ?",
            [repository, automation, change_set],
        )

    def declined_by_pull_request(
        self, repository: str, automation: str, pr_number: int
    ) -> list[str]:
        rows = self._exec(
            "SELECT change_set FROM declined WHERE repository = ? AND automation = ? "
            "AND pr_number = ?",
            [repository, automation, pr_number],
        )
        return [r[0] for r in rows]

    def is_declined(self, repository: str, automation: str, change_set: str) -> bool:
        row = self._exec(
            "SELECT 1 FROM declined WHERE repository = ? AND automation = ? AND change_set = ?",
            [repository, automation, change_set],
        ).fetchone()
        return row is not None

    def record_merged(
        self, repository: str, automation: str, pr_number: int, change_set: str | None
    ) -> None:
        self._exec(
            "INSERT OR REPLACE INTO merged (repository, automation, pr_number, change_set, "
            "merged_at) VALUES (?, ?, ?, ?, ?)",
            [repository, automation, pr_number, change_set, self._clock()],
        )

    def merged_prs(self, repository: str) -> list[tuple[str, int, str | None]]:
        rows = self._exec(
            "SELECT automation, pr_number, change_set FROM merged WHERE repository = ? "
            "ORDER BY merged_at",
            [repository],
        )
        return [(r[0], r[1], r[2]) for r in rows]
