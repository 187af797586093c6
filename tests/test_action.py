"""action.yml: a composite action that sets up Python, installs the bot from the action's
own checkout and runs `python -m bot run` with the token (issue 11 §2)."""

from __future__ import annotations

import re

import yaml

from tests.datapaths import REPO

ACTION = yaml.safe_load((REPO / "action.yml").read_text())


def test_the_action_is_composite_and_runs_the_bot_with_the_token():
    assert ACTION["runs"]["using"] == "composite"
    steps = ACTION["runs"]["steps"]
    assert steps[0]["uses"].startswith("actions/setup-python@")
    install, run = steps[1], steps[2]
    assert 'pip install --quiet "${{ github.action_path }}"' in install["run"]
    assert run["run"] == 'python -m bot run --repository "$REPOSITORY"'
    assert run["env"]["GITHUB_TOKEN"] == "${{ inputs.token }}"
    assert ACTION["inputs"]["token"]["default"] == "${{ github.token }}"
    assert ACTION["inputs"]["repository"]["default"] == "${{ github.repository }}"
    assert all(step.get("shell") == "bash" for step in steps if "run" in step)


def test_the_readme_workflow_uses_the_action_with_the_permissions_it_needs():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```yaml\n(# \.github/workflows/.*?)```", readme, re.S).group(1)
    workflow = yaml.safe_load(block)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"schedule", "workflow_dispatch"} <= set(triggers)
    assert workflow["permissions"] == {"contents": "write", "pull-requests": "write"}
    (job,) = workflow["jobs"].values()
    assert any("uses" in step and "image-automation" in step["uses"] for step in job["steps"])
