"""Issue 8 §5 and §6 end to end: ``python -m bot serve`` as a process takes what GitHub
sends and nothing else, and says when its database cannot be written.

Deliveries here are built and signed by the test (the simulator only sends what
GitHub would); what the bot stored is read from its sqlite file, read-only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import uuid
from pathlib import Path

import aiohttp
import pytest

from bot.web import MAX_BODY_BYTES
from tests.e2e.served import SECRET, Served, serving
from tests.test_store import unwritable
from tests.test_webhook_payloads import HOSTILE, JUNK_BUT_VALID, JUNK_NAMES, example

pytestmark = pytest.mark.e2e

INSTALLATION = 957387


def signed(event: str, body: bytes, *, delivery: str | None = None, **extra: str) -> dict:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256="
        + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/e2e",
        **extra,
    }


def suspended_installation(names: list[str]) -> bytes:
    """`installation created` for `names`, already suspended: the reconciles it asks for
    end at once, rather than asking the simulator about repositories it does not have."""
    payload = example("installation", "created.payload.json")
    payload["installation"]["repository_selection"] = "all"
    payload["installation"]["suspended_at"] = "2026-12-01T00:00:00Z"
    payload["repositories"] = [
        {
            "id": 700_000_000 + i,
            "node_id": f"R_{i}",
            "name": n.split("/")[1],
            "full_name": n,
            "private": True,
        }  # fmt: skip
        for i, n in enumerate(names)
    ]
    return json.dumps(payload).encode()


def database(bot: Served) -> Path:
    return Path(bot.env["DATABASE_URL"].removeprefix("sqlite:///"))


def read(bot: Served, sql: str) -> list[tuple]:
    """What the bot stored, read without writing (the bot keeps the file open)."""
    connection = sqlite3.connect(f"file:{database(bot)}?mode=ro", uri=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


@pytest.fixture
async def bot(tmp_path, github_sim, app_key):
    # The database in a directory of its own, so that it can be made unwritable alone.
    database = f"sqlite:///{tmp_path}/db/bot.db"
    async with serving(tmp_path, github_sim, app_key, DATABASE_URL=database) as served:
        yield served
    assert "Traceback" not in served.text()


async def post(bot: Served, event: str, body: bytes, **kwargs) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{bot.url}/api/github/webhooks", data=body, headers=signed(event, body, **kwargs)
        ) as response,
    ):
        return response.status, await response.text()


async def get(bot: Served, path: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.get(f"{bot.url}{path}") as response:
        return response.status, await response.json()


async def test_a_12000_repository_installation_is_accepted_and_stored(bot):
    names = [f"big-org/service-{i:05d}" for i in range(12_000)]
    body = suspended_installation(names)
    assert len(body) > 1024 * 1024  # aiohttp's default limit refused it
    status, text = await post(bot, "installation", body)
    assert status == 202, text
    stored = read(bot, f"SELECT full_name FROM repositories WHERE installation_id = {INSTALLATION} ORDER BY 1")  # fmt: skip
    assert [name for (name,) in stored] == names
    assert read(bot, "SELECT id, suspended FROM installations") == [(INSTALLATION, 1)]
    assert (await get(bot, "/readyz"))[0] == 200


async def test_only_sha256_signatures_and_bodies_up_to_25_mb(bot):
    body = suspended_installation(["octo-org/app"])
    sha1 = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    status, text = await post(bot, "installation", body, **{"X-Hub-Signature-256": sha1})
    assert status == 401 and "sha256=" in text
    status, _ = await post(
        bot, "installation", body, **{"X-Hub-Signature-256": "", "X-Hub-Signature": sha1}
    )
    assert status == 401

    payload = json.loads(body)
    payload["sender"]["bio"] = "x" * MAX_BODY_BYTES
    too_large = json.dumps(payload).encode()
    status, text = await post(bot, "installation", too_large)
    assert status == 413 and "25 MB" in text
    assert read(bot, "SELECT full_name FROM repositories") == []

    status, text = await post(bot, "installation", body)  # the same, properly signed
    assert status == 202, text
    assert read(bot, "SELECT full_name FROM repositories") == [("octo-org/app",)]


async def test_malformed_signed_deliveries_are_400_and_nothing_junk_is_stored(bot):
    bot.sim.create_repository("octo-org/app", files={"README.md": b"no config here\n"})
    bot.sim.create_installation(bot.app_id, account="octo-org", repositories=["octo-org/app"])
    await bot.log_line("octo-org/app: *: no .github/image-automation.yml")

    async def run_stored():  # the run's end (its lease released, next due time) is stored
        return read(bot, "SELECT 1 FROM repositories WHERE lease_holder IS NOT NULL") == []

    await bot.wait_until(run_stored, what="the run's end to be stored")
    before = {
        table: read(bot, f"SELECT * FROM {table} ORDER BY 1")
        for table in ("installations", "repositories")
    }
    assert before["repositories"] and before["installations"]

    for hostile in HOSTILE:
        status, text = await post(
            bot, hostile.event, hostile.body, delivery=f"hostile-{hostile.name}"
        )
        assert status == 400, (hostile.name, text)
        assert hostile.field in text, (hostile.name, text)

    # Exactly what the simulator's installation stored; no junk name, not even the valid
    # one that came before a bad entry; no refused delivery remembered.
    for table, rows in before.items():
        assert read(bot, f"SELECT * FROM {table} ORDER BY 1") == rows
    remembered = {d for (d,) in read(bot, "SELECT id FROM deliveries")}
    assert not {d for d in remembered if d.startswith("hostile-")}
    # Never reconciled: a refused name is not even in the log (messages name the field).
    log = bot.text()
    for junk in (JUNK_BUT_VALID, *JUNK_NAMES):
        assert junk not in log
    # And the bot still does its work.
    assert (await get(bot, "/readyz"))[0] == 200


async def test_readyz_follows_whether_the_database_can_be_written(bot):
    assert await get(bot, "/readyz") == (200, {"status": "ok"})
    body = suspended_installation(["octo-org/after-recovery"])

    async def ready(expected: int):
        async def check():
            status, answer = await get(bot, "/readyz")
            return answer if status == expected else None

        return await bot.wait_until(check, what=f"/readyz {expected}", timeout=30)

    with unwritable(database(bot).parent):
        answer = await ready(503)
        assert answer["status"] == "unavailable" and "not writable" in answer["reason"]
        assert (await get(bot, "/healthz"))[0] == 200  # alive: only not ready
        status, text = await post(bot, "installation", body, delivery="while-unwritable")
        assert status == 503 and "not writable" in text

    assert await ready(200) == {"status": "ok"}
    # No restart: the redelivery is handled and stored, and then known as handled.
    status, text = await post(bot, "installation", body, delivery="while-unwritable")
    assert status == 202, text
    assert read(bot, "SELECT full_name FROM repositories") == [("octo-org/after-recovery",)]
    status, _ = await post(bot, "installation", body, delivery="while-unwritable")
    assert status == 200
    status, _ = await post(bot, "installation", body)
    assert status == 202
