"""The worker pool: work runs in other processes, under a wall-time budget, and survives
a worker that dies; and the per-automation budgets of the planner."""

from __future__ import annotations

import os
import signal

import pytest

from bot.config import load_config
from bot.planner import Observation, PlanBudget, plan_automation
from bot.policy import LatestRef
from bot.policy.evaluate import evaluate, rank_tags
from bot.policy.model import PolicySpec
from bot.workers import WallTimeExceeded, WorkerLost, Workers
from tests.manifests import IMAGE, deployment, podinfo_config


def _pid() -> int:
    return os.getpid()


def _spin() -> None:
    while True:
        pass


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.fixture
async def workers():
    pool = Workers(2)
    try:
        yield pool
    finally:
        pool.close()


async def test_work_runs_in_another_process(workers):
    assert await workers.run(_pid) != os.getpid()


async def test_inline_workers_run_in_this_process():
    assert await Workers(0).run(_pid) == os.getpid()


async def test_work_over_its_wall_time_is_stopped_and_the_worker_lives_on(workers):
    with pytest.raises(WallTimeExceeded) as raised:
        await workers.run(_spin, seconds=0.2)
    assert raised.value.seconds == 0.2
    assert await workers.run(_pid) != os.getpid()  # the same pool still works


async def test_a_worker_that_dies_fails_its_task_and_a_new_pool_takes_the_next(workers):
    with pytest.raises(WorkerLost):
        await workers.run(_die)
    assert await workers.run(_pid) != os.getpid()


async def test_ranking_in_a_worker_picks_what_inline_ranking_picks(workers):
    tags = [
        f"{major}.{minor}.{patch}" for major in range(30) for minor in range(30) for patch in (0, 1)
    ]
    spec = PolicySpec(kind="semver", semver_range="<20")

    async def in_worker(spec, tags):
        return await workers.run(rank_tags, spec, tags)

    far = await evaluate(spec, "img", tags, rank=in_worker)
    near = await evaluate(spec, "img", tags)
    assert far == near == LatestRef("img", "19.29.1", "")


# -- budgets -----------------------------------------------------------------------------


def _podinfo():
    config, problems = load_config(podinfo_config().encode(), path=".image-automation.yaml")
    assert problems == []
    (automation,) = config.automations.values()
    (policy,) = config.policies
    observation = Observation(latest={policy: LatestRef(IMAGE, "5.0.3", "")})
    return config, automation, observation


def test_reading_over_the_file_or_byte_budget_is_an_error_naming_the_limit():
    config, automation, _ = _podinfo()
    sizes = {f"deploy/{n}.yaml": 100 for n in range(3)}
    assert PlanBudget(max_files=3, max_bytes=300).reading_problem(config, automation, sizes) is None
    files = PlanBudget(max_files=2).reading_problem(config, automation, sizes)
    assert files is not None and files.severity == "error"
    assert "3 files, more than the limit of 2" in files.message
    assert "AUTOMATION_MAX_FILES" in files.message and "narrow update.path" in files.message
    size = PlanBudget(max_bytes=299).reading_problem(config, automation, sizes)
    assert size is not None and "300 bytes, more than the limit of 299" in size.message
    assert "AUTOMATION_MAX_BYTES" in size.message


def test_more_marked_files_than_the_budget_are_not_parsed_and_nothing_is_planned():
    config, automation, observation = _podinfo()
    marked = deployment("5.0.0")
    files = {f"clusters/{n}.yaml": marked for n in range(3)}
    files["clusters/plain.yaml"] = b"kind: ConfigMap\n"
    over = plan_automation(
        config, automation, observation, files, repository="o/r",
        budget=PlanBudget(max_marked_files=2),
    )  # fmt: skip
    assert over.failed and not over.edited
    (problem,) = over.errors
    assert "3 files under update.path carry image policy markers" in problem.message
    assert "limit of 2" in problem.message and "AUTOMATION_MAX_MARKED_FILES" in problem.message
    within = plan_automation(
        config, automation, observation, files, repository="o/r",
        budget=PlanBudget(max_marked_files=3),
    )  # fmt: skip
    assert not within.failed and sorted(within.edited) == [f"clusters/{n}.yaml" for n in range(3)]
