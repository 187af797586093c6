"""Per-automation budgets through `python -m bot serve` (issue 8 §4): over a budget the
check run names the limit and what to do, nothing is written, an open PR stays as it
is; and while a hostile plan runs in a worker, webhooks are still acknowledged."""

from __future__ import annotations

import pytest

from bot.config import CONFIG_PATH
from tests.e2e.conftest import REPOSITORY, config, install, manifest
from tests.e2e.served import serving
from tests.manifests import MARKER

pytestmark = pytest.mark.e2e


@pytest.fixture
async def limited(tmp_path, github_sim, app_key, request):
    """The bot with the budget settings the test's parameters give."""
    async with serving(tmp_path, github_sim, app_key, **request.param) as served:
        yield served


def _errors(check: dict) -> list[str]:
    return [a["message"] for a in check["annotations"] if a["annotation_level"] == "failure"]


def _hostile(image: str, markers: int) -> bytes:
    """A list of `markers` marked image values: megabytes of YAML to parse."""
    line = f"- image: {image}:5.0.0 {MARKER}\n"
    return b"items:\n" + line.encode() * markers


@pytest.mark.parametrize("limited", [{"AUTOMATION_MAX_MARKED_FILES": "2"}], indirect=True)
async def test_more_marked_files_than_allowed_leave_the_open_pr_as_it_is(limited, image):
    bot = limited
    install(bot, {CONFIG_PATH: config(image).encode(), "deploy/a.yaml": manifest(image, "5.0.0")})
    (pr,) = await bot.pull_opened(REPOSITORY)
    bot.sim.push(
        REPOSITORY,
        "main",
        {"deploy/b.yaml": manifest(image, "5.0.0"), "deploy/c.yaml": manifest(image, "5.0.0")},
        as_user="alice",
    )
    check = await bot.check_run(REPOSITORY, lambda c: any("markers" in m for m in _errors(c)))
    (message,) = _errors(check)
    assert "3 files under update.path carry image policy markers" in message
    assert "limit of 2" in message and "AUTOMATION_MAX_MARKED_FILES" in message
    assert "narrow update.path" in message
    (still,) = bot.open_pulls(REPOSITORY)
    assert (still["number"], still["head_sha"]) == (pr["number"], pr["head_sha"])


@pytest.mark.parametrize("limited", [{"AUTOMATION_MAX_FILES": "2"}], indirect=True)
async def test_more_files_than_allowed_are_not_read(limited, image):
    bot = limited
    files = {f"deploy/{name}.yaml": manifest(image, "5.0.0") for name in "abc"}
    install(bot, {CONFIG_PATH: config(image).encode(), **files})
    check = await bot.check_run(REPOSITORY, lambda c: bool(_errors(c)))
    (message,) = _errors(check)
    assert "update.path selects 3 files, more than the limit of 2" in message
    assert "AUTOMATION_MAX_FILES" in message
    assert bot.open_pulls(REPOSITORY) == []
    read = {key: n for key, n in bot.sim.counters.items() if "blobs" in key or "tarball" in key}
    # The config only: the three files are refused before any is read.
    assert read == {"GET /repos/{owner}/{repo}/git/blobs/{file_sha}": 1}


@pytest.mark.parametrize("limited", [{"AUTOMATION_MAX_SECONDS": "0.5"}], indirect=True)
async def test_a_plan_over_its_time_is_stopped_while_webhooks_are_acknowledged(limited, image):
    bot = limited
    big = _hostile(image, 14_000)  # under the 2 MiB file cap: seconds of parsing each
    files = {f"deploy/{n}.yaml": big for n in range(6)}
    install(bot, {CONFIG_PATH: config(image).encode(), **files})
    for n in range(5):  # pushes elsewhere while it plans: each delivery must be taken
        bot.sim.push(REPOSITORY, "notes", {f"n{n}.md": b"x\n"}, as_user="alice")
    check = await bot.check_run(REPOSITORY, lambda c: bool(_errors(c)))
    (message,) = _errors(check)
    assert "planning took longer than the limit of 0.5 s" in message
    assert "AUTOMATION_MAX_SECONDS" in message
    assert bot.open_pulls(REPOSITORY) == []
    await bot.sim.wait_deliveries()
    assert {d.state for d in bot.sim.deliveries} == {"delivered"}
