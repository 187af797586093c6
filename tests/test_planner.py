"""The shared pipeline: policies observed once per image, failures keep the old image."""

from __future__ import annotations

from bot.config import load_config
from bot.planner import Observation, automation_paths, observe_policies, plan_automation
from bot.policy import LatestRef
from tests.fakes import FakeRegistry

CONFIG = """\
version: 1
namespace: ns
imageRepositories:
  - {name: app, image: ghcr.io/o/app}
  - {name: web, image: ghcr.io/o/web}
imagePolicies:
  - {name: app-stable, imageRepositoryRef: app, labels: {team: a}, policy: {semver: {range: '1.x'}}}
  - {name: app-any, imageRepositoryRef: app, labels: {team: b}, policy: {alphabetical: {order: asc}}}
  - {name: web, imageRepositoryRef: web, labels: {team: a}, policy: {rolling: {tag: latest}}}
imageUpdateAutomations:
  - name: team-a
    update: {path: ./a, strategy: Setters}
    policySelector: {matchLabels: {team: a}}
"""


def _config():
    config, errors = load_config(CONFIG)
    assert errors == []
    return config


async def test_one_scan_per_image_and_rolling_tag_is_refreshed():
    source = FakeRegistry(
        {"ghcr.io/o/app": ["1.0.0", "1.2.0", "2.0.0", "x.sig"], "ghcr.io/o/web": ["latest", "v1"]},
        {"ghcr.io/o/web": {"latest": "sha256:" + "a" * 64}},
    )
    observation = await observe_policies(_config(), source)
    assert source.scans == {"ghcr.io/o/app": 1, "ghcr.io/o/web": 1}
    assert observation.errors == {}
    assert observation.latest == {
        "app-stable": LatestRef("ghcr.io/o/app", "1.2.0"),
        "app-any": LatestRef("ghcr.io/o/app", "2.0.0"),  # "x.sig" was excluded
        "web": LatestRef("ghcr.io/o/web", "latest", "sha256:" + "a" * 64),
    }
    assert ("ghcr.io/o/web", ("latest",)) in source.refreshed
    assert source.digests_asked == [("ghcr.io/o/web", "latest")]  # only the rolling tag's


async def test_failed_scan_keeps_previous_latest_and_names_the_error():
    source = FakeRegistry({"ghcr.io/o/app": ["1.0.0"]})
    previous = {"web": LatestRef("ghcr.io/o/web", "latest", "sha256:" + "b" * 64)}
    observation = await observe_policies(_config(), source, previous=previous)
    assert observation.latest["web"] == previous["web"]
    (problem,) = observation.errors.values()
    assert observation.errors == {"web": problem}
    # Located at the policy in the config file, as the check run annotates it.
    config = _config()
    assert (problem.path, problem.line, problem.message) == (
        config.path,
        config.policies["web"].line,
        "registry unreachable for ghcr.io/o/web",
    )
    assert observation.latest["app-stable"].tag == "1.0.0"


def test_selector_and_update_path_limit_an_automation():
    config = _config()
    automation = config.automations["team-a"]
    paths = ["a/x.yaml", "a/y.txt", "b/z.yaml", "a/Kustomization", "README.md"]
    assert automation_paths(automation, paths) == ["a/Kustomization", "a/x.yaml"]

    files = {
        "a/x.yaml": b'image: ghcr.io/o/app:1.0.0 # {"$imagepolicy": "ns:app-stable"}\n'
        b'other: ghcr.io/o/app:1.0.0 # {"$imagepolicy": "ns:app-any"}\n',
    }
    observation = Observation(
        latest={
            "app-stable": LatestRef("ghcr.io/o/app", "1.2.0"),
            "app-any": LatestRef("ghcr.io/o/app", "2.0.0"),
        }
    )
    plan = plan_automation(config, automation, observation, files, repository="o/r")
    # app-any has label team=b: its marker is not applied by this automation
    assert plan.edited == {
        "a/x.yaml": b'image: ghcr.io/o/app:1.2.0 # {"$imagepolicy": "ns:app-stable"}\n'
        b'other: ghcr.io/o/app:1.0.0 # {"$imagepolicy": "ns:app-any"}\n'
    }
    assert set(plan.latest) == {"app-stable"}
    assert plan.change_set and plan.body().startswith("Automation: ns/team-a")


def test_files_without_marker_bytes_are_never_parsed():
    """Broken YAML without the marker is not even looked at: no warning, no change."""
    config = _config()
    automation = config.automations["team-a"]
    files = {f"a/broken-{i}.yaml": b"key: [unclosed\n\t- :: %YAML garbage" for i in range(50)}
    files["a/ok.yaml"] = b'image: ghcr.io/o/app:1.0.0 # {"$imagepolicy": "ns:app-stable"}\n'
    observation = Observation(latest={"app-stable": LatestRef("ghcr.io/o/app", "1.2.0")})
    plan = plan_automation(config, automation, observation, files, repository="o/r")
    assert plan.warnings == []
    assert list(plan.edited) == ["a/ok.yaml"]
