"""Benchmark: a fleet of repositories using one image, on the simulator (issue 10).

    python bench/bench_fleet.py [--repositories 10000] [--installations 10] [--wide 1000]
                                [--scenarios sqlite,pg1,pg3] [--ticks 3] [--profile]
                                [--json FILE] [--out FILE]

About 25 minutes for 10,000 repositories on 2 cores (5 of them waiting for a tag list
to expire); ``--repositories 1000 --wide 100`` for a quick look. The figures and what
they mean are in docs/bench-fleet.md; ``--out`` writes the tables only.

Everything runs as real processes on this machine, each measured on its own:

* the GitHub simulator (`tests/githubsim`), in its own process (this script run
  with ``--serve-simulator``), its repositories created in that process before it
  listens (real bare git repositories, on /dev/shm), without access log;
* Debian's ``docker-registry`` with one image, ``team/app``, tagged 5.0.0 and 5.0.3;
* PostgreSQL (`tests.postgres`) for the ``pg1`` and ``pg3`` scenarios;
* ``python -m bot serve`` replicas, with the environment `tests/e2e/served.py` gives
  them (``WRITE_INTERVAL=0``, ``TICK_SECONDS=0.2``, ``FIRST_RUN_SPREAD_SECONDS=0``),
  ``CONCURRENCY`` and ``WORKERS`` at the bot's defaults unless given.

The repositories belong to ``--installations`` organisations, each installation on all
of its organisation's repositories. Every repository holds the podinfo config
(`tests.manifests`) over ``./deploy`` and a Deployment marked at ``team/app:5.0.3``, so
that a run has nothing to change. ``--wide`` of them, spread over the installations,
have the range ``>=5.0.0 <6``, the others ``>=5.0.0 <5.1.0``: one image, a narrower
policy for most.

Scenarios: ``sqlite`` (1 replica, SQLite on disk), ``pg1`` (1 replica, PostgreSQL),
``pg3`` (``pg1``'s replica and two more, on the same database, once the two have
rediscovered the installations). For ``sqlite`` and ``pg1`` the bot starts on an empty
database and learns of the repositories (from the ``installation created`` webhooks,
or by rediscovery at start-up); its first runs are timed until every repository has
run once and nothing is due.

A no-op tick: every repository parked (due in an hour) until no run is under way, then
``UPDATE repositories SET due_at = now`` for every row, as the schedule does when the
intervals come round, and wait until no row is due or leased. Its wall time ends at
the last run's end (each run stores ``due_at = end + interval``). Measured around it:
CPU (utime + stime from /proc) of the bot replicas (with their worker processes), the
simulator, PostgreSQL and the registry; each replica's RSS (VmRSS, VmHWM, and the RSS
and PSS of its process tree); the requests the simulator counted (and which of them it
answered 304); the reconciles by outcome from each replica's /metrics.

``--profile`` runs one more tick with ``py-spy record`` on every replica and on the
simulator (by file:function, inclusive and self) and, on PostgreSQL, with
``log_statement = all``: the statements the bot sent, by shape.

The new tag (after the last scenario's ticks): every repository is parked,
``team/app:5.1.0`` is pushed, the bench waits until the replicas' cached tag list is
older than its interval (5 minutes after the last tick ended, as the scan interval
would have it), then makes the ``--wide`` repositories due and times until each has
its PR, counting the requests they made; it checks that each has exactly one open PR
(the first one's Deployment at 5.1.0), and that no other repository got one.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import CONFIG_PATH, DEFAULT_REPOSITORY_INTERVAL  # noqa: E402
from tests.manifests import deployment, podinfo_config  # noqa: E402

CHECKOUT = Path(__file__).resolve().parents[1]
SECRET = "bench-fleet-webhook-secret"
APP_ID = 1
IMAGE_PATH = "team/app"
TAGS = ["5.0.0", "5.0.3"]
NEW_TAG = "5.1.0"
NARROW = ">=5.0.0 <5.1.0"
WIDE = ">=5.0.0 <6"
DEPLOY = "deploy/app.yaml"
INTERVAL = DEFAULT_REPOSITORY_INTERVAL  # the config sets none: every repository runs every 5 min
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: py-spy samples per second: more are lost on 2 busy cores.
PROFILE_RATE = 100
#: Frames every sample of a process has: left out of the inclusive tables.
OUTERMOST = ("bot/__main__.py", "bot/cli.py:main", "bot/server.py:main")


# -- the simulator, in its own process ------------------------------------------------------


def serve_simulator(port: int, data: Path, setup: Path) -> None:
    """The child: create the repositories of `setup`, then serve until terminated."""
    from aiohttp import web

    from tests.githubsim import GitHubSim

    spec = json.loads(setup.read_text())
    sim = GitHubSim(data)
    started = time.perf_counter()
    count = 0
    for group in spec["groups"]:
        files = {path: text.encode() for path, text in group["files"].items()}
        for name in group["names"]:
            sim.create_repository(name, files=files)
            count += 1
    print(json.dumps({"created": count, "seconds": time.perf_counter() - started}), flush=True)
    web.run_app(sim.make_app(), host="127.0.0.1", port=port, access_log=None, print=None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, body=None, *, timeout: float = 120.0):
    """(status, decoded JSON or text) of one plain HTTP request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, kind = (
                response.status,
                response.read(),
                response.headers.get_content_type(),
            )
    except urllib.error.HTTPError as exc:
        status, raw, kind = exc.code, exc.read(), exc.headers.get_content_type()
    if kind == "application/json" and raw:
        return status, json.loads(raw)
    return status, raw.decode(errors="replace")


class Simulator:
    def __init__(self, root: Path, groups: list[dict]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        setup = root / "sim-setup.json"
        setup.write_text(json.dumps({"groups": groups}))
        self.log = root / "sim.log"
        with open(self.log, "wb") as errors:
            self.process = subprocess.Popen(
                [sys.executable, __file__, "--serve-simulator", str(self.port), str(root / "sim"),
                 str(setup)],
                cwd=CHECKOUT, stdout=subprocess.PIPE, stderr=errors, text=True,
            )  # fmt: skip
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the simulator exited: {self.log.read_text()[-2000:]}")
        made = json.loads(line)
        self.created, self.create_seconds = made["created"], made["seconds"]
        wait_for_port(self.port, self.process, "the simulator")

    @property
    def pid(self) -> int:
        return self.process.pid

    def admin(self, method: str, path: str, body=None):
        status, answer = http(method, self.url + path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {answer}")
        return answer

    def counters(self) -> collections.Counter:
        return collections.Counter(self.admin("GET", "/_sim/counters"))

    def reset_counters(self) -> None:
        self.admin("DELETE", "/_sim/counters")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_for_port(port: int, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen within {timeout} s")


# -- /proc -------------------------------------------------------------------------------------


def tree(pid: int) -> list[int]:
    """`pid` and its descendants (a replica's fork server and workers, PostgreSQL's backends)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with contextlib.suppress(OSError):
                    children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
                    todo.extend(int(child) for child in children)
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the live processes among `pids` (and of their reaped children)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            # After the ")": state is field 3; utime 14, stime 15, cutime 16, cstime 17.
            total += sum(int(fields[i - 3]) for i in (14, 15, 16, 17))
    return total / CLK_TCK


def tree_cpu(pid: int) -> float:
    return cpu_seconds(tree(pid))


def status_kib(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def pss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    return total


# -- the bot -------------------------------------------------------------------------------------


class Replica:
    def __init__(self, root: Path, name: str, sim: Simulator, database_url: str, env: dict):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / f"{name}.log"
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "APP_ID": str(APP_ID),
            "PRIVATE_KEY_PATH": str(root / "app.pem"),
            "WEBHOOK_SECRET": SECRET,
            "GITHUB_API_URL": sim.url,
            "DATABASE_URL": database_url,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "WRITE_INTERVAL": "0",
            "TICK_SECONDS": "0.2",
            "FIRST_RUN_SPREAD_SECONDS": "0",
            "REGISTRY_ALLOWED_ADDRESSES": "127.0.0.1",
            "LOG_LEVEL": "info",
            "REPLICA_NAME": name,
            **env,
        }
        self.process: subprocess.Popen | None = None
        #: VmRSS (MiB) at named moments: started, rediscovered, first runs, ticks.
        self.rss_at: dict[str, float] = {}

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"],
                cwd=CHECKOUT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(OSError):
                if http("GET", self.url + "/healthz", timeout=2)[0] == 200:
                    self.remember_rss("started")
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not listen: {self.log.read_text()[-3000:]}")

    def rediscovered(self, timeout: float = 600) -> None:
        """Until its start-up rediscovery (`bot.discovery`) has listed every installation."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if "rediscovered " in self.log.read_text(errors="replace"):
                self.remember_rss("rediscovered")
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not rediscover within {timeout} s")

    def remember_rss(self, moment: str) -> None:
        self.rss_at[moment] = status_kib(self.pid, "VmRSS") / 1024

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited {self.process.returncode}: {self.log.read_text()[-3000:]}"
            )

    def metrics(self) -> dict[str, float]:
        """The /metrics samples this bench reads, by their line's name and labels."""
        _, text = http("GET", self.url + "/metrics", timeout=30)
        wanted = ("image_automation_reconciles_total", "image_automation_github_requests_total",
                  "image_automation_registry_requests_total", "image_automation_lease_takeovers")  # fmt: skip
        samples = {}
        for line in text.splitlines():
            if line.startswith(wanted):
                key, _, value = line.rpartition(" ")
                samples[key] = float(value)
        return samples

    def memory(self) -> dict[str, float]:
        """MiB: the main process's VmRSS and VmHWM, and the PSS of its whole tree."""
        pids = tree(self.pid)
        return {
            "rss": status_kib(self.pid, "VmRSS") / 1024,
            "hwm": status_kib(self.pid, "VmHWM") / 1024,
            "tree_rss": sum(status_kib(p, "VmRSS") for p in pids) / 1024,
            "tree_pss": pss_kib(pids) / 1024,
            "processes": len(pids),
        }

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


# -- the database, as the bench sees it --------------------------------------------------------


class Database:
    """The bot's database: SQLite (a file) or PostgreSQL (a server and a database name)."""

    def __init__(self, *, sqlite_path: Path | None = None, postgres=None, dbname: str = ""):
        self.sqlite_path, self.postgres, self.dbname = sqlite_path, postgres, dbname
        self._conn = None

    @property
    def url(self) -> str:
        if self.sqlite_path is not None:
            return f"sqlite:///{self.sqlite_path}"
        return self.postgres.url(self.dbname)

    @property
    def kind(self) -> str:
        return "SQLite" if self.sqlite_path is not None else "PostgreSQL"

    def _connection(self):
        if self._conn is None:
            if self.sqlite_path is not None:
                if not self.sqlite_path.exists():
                    return None  # the bot has not made it yet
                self._conn = sqlite3.connect(self.sqlite_path, timeout=30, isolation_level=None)
            else:
                self._conn = self.postgres.connect(self.dbname, autocommit=True)
        return self._conn

    def rows(self, query: str, params: tuple = ()) -> list[tuple]:
        conn = self._connection()
        if conn is None:
            return []
        if self.sqlite_path is None:
            query = query.replace("?", "%s")
        try:
            return list(conn.execute(query, params).fetchall())
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise

    def value(self, query: str, params: tuple = ()):
        rows = self.rows(query, params)
        return rows[0][0] if rows else None

    def execute(self, query: str, params: tuple | None = ()) -> None:
        """`params` None: `query` is sent as it is (psycopg would read ``%a`` as a placeholder)."""
        conn = self._connection()
        if params is None:
            conn.execute(query)
            return
        if self.sqlite_path is None:
            query = query.replace("?", "%s")
        conn.execute(query, params)

    def size(self) -> dict[str, int]:
        if self.sqlite_path is not None:
            sizes = {"file": self.sqlite_path.stat().st_size}
            wal = self.sqlite_path.with_name(self.sqlite_path.name + "-wal")
            sizes["wal"] = wal.stat().st_size if wal.exists() else 0
            return sizes
        return {
            "database": int(self.value("SELECT pg_database_size(current_database())")),
            "tables": int(
                self.value(
                    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = 'public' AND c.relkind = 'r'"
                )
            ),
        }

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Fleet:
    root: Path
    sim: Simulator
    registry: object
    postgres: object | None
    repositories: list[str]
    wide: list[str]
    installations: dict[int, list[str]]
    env: dict
    replicas: list[Replica] = field(default_factory=list)


def snapshot(fleet: Fleet) -> dict:
    shot = {
        "time": time.time(),
        "bot": {r.name: tree_cpu(r.pid) for r in fleet.replicas},
        "simulator": tree_cpu(fleet.sim.pid),
        "registry": tree_cpu(fleet.registry.process.pid),
        "metrics": {r.name: r.metrics() for r in fleet.replicas},
        "bench": cpu_seconds([os.getpid()]),
    }
    if fleet.postgres is not None:
        pid = int((fleet.postgres.datadir / "postmaster.pid").read_text().split()[0])
        shot["postgres"] = tree_cpu(pid)
    return shot


STATEMENT = re.compile(r"(?:statement|execute [^:]*): (.*)$")


def statement_key(sql: str) -> str:
    """A statement's shape: verb and table (and which columns an UPDATE sets)."""
    sql = " ".join(sql.split())
    if sql == ";":
        return "; (an empty statement: SQLAlchemy's pool_pre_ping)"
    verb = sql.split(" ", 1)[0].upper()
    if verb == "SELECT":
        found = re.search(r" FROM (\w+)", sql)
        lock = " FOR UPDATE" if "FOR UPDATE" in sql else ""
        return f"SELECT … FROM {found.group(1)}{lock}" if found else sql[:40]
    if verb == "UPDATE":
        found = re.match(r"UPDATE (\w+) SET (.*?)(?: WHERE|$)", sql)
        if found:
            columns = re.findall(r"(\w+)=", found.group(2).replace(" ", ""))
            return f"UPDATE {found.group(1)} SET {', '.join(columns)}"
    if verb in ("INSERT", "DELETE"):
        found = re.search(r"(?:INTO|FROM) (\w+)", sql)
        return f"{verb} {found.group(1) if found else '?'}"
    return sql[:40]


@contextlib.contextmanager
def statement_log(db: Database):
    """Log every statement the bot sends PostgreSQL meanwhile; yields a Counter by shape."""
    counts: collections.Counter = collections.Counter()
    if db.postgres is None:
        yield counts
        return
    log = db.postgres.logfile
    db.execute("ALTER SYSTEM SET log_statement = 'all'", None)
    db.execute("ALTER SYSTEM SET log_line_prefix = '%a|'", None)
    db.execute("SELECT pg_reload_conf()", None)
    time.sleep(0.5)
    offset = log.stat().st_size
    try:
        yield counts
    finally:
        db.execute("ALTER SYSTEM RESET log_statement", None)
        db.execute("ALTER SYSTEM RESET log_line_prefix", None)
        db.execute("SELECT pg_reload_conf()", None)
        with open(log, "rb") as text:
            text.seek(offset)
            lines = text.read().decode(errors="replace").splitlines()
        current = None  # a statement's text goes on in lines that start with a tab
        for line in [*lines, ""]:
            if current is not None and line.startswith("\t"):
                current += " " + line.strip()
                continue
            if current is not None:
                counts[statement_key(current)] += 1
                current = None
            found = STATEMENT.search(line) if line.startswith("image-automation-bot|") else None
            if found:
                current = found.group(1)


def difference(before: dict, after: dict) -> dict:
    cpu = {"bot": {n: after["bot"][n] - before["bot"].get(n, 0.0) for n in after["bot"]}}
    for key in ("simulator", "registry", "postgres", "bench"):
        if key in after:
            cpu[key] = after[key] - before[key]
    metrics = {}
    for name, samples in after["metrics"].items():
        old = before["metrics"].get(name, {})
        metrics[name] = {k: v - old.get(k, 0.0) for k, v in samples.items() if v - old.get(k, 0.0)}
    return {"cpu": cpu, "metrics": metrics}


def outcomes(metrics: dict[str, dict[str, float]]) -> collections.Counter:
    total: collections.Counter = collections.Counter()
    for samples in metrics.values():
        for key, value in samples.items():
            if key.startswith("image_automation_reconciles_total{"):
                total[key.split('outcome="')[1].split('"')[0]] += int(value)
    return total


def registry_requests(metrics: dict[str, dict[str, float]]) -> int:
    return int(
        sum(
            v
            for samples in metrics.values()
            for k, v in samples.items()
            if k.startswith("image_automation_registry_requests_total")
        )
    )


def split_counters(counters: collections.Counter) -> tuple[int, int, dict[str, int]]:
    """(requests, of which answered 304, requests by route) from the simulator's counters."""
    not_modified = sum(n for k, n in counters.items() if k.endswith(" 304"))
    by_route = {k: n for k, n in counters.items() if not k.endswith(" 304")}
    return sum(by_route.values()), not_modified, by_route


def wait(predicate, what: str, fleet: Fleet, timeout: float, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for replica in fleet.replicas:
            replica.check_alive()
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def settled(db: Database, count: int) -> bool:
    """Every repository known, run once (a head stored), none leased, none due."""
    now = time.time()
    row = db.rows(
        "SELECT count(*), sum(CASE WHEN head_sha IS NOT NULL AND lease_holder IS NULL"
        " AND due_at > ? THEN 1 ELSE 0 END) FROM repositories",
        (now,),
    )
    return bool(row) and row[0][0] == count and (row[0][1] or 0) == count


def first_runs(fleet: Fleet, db: Database, start: list, *, install: bool, timeout: float) -> dict:
    """From starting the replicas `start` on an empty database until every repository ran
    once: by its ``installation created`` webhook (`install`) or by rediscovery."""
    fleet.sim.reset_counters()
    before = snapshot(fleet)
    started = time.time()
    for replica in start:
        replica.start()
        if not fleet.replicas:  # the App's webhook goes to the first replica
            fleet.sim.admin("POST", f"/_sim/apps/{APP_ID}/webhook",
                            {"url": replica.url + "/api/github/webhooks", "secret": SECRET})  # fmt: skip
        fleet.replicas.append(replica)
    if install:
        # On all of the account's repositories, as most organisations install an App (the
        # delivery lists them all). Also the simulator's cheap case: for a "selected"
        # installation it checks each request against a set it builds from the whole list.
        for account in fleet.installations:
            fleet.sim.admin("POST", "/_sim/installations",
                            {"app_id": APP_ID, "account": f"org-{account}", "repositories": None})  # fmt: skip
    wait(lambda: settled(db, len(fleet.repositories)), "every first run", fleet, timeout, 1.0)
    for replica in fleet.replicas:
        replica.remember_rss("first runs")
    # Each run stores due_at = its end + the interval: the last run's end.
    ended = db.value("SELECT max(due_at) FROM repositories") - INTERVAL
    after = snapshot(fleet)
    requests, not_modified, by_route = split_counters(fleet.sim.counters())
    return {
        "wall": ended - started,
        "requests": requests,
        "not_modified": not_modified,
        "by_route": by_route,
        **difference(before, after),
    }


def tick(fleet: Fleet, db: Database, *, timeout: float, profile: Path | None = None) -> dict:
    """Every repository due now; until none is due or leased."""
    with statement_log(db) if profile else contextlib.nullcontext({}) as statements:
        result = _tick(fleet, db, timeout=timeout, profile=profile)
    result["statements"] = dict(statements)
    return result


def quiesce(fleet: Fleet, db: Database, timeout: float) -> None:
    """Nothing due for an hour, and no run under way: a tick starts from rest (runs that
    came due by themselves while the bench waited must not straddle its start)."""
    db.execute("UPDATE repositories SET due_at = ?", (time.time() + 3600,))
    wait(
        lambda: db.value("SELECT count(*) FROM repositories WHERE lease_holder IS NOT NULL") == 0,
        "the runs under way to end",
        fleet,
        timeout,
    )


def _tick(fleet: Fleet, db: Database, *, timeout: float, profile: Path | None) -> dict:
    count = len(fleet.repositories)
    quiesce(fleet, db, timeout)
    spies = start_profilers(fleet, profile) if profile else []
    fleet.sim.reset_counters()
    before = snapshot(fleet)
    started = time.time()
    db.execute("UPDATE repositories SET due_at = ?", (started,))

    def done() -> bool:
        return (
            db.value(
                "SELECT count(*) FROM repositories WHERE due_at <= ? OR lease_holder IS NOT NULL",
                (started,),
            )
            == 0
        )

    wait(done, "the tick to end", fleet, timeout, every=0.1)
    seen = time.time()
    after = snapshot(fleet)
    memory = {r.name: r.memory() for r in fleet.replicas}
    for replica in fleet.replicas:
        replica.remember_rss("ticks")
    profiles = stop_profilers(spies)
    ended = db.value("SELECT max(due_at) FROM repositories") - INTERVAL
    requests, not_modified, by_route = split_counters(fleet.sim.counters())
    delta = difference(before, after)
    return {
        "repositories": count,
        "replicas": len(fleet.replicas),
        "wall": ended - started,
        "seen": seen - started,
        "requests": requests,
        "not_modified": not_modified,
        "by_route": by_route,
        "outcomes": outcomes(delta["metrics"]),
        "registry_requests": registry_requests(delta["metrics"]),
        "memory": memory,
        "profiles": profiles,
        **delta,
    }


# -- profiles ------------------------------------------------------------------------------------


def start_profilers(fleet: Fleet, where: Path) -> list[tuple[str, subprocess.Popen, Path]]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    spies = []
    targets = [(r.name, r.pid) for r in fleet.replicas] + [("simulator", fleet.sim.pid)]
    for name, pid in targets:
        out = where / f"{name}.txt"
        spy = subprocess.Popen(
            # Blocking (the default): each sample pauses the process, so every stack is
            # whole; --nonblocking loses the outer frames of about half of them.
            [py_spy, "record", "--pid", str(pid), "--rate", str(PROFILE_RATE), "--format",
             "raw", "--output", str(out), "--subprocesses"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        spies.append((name, spy, out))
    time.sleep(1.0)  # attached before the tick starts
    return spies


def stop_profilers(spies) -> dict[str, dict]:
    profiles = {}
    for name, spy, out in spies:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()
        if out.exists():
            profiles[name] = summarise(out)
    return profiles


def frame_name(frame: str) -> tuple[str, str]:
    """('bot/store/schedule.py:claim', 'bot') from py-spy's 'claim (bot/store/schedule.py:63)'."""
    function, _, where = frame.rpartition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("/site-packages/", "/lib/python3", str(CHECKOUT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker.startswith("/lib/python3"):
                path = "stdlib/" + path.split("/", 1)[1]
            break
    package = path.split("/", 1)[0] if "/" in path else path
    return f"{path}:{function or '?'}", package


def summarise(path: Path) -> dict:
    """Samples by function, inclusive and self, and self by package (file tree top)."""
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    packages: collections.Counter = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if " (" in f and f.endswith(")")]
        if not frames:
            continue
        total += n
        names = [frame_name(f) for f in frames]
        for name in {name for name, _ in names}:
            inclusive[name] += n
        own[names[-1][0]] += n
        packages[names[-1][1]] += n
    return {"total": total, "inclusive": inclusive, "self": own, "packages": packages}


# -- the new tag ---------------------------------------------------------------------------------


def new_tag(fleet: Fleet, db: Database, *, last_tick_end: float, timeout: float) -> dict:
    from tests.registryharness.push import Pusher

    # Nothing runs meanwhile: every repository is due in an hour.
    quiesce(fleet, db, timeout)
    Pusher(fleet.registry.host).image(IMAGE_PATH, [NEW_TAG], salt=f"{IMAGE_PATH}-{NEW_TAG}")
    # The replicas scanned the image during the last tick at the latest: their tag
    # lists are fresh for one interval after that, as a registry scan interval has it.
    expires = last_tick_end + INTERVAL + 2.0
    print(f"  waiting {max(0.0, expires - time.time()):.0f} s for the cached tag lists to expire",
          flush=True)  # fmt: skip
    while time.time() < expires:
        for replica in fleet.replicas:
            replica.check_alive()
        time.sleep(min(5.0, max(0.0, expires - time.time())))
    wide = fleet.wide
    fleet.sim.reset_counters()
    before = snapshot(fleet)
    started = time.time()
    marks = ",".join("?" for _ in wide)
    db.execute(f"UPDATE repositories SET due_at = ? WHERE full_name IN ({marks})",
               (started, *wide))  # fmt: skip

    def opened() -> bool:
        prs = db.value(
            f"SELECT count(*) FROM automations WHERE pr_number IS NOT NULL"
            f" AND repository IN ({marks})",
            tuple(wide),
        )
        busy = db.value(
            f"SELECT count(*) FROM repositories WHERE (due_at <= ? OR lease_holder IS NOT NULL)"
            f" AND full_name IN ({marks})",
            (started, *wide),
        )
        return prs == len(wide) and busy == 0

    wait(opened, "a PR in every repository of the wider policy", fleet, timeout, every=0.2)
    ended = db.value(f"SELECT max(due_at) FROM repositories WHERE full_name IN ({marks})",
                     tuple(wide)) - INTERVAL  # fmt: skip
    after = snapshot(fleet)
    requests, not_modified, by_route = split_counters(fleet.sim.counters())
    delta = difference(before, after)
    # What the simulator holds: one open PR in each, at the new tag.
    wrong = []
    for name in wide:
        pulls = fleet.sim.admin("GET", f"/_sim/repos/{name}/pulls")
        if [p["state"] for p in pulls] != ["open"]:
            wrong.append(name)
    if wrong:
        raise RuntimeError(f"{len(wrong)} repositories without exactly one open PR: {wrong[:5]}")
    sample = fleet.sim.admin("GET", f"/_sim/repos/{wide[0]}/pulls")[0]
    status, text = http("GET", f"{fleet.sim.url}/_sim/repos/{wide[0]}/file?ref="
                        f"{urllib.request.quote(sample['head'], safe='')}&path={DEPLOY}")  # fmt: skip
    if f":{NEW_TAG} " not in text:
        raise RuntimeError(f"{wide[0]}: the PR's {DEPLOY} is not at {NEW_TAG}: {text!r}")
    others = db.value(
        f"SELECT count(*) FROM automations WHERE pr_number IS NOT NULL"
        f" AND repository NOT IN ({marks})",
        tuple(wide),
    )
    if others:
        raise RuntimeError(f"{others} repositories of the narrow policy got a PR")
    return {
        "repositories": len(wide),
        "wall": ended - started,
        "requests": requests,
        "not_modified": not_modified,
        "by_route": by_route,
        "outcomes": outcomes(delta["metrics"]),
        "registry_requests": registry_requests(delta["metrics"]),
        "others_with_pr": others,
        **delta,
    }


# -- the scenarios ------------------------------------------------------------------------------


def build_groups(count: int, wide_count: int, installations: int, image: str):
    names = [f"org-{i % installations}/app-{i:05}" for i in range(count)]
    # Every step-th repository, shifted by one each time: spread over the installations.
    step = count // wide_count if wide_count else 0
    wide = (
        [names[k * step + k % min(step, installations)] for k in range(wide_count)] if step else []
    )
    wide_set = set(wide)

    def files(semver: str) -> dict[str, str]:
        config = podinfo_config(image=image, update_path="./deploy", semver_range=semver)
        return {CONFIG_PATH: config, DEPLOY: deployment("5.0.3", image=image).decode()}

    groups = [
        {"files": files(NARROW), "names": [n for n in names if n not in wide_set]},
        {"files": files(WIDE), "names": wide},
    ]
    by_installation: dict[int, list[str]] = collections.defaultdict(list)
    for i, name in enumerate(names):
        by_installation[i % installations].append(name)
    return names, wide, groups, dict(by_installation)


def run(args) -> dict:
    from tests.conftest import generate_app_key
    from tests.registryharness.push import Pusher
    from tests.registryharness.registry_proc import start_registry, temp_root

    results: dict = {"scenarios": [], "args": vars(args).copy(), "commit": checkout_commit()}
    disk_root = Path(tempfile.mkdtemp(prefix="bench-fleet-"))  # SQLite on disk, logs
    shm_root = temp_root("bench-fleet-sim-")  # the simulator's git repositories
    registry = start_registry()
    postgres = None
    sim = None
    fleet = None
    try:
        Pusher(registry.host).image(IMAGE_PATH, TAGS, salt=IMAGE_PATH)
        image = f"{registry.host}/{IMAGE_PATH}"
        names, wide, groups, installations = build_groups(
            args.repositories, args.wide, args.installations, image
        )
        print(f"creating {len(names)} repositories in the simulator ...", flush=True)
        sim = Simulator(shm_root, groups)
        results["create"] = {"count": sim.created, "seconds": sim.create_seconds,
                             "bytes": du(shm_root / "sim")}  # fmt: skip
        print(f"  {sim.created} in {sim.create_seconds:.1f} s", flush=True)
        private_pem, public_pem = generate_app_key()
        (disk_root / "app.pem").write_text(private_pem)
        sim.admin("POST", "/_sim/apps", {"app_id": APP_ID, "public_key_pem": public_pem})
        # Thousands of first runs in one installation: GitHub's 5,000 an hour is not the
        # subject (304s are free anyway).
        sim.admin("POST", "/_sim/settings", {"rate_limit": 1_000_000_000})
        env = {}
        if args.concurrency:
            env["CONCURRENCY"] = str(args.concurrency)
        if args.workers is not None:
            env["WORKERS"] = str(args.workers)
        if args.log_level:
            env["LOG_LEVEL"] = args.log_level
        fleet = Fleet(disk_root, sim, registry, None, names, wide, installations, env)
        installed = False
        scenarios = args.scenarios.split(",")
        last_tick_end = 0.0
        for scenario in scenarios:
            if scenario == "sqlite":
                db = Database(sqlite_path=disk_root / "bot.db")
                replicas = 1
            elif scenario in ("pg1", "pg3"):
                if postgres is None:
                    from tests.postgres import start_server

                    postgres = start_server()
                    fleet.postgres = postgres
                replicas = int(scenario[2:])
                reuse = scenario == "pg3" and "pg1" in scenarios
                if not reuse:
                    db = Database(postgres=postgres, dbname=postgres.create_database())
            else:
                raise SystemExit(f"unknown scenario {scenario!r}")
            result = {"name": scenario, "database": db.kind, "replicas": replicas}
            new = [
                Replica(disk_root, f"{scenario}-{i + 1}", sim, db.url, env)
                for i in range(len(fleet.replicas), replicas)
            ]
            print(f"[{scenario}] {replicas} replica(s) on {db.kind}", flush=True)
            if not fleet.replicas:
                result["first_runs"] = first_runs(
                    fleet, db, new, install=not installed, timeout=args.timeout
                )
                installed = True
                print(f"  first runs: {result['first_runs']['wall']:.1f} s, "
                      f"{result['first_runs']['requests']} requests", flush=True)  # fmt: skip
            else:
                for replica in new:
                    replica.start()
                    fleet.replicas.append(replica)
                # Their start-up rediscovery (a page per 100 repositories) is not the tick's.
                for replica in new:
                    replica.rediscovered()
            result["ticks"] = []
            for n in range(args.ticks):
                measured = tick(fleet, db, timeout=args.timeout)
                last_tick_end = time.time()
                result["ticks"].append(measured)
                print(f"  tick {n + 1}: {measured['wall']:.2f} s, bot CPU "
                      f"{sum(measured['cpu']['bot'].values()):.2f} s, simulator CPU "
                      f"{measured['cpu']['simulator']:.2f} s, requests {measured['requests']} "
                      f"({measured['not_modified']} answered 304), "
                      f"{dict(measured['outcomes'])}", flush=True)  # fmt: skip
            if args.profile:
                where = disk_root / f"profile-{scenario}"
                where.mkdir()
                result["profile"] = tick(fleet, db, timeout=args.timeout, profile=where)
                last_tick_end = time.time()
                print(f"  profiled tick: {result['profile']['wall']:.2f} s", flush=True)
            result["size"] = db.size()
            result["rows"] = {
                table: db.value(f"SELECT count(*) FROM {table}")
                for table in ("repositories", "automations", "policies", "deliveries")
            }
            if scenario == scenarios[-1] and args.wide:
                result["new_tag"] = new_tag(fleet, db, last_tick_end=last_tick_end,
                                            timeout=args.timeout)  # fmt: skip
                result["size_after_new_tag"] = db.size()
                print(f"  new tag: {result['new_tag']['wall']:.2f} s, "
                      f"{result['new_tag']['requests']} requests", flush=True)  # fmt: skip
            result["rss_at"] = {r.name: dict(r.rss_at) for r in fleet.replicas}
            results["scenarios"].append(result)
            if args.json:  # as it goes: a later failure keeps what was measured
                args.json.write_text(json.dumps(results, indent=1, default=str))
            next_reuses = (
                scenario == "pg1"
                and scenarios.index(scenario) + 1 < len(scenarios)
                and scenarios[scenarios.index(scenario) + 1] == "pg3"
            )
            if not next_reuses:
                for replica in fleet.replicas:
                    code = replica.stop()
                    if code != 0:
                        print(f"  {replica.name} exited {code}", flush=True)
                fleet.replicas.clear()
                db.close()
        results["sim_bytes_after"] = du(shm_root / "sim")
    finally:
        if fleet is not None:
            for replica in fleet.replicas:
                replica.stop()
        if sim is not None:
            sim.stop()
        registry.stop()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(shm_root, ignore_errors=True)
        if args.keep:
            print(f"kept {disk_root}", flush=True)
        else:
            shutil.rmtree(disk_root, ignore_errors=True)
    return results


def checkout_commit() -> str:
    """The commit the bot runs from, and whether bot/ differs from it."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=CHECKOUT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" with bot/ modified" if git("status", "--porcelain", "--", "bot") else "")


def du(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


# -- the report ----------------------------------------------------------------------------------


def mib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def report(results: dict) -> str:
    args = results["args"]
    out: list[str] = []
    add = out.append
    n = args["repositories"]
    add(f"### {n:,} repositories, {args['installations']} installations, one image")
    add("")
    add(f"The bot at commit {results.get('commit', 'unknown')}; {os.cpu_count()} cores.")
    add("")
    create = results["create"]
    add(f"Simulator set-up: {create['count']:,} git repositories created in "
        f"{create['seconds']:.1f} s ({create['seconds'] / max(1, create['count']) * 1000:.2f} ms "
        f"each), {mib(create['bytes'])} on /dev/shm.")  # fmt: skip
    add("")
    add("| scenario | tick | wall | bot CPU | per repository | simulator CPU | PostgreSQL CPU "
        "| requests / repository | answered 304 | reconciles | registry requests |")  # fmt: skip
    add("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for s in results["scenarios"]:
        ticks = list(s["ticks"]) + ([s["profile"]] if "profile" in s else [])
        for i, t in enumerate(ticks, 1):
            label = "profiled (py-spy)" if "profile" in s and t is s["profile"] else str(i)
            bot = sum(t["cpu"]["bot"].values())
            pg = t["cpu"].get("postgres")
            add(
                f"| {s['name']} ({s['replicas']} × {s['database']}) | {label} | {t['wall']:.2f} s "
                f"| {bot:.2f} s | {bot / n * 1000:.2f} ms | {t['cpu']['simulator']:.2f} s "
                f"| {'' if pg is None else f'{pg:.2f} s'} | {t['requests'] / n:.3f} "
                f"| {t['not_modified']:,} of {t['requests']:,} "
                f"| {', '.join(f'{k} {v:,}' for k, v in sorted(t['outcomes'].items()))} "
                f"| {t['registry_requests']} |"
            )
    add("")
    add("Requests other than the head check, per tick:")
    add("")
    for s in results["scenarios"]:
        for i, t in enumerate(s["ticks"], 1):
            other = {k: v for k, v in t["by_route"].items()
                     if k != "GET /repos/{owner}/{repo}/commits/{ref}"}  # fmt: skip
            add(f"- {s['name']} tick {i}: {json.dumps(other) if other else 'none'}")
    add("")
    add(
        "| scenario | replica | VmRSS | VmHWM | processes | RSS of its processes | PSS of its processes |"
    )
    add("| --- | --- | --- | --- | --- | --- | --- |")
    for s in results["scenarios"]:
        for name, m in s["ticks"][-1]["memory"].items():
            add(f"| {s['name']} | {name} | {m['rss']:.0f} MiB | {m['hwm']:.0f} MiB "
                f"| {m['processes']} | {m['tree_rss']:.0f} MiB | {m['tree_pss']:.0f} MiB |")  # fmt: skip
    add("")
    moments = ("started", "rediscovered", "first runs", "ticks")
    add("VmRSS of each replica's main process as it went (after the last tick: the table above):")
    add("")
    add("| scenario | replica | " + " | ".join(moments) + " |")
    add("| --- | --- |" + " --- |" * len(moments))
    for s in results["scenarios"]:
        for name, seen in s.get("rss_at", {}).items():
            cells = [f"{seen[m]:.0f} MiB" if m in seen else "" for m in moments]
            add(f"| {s['name']} | {name} | " + " | ".join(cells) + " |")
    add("")
    add("| scenario | first runs | first-run requests | database size | rows |")
    add("| --- | --- | --- | --- | --- |")
    for s in results["scenarios"]:
        first = s.get("first_runs")
        first_text = f"{first['wall']:.1f} s" if first else "(shared with pg1)"
        first_requests = (
            f"{first['requests']:,} ({first['requests'] / n:.1f} per repository)" if first else ""
        )
        size = s["size"]
        size_text = ", ".join(f"{k} {mib(v)}" for k, v in size.items())
        rows = ", ".join(f"{k} {v:,}" for k, v in s["rows"].items())
        add(f"| {s['name']} | {first_text} | {first_requests} | {size_text} | {rows} |")
    add("")
    for s in results["scenarios"]:
        if "new_tag" not in s:
            continue
        t = s["new_tag"]
        k = t["repositories"]
        bot = sum(t["cpu"]["bot"].values())
        add(f"New tag {NEW_TAG} reaching {k:,} repositories ({s['name']}, {s['replicas']} "
            f"replica(s)): **{t['wall']:.1f} s** until the last PR was open, "
            f"**{t['requests']:,} requests** ({t['requests'] / k:.1f} per repository, "
            f"{t['not_modified']} answered 304), {t['registry_requests']} registry requests, "
            f"bot CPU {bot:.1f} s ({bot / k * 1000:.1f} ms per repository), simulator CPU "
            f"{t['cpu']['simulator']:.1f} s; reconciles {dict(t['outcomes'])}; "
            f"repositories of the narrow policy with a PR: {t['others_with_pr']}.")  # fmt: skip
        add("")
        add("| route | requests | per repository |")
        add("| --- | --- | --- |")
        for route, count in sorted(t["by_route"].items(), key=lambda kv: -kv[1]):
            add(f"| `{route}` | {count:,} | {count / k:.2f} |")
        add("")
    for s in results["scenarios"]:
        statements = s.get("profile", {}).get("statements")
        if not statements:
            continue
        add(f"Statements the bot sent PostgreSQL during the profiled {s['name']} tick "
            f"(`log_statement = all`), {n:,} repositories:")  # fmt: skip
        add("")
        add("| statement | count | per repository |")
        add("| --- | --- | --- |")
        for key, count in sorted(statements.items(), key=lambda kv: -kv[1]):
            add(f"| `{key}` | {count:,} | {count / n:.2f} |")
        total = sum(statements.values())
        add(f"| all | {total:,} | {total / n:.2f} |")
        add("")
    if any("profile" in s for s in results["scenarios"]):
        add("In the profiles, a thread waiting in psycopg's `wait_c` (for PostgreSQL's answer) "
            "counts as busy: with PostgreSQL they are shares of the event loop's time, CPU "
            "or waiting.")  # fmt: skip
        add("")
    for s in results["scenarios"]:
        if "profile" not in s:
            continue
        for name, p in s["profile"]["profiles"].items():
            total = p["total"] or 1
            inclusive = collections.Counter(p["inclusive"])
            own = collections.Counter(p["self"])
            packages = collections.Counter(p["packages"])
            add(f"Profile, {s['name']} tick, {name}: {p['total']:,} samples at {PROFILE_RATE} Hz "
                "of the threads py-spy saw busy.")  # fmt: skip
            add("")
            add("| inclusive | project function (the outermost frames left out) |")
            add("| --- | --- |")
            ours = [(fn, count) for fn, count in inclusive.most_common()
                    if fn.startswith(("bot/", "tests/")) and not fn.startswith(OUTERMOST)]  # fmt: skip
            for fn, count in ours[: args["top"]]:
                add(f"| {count / total * 100:.1f} % | `{fn}` |")
            add("")
            add("| self | function |")
            add("| --- | --- |")
            for fn, count in own.most_common(args["top"]):
                add(f"| {count / total * 100:.1f} % | `{fn}` |")
            add("")
            add("self by package: " + ", ".join(
                f"{pkg} {c / total * 100:.0f} %" for pkg, c in packages.most_common(12)))  # fmt: skip
            add("")
    return "\n".join(out) + "\n"


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve-simulator":
        serve_simulator(int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--repositories", type=int, default=10_000)
    parser.add_argument("--installations", type=int, default=10)
    parser.add_argument("--wide", type=int, default=1000,
                        help="repositories whose policy admits the new tag (0: no new-tag measure)")  # fmt: skip
    parser.add_argument("--scenarios", default="sqlite,pg1,pg3")
    parser.add_argument("--ticks", type=int, default=3)
    parser.add_argument("--concurrency", type=int, help="CONCURRENCY (default: the bot's)")
    parser.add_argument("--workers", type=int, help="WORKERS (default: the bot's, one per core)")
    parser.add_argument("--profile", action="store_true", help="one more tick under py-spy")
    parser.add_argument("--log-level", help="the replicas' LOG_LEVEL (default info)")
    parser.add_argument("--top", type=int, default=20, help="functions per profile table")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--keep", action="store_true", help="keep the logs and SQLite file")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--out", type=Path, help="write the markdown report here")
    args = parser.parse_args()
    results = run(args)
    text = report(results)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
