"""The reconcile's config step with Flux manifests (issue 11 §1): what it reads, and when
it reads nothing. Against the GitHub simulator, counting its requests."""

from __future__ import annotations

import aiohttp

from bot.config import CONFIG_PATH
from bot.config.sources import ConfigSources
from tests.manifests import IMAGE, deployment
from tests.test_automation_lifecycle import World

REPO = "octo-org/flux"
FLUX = "clusters/prod/flux-system/images.yaml"
BLOBS = "GET /repos/{owner}/{repo}/git/blobs/{file_sha}"
TARBALL = "GET /repos/{owner}/{repo}/tarball/{ref}"


def objects(semver_range: str = "5.0.x") -> bytes:
    return f"""\
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageRepository
metadata: {{name: podinfo, namespace: flux-system}}
spec: {{image: {IMAGE}, interval: 5m}}
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImagePolicy
metadata: {{name: podinfo, namespace: flux-system}}
spec:
  imageRepositoryRef: {{name: podinfo}}
  policy: {{semver: {{range: "{semver_range}"}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {{name: podinfo-update, namespace: flux-system}}
spec:
  interval: 30m
  sourceRef: {{kind: GitRepository, name: flux-system}}
  git:
    checkout: {{ref: {{branch: main}}}}
    push: {{branch: image-automation/podinfo-update}}
  update: {{path: ./apps}}
""".encode()


def reads(world: World) -> int:
    return world.sim.counters[BLOBS] + world.sim.counters[TARBALL]


async def test_no_config_file_the_tree_is_screened_once_and_again_only_when_yaml_changes(
    github_sim, app_key
):
    async with aiohttp.ClientSession() as session:
        world = World(github_sim, app_key, session)
        plain = {f"apps/app{i}.yaml": deployment("5.0.0") for i in range(3)}
        world.add_repository(REPO, files={**plain, "README.md": b"hello\n"})

        outcome = await world.reconcile(REPO)
        assert outcome.automations == {"*": f"no {CONFIG_PATH}"}
        assert reads(world) >= 1  # the YAML files were looked at
        record = world.store.snapshot_for_run(REPO).record
        assert record.config_text is None and record.config_sha.startswith("sources:")

        # A commit that changes no YAML file: nothing is read again.
        world.sim.push(REPO, "main", {"README.md": b"changed\n"}, as_user="alice")
        world.sim.reset_counters()
        outcome = await world.reconcile(REPO)
        assert outcome.automations == {"*": f"no {CONFIG_PATH}"}
        assert reads(world) == 0

        # Flux's objects arrive: they are the config, and the PR is opened.
        world.sim.push(REPO, "main", {FLUX: objects()}, as_user="alice")
        world.sim.reset_counters()
        await world.reconcile(REPO)
        assert world.sim.counters[BLOBS] == 1  # only the new file: the others are known
        (pull,) = world.open_pulls(REPO)
        assert pull["head"] == "image-automation/podinfo-update"
        record = world.store.snapshot_for_run(REPO).record
        stored = ConfigSources.decode(record.config_text)
        assert stored.config is None and [path for path, _ in stored.manifests] == [FLUX]

        # Nothing moved: nothing is read, and the run short-circuits.
        world.sim.reset_counters()
        outcome = await world.reconcile(REPO)
        assert outcome.short_circuited and reads(world) == 0


async def test_a_config_file_listing_manifests_reads_them_and_follows_their_changes(
    github_sim, app_key
):
    async with aiohttp.ClientSession() as session:
        world = World(github_sim, app_key, session)
        config = b"version: 1\nfluxManifests: [clusters/prod]\n"
        world.add_repository(
            REPO,
            files={
                CONFIG_PATH: config,
                FLUX: objects("5.0.0"),
                "clusters/staging/images.yaml": objects("5.0.3"),  # not listed: not read
                "apps/app.yaml": deployment("4.0.0"),
            },
        )
        await world.reconcile(REPO)
        (pull,) = world.open_pulls(REPO)
        body = pull["body"]
        assert f"{IMAGE}:4.0.0 -> {IMAGE}:5.0.0" in body

        world.sim.push(REPO, "main", {FLUX: objects("5.0.3")}, as_user="alice")
        await world.reconcile(REPO)
        (pull,) = world.open_pulls(REPO)
        assert f"{IMAGE}:4.0.0 -> {IMAGE}:5.0.3" in pull["body"]


async def test_a_record_from_before_manifests_were_read_still_reads_them(github_sim, app_key):
    """An upgraded database: the record holds the config file alone, by its blob id, though
    the file already listed fluxManifests (the old bot called it an unknown field)."""
    from bot.github.tarball import git_blob_sha

    async with aiohttp.ClientSession() as session:
        world = World(github_sim, app_key, session)
        config = b"version: 1\nfluxManifests: [clusters/prod]\n"
        world.add_repository(REPO, files={CONFIG_PATH: config, FLUX: objects(),
                                          "apps/app.yaml": deployment("4.0.0")})  # fmt: skip
        record = world.store.snapshot_for_run(REPO).record
        record.config_sha, record.config_text = git_blob_sha(config), config
        world.store.save_repository(record)
        await world.reconcile(REPO)
        (pull,) = world.open_pulls(REPO)
        assert pull["head"] == "image-automation/podinfo-update"


async def test_a_listed_manifest_too_large_to_read_is_a_warning(github_sim, app_key):
    async with aiohttp.ClientSession() as session:
        world = World(github_sim, app_key, session)
        huge = objects() + b"# " + b"x" * (600 * 1024) + b"\n"
        world.add_repository(REPO, files={
            CONFIG_PATH: b"version: 1\nfluxManifests: [clusters/prod]\n", FLUX: huge,
            "apps/app.yaml": deployment("4.0.0")})  # fmt: skip
        outcome = await world.reconcile(REPO)
        (problem,) = [p for p in outcome.problems if p.path == FLUX]
        assert problem.severity == "warning" and "more than 524288" in problem.message
