"""A fleet end to end (issue 10): three `python -m bot serve` replicas on one PostgreSQL,
200 repositories on the simulator, and one replica killed (SIGKILL) mid-run.

The simulator's App has one webhook URL, as behind a load balancer that picks one
replica: replica A gets the deliveries, B and C learn of the work from the schedule
in the database. B dies while it holds leases; A and C take its repositories over
once those leases expire and finish the work.

Afterwards every repository has exactly one PR, whose branch is exactly one commit on
top of the base, and the replicas' own logs (JSON, debug) show that no repository was
ever reconciled by two replicas at once: per repository, the run intervals of all
three replicas never overlap, the killed replica's unfinished runs counted until its
lease expired. The survivors stop cleanly on SIGTERM, mid-run, and leave no lease.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from bot.config import CONFIG_PATH
from tests.e2e.conftest import manifest
from tests.e2e.served import Served
from tests.manifests import BRANCH, podinfo_config

pytestmark = pytest.mark.e2e

COUNT = 200
REPOSITORIES = [f"octo-org/app-{i:03}" for i in range(COUNT)]
#: A, the webhook's target; B, the one killed; C.
REPLICAS = ("replica-a", "replica-b", "replica-c")
#: Short, so that the killed replica's repositories are taken over quickly.
LEASE = 3.0
STARTED = "run started (lease "
FINISHED = "run finished (lease "
TAKING_OVER = ": taking over from "


@dataclass
class Run:
    replica: str
    repository: str
    start: float
    end: float | None  # None: never finished (its replica was killed)


async def test_three_replicas_converge_200_repositories_with_one_killed_mid_run(
    tmp_path, github_sim, app_key, image, postgres_server, postgres_url
):
    began = time.monotonic()
    sim = github_sim.sim
    sim.rate_limit = 1_000_000  # 200 repositories on one installation: not the subject here
    dbname = postgres_url.rsplit("/", 1)[1]  # a fresh database, dropped after the test
    env = {
        "DATABASE_URL": postgres_url,
        "LEASE_SECONDS": str(LEASE),
        "CONCURRENCY": "4",
        "TICK_SECONDS": "0.2",
        # Inline: SIGKILL then leaves no orphaned worker processes behind.
        "WORKERS": "0",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "debug",
    }
    # All built before any starts: each registers the App afresh.
    a, b, c = replicas = [
        Served(tmp_path, github_sim, app_key, name=name, extra_env={**env, "REPLICA_NAME": name})
        for name in REPLICAS
    ]
    files = {
        # No interval: after its first run a repository waits for a webhook (or 5 minutes).
        CONFIG_PATH: podinfo_config(image=image, update_path="./deploy", labels=()).encode(),
        "deploy/app.yaml": manifest(image, "5.0.0"),
    }
    bases = {name: sim.create_repository(name, files=files) for name in REPOSITORIES}

    def leases(holder: str | None = None) -> dict[str, tuple[str, float]]:
        """repository -> (lease holder, lease expiry), of `holder` or of anyone."""
        with postgres_server.connect(dbname, autocommit=True) as db:
            rows = db.execute(
                "SELECT full_name, lease_holder, lease_expires FROM repositories"
                " WHERE lease_holder IS NOT NULL AND (%(holder)s::text IS NULL"
                " OR lease_holder = %(holder)s::text)",
                {"holder": holder},
            ).fetchall()
        return {name: (who, expires) for name, who, expires in rows}

    def busy() -> int:
        """Repositories held or due."""
        with postgres_server.connect(dbname, autocommit=True) as db:
            return db.execute(
                "SELECT count(*) FROM repositories WHERE lease_holder IS NOT NULL OR due_at <= %s",
                (time.time(),),
            ).fetchone()[0]

    def with_pr() -> int:
        return sum(
            any(p.state == "open" for p in sim.repo(name).pulls.values()) for name in REPOSITORIES
        )

    try:
        # Together, on a fresh database: their migrations must not race.
        await asyncio.gather(a.start(), b.start(webhook=False), c.start(webhook=False))
        # `installation created` reaches A only; A stores all 200 due now.
        sim.create_installation(a.app_id, account="octo-org", repositories=REPOSITORIES)

        # -- kill B mid-run: some PRs exist, not all, and B holds leases ----------------
        async def b_mid_run():
            done = with_pr()
            assert done < COUNT, "all PRs opened before B could be killed: make the work longer"
            return done >= COUNT // 4 and leases("replica-b")

        await b.wait_until(b_mid_run, what="B holding leases with some PRs open", timeout=60)
        killed_at = await b.kill()
        # Dead, so these cannot change any more; the survivors wait for them to expire.
        orphaned = leases("replica-b")
        prs_at_kill = with_pr()
        assert orphaned, "B held no lease when killed"
        assert prs_at_kill < COUNT

        # -- A and C finish the work -------------------------------------------------
        async def converged():
            for replica in (a, c):
                assert replica.process.poll() is None, f"{replica.name} died:\n{replica.text()}"
            if with_pr() < COUNT or sim.hooks.pending():
                return False
            return busy() == 0

        await a.wait_until(converged, what="a PR in every repository, nothing due", timeout=90)
        await asyncio.sleep(0.5)  # nothing more comes (a last webhook, a late run)
        assert sim.hooks.pending() == 0 and busy() == 0

        # -- SIGTERM mid-run: everything due again, stopped while runs are under way ---
        before = {r.name: r.text().count(STARTED) for r in (a, c)}
        with postgres_server.connect(dbname, autocommit=True) as db:
            db.execute("UPDATE repositories SET due_at = %s", (time.time(),))

        async def running_again():
            return all(r.text().count(STARTED) > before[r.name] for r in (a, c))

        await a.wait_until(running_again, what="A and C running again", timeout=30)
        codes = await asyncio.gather(a.stop(), c.stop())
        assert codes == [0, 0], a.text()[-2000:] + c.text()[-2000:]
        assert leases() == {}, "leases left after a clean shutdown"
    finally:
        for replica in replicas:
            if replica.process is not None and replica.process.poll() is None:
                replica.process.kill()
                replica.process.wait()
    wall = time.monotonic() - began

    # -- every repository: one PR, one commit on top of the base ---------------------
    for name in REPOSITORIES:
        repo = sim.repo(name)
        pulls = sim.pulls(name)
        assert len(pulls) == 1, f"{name}: {len(pulls)} PRs"
        (pr,) = pulls
        assert pr["state"] == "open" and pr["user"].endswith("[bot]"), (name, pr)
        assert (pr["head"], pr["base"]) == (BRANCH, "main"), name
        assert sim.branch_sha(name, "main") == bases[name], f"{name}: main moved"
        tip = sim.branch_sha(name, BRANCH)
        assert pr["head_sha"] == tip, name
        parents = [p.decode() for p in repo.git.commit_info(tip).parents]
        assert parents == [bases[name]], f"{name}: the branch is not one commit on the base"
        assert sim.read_file(name, BRANCH, "deploy/app.yaml") == manifest(image, "5.0.3")
        assert set(repo.git.refs("refs/heads/")) == {"refs/heads/main", f"refs/heads/{BRANCH}"}

    # -- no repository ever run by two replicas at once ------------------------------
    runs = [run for replica in replicas for run in _runs(replica.log)]
    by_replica = defaultdict(int)
    for run in runs:
        by_replica[run.replica] += 1
    # Each replica did some of the work: B and C had it from the database alone.
    assert all(by_replica[name] for name in REPLICAS), dict(by_replica)
    unfinished = [run for run in runs if run.end is None]
    assert {run.replica for run in unfinished} <= {"replica-b"}, unfinished
    # A run B never finished lasted, as far as anyone could tell, until its lease expired.
    for run in unfinished:
        assert run.repository in orphaned, f"{run.repository}: B's run, but not B's lease"
        run.end = orphaned[run.repository][1]
        assert run.end >= killed_at - LEASE  # B renewed its leases while it lived
    intervals = defaultdict(list)
    for run in runs:
        intervals[run.repository].append(run)
    overlaps = []
    for name, its_runs in intervals.items():
        its_runs.sort(key=lambda run: run.start)
        for first, second in zip(its_runs, its_runs[1:], strict=False):
            if second.start < first.end:
                overlaps.append((name, first, second))
    assert not overlaps, overlaps[:5]
    assert set(intervals) == set(REPOSITORIES)

    # -- B's repositories were taken over only once its leases had expired -----------
    takeovers = _takeovers([a.log, c.log])
    for name, (_holder, expires) in orphaned.items():
        assert takeovers.get(name) == "replica-b", f"{name}: no takeover from B logged"
        after = [r for r in intervals[name] if r.replica != "replica-b" and r.start >= killed_at]
        assert after, f"{name}: nobody ran it after B died"
        assert min(r.start for r in after) >= expires, f"{name}: taken before B's lease expired"
    assert set(takeovers) == set(orphaned), "a takeover from a live lease"

    print(
        f"fleet: {COUNT} repositories, {len(runs)} runs {dict(by_replica)}, "
        f"B killed with {prs_at_kill} PRs open and {len(orphaned)} lease(s) held, "
        f"{wall:.1f} s"
    )


def _lines(log: Path):
    for text in log.read_text().splitlines():
        try:
            line = json.loads(text)
        except ValueError:
            continue  # not the bot's logging (it would be a JSON object)
        if isinstance(line, dict):
            yield line


def _when(line: dict) -> float:
    return datetime.fromisoformat(line["time"].replace("Z", "+00:00")).timestamp()


def _runs(log: Path) -> list[Run]:
    """One replica's runs, from its "run started" and "run finished" lines."""
    runs: list[Run] = []
    open_runs: dict[str, Run] = {}
    for line in _lines(log):
        message = line.get("message", "")
        if not message.startswith((STARTED, FINISHED)):
            continue
        replica, repository = line["replica"], line["repository"]
        # The lease holder the line names is the replica it comes from.
        assert message.split("(lease ", 1)[1].split(",")[0].rstrip(")") == replica, line
        if message.startswith(STARTED):
            assert repository not in open_runs, f"{replica} ran {repository} twice at once"
            open_runs[repository] = run = Run(replica, repository, _when(line), None)
            runs.append(run)
        else:
            run = open_runs.pop(repository)
            # Epoch seconds, when the line carries them; its time (ms) when not.
            run.start = line.get("run_started", run.start)
            run.end = line.get("run_finished", _when(line))
    return runs


def _takeovers(logs: list[Path]) -> dict[str, str]:
    """repository -> the replica whose expired lease was taken over."""
    found: dict[str, str] = {}
    for log in logs:
        for line in _lines(log):
            message = line.get("message", "")
            if TAKING_OVER in message:
                repository, rest = message.split(TAKING_OVER, 1)
                assert repository not in found, f"{repository} taken over twice"
                found[repository] = rest.split(",", 1)[0]
    return found
