"""Benchmark: from a registry push to an updated pull request (issue 12 §3).

    python bench/bench_registry_events.py [--pushes 10] [--repositories 1]

Debian's docker-registry sends its push notifications to `python -m bot serve`
(a process), which runs against the GitHub simulator (in this process). Each of
``--repositories`` repositories has an open PR for the image; the intervals are an
hour, so only the notification can make the bot look. For each push, the time from
the registry's answer to the manifest PUT until every PR names the new tag.
Target: under 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp.test_utils import TestServer  # noqa: E402

from bot.config import CONFIG_PATH  # noqa: E402
from tests.conftest import RunningSim, generate_app_key  # noqa: E402
from tests.e2e.served import Served  # noqa: E402
from tests.githubsim import GitHubSim  # noqa: E402
from tests.manifests import deployment, podinfo_config  # noqa: E402
from tests.registryharness.push import Pusher  # noqa: E402
from tests.registryharness.registry_proc import start_registry  # noqa: E402

TOKEN = "bench-notifications"
PATH = "team/bench"


async def main(pushes: int, repositories: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-events-"))
    sim = GitHubSim(root / "githubsim")
    server = TestServer(sim.make_app(), host="127.0.0.1")
    await server.start_server()
    github = RunningSim(sim=sim, url=str(server.make_url("")).rstrip("/"))
    bot = Served(root, github, (1, *generate_app_key()),
                 extra_env={"REGISTRY_EVENTS_DISTRIBUTION_TOKEN": TOKEN, "LOG_LEVEL": "warning"})  # fmt: skip
    registry = start_registry(notify=(f"{bot.url}/registry/events", TOKEN))
    try:
        await bot.start()
        image = f"{registry.host}/{PATH}"
        pusher = Pusher(registry.host)
        pusher.image(PATH, ["5.0.0", "5.0.1"], salt="start")
        config = podinfo_config(image=image, update_path="./deploy", labels=(), interval="1h")
        names = [f"octo-org/app-{i}" for i in range(repositories)]
        for name in names:
            sim.create_repository(name, files={CONFIG_PATH: config.encode(),
                                               "deploy/app.yaml": deployment("5.0.0", image=image)})  # fmt: skip
        sim.create_installation(bot.app_id, account="octo-org", repositories=names)
        await bot.wait_until(lambda: _all_name(sim, names, f"{image}:5.0.1"), what="first PRs",
                             timeout=120)  # fmt: skip
        latencies = []
        for n in range(pushes):
            tag = f"5.1.{n}"
            started = time.perf_counter()
            await asyncio.to_thread(pusher.image, PATH, tag, salt=f"push-{n}")
            await bot.wait_until(lambda tag=tag: _all_name(sim, names, f"{image}:{tag}"),
                                 what=f"PRs naming {tag}", timeout=60)  # fmt: skip
            latencies.append(time.perf_counter() - started)
        print(f"pushes: {pushes}, repositories: {repositories}")
        print(f"push -> every PR updated: p50 {statistics.median(latencies):.2f} s, "
              f"max {max(latencies):.2f} s (target < 5 s)")  # fmt: skip
        print("each:", ", ".join(f"{s:.2f}" for s in latencies))
    finally:
        registry.stop()
        await bot.stop()
        await server.close()


async def _all_name(sim: GitHubSim, names: list[str], text: str) -> bool:
    for name in names:
        pulls = [p for p in sim.pulls(name) if p["state"] == "open"]
        if not pulls or text not in (pulls[0]["body"] or ""):
            return False
    return True


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=10)
    parser.add_argument("--repositories", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.pushes, args.repositories))
