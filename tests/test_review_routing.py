"""Review routing (issue 12 §5): `pullRequest.assignees`, `reviewers` and `teamReviewers`
are asked for when the PR is opened; whom GitHub refuses is a warning, not a failure."""

from __future__ import annotations

import aiohttp

from bot.config import CONFIG_PATH, load_config
from tests.manifests import IMAGE, deployment
from tests.test_automation_lifecycle import World

REPO = "octo-org/routed"
REVIEWERS = "POST /repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers"
ASSIGNEES = "POST /repos/{owner}/{repo}/issues/{issue_number}/assignees"


def config(people: str) -> bytes:
    return (
        f"version: 1\nnamespace: flux-system\nimageRepositories:\n  - {{name: podinfo, image: {IMAGE}}}\n"
        "imagePolicies:\n  - {name: podinfo, imageRepositoryRef: podinfo, policy: {semver: {range: '5.x'}}}\n"
        "imageUpdateAutomations:\n  - name: apps\n    update: {path: ./apps}\n"
        f"    pullRequest: {people}\n"
    ).encode()


async def test_people_and_teams_are_asked_once_and_refusals_are_warnings(github_sim, app_key):
    async with aiohttp.ClientSession() as session:
        world = World(github_sim, app_key, session)
        world.add_repository(REPO, files={
            CONFIG_PATH: config("{assignees: [mona, ghost], reviewers: ['@mona', hubot], "
                                "teamReviewers: [octo-org/platform, nobody-team]}"),
            "apps/app.yaml": deployment("5.0.0")})  # fmt: skip
        world.sim.add_collaborator(REPO, "mona")
        world.sim.create_user("hubot")  # a person, but without access to the repository
        world.sim.add_team(REPO, "platform")
        outcome = await world.reconcile(REPO)

        (pull,) = world.open_pulls(REPO)
        assert pull["assignees"] == ["mona"]
        assert pull["requested_reviewers"] == ["mona"]
        assert pull["requested_teams"] == ["platform"]
        messages = [p.message for p in outcome.problems if p.severity == "warning"]
        assert any("did not assign ghost to #" in m for m in messages), messages
        refused = next(m for m in messages if "did not ask" in m)
        assert "hubot, nobody-team" in refused and "not a collaborator" in refused
        (check,) = world.sim.check_runs(REPO)
        assert check["conclusion"] == "neutral"  # warnings, not a failure

        # An update of the PR asks nobody again.
        world.sim.push(REPO, "main", {"apps/other.yaml": deployment("5.0.0")}, as_user="alice")
        world.sim.reset_counters()
        await world.reconcile(REPO)
        assert world.sim.counters[REVIEWERS] == 0 and world.sim.counters[ASSIGNEES] == 0
        (pull,) = world.open_pulls(REPO)
        assert "other.yaml" in pull["body"]


def test_the_config_reads_logins_and_team_slugs():
    config_, problems = load_config(
        config("{assignees: ['@Mona', mona], teamReviewers: [octo-org/platform]}")
    )
    automation = config_.automations["apps"]
    assert problems == []
    assert automation.pr_assignees == ["Mona"]  # '@' dropped, a login once
    assert automation.pr_team_reviewers == ["platform"]
    _config, problems = load_config(config("{reviewers: [-bad-]}"))
    (problem,) = problems
    assert "'-bad-' is not a GitHub login" in problem.message and problem.line == 10
