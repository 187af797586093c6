"""Benchmark: one hostile repository beside webhooks and another installation (issue 8 §4).

    python bench/bench_hostile.py [--workers 0,2] [--files 6] [--markers 14000] [--rate 20]
                                  [--innocent 3] [--repeats 1] [--out FILE]

Starts the GitHub simulator in this process, a real registry, and
`python -m bot serve` as a real process (`tests.e2e.served.Served`), once per
``--workers`` value (``WORKERS=0`` plans inline on the event loop, as before
issue 8; ``WORKERS=2`` plans in a pool of two processes), with
``AUTOMATION_MAX_SECONDS=0`` so the hostile plan runs to its end. For each:

1. ``--innocent`` small repositories, each in its own installation, are
   installed one after another: the time from the installation to the bot's
   pull request being open, with nothing else to do ("alone").
2. The hostile repository (``--files`` files of ``--markers`` marked image
   lines, about 1.9 MB each, under the 2 MiB per-file cap) and one more
   innocent repository, in another installation, are installed at the same
   moment. Signed ``push`` deliveries (a branch the bot does not watch) go
   straight to the bot's webhook URL at ``--rate`` per second until the hostile
   reconcile has logged its outcome; each acknowledgement is timed from the
   request to the end of the response. The innocent repository's time to its
   pull request is measured as in 1 ("beside the hostile one").

Then, in this process, "threads or processes?": a coroutine ticks every 10 ms
and records how late each tick is, while `bot.planner.plan_automation` runs on
the same hostile files in a `ThreadPoolExecutor` thread, then in a
`ProcessPoolExecutor` process (and with nothing running, as the floor).

With ``--repeats N`` every figure is the median over N runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
from aiohttp.test_utils import TestServer  # noqa: E402

from bot.config import CONFIG_PATH, load_config  # noqa: E402
from bot.planner import Observation, plan_automation  # noqa: E402
from bot.policy import LatestRef  # noqa: E402
from tests.conftest import RunningSim, generate_app_key  # noqa: E402
from tests.e2e.conftest import config, manifest  # noqa: E402
from tests.e2e.served import SECRET, Served  # noqa: E402
from tests.githubsim import GitHubSim  # noqa: E402
from tests.manifests import AUTOMATION, MARKER  # noqa: E402
from tests.registryharness.push import Pusher  # noqa: E402
from tests.registryharness.registry_proc import start_registry  # noqa: E402

HOSTILE = "octo-org/hostile"
BESIDE = "other-org/app"
#: Bytes per hostile file: the image name is padded to reach it (the cap is 2 MiB).
FILE_BYTES = 1_900_000
#: GitHub gives a receiver 10 s, then records the delivery as failed.
GITHUB_TIMEOUT = 10.0
TICK = 0.010
TAGS = ["5.0.0", "5.0.3"]


# -- what is installed ---------------------------------------------------------------------


def hostile_image(host: str, markers: int) -> str:
    """An image name long enough that `markers` marked lines make about FILE_BYTES."""
    fixed = len(f"- image: {host}/:5.0.0 {MARKER}\n")
    per_line = (FILE_BYTES - len("items:\n")) // markers
    path = "team/hostile"
    return f"{host}/{path}-{'x' * min(100, max(0, per_line - fixed - len(path) - 1))}"


def hostile_file(image: str, markers: int) -> bytes:
    line = f"- image: {image}:5.0.0 {MARKER}\n"
    return b"items:\n" + line.encode() * markers


def hostile_files(image: str, files: int, markers: int) -> dict[str, bytes]:
    big = hostile_file(image, markers)
    return {f"deploy/{n}.yaml": big for n in range(files)}


def innocent_files(image: str) -> dict[str, bytes]:
    return {CONFIG_PATH: config(image).encode(), "deploy/app.yaml": manifest(image, "5.0.0")}


# -- measuring -----------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@dataclass
class ServeRun:
    workers: int
    hostile_s: float = 0.0  # installation to the hostile reconcile's outcome in the log
    acks: list[float] = field(default_factory=list)  # seconds, 2xx answers
    refused: int = 0  # deliveries not answered 2xx (errors, timeouts)
    alone: list[float] = field(default_factory=list)
    beside: float = 0.0


def alive(served: Served) -> None:
    assert served.process is not None
    if served.process.poll() is not None:
        raise RuntimeError(f"bot exited {served.process.returncode}:\n{served.text()[-4000:]}")


async def until(served: Served, predicate: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        alive(served)
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}:\n{served.text()[-4000:]}")
        await asyncio.sleep(0.01)


async def pull_opened(served: Served, repository: str, since: float) -> float:
    """Seconds from `since` (perf_counter) until the bot's pull request is open."""
    await until(served, lambda: bool(served.open_pulls(repository)), f"a PR on {repository}", 180)
    return time.perf_counter() - since


def push_delivery(installation_id: int, head: str) -> bytes:
    """A push to a branch of the hostile repository that no automation watches."""
    return json.dumps(
        {
            "ref": "refs/heads/notes",
            "before": "0" * 40,
            "after": head,
            "repository": {"full_name": HOSTILE, "default_branch": "main"},
            "installation": {"id": installation_id},
            "sender": {"login": "alice"},
        }
    ).encode()


async def flood(url: str, body: bytes, rate: float, stop: asyncio.Event, run: ServeRun) -> None:
    """Send `rate` deliveries a second until `stop`, without waiting for the answers."""
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    connector = aiohttp.TCPConnector(limit=0)  # every delivery on its own, as GitHub sends them
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def deliver() -> None:
            headers = {
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": signature,
                "Content-Type": "application/json",
            }
            start = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    ok = 200 <= response.status < 300
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                run.acks.append(time.perf_counter() - start)
            else:
                run.refused += 1

        loop = asyncio.get_running_loop()
        begin = loop.time()
        sent: list[asyncio.Task] = []
        while not stop.is_set():
            sent.append(asyncio.create_task(deliver()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), begin + len(sent) / rate - loop.time())
        await asyncio.gather(*sent)


async def serve_run(
    workers: int, key: tuple[int, str, str], images: dict[str, str], args: argparse.Namespace
) -> ServeRun:
    run = ServeRun(workers)
    with tempfile.TemporaryDirectory() as tmp:
        sim = GitHubSim(Path(tmp) / "githubsim")
        server = TestServer(sim.make_app(), host="127.0.0.1")
        await server.start_server()
        env = {"WORKERS": str(workers), "AUTOMATION_MAX_SECONDS": "0", "LOG_LEVEL": "info"}
        served = Served(Path(tmp), RunningSim(sim, str(server.make_url("")).rstrip("/")), key,
                        extra_env=env)  # fmt: skip
        try:
            await served.start()
            # 1. Innocent repositories, one at a time, with nothing else to do.
            for n in range(args.innocent):
                account = f"solo-{n}"
                sim.create_repository(f"{account}/app", files=innocent_files(images["innocent"]))
                start = time.perf_counter()
                sim.create_installation(
                    served.app_id, account=account, repositories=[f"{account}/app"]
                )
                run.alone.append(await pull_opened(served, f"{account}/app", start))

            # 2. The hostile repository and an innocent one, installed at the same moment.
            files = {CONFIG_PATH: config(images["hostile"]).encode()}
            files.update(hostile_files(images["hostile"], args.files, args.markers))
            head = sim.create_repository(HOSTILE, files=files)
            assert head is not None
            sim.create_repository(BESIDE, files=innocent_files(images["innocent"]))
            start = time.perf_counter()
            installation = sim.create_installation(
                served.app_id, account="octo-org", repositories=[HOSTILE]
            )
            sim.create_installation(served.app_id, account="other-org", repositories=[BESIDE])
            stop = asyncio.Event()
            sending = asyncio.create_task(
                flood(f"{served.url}/api/github/webhooks", push_delivery(installation, head),
                      args.rate, stop, run)
            )  # fmt: skip
            beside = asyncio.create_task(pull_opened(served, BESIDE, start))
            outcome = f"{HOSTILE}: {AUTOMATION}:"
            try:
                await until(served, lambda: outcome in served.text(), "the hostile outcome", 600)
                run.hostile_s = time.perf_counter() - start
            finally:
                stop.set()
                await sending
            run.beside = await beside
        finally:
            await served.stop()
            await server.close()
    return run


# -- threads or processes? -----------------------------------------------------------------


@dataclass
class LagRun:
    where: str
    plan_s: float
    lags: list[float]


def hostile_plan(image: str, files: int, markers: int) -> Callable[[], object]:
    """`plan_automation` over the hostile files, as `serve` calls it (picklable)."""
    cfg, problems = load_config(config(image).encode(), path=CONFIG_PATH)
    assert not problems, problems
    (automation,) = cfg.automations.values()
    (policy,) = cfg.policies
    observation = Observation(latest={policy: LatestRef(image, "5.0.3", "")})
    return functools.partial(
        plan_automation,
        cfg,
        automation,
        observation,
        hostile_files(image, files, markers),
        repository=HOSTILE,
    )


async def lag_while(where: str, executor: Executor | None, task: Callable[[], object]) -> LagRun:
    """Tick every TICK seconds and record the lateness while `task` runs in `executor`."""
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        due = loop.time() + TICK
        while not done.is_set():
            await asyncio.sleep(max(0.0, due - loop.time()))
            now = loop.time()
            lags.append(now - due)
            due = now + TICK

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(TICK * 5)
    lags.clear()
    start = time.perf_counter()
    if executor is None:
        await asyncio.sleep(3.0)  # nothing running: the floor on this machine
    else:
        await loop.run_in_executor(executor, task)
    plan_s = time.perf_counter() - start
    done.set()
    await ticking
    return LagRun(where, plan_s, lags)


async def threads_or_processes(task: Callable[[], object]) -> list[LagRun]:
    runs = [await lag_while("nothing (floor)", None, task)]
    with ThreadPoolExecutor(1) as threads:
        runs.append(await lag_while("a thread (`ThreadPoolExecutor`)", threads, task))
    # As `bot.workers` makes them: forkserver, planner imported ahead, one warm worker.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["bot.planner"])
    with ProcessPoolExecutor(1, mp_context=context) as processes:
        await asyncio.get_running_loop().run_in_executor(processes, os.getpid)
        runs.append(await lag_while("a process (`ProcessPoolExecutor`)", processes, task))
    return runs


# -- report --------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def serve_table(runs: list[list[ServeRun]]) -> list[str]:
    lines = [
        "| WORKERS | hostile reconcile s | deliveries acked | ack p50 ms | ack p99 ms "
        "| ack max ms | acks over 10 s | not acked | innocent alone s | innocent beside hostile s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for repeats in runs:
        workers = repeats[0].workers
        label = f"{workers} (inline, as before)" if workers == 0 else f"{workers} (processes)"

        def m(of: Callable[[ServeRun], float], repeats: list[ServeRun] = repeats) -> float:
            return median([of(r) for r in repeats])

        lines.append(
            f"| {label} | {m(lambda r: r.hostile_s):.1f} | {m(lambda r: len(r.acks)):.0f} "
            f"| {m(lambda r: statistics.median(r.acks) * 1000):,.1f} "
            f"| {m(lambda r: percentile(r.acks, 99) * 1000):,.0f} "
            f"| {m(lambda r: max(r.acks) * 1000):,.0f} "
            f"| {m(lambda r: sum(a > GITHUB_TIMEOUT for a in r.acks)):.0f} "
            f"| {m(lambda r: r.refused):.0f} "
            f"| {m(lambda r: median(r.alone)):.2f} | {m(lambda r: r.beside):.2f} |"
        )
    return lines


def lag_table(runs: list[list[LagRun]]) -> list[str]:
    lines = [
        "| plan runs in | plan s | ticks | lag p50 ms | lag p99 ms | lag max ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for repeats in zip(*runs, strict=True):

        def m(of: Callable[[LagRun], float], repeats: tuple[LagRun, ...] = repeats) -> float:
            return median([of(r) for r in repeats])

        plan = "–" if repeats[0].where.startswith("nothing") else f"{m(lambda r: r.plan_s):.1f}"
        lines.append(
            f"| {repeats[0].where} | {plan} | {m(lambda r: len(r.lags)):.0f} "
            f"| {m(lambda r: statistics.median(r.lags) * 1000):.1f} "
            f"| {m(lambda r: percentile(r.lags, 99) * 1000):,.1f} "
            f"| {m(lambda r: max(r.lags) * 1000):,.1f} |"
        )
    return lines


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", default="0,2", help="WORKERS values to serve with")
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--markers", type=int, default=14_000, help="marked lines per file")
    parser.add_argument("--rate", type=float, default=20.0, help="deliveries per second")
    parser.add_argument("--innocent", type=int, default=3, help="innocent repositories alone")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    key = (1, *generate_app_key())
    registry = start_registry()
    try:
        images = {"innocent": f"{registry.host}/team/innocent"}
        images["hostile"] = hostile_image(registry.host, args.markers)
        pusher = Pusher(registry.host)
        for image in images.values():
            path = image.split("/", 1)[1]
            pusher.image(path, TAGS, salt=path)
        serve: dict[int, list[ServeRun]] = {}
        lags: list[list[LagRun]] = []
        task = hostile_plan(images["hostile"], args.files, args.markers)
        for _ in range(args.repeats):
            for workers in (int(w) for w in args.workers.split(",")):
                run = asyncio.run(serve_run(workers, key, images, args))
                serve.setdefault(workers, []).append(run)
                progress(serve_table([[run]])[-1])
            lags.append(asyncio.run(threads_or_processes(task)))
            for line in lag_table([lags[-1]])[2:]:
                progress(line)
    finally:
        registry.stop()

    size = len(hostile_file(images["hostile"], args.markers))
    lines = [
        f"### `serve`: a hostile repository ({args.files} files of {args.markers:,} marked lines,"
        f" {size / 1e6:.1f} MB each) beside {args.rate:g} deliveries/s and another installation",
        "",
        *serve_table(list(serve.values())),
        "",
        f"### event-loop lag (a {TICK * 1000:.0f} ms tick) while `plan_automation` runs"
        " on the same files",
        "",
        *lag_table(lags),
        "",
    ]
    if args.repeats > 1:
        lines.append(f"Each figure is the median over {args.repeats} runs.\n")
    report = "\n".join(lines)
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
