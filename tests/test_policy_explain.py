"""Why this tag (issue 12 §2): `bot.policy.explain`, `plan --explain`, and the check run's
collapsed explanation for a policy that picks nothing."""

from __future__ import annotations

import json

import pytest

from bot.checkrun import render_checks
from bot.policy.evaluate import rank_tags
from bot.policy.explain import (
    KEY_TAKEN,
    NOT_MATCHED,
    NOT_NUMBER,
    NOT_SEMVER,
    OUT_OF_RANGE,
    explain,
)
from bot.policy.model import PolicySpec
from bot.problems import error
from tests.cli.runner import run_bot
from tests.cli.test_flux_manifests import flux_repo

TAGS = ["1.0.0", "1.2.0", "v1.2.0", "2.0.0", "latest", "1.3.0-rc.1", "main-abc1234-100"]


def test_semver_each_tag_has_its_fate_and_the_winner_is_evaluates_pick():
    spec = PolicySpec(kind="semver", semver_range=">=1.0.0 <2")
    explanation = explain("app", spec, TAGS)
    assert explanation.tags == len(TAGS)
    assert explanation.dropped == {
        NOT_SEMVER: ["main-abc1234-100", "latest"],
        OUT_OF_RANGE: ["2.0.0", "1.3.0-rc.1"],
    }
    assert explanation.admitted == ["v1.2.0", "1.2.0", "1.0.0"]
    assert explanation.winner == rank_tags(spec, TAGS).best
    text = explanation.text()
    assert text.splitlines()[0] == "policy app: 7 tags after the exclusion list"
    assert f"- winner: {explanation.winner}" in text


def test_filter_tags_shows_the_keys_and_what_it_dropped():
    tags = ["main-aaa-5", "main-bbb-7", "main-ccc-7", "pr-1-9", "latest"]
    spec = PolicySpec(
        kind="numerical", filter_pattern=r"^main-[a-z]+-(?P<ts>[0-9]+)$", filter_extract="$ts"
    )
    explanation = explain("app", spec, tags)
    # Flux order is descending: main-ccc-7 comes first, main-bbb-7 later takes its key.
    assert explanation.keyed == [("main-bbb-7", "7"), ("main-aaa-5", "5")]
    assert explanation.dropped == {NOT_MATCHED: ["pr-1-9", "latest"], KEY_TAKEN: ["main-ccc-7"]}
    assert explanation.winner == rank_tags(spec, tags).best == "main-bbb-7"
    assert "  - main-bbb-7 -> 7" in explanation.text()


def test_a_policy_that_picks_nothing_says_why():
    spec = PolicySpec(kind="numerical")
    explanation = explain("app", spec, ["1", "2", "latest"])
    assert explanation.dropped == {NOT_NUMBER: ["latest"]}
    assert explanation.winner is None and explanation.error
    assert f"- no pick: {explanation.error}" in explanation.text()

    nothing = explain("app", PolicySpec(kind="semver", semver_range="^3"), ["1.0.0"])
    assert nothing.admitted == [] and nothing.winner is None
    assert nothing.error == "unable to determine latest version from provided list"


def test_each_reason_shows_the_first_20_then_counts():
    tags = [f"x{i:02}" for i in range(25)] + ["1.0.0"]
    text = explain("app", PolicySpec(kind="semver", semver_range="1.x"), tags).text()
    line = next(line for line in text.splitlines() if NOT_SEMVER in line)
    assert line.startswith(f"- dropped, {NOT_SEMVER} (25): x24, x23,")
    assert line.endswith("x05, … and 5 more")


def test_rolling_follows_one_tag():
    explanation = explain("app", PolicySpec(kind="rolling", rolling_tag="latest"), TAGS)
    assert explanation.winner == "latest" and len(explanation.dropped["not the rolling tag"]) == 6


def test_the_check_run_explains_a_policy_that_picked_nothing_collapsed():
    problem = error(".github/image-automation.yml", 9, 1, "policy 'app': no pick")
    (check,) = render_checks(
        [],
        config_head="abc",
        config_problems=[],
        policy_problems={"app": problem},
        latest={},
        config_changed=False,
        policies_changed=True,
        explanations={"app": "policy app: 1 tags after the exclusion list\n- winner: ```x"},
    )
    assert "<details><summary>Why policy app picked nothing</summary>" in check.summary
    assert "- winner: x" in check.summary  # a fence inside cannot close the block


@pytest.mark.parametrize("which", [[], ["podinfo"]])
def test_plan_explain_prints_each_policy_and_json_holds_it(tmp_path, which):
    repo = flux_repo(tmp_path)
    (repo / "tags.json").write_text(
        json.dumps({"ghcr.io/stefanprodan/podinfo": {"tags": ["5.0.0", "5.0.3", "6.0.0", "x"]}})
    )
    shown = run_bot("plan", repo, "--tags", repo / "tags.json", "--explain", *which)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(
        "policy podinfo: 4 tags after the exclusion list\n"
        f"- dropped, {NOT_MATCHED} (1): x\n"  # its filterTags: ^(?P<v>[0-9.]+)$
        f"- dropped, {OUT_OF_RANGE} (1): 6.0.0\n"
        "- admitted, best first (2): 5.0.3, 5.0.0\n"
        "- winner: 5.0.3\n"
    )
    as_json = run_bot("plan", repo, "--tags", repo / "tags.json", "--json", "--explain", *which)
    assert json.loads(as_json.stdout)["explanations"]["podinfo"].endswith("- winner: 5.0.3")


def test_plan_explain_names_an_unknown_policy(tmp_path):
    repo = flux_repo(tmp_path)
    shown = run_bot("plan", repo, "--tags", repo / "tags.json", "--explain", "podinfoo")
    assert shown.returncode == 2
    assert "--explain: no policy named 'podinfoo' in the config" in shown.stderr


async def test_a_reconcile_puts_the_explanation_on_the_check_run(github_sim, app_key):
    import aiohttp

    from bot.config import CONFIG_PATH
    from tests.manifests import IMAGE, deployment
    from tests.test_automation_lifecycle import World

    config = (
        f"version: 1\nnamespace: flux-system\nimageRepositories:\n  - {{name: podinfo, image: {IMAGE}}}\n"
        "imagePolicies:\n  - name: podinfo\n    imageRepositoryRef: podinfo\n"
        "    policy: {semver: {range: '^9'}}\n"
        "imageUpdateAutomations:\n  - {name: apps, update: {path: ./apps}}\n"
    )
    async with aiohttp.ClientSession() as session:
        world = World(github_sim, app_key, session)
        world.add_repository("octo-org/explained", files={
            CONFIG_PATH: config.encode(), "apps/app.yaml": deployment("5.0.0")})  # fmt: skip
        await world.reconcile("octo-org/explained")
    (check,) = world.sim.check_runs("octo-org/explained")
    summary = check["output"]["summary"]
    assert "<details><summary>Why policy podinfo picked nothing</summary>" in summary
    assert f"- dropped, {OUT_OF_RANGE} (2): 5.0.3, 5.0.0" in summary
