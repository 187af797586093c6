"""`python -m bot run` with a plain token (issue 11 §2): the GitHub Actions way in.

The token is what a workflow's ``GITHUB_TOKEN`` is, with only ``contents: write`` and
``pull-requests: write``: an installation token of another App (GitHub Actions), for this
repository only. No App of ours, no server, no database.
"""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from bot.config import CONFIG_PATH
from tests.datapaths import REPO as CHECKOUT
from tests.e2e.conftest import REPOSITORY, config, manifest

pytestmark = pytest.mark.e2e

DEPLOY = "deploy/app.yaml"
WORKFLOW_PERMISSIONS = {"contents": "write", "pull_requests": "write", "metadata": "read"}


def actions_token(sim) -> str:
    """What GitHub Actions hands a workflow: its own App's token, for one repository."""
    app_id = sim.next_id()
    from tests.conftest import generate_app_key

    sim.register_app(app_id=app_id, public_key_pem=generate_app_key()[1], slug="github-actions",
                     permissions=dict(WORKFLOW_PERMISSIONS))  # fmt: skip
    installation = sim.create_installation(app_id, account="octo-org", repositories=[REPOSITORY])
    return sim.mint_token(sim.installations[installation], dict(WORKFLOW_PERMISSIONS),
                          {REPOSITORY.lower()}).token  # fmt: skip


async def run_bot(github_sim, token: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=CHECKOUT,
        env={"PATH": os.environ["PATH"], "GITHUB_TOKEN": token, "GITHUB_REPOSITORY": REPOSITORY,
             "GITHUB_API_URL": github_sim.url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode, out.decode(), err.decode()


async def test_run_opens_the_pr_with_a_plain_token_and_reports_in_the_job_log(github_sim, image):
    sim = github_sim.sim
    broken = config(image) + "  - name: extra\n    update: {path: ./missing}\n"
    misspelt = b"        - name: sidecar\n          image: nginx:1.25 # {\"$imagepolicy\": \"flux-system:podinfoo\"}\n"
    sim.create_repository(
        REPOSITORY,
        files={CONFIG_PATH: broken.encode(), DEPLOY: manifest(image, "5.0.0") + misspelt},
    )
    token = actions_token(sim)

    status, out, err = await run_bot(github_sim, token)
    assert status == 0, err
    (pull,) = [p for p in sim.pulls(REPOSITORY) if p["state"] == "open"]
    assert pull["head"] == "image-automation/podinfo-update"
    assert f"{image}:5.0.3" in sim.read_file(REPOSITORY, pull["head"], DEPLOY).decode()
    # No checks: write: the check run's report went to the job log, as workflow commands.
    assert sim.check_runs(REPOSITORY) == []
    assert f"::warning file={CONFIG_PATH},line=" in out
    assert "update.path 'missing' holds no file" in out
    assert token not in out + err
    # And in the PR, collapsed below the change list.
    assert "problem found in this repository" in pull["body"]
    assert f"`{DEPLOY}:14:18` (warning): marker 'flux-system:podinfoo' names policy" in pull["body"]
    assert "did you mean 'podinfo'?" in pull["body"]

    # A second run finds its PR again (the hidden block and the branch): nothing new.
    sim.reset_counters()
    status, out, err = await run_bot(github_sim, token)
    assert status == 0, err
    (again,) = sim.pulls(REPOSITORY)
    assert again["number"] == pull["number"] and again["state"] == "open"
    assert again["head_sha"] == pull["head_sha"]  # no new commit on the branch
    writes = {key: n for key, n in sim.counters.items() if not key.startswith(("GET", "HEAD"))}
    # Not even the body (the problems did not change); only the check run is tried, and
    # refused again, since the report has a warning to give.
    assert writes == {"POST /repos/{owner}/{repo}/check-runs": 1}, writes
    assert sim.check_runs(REPOSITORY) == []


async def test_run_says_what_to_set():
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=CHECKOUT, env={"PATH": os.environ["PATH"]},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await process.communicate()
    assert process.returncode == 2
    assert "GITHUB_TOKEN must be set" in err.decode()


async def test_run_names_an_unreadable_credentials_file(tmp_path):
    bad = tmp_path / "registries.yml"
    bad.write_text("bad: [\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=CHECKOUT,
        env={"PATH": os.environ["PATH"], "GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "o/r",
             "REGISTRY_CREDENTIALS": str(bad)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await process.communicate()
    assert process.returncode == 2
    assert f"run: {bad}:2:1:" in err.decode() and "Traceback" not in err.decode()
