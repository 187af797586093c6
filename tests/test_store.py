"""The persisted state: survives reopening, keeps repositories apart, refuses bad URLs."""

from __future__ import annotations

import pytest

from bot.policy.model import LatestRef
from bot.store import AutomationState, Store, StoreError
from bot.store.sqlite import DELIVERY_RETENTION


def test_everything_survives_a_reopen(tmp_path):
    url = f"sqlite:///{tmp_path}/state/bot.db"
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


def test_unknown_automation_state_is_empty_and_bot_wrote_is_exact():
    store = Store.open("sqlite:///:memory:")
    state = store.automation_state("o/r", "a")
    assert state == AutomationState("o/r", "a")
    assert not state.bot_wrote(None)
    state.written_sha, state.prior_sha = "1" * 40, "2" * 40
    assert state.bot_wrote("1" * 40) and state.bot_wrote("2" * 40)
    assert not state.bot_wrote("3" * 40)


def test_deleting_an_installation_forgets_its_repositories_only():
    store = Store.open("sqlite:///:memory:")
    store.add_repository("a/one", 1)
    store.add_repository("a/two", 1)
    store.add_repository("b/three", 2)
    store.save_automation_state(AutomationState("a/one", "x", pr_number=1))
    assert store.delete_installation(1) == ["a/one", "a/two"]
    assert [r.full_name for r in store.repositories()] == ["b/three"]
    assert store.automation_states("a/one") == []
    assert not store.installation_known(1)
    assert store.installation_known(2)


def test_suspension_and_dirty_flags():
    store = Store.open("sqlite:///:memory:")
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


def test_old_deliveries_are_forgotten():
    now = [1000.0]
    store = Store.open("sqlite:///:memory:", clock=lambda: now[0])
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


@pytest.mark.parametrize("url", ["postgres://x/y", "sqlite://relative", "sqlite:///", ""])
def test_unsupported_database_urls_say_what_to_use(url):
    with pytest.raises(StoreError, match="sqlite:///"):
        Store.open(url)


def test_unwritable_database_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises((StoreError, OSError)):
        Store.open(f"sqlite:///{blocker}/db.sqlite")


def test_a_lock_set_by_a_webhook_survives_a_run_that_did_not_see_it():
    store = Store.open("sqlite:///:memory:")
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
    import sqlite3

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
