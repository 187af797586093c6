"""The persisted state: survives reopening, keeps repositories apart, refuses bad URLs.

Every test that is not about SQLite's own files runs on both backends
(`database_url`: a SQLite file and a database on a real PostgreSQL).
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from bot.policy.model import LatestRef
from bot.store import AutomationState, Store, StoreError
from bot.store.store import DELIVERY_EXPIRY_BATCH, DELIVERY_RETENTION


def test_everything_survives_a_reopen(database_url):
    url = database_url
    store = Store.open(url)
    store.upsert_installation(7, account="octo-org", permissions={"contents": "write"})
    store.add_repository("octo-org/app", 7, default_branch="main")
    record = store.repository("octo-org/app")
    record.head_sha = "a" * 40
    record.config_sha = "c" * 40
    record.config_text = b"version: 1\n"
    store.save_repository(record)
    store.clear_dirty("octo-org/app", seen=record.dirty)
    record.dirty = 0
    latest = {"p": LatestRef("ghcr.io/o/app", "1.2.3", "sha256:" + "d" * 64)}
    store.save_latest("octo-org/app", latest)
    state = AutomationState(
        "octo-org/app",
        "auto",
        push_branch="image-automation/auto",
        base_branch="main",
        written_sha="b" * 40,
        pr_number=4,
        pr_labels=["deps"],
        change_set="cs1",
    )
    store.save_automation_state(state)
    store.decline_change_set("octo-org/app", "auto", "cs0", pr_number=3)
    store.record_delivery("guid-1", "push")
    store.close()

    again = Store.open(url)
    assert again.repository("octo-org/app") == record
    assert again.latest("octo-org/app") == latest
    assert again.automation_state("octo-org/app", "auto") == state
    assert again.automation_for_branch("octo-org/app", "image-automation/auto") == state
    assert again.is_declined("octo-org/app", "auto", "cs0")
    assert not again.is_declined("octo-org/app", "auto", "cs1")
    assert again.delivery_seen("guid-1")
    assert not again.delivery_seen("guid-2")
    assert again.installation_permissions(7) == {"contents": "write"}


def test_unknown_automation_state_is_empty_and_bot_wrote_is_exact(database_url):
    store = Store.open(database_url)
    state = store.automation_state("o/r", "a")
    assert state == AutomationState("o/r", "a")
    assert not state.bot_wrote(None)
    state.written_sha, state.prior_sha = "1" * 40, "2" * 40
    assert state.bot_wrote("1" * 40) and state.bot_wrote("2" * 40)
    assert not state.bot_wrote("3" * 40)


def test_deleting_an_installation_forgets_its_repositories_only(database_url):
    store = Store.open(database_url)
    store.add_repository("a/one", 1)
    store.add_repository("a/two", 1)
    store.add_repository("b/three", 2)
    store.save_automation_state(AutomationState("a/one", "x", pr_number=1))
    assert store.delete_installation(1) == ["a/one", "a/two"]
    assert [r.full_name for r in store.repositories()] == ["b/three"]
    assert store.automation_states("a/one") == []
    assert not store.installation_known(1)
    assert store.installation_known(2)


def test_suspension_and_dirty_flags(database_url):
    store = Store.open(database_url)
    store.add_repository("a/one", 1)
    assert not store.is_suspended(1)
    store.set_suspended(1, True)
    assert store.is_suspended(1)
    record = store.repository("a/one")
    assert record.dirty  # never run: a full run is due
    store.mark_dirty("a/one")  # something happens while a run is under way...
    store.clear_dirty("a/one", seen=record.dirty)  # ...that run ends
    assert store.repository("a/one").dirty  # so the next run is still a full one
    store.clear_dirty("a/one", seen=store.repository("a/one").dirty)
    assert not store.repository("a/one").dirty


def test_old_deliveries_are_forgotten(database_url):
    now = [1000.0]
    store = Store.open(database_url, clock=lambda: now[0])
    store.record_delivery("old", "push")
    now[0] += DELIVERY_RETENTION + 1
    store.record_delivery("new", "push")
    assert not store.delivery_seen("old")
    assert store.delivery_seen("new")


def test_forget_pull_request_clears_taken_over():
    state = AutomationState("o/r", "a", pr_number=5, taken_over=True, taken_over_noted=True)
    state.pr_title, state.change_set = "t", "cs"
    state.forget_pull_request()
    assert (state.pr_number, state.taken_over, state.taken_over_noted, state.change_set) == (
        None,
        False,
        False,
        None,
    )


@pytest.mark.parametrize(
    "url", ["mysql://x/y", "postgresql://host:5432", "sqlite://relative", "sqlite:///", "", "::"]
)
def test_unsupported_database_urls_say_what_to_use(url):
    with pytest.raises(StoreError, match="sqlite:///"):
        Store.open(url)


def test_unwritable_database_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises((StoreError, OSError)):
        Store.open(f"sqlite:///{blocker}/db.sqlite")


def test_a_lock_set_by_a_webhook_survives_a_run_that_did_not_see_it(database_url):
    store = Store.open(database_url)
    store.save_automation_state(AutomationState("o/r", "a", written_sha="b" * 40))
    run = store.automation_state("o/r", "a")  # a reconcile holds this meanwhile
    webhook = store.automation_state("o/r", "a")
    webhook.taken_over = True
    store.save_automation_state(webhook)
    run.pr_number = 7
    store.save_automation_state(run)
    again = store.automation_state("o/r", "a")
    assert (again.pr_number, again.taken_over) == (7, True)
    # A run that saw the lock may lift it (the branch was given back).
    again.taken_over = False
    store.save_automation_state(again)
    assert not store.automation_state("o/r", "a").taken_over


def test_a_database_of_the_first_schema_is_migrated_with_its_data(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE automations (
            repository TEXT NOT NULL, automation TEXT NOT NULL,
            push_branch TEXT NOT NULL DEFAULT '', base_branch TEXT NOT NULL DEFAULT '',
            base_sha TEXT, written_sha TEXT, prior_sha TEXT, pr_number INTEGER,
            pr_title TEXT, pr_body TEXT, pr_labels TEXT, change_set TEXT,
            human_edited INTEGER NOT NULL DEFAULT 0, human_noted INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (repository, automation));
        CREATE TABLE repositories (
            full_name TEXT PRIMARY KEY, installation_id INTEGER NOT NULL,
            default_branch TEXT, head_sha TEXT, config_sha TEXT, config_text BLOB,
            observed TEXT, dirty INTEGER NOT NULL DEFAULT 1, last_error TEXT);
        CREATE TABLE rejected (
            repository TEXT NOT NULL, automation TEXT NOT NULL, change_set TEXT NOT NULL,
            pr_number INTEGER, closed_at REAL NOT NULL,
            PRIMARY KEY (repository, automation, change_set));
        INSERT INTO automations (repository, automation, pr_number, human_edited, human_noted)
            VALUES ('o/r', 'a', 4, 1, 1);
        INSERT INTO repositories (full_name, installation_id, head_sha) VALUES ('o/r', 7, 'abc');
        INSERT INTO rejected VALUES ('o/r', 'a', 'cs0', 3, 0);
        """
    )
    old.commit()
    old.close()
    store = Store.open(f"sqlite:///{path}")
    state = store.automation_state("o/r", "a")
    assert (state.pr_number, state.taken_over, state.taken_over_noted) == (4, True, True)
    assert store.is_declined("o/r", "a", "cs0")
    assert store.repository("o/r").head_sha == "abc"
    store.save_automation_state(state)  # writes through the new columns
    assert store.automation_state("o/r", "a") == state


# -- deliveries: indexed, bounded retention ----------------------------------------------------


def test_retention_deletes_a_bounded_batch_oldest_first(database_url):
    now = [1000.0]
    store = Store.open(database_url, clock=lambda: now[0])
    for i in range(DELIVERY_EXPIRY_BATCH * 2 + 50):
        now[0] += 1
        store.record_delivery(f"old-{i}", "push")
    now[0] += DELIVERY_RETENTION + 1
    store.record_delivery("new-0", "push")
    # One delivery forgets one batch, the oldest first; the rest waits for the next ones.
    assert not store.delivery_seen("old-0")
    assert not store.delivery_seen(f"old-{DELIVERY_EXPIRY_BATCH - 1}")
    assert store.delivery_seen(f"old-{DELIVERY_EXPIRY_BATCH}")
    store.record_delivery("new-1", "push")
    store.record_delivery("new-2", "push")
    assert not any(store.delivery_seen(f"old-{i}") for i in range(DELIVERY_EXPIRY_BATCH * 2 + 50))
    assert all(store.delivery_seen(f"new-{i}") for i in range(3))


def test_an_existing_database_gets_the_retention_index_and_uses_it(tmp_path):
    path = tmp_path / "before-index.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE deliveries (id TEXT PRIMARY KEY, event TEXT NOT NULL, received_at REAL NOT NULL)"
    )
    old.executemany(
        "INSERT INTO deliveries VALUES (?, 'push', ?)", [(f"d{i}", float(i)) for i in range(500)]
    )
    old.commit()
    old.close()

    store = Store.open(f"sqlite:///{path}", clock=lambda: DELIVERY_RETENTION + 250.5)
    assert store.delivery_seen("d499")
    store.record_delivery("new", "push")
    assert not store.delivery_seen("d0") and store.delivery_seen("d100")
    store.close()

    check = sqlite3.connect(path)
    indexes = {
        row[0] for row in check.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    assert "deliveries_received_at" in indexes
    plan = " ".join(
        str(row[-1])
        for row in check.execute(
            "EXPLAIN QUERY PLAN SELECT rowid FROM deliveries WHERE received_at < ? "
            "ORDER BY received_at LIMIT ?",
            [1.0, DELIVERY_EXPIRY_BATCH],
        )
    )
    check.close()
    assert (
        "USING INDEX deliveries_received_at" in plan
        or "USING COVERING INDEX deliveries_received_at" in plan
    )


# -- health: a real write tells whether the database can be written ---------------------------


@contextlib.contextmanager
def unwritable(directory: Path) -> Iterator[None]:
    """`directory` and the database files in it made immutable (``chattr +i``), then restored.

    Tests run as root here, and root writes through ``chmod``; an immutable file
    refuses even root, as a read-only mount would. The ``-shm`` file is left
    alone: SQLite maps it into memory, and a mapped page that may not be written
    kills the process with SIGBUS rather than failing a write.
    """
    files = [p for p in directory.iterdir() if not p.name.endswith("-shm")]
    paths = [str(p) for p in (directory, *files)]
    subprocess.run(["chattr", "+i", *paths], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *paths], check=True)


def test_check_writable_fails_while_the_database_cannot_be_written_and_recovers(tmp_path):
    directory = tmp_path / "db"
    store = Store.open(f"sqlite:///{directory}/bot.db")
    store.check_writable()
    with unwritable(directory):
        with pytest.raises(StoreError, match="database not writable"):
            store.check_writable()
        with pytest.raises(OperationalError):
            store.record_delivery("while-frozen", "push")
        assert not store.delivery_seen("while-frozen")
        with pytest.raises(StoreError):
            store.check_writable()  # still not, and still says so
    # No restart: the same connection writes again.
    store.check_writable()
    store.record_delivery("after", "push")
    store.add_repository("octo-org/app", 7)
    store.close()
    again = Store.open(f"sqlite:///{directory}/bot.db")
    assert again.delivery_seen("after") and not again.delivery_seen("while-frozen")
    assert again.repository("octo-org/app") is not None


def test_check_writable_on_each_backend(database_url):
    Store.open(database_url).check_writable()


def test_check_writable_on_a_memory_database():
    Store.open("sqlite:///:memory:").check_writable()
