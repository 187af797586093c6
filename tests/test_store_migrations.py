"""Migrations: the last release's databases upgrade in place, the migrated schema is the
declared one, and replicas starting together don't race each other's migrations."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bot.policy.model import LatestRef
from bot.store import Store
from bot.store.database import open_engine
from bot.store.schema import metadata
from tests.datapaths import DATA, REPO

RELEASE_0_1 = DATA / "store" / "release-0.1.db"


def test_a_database_written_by_release_0_1_upgrades_in_place_with_every_fact(tmp_path):
    path = tmp_path / "state.db"
    shutil.copy(RELEASE_0_1, path)
    store = Store.open(f"sqlite:///{path}", first_run_spread=600.0)

    assert store.installation_ids() == [7, 8]
    assert store.installation_permissions(7) == {"contents": "write", "pull_requests": "write"}
    assert store.is_suspended(8) and not store.is_suspended(7)
    assert store.installation_repositories(7) == ["octo-org/app", "octo-org/infra"]
    app = store.repository("octo-org/app")
    assert (app.head_sha, app.config_sha, app.config_text) == ("a" * 40, "c" * 40, b"version: 1\n")
    assert app.policy_errors == {"broken": "no tags"} and app.dirty == 0
    assert store.repository("octo-org/infra").default_branch == "trunk"
    assert store.latest("octo-org/app") == {
        "podinfo": LatestRef("ghcr.io/stefanprodan/podinfo", "6.5.4", "sha256:" + "d" * 64),
        "redis": LatestRef("docker.io/library/redis", "7.2.4", ""),
    }
    state = store.automation_state("octo-org/app", "prod")
    assert (state.pr_number, state.pr_labels, state.change_set) == (12, ["dependencies"], "cs-12")
    assert (state.written_sha, state.prior_sha) == ("b" * 40, "e" * 40)
    assert state.taken_over and state.taken_over_noted
    assert store.is_declined("octo-org/app", "prod", "cs-9")
    assert store.merged_prs("octo-org/app") == [("prod", 10, "cs-10")]
    assert store.delivery_seen("guid-1")
    # Known repositories are due spread over the first-run window, not all at once.
    due = [store.schedule.due_in(name) for name in ("octo-org/app", "octo-org/infra")]
    assert all(d is not None and -5 <= d <= 600 for d in due)
    store.check_writable()
    store.close()

    # Opened again: nothing to migrate, nothing changes.
    again = Store.open(f"sqlite:///{path}")
    assert again.automation_state("octo-org/app", "prod") == state
    again.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchall() == [("0003",)]


def test_the_migrated_schema_is_the_declared_one(database_url):
    engine = open_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        differences = compare_metadata(context, metadata)
    engine.dispose()
    assert differences == []


def test_the_upgraded_release_database_has_the_declared_schema_too(tmp_path):
    path = tmp_path / "state.db"
    shutil.copy(RELEASE_0_1, path)
    engine = open_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        columns = {c["name"] for c in sa.inspect(connection).get_columns("repositories")}
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert {"due_at", "lease_holder", "lease_expires", "requests", "failures"} <= columns
    # What remains is what SQLite does not tell apart: INTEGER for BOOLEAN and REAL for
    # FLOAT (the same affinity), and the release's TEXT PRIMARY KEYs declared without
    # NOT NULL. No table, column or index differs.
    same_affinity = {("INTEGER", "BOOLEAN"), ("REAL", "FLOAT")}
    remaining = []
    for difference in differences:
        change = difference[0] if isinstance(difference, list) else difference
        if change[0] == "modify_type" and (str(change[-2]), str(change[-1])) in same_affinity:
            continue
        if change[0] == "modify_nullable" and (change[2], change[3]) in PRIMARY_TEXT_KEYS:
            continue
        remaining.append(change)
    assert remaining == []


PRIMARY_TEXT_KEYS = {
    ("deliveries", "id"),
    ("health", "id"),
    ("installations", "id"),
    ("repositories", "full_name"),
}


OPEN = """
import sys
from bot.store import Store
store = Store.open(sys.argv[1])
store.add_repository(f"o/{sys.argv[2]}", 1)
store.close()
"""


def _start_together(url: str, count: int) -> list[subprocess.CompletedProcess]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN, url, str(i)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    return [
        subprocess.CompletedProcess(p.args, p.wait(timeout=120), *p.communicate())
        for p in processes
    ]


def test_replicas_starting_together_on_a_fresh_database_migrate_once(database_url):
    results = _start_together(database_url, 4)
    assert [r.returncode for r in results] == [0] * 4, [r.stderr for r in results]
    store = Store.open(database_url)
    assert sorted(r.full_name for r in store.repositories()) == [f"o/{i}" for i in range(4)]
    store.close()
    engine = sa.create_engine(store_url(database_url))
    with engine.connect() as connection:
        versions = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    engine.dispose()
    assert versions == [("0003",)]


def store_url(url: str) -> str:
    """The SQLAlchemy spelling of a DATABASE_URL (psycopg 3 for PostgreSQL)."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)
