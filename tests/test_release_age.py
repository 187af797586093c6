"""minimumReleaseAge (issue 12 §4): a tag is a candidate once it has been known that long;
the image's own created time, when it has one, decides for the winner."""

from __future__ import annotations

import json

import aiohttp

from bot.config import CONFIG_PATH, load_config
from bot.planner import observe_policies
from bot.store import Store
from tests.cli.runner import run_bot
from tests.fakes import FakeRegistry
from tests.manifests import IMAGE, deployment
from tests.test_automation_lifecycle import World

DAY = 86400.0
NOW = 1_800_000_000.0
REPO = "octo-org/aged"


def config(age: str = "3d") -> str:
    return (
        f"version: 1\nnamespace: flux-system\nimageRepositories:\n  - {{name: podinfo, image: {IMAGE}}}\n"
        "imagePolicies:\n  - name: podinfo\n    imageRepositoryRef: podinfo\n"
        f"    policy: {{semver: {{range: '5.x'}}}}\n    minimumReleaseAge: {age}\n"
        "imageUpdateAutomations:\n  - {name: apps, update: {path: ./apps}}\n"
    )


def test_the_config_reads_ages_with_days_and_weeks():
    loaded, problems = load_config(config("1w2d"))
    assert problems == [] and loaded.policies["podinfo"].minimum_age == 9 * DAY
    _loaded, problems = load_config(config("'3 days'"))
    (problem,) = problems
    assert problem.line == 9 and "'3 days' is not an age" in problem.message


async def test_tags_count_from_their_first_sighting_and_the_first_scan_counts_as_old():
    store = Store.open("sqlite:///:memory:")
    loaded, _ = load_config(config())
    registry = FakeRegistry({IMAGE: ["5.0.0", "5.0.3"]})
    # The first scan: what is there is old (the bot cannot know better).
    observation = await observe_policies(loaded, registry.source("o/r"), ages=store, now=NOW)
    assert observation.latest["podinfo"].tag == "5.0.3"

    registry.images[IMAGE].append("5.0.4")
    observation = await observe_policies(loaded, registry.source("o/r"), ages=store, now=NOW + 60)
    assert observation.latest["podinfo"].tag == "5.0.3"  # 5.0.4 is a minute old
    assert observation.too_young == {"podinfo": ["5.0.4"]}

    observation = await observe_policies(
        loaded, registry.source("o/r"), ages=store, now=NOW + 60 + 3 * DAY
    )
    assert observation.latest["podinfo"].tag == "5.0.4"  # three days on, it is a candidate


async def test_a_created_time_makes_the_winner_too_young_and_the_next_one_wins():
    loaded, _ = load_config(config())
    registry = FakeRegistry({IMAGE: ["5.0.0", "5.0.3", "5.0.4"]})
    registry.created = {IMAGE: {"5.0.4": NOW - DAY, "5.0.3": NOW - 10 * DAY}}
    observation = await observe_policies(loaded, registry.source("o/r"), now=NOW)  # no store: plan
    assert observation.latest["podinfo"].tag == "5.0.3"

    registry.created[IMAGE]["5.0.3"] = NOW - DAY
    registry.created[IMAGE]["5.0.0"] = NOW - 2 * DAY
    observation = await observe_policies(loaded, registry.source("o/r"), now=NOW)
    assert "podinfo" not in observation.latest
    assert "no tag is older than minimumReleaseAge" in observation.errors["podinfo"].message
    assert "- dropped, younger than minimumReleaseAge (3): 5.0.4, 5.0.3, 5.0.0" in (
        observation.explanations["podinfo"]
    )


def test_plan_judges_by_the_created_times_of_a_tags_file(tmp_path):
    (tmp_path / ".github").mkdir()
    (tmp_path / CONFIG_PATH).write_text(config())
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps/app.yaml").write_bytes(deployment("5.0.0"))
    tags = {IMAGE: {"tags": ["5.0.0", "5.0.3", "5.0.4"],
                    "created": {"5.0.4": "2099-01-01T00:00:00Z", "5.0.3": "2020-01-01T00:00:00Z"}}}  # fmt: skip
    (tmp_path / "tags.json").write_text(json.dumps(tags))
    planned = run_bot("plan", tmp_path, "--tags", tmp_path / "tags.json", "--json")
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["observedPolicies"]["podinfo"]["tag"] == "5.0.3"


def test_first_sightings_are_kept_once_on_both_databases(database_url):
    store = Store.open(database_url)
    assert store.first_seen("ghcr.io/o/a", ["1", "2"], NOW) == {"1": 0.0, "2": 0.0}
    assert store.first_seen("ghcr.io/o/a", ["2", "3"], NOW + 5) == {"2": 0.0, "3": NOW + 5}
    assert store.first_seen("ghcr.io/o/a", ["3"], NOW + 9) == {"3": NOW + 5}
    assert store.first_seen("ghcr.io/o/b", ["3"], NOW + 9) == {"3": 0.0}  # per image


async def test_serve_proposes_a_tag_once_it_is_old_enough(github_sim, app_key):
    async with aiohttp.ClientSession() as session:
        world = World(github_sim, app_key, session)
        now = [NOW]
        world.deps.clock = lambda: now[0]
        world.add_repository(REPO, files={CONFIG_PATH: config().encode(),
                                          "apps/app.yaml": deployment("5.0.3")})  # fmt: skip
        await world.reconcile(REPO)
        assert world.open_pulls(REPO) == []  # 5.0.3 is the newest: nothing to do
        world.registry.images[IMAGE].append("5.0.4")
        now[0] += 3600
        await world.reconcile(REPO)
        assert world.open_pulls(REPO) == []  # an hour old
        now[0] += 3 * DAY
        await world.reconcile(REPO)
        (pull,) = world.open_pulls(REPO)
        assert f"{IMAGE}:5.0.3 -> {IMAGE}:5.0.4" in pull["body"]


async def test_the_first_scan_records_every_tag_not_only_those_an_exclusion_list_keeps():
    store = Store.open("sqlite:///:memory:")
    excluding = config().replace(f"image: {IMAGE}}}", f"image: {IMAGE}, exclusionList: ['^5.0.4$']}}")
    loaded, problems = load_config(excluding)
    assert problems == []
    registry = FakeRegistry({IMAGE: ["5.0.0", "5.0.3", "5.0.4"]})
    await observe_policies(loaded, registry.source("o/a"), ages=store, now=NOW)
    # Another repository without that exclusion: 5.0.4 was there at the first scan too.
    others, _ = load_config(config())
    observation = await observe_policies(others, registry.source("o/b"), ages=store, now=NOW + 60)
    assert observation.latest["podinfo"].tag == "5.0.4"
