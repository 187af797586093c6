"""The database behind the store: ``DATABASE_URL`` to an engine, migrated under a lock.

* ``sqlite:///path/to/file.db`` (the embedded default, one process) or
  ``sqlite:///:memory:``;
* ``postgresql://user:password@host:port/dbname`` (several replicas), through
  psycopg 3.

`open_engine` makes the engine and brings the schema to the newest migration
(`bot/store/migrations`) before anything else touches it. Replicas that start
together on a fresh database must not race each other's migrations, so the
whole upgrade, version stamp included, is one transaction that first takes a
lock: a PostgreSQL advisory lock, or SQLite's write lock (``BEGIN IMMEDIATE``).
The second replica waits, then finds the schema already new.

A database written by the last release before migrations has the tables but no
version: its older column names are fixed in that same transaction, then the
migrations run on it as on any other (the first one makes only missing tables).
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

log = logging.getLogger(__name__)
# Alembic narrates every start at INFO; our own line says what changed.
logging.getLogger("alembic").setLevel(logging.WARNING)

DEFAULT_DATABASE_URL = "sqlite:///image-automation.db"

MIGRATIONS = Path(__file__).parent / "migrations"

#: Key of the PostgreSQL advisory lock held while migrating ("imgauto" in ASCII).
MIGRATION_LOCK_KEY = 0x696D6761_75746F

#: How long a statement waits for a lock another process holds (SQLite busy timeout).
LOCK_WAIT_SECONDS = 30.0

#: Execution option of a connection that only reads (`reader`).
READ_ONLY = "image_automation_read_only"

#: Columns the last release renamed or added after its first schema:
#: (table, old name or None, new name, type).
_LEGACY_COLUMNS = (
    ("automations", "human_edited", "taken_over", ""),
    ("automations", "human_noted", "taken_over_noted", ""),
    ("automations", None, "released_head", "TEXT"),
    ("repositories", None, "policy_errors", "TEXT"),
)


class StoreError(Exception):
    """The database cannot be opened or written (bad DATABASE_URL, unwritable path...)."""


def engine_url(url: str) -> sa.URL:
    """The SQLAlchemy URL of a ``DATABASE_URL``; `StoreError` says what is accepted."""
    usage = (
        "use sqlite:///path/to/file.db (or sqlite:///:memory:) for one process, or "
        "postgresql://user:password@host:5432/dbname for replicas"
    )
    try:
        parsed = sa.make_url(url)
    except ArgumentError:
        # Never echo the URL itself: it may carry the database password.
        raise StoreError(f"DATABASE_URL is not a database URL: {usage}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.drivername == "sqlite":
        if not parsed.database or not url.startswith("sqlite:///"):
            raise StoreError(f"DATABASE_URL {url!r} has no database file: {usage}")
        return parsed.set(drivername="sqlite+pysqlite")
    # ``postgres://`` is the spelling many hosted databases hand out.
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg"):
        if not parsed.database:
            raise StoreError(f"DATABASE_URL names no database: {usage}")
        return parsed.set(drivername="postgresql+psycopg")
    raise StoreError(f"DATABASE_URL scheme {parsed.drivername!r} is not supported: {usage}")


def open_engine(url: str, *, first_run_spread: float = 0.0) -> Engine:
    """An engine on the migrated database; `StoreError` when it can't be opened or migrated.

    `first_run_spread`: repositories an old database already knows become due
    spread over this many seconds (migration 0002), not all at once.
    """
    target = engine_url(url)
    if target.get_backend_name() == "sqlite":
        engine = _sqlite_engine(target)
    else:
        engine = sa.create_engine(
            target,
            # No pre-ping: it costs a round trip per transaction. A connection the
            # server dropped fails one call, and the pool replaces it.
            pool_recycle=1800,
            pool_size=5,
            max_overflow=5,
            connect_args={"connect_timeout": 10, "application_name": "image-automation-bot"},
        )
    try:
        upgrade(engine, first_run_spread=first_run_spread)
    except (SQLAlchemyError, OSError) as exc:
        engine.dispose()
        raise StoreError(f"cannot open the database (DATABASE_URL): {_reason(exc)}") from exc
    return engine


def _sqlite_engine(target: sa.URL) -> Engine:
    path = target.database or ""
    memory = path == ":memory:"
    if not memory:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot open database {path!r} (DATABASE_URL): {exc}") from exc
    engine = sa.create_engine(
        target,
        connect_args={"check_same_thread": False, "timeout": LOCK_WAIT_SECONDS},
        # One shared connection: a memory database lives and dies with its connection.
        **({"poolclass": StaticPool} if memory else {}),
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:  # noqa: ANN001
        # Transactions are ours to begin (below), not the driver's guess.
        dbapi_connection.isolation_level = None
        if not memory:
            # WAL with NORMAL sync: a commit is not fsynced until the checkpoint, so a
            # power cut may lose the last moments, never consistency; deliveries that
            # were lost so are redelivered, and runs are repeated.
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # A write takes the write lock at the start: two writers never deadlock upgrading
        # a read lock. A read takes none, so it still works while writes can't.
        read = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

    return engine


def reader(engine: Engine) -> Engine:
    """The same engine and pool, for transactions that only read."""
    return engine.execution_options(**{READ_ONLY: True})


def upgrade(engine: Engine, *, first_run_spread: float = 0.0) -> None:
    """Bring the schema to the newest migration, in one transaction holding the lock."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
        tables = set(sa.inspect(connection).get_table_names())
        if tables and "alembic_version" not in tables:
            _fix_legacy_columns(connection, tables)
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        config.attributes["first_run_spread"] = first_run_spread
        before = MigrationContext.configure(connection).get_current_revision()
        command.upgrade(config, "head")
        after = MigrationContext.configure(connection).get_current_revision()
    if before != after:
        log.info("database schema migrated from %s to %s", before or "nothing", after)


def _fix_legacy_columns(connection: Connection, tables: set[str]) -> None:
    """The last release's own in-place fixes, for a database it left half-way."""
    if "rejected" in tables:  # the first schema's name for declined change sets
        connection.exec_driver_sql("DROP TABLE IF EXISTS declined")
        connection.exec_driver_sql("ALTER TABLE rejected RENAME TO declined")
        tables = (tables - {"rejected"}) | {"declined"}
    for table, old, new, kind in _LEGACY_COLUMNS:
        if table not in tables:
            continue
        columns = {c["name"] for c in sa.inspect(connection).get_columns(table)}
        if new in columns:
            continue
        if old is not None and old in columns:
            connection.exec_driver_sql(f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}")
        elif old is None:
            connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {new} {kind}")
    if "deliveries" in tables:
        connection.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS deliveries_received_at ON deliveries (received_at)"
        )


def _reason(exc: BaseException) -> str:
    """The driver's own words, without SQL or parameters (they may hold secrets)."""
    original = getattr(exc, "orig", None) or exc
    return str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__
