"""Benchmark: acknowledging webhook deliveries with a million delivery ids remembered.

    python bench/bench_deliveries.py [--rows 1000000] [--deliveries 1000] [--out FILE]

Makes a database file with `Store.open` (the schema of the newest migration),
fills it with `--rows` remembered deliveries (received over the last 15 days,
so about 1 in 15 is past the 14-day retention and waits to be forgotten),
opens it again with `Store.open` (the start-up cost is measured); then sends
signed ``push`` deliveries through the real aiohttp app (`bot.web.make_app`, a
real `Scheduler`, served on 127.0.0.1) one after another and times each
acknowledgement as the client sees it.

The measurement of before issue 8 (``--before``: no index, an unbounded delete
per delivery) needed the store of that time and went with it; its figures stay
in docs/bench-deliveries.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
from aiohttp.test_utils import TestServer  # noqa: E402

from bot.handlers import Services  # noqa: E402
from bot.scheduler import Scheduler  # noqa: E402
from bot.store import Claim, Store  # noqa: E402
from bot.store.store import DELIVERY_EXPIRY_BATCH, DELIVERY_RETENTION  # noqa: E402
from bot.web import make_app  # noqa: E402
from tests.datapaths import GITHUB_DATA  # noqa: E402

SECRET = "bench-webhook-secret"
PUSH = GITHUB_DATA / "webhooks/payload-examples/api.github.com/push/with-new-branch.payload.json"
DAY = 24 * 3600.0


def fill(path: Path, rows: int, now: float) -> float:
    """`rows` deliveries spread over the last 15 days, in the store's own table; seconds."""
    Store.open(f"sqlite:///{path}").close()
    start = time.perf_counter()
    db = sqlite3.connect(path)
    span = 15 * DAY
    db.executemany(
        "INSERT INTO deliveries (id, event, received_at) VALUES (?, 'push', ?)",
        ((str(uuid.UUID(int=i)), now - span + span * i / rows) for i in range(rows)),
    )
    db.commit()
    db.close()
    return time.perf_counter() - start


def counts(path: Path, now: float) -> tuple[int, int]:
    """(remembered deliveries, of which expired), read from the file."""
    db = sqlite3.connect(path)
    try:
        total = db.execute("SELECT count(*) FROM deliveries").fetchone()[0]
        expired = db.execute(
            "SELECT count(*) FROM deliveries WHERE received_at < ?", [now - DELIVERY_RETENTION]
        ).fetchone()[0]
    finally:
        db.close()
    return total, expired


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def acknowledge(store: Store, deliveries: int, warmup: int) -> dict[str, list[float]]:
    async def run(claim: Claim) -> None:
        return None

    scheduler = Scheduler(run, store.schedule, concurrency=1, tick=1.0)
    server = TestServer(make_app(Services(store, scheduler), secret=SECRET), host="127.0.0.1")
    await server.start_server()
    scheduler.start()
    body = PUSH.read_bytes()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    url = str(server.make_url("/api/github/webhooks"))
    times: dict[str, list[float]] = {"new": [], "redelivered": []}
    try:
        async with aiohttp.ClientSession() as session:

            async def post(delivery: str) -> tuple[int, float]:
                headers = {
                    "X-GitHub-Event": "push",
                    "X-GitHub-Delivery": delivery,
                    "X-Hub-Signature-256": signature,
                    "Content-Type": "application/json",
                }
                start = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                return response.status, (time.perf_counter() - start) * 1000

            for i in range(warmup + deliveries):
                delivery = str(uuid.uuid4())
                status, ms = await post(delivery)
                assert status == 202, status
                if i >= warmup:
                    times["new"].append(ms)
                    if i % 10 == 0:
                        status, ms = await post(delivery)
                        assert status == 200, status
                        times["redelivered"].append(ms)
    finally:
        await scheduler.stop(grace=1)
        await server.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bot.db"
        now = time.time()
        fill_s = fill(path, args.rows, now)
        start = time.perf_counter()
        store = Store.open(f"sqlite:///{path}")
        open_s = time.perf_counter() - start
        total, expired = counts(path, now)
        times = asyncio.run(acknowledge(store, args.deliveries, args.warmup))
        store.close()
        after_total, after_expired = counts(path, time.time())

    new, again = times["new"], times["redelivered"]
    lines = [
        f"### {total:,} remembered deliveries ({expired:,} past retention)",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| fill {args.rows:,} rows (one transaction) | {fill_s:.1f} s |",
        f"| `Store.open` of the filled file | {open_s * 1000:.0f} ms |",
        f"| new delivery acknowledged (202), n={len(new)}: p50 | {statistics.median(new):.2f} ms |",
        f"| p99 | {percentile(new, 99):.2f} ms |",
        f"| max | {max(new):.2f} ms |",
        f"| redelivery (200, already handled), n={len(again)}: p50 | {statistics.median(again):.2f} ms |",
        f"| remembered after the run | {after_total:,} ({after_expired:,} past retention) |",
        f"| expired ids forgotten per delivery (at most) | {DELIVERY_EXPIRY_BATCH} |",
        "",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
