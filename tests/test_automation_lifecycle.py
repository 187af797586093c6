"""One reconcile after another against the GitHub simulator: the whole life of a bot PR.

Only the network edges are fake: the registry is `tests.fakes.FakeRegistry` (tags
from a dict), GitHub is the simulator (real git repositories behind a REST API).
Everything else is the real app: store, GitHub layer, planner, reconcile, and the
webhook endpoint with its handlers, to which the simulator sends its own signed
deliveries (a recording queue stands in for the scheduler: each test says when
a reconcile runs).
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.config import CONFIG_PATH
from bot.github.auth import AppCredentials
from bot.github.client import AppClient
from bot.github.errors import GitHubError
from bot.handlers import Services
from bot.reconcile import Deps, reconcile, run_repository
from bot.scheduler import Scheduler
from bot.server import InstallationClients
from bot.store import Store
from bot.update.prbody import PullRequestState
from bot.web import make_app
from tests.fakes import FakeRegistry
from tests.manifests import (
    BRANCH,
    DEPLOY_PATH,
    IMAGE,
    MARKER,
    deployment,
    podinfo_config,
    podinfo_files,
)

REPO = "octo-org/app"
SECRET = "lifecycle-webhook-secret"


class RecordingQueue:
    """The scheduler's place for the webhook handlers: runs asked for are recorded."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def enqueue(self, repository: str) -> None:
        self.asked.append(repository)

    def enqueue_all(self, repositories) -> None:
        self.asked.extend(repositories)

    def forget(self, repository: str) -> None:
        pass


class World:
    """A simulator with an installed app, a store, and the app's reconcile wired to both."""

    def __init__(self, github_sim, app_key, session: aiohttp.ClientSession):
        self.sim = github_sim.sim
        self.url = github_sim.url
        app_id, private_pem, public_pem = app_key
        self.app_id = app_id
        self.sim.register_app(app_id=app_id, public_key_pem=public_pem)
        self.installation = self.sim.create_installation(
            app_id, account="octo-org", repositories=[]
        )
        self.store = Store.open("sqlite:///:memory:")
        self.registry = FakeRegistry({IMAGE: ["5.0.0", "5.0.3"]})
        self.sleeps: list[float] = []
        creds = AppCredentials(app_id=str(app_id), private_key=private_pem, base_url=self.url)
        self.tokens = AppClient(session, creds=creds).token_cache()

        async def no_wait(seconds: float) -> None:
            self.sleeps.append(seconds)

        self.clients = InstallationClients(
            session, creds, self.tokens, write_interval=0.0, sleep=no_wait
        )
        self.deps = Deps(store=self.store, github=self.clients, tag_source=self.registry.source)

    def add_repository(self, full_name: str, files: dict[str, bytes], **kwargs) -> str:
        sha = self.sim.create_repository(full_name, files=files, **kwargs)
        self.sim.add_repositories(self.installation, [full_name])
        self.store.add_repository(full_name, self.installation)
        return sha

    async def receive_webhooks(self) -> TestServer:
        """Serve the bot's webhook endpoint and point the App's webhook at it."""
        self.queue = RecordingQueue()
        app = make_app(Services(store=self.store, scheduler=self.queue), secret=SECRET)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        self.sim.set_webhook(self.app_id, str(server.make_url("/api/github/webhooks")), SECRET)
        return server

    async def reconcile(self, full_name: str = REPO):
        await self.sim.wait_deliveries()  # what happened so far has been told to the bot
        return await reconcile(self.deps, full_name)

    def open_pulls(self, full_name: str = REPO) -> list[dict]:
        return [p for p in self.sim.pulls(full_name) if p["state"] == "open"]

    def requests(self) -> int:
        return sum(n for key, n in self.sim.counters.items() if not key.endswith(" 304"))


@pytest.fixture
async def world(github_sim, app_key):
    async with aiohttp.ClientSession() as session:
        w = World(github_sim, app_key, session)
        server = await w.receive_webhooks()
        w.add_repository(
            REPO,
            {**podinfo_files("5.0.0"), "README.md": b"# app\n"},
        )
        yield w
        await w.sim.wait_deliveries()
        await server.close()
        w.store.close()


def parents(world: World, sha: str) -> list[str]:
    return [p.decode() for p in world.sim.repo(REPO).git.commit_info(sha).parents]


async def close_as_person(world: World, number: int) -> None:
    world.sim.close_pull(REPO, number, as_user="alice")
    await world.sim.wait_deliveries()


# -- opening, short-circuit, updating ---------------------------------------------------


async def test_first_run_opens_one_pr_with_the_change_list_and_a_check(world):
    outcome = await world.reconcile()
    assert outcome.automations == {"podinfo-update": "opened #1"}
    (pr,) = world.open_pulls()
    assert pr["head"] == BRANCH and pr["base"] == "main"
    assert f"{IMAGE}:5.0.0 -> {IMAGE}:5.0.3" in pr["body"]
    assert "Automation: flux-system/podinfo-update" in pr["body"]
    assert [label["name"] if isinstance(label, dict) else label for label in pr["labels"]] == [
        "image-automation"
    ]
    state = PullRequestState.parse(pr["body"])
    assert state.automation == "podinfo-update"
    # The registry was asked once, with this repository's view (its credentials).
    assert world.registry.asked_by == [REPO] and world.registry.scans == {IMAGE: 1}
    assert state.head == world.sim.branch_sha(REPO, BRANCH)

    # Only the tag's bytes changed, on a branch rebuilt from main as one commit.
    assert world.sim.read_file(REPO, BRANCH, DEPLOY_PATH) == deployment("5.0.3")
    assert world.sim.read_file(REPO, "main", DEPLOY_PATH) == deployment("5.0.0")
    main = world.sim.branch_sha(REPO, "main")
    assert parents(world, world.sim.branch_sha(REPO, BRANCH)) == [main]

    (check,) = world.sim.check_runs(REPO)
    assert check["name"] == "image-automation" and check["head_sha"] == main
    assert check["conclusion"] == "success"
    assert f"`{IMAGE}:5.0.3`" in check["output"]["summary"]


async def test_nothing_changed_costs_one_request_answered_304(world):
    await world.reconcile()
    world.sim.reset_counters()
    outcome = await world.reconcile()
    assert outcome.short_circuited
    assert sum(world.sim.counters.values()) == 2  # one request, counted once more as a 304
    assert world.requests() == 1 and list(world.sim.counters)[0].startswith("GET ")
    assert len(world.sim.pulls(REPO)) == 1


async def test_a_new_tag_on_an_unmoved_base_reuses_the_tree_read_before(world):
    """The head check answers 304 and the tree of that commit is cached (by its SHA):
    a tag bump reads no tree again."""
    await world.reconcile()
    world.registry.push(IMAGE, "5.0.4")
    world.sim.reset_counters()
    await world.reconcile()
    assert world.sim.counters["GET /repos/{owner}/{repo}/git/trees/{tree_sha}"] == 0
    assert world.sim.counters["GET /repos/{owner}/{repo}/commits/{ref} 304"] == 1
    (pull,) = world.open_pulls()
    assert f"{IMAGE}:5.0.0 -> {IMAGE}:5.0.4" in pull["body"]


async def test_a_new_image_and_a_moved_base_rebuild_the_branch_and_update_the_same_pr(world):
    await world.reconcile()
    (first,) = world.open_pulls()
    moved = world.sim.push(REPO, "main", {"README.md": b"# app, edited\n"}, message="docs")
    world.registry.push(IMAGE, "5.0.4")
    outcome = await world.reconcile()
    assert outcome.automations["podinfo-update"] == f"updated #{first['number']}"
    (pr,) = world.open_pulls()
    assert pr["number"] == first["number"]
    assert f"{IMAGE}:5.0.0 -> {IMAGE}:5.0.4" in pr["body"]
    head = world.sim.branch_sha(REPO, BRANCH)
    assert parents(world, head) == [moved]  # one commit on the new base
    assert world.sim.read_file(REPO, BRANCH, "README.md") == b"# app, edited\n"
    assert world.sim.read_file(REPO, BRANCH, DEPLOY_PATH) == deployment("5.0.4")
    assert len(world.sim.pulls(REPO)) == 1


async def test_someone_elses_push_to_the_bot_branch_is_left_alone_and_said_once(world):
    await world.reconcile()
    human = world.sim.push(REPO, BRANCH, {"clusters/extra.yaml": b"a: 1\n"}, message="mine")
    world.registry.push(IMAGE, "5.0.4")
    outcome = await world.reconcile()
    assert outcome.automations["podinfo-update"].startswith("left alone")
    assert world.sim.branch_sha(REPO, BRANCH) == human
    (pr,) = world.open_pulls()
    assert len(pr["comments"]) == 1 and "leaves this branch alone" in pr["comments"][0]["body"]
    # the PR's text still describes what is on the branch, not the unpushed proposal
    assert "5.0.4" not in pr["body"] and f"{IMAGE}:5.0.3" in pr["body"]

    world.registry.push(IMAGE, "5.0.5")
    await world.reconcile()
    (pr,) = world.open_pulls()
    assert len(pr["comments"]) == 1  # said once
    assert world.sim.branch_sha(REPO, BRANCH) == human


async def test_a_push_webhook_from_someone_else_also_locks_the_branch(world):
    await world.reconcile()
    human = world.sim.push(
        REPO, BRANCH, {"clusters/extra.yaml": b"a: 1\n"}, message="mine", as_user="alice"
    )
    await world.sim.wait_deliveries()
    assert world.store.automation_state(REPO, "podinfo-update").taken_over
    assert world.queue.asked[-1] == REPO
    outcome = await world.reconcile()
    assert outcome.automations["podinfo-update"].startswith("left alone")
    assert world.sim.branch_sha(REPO, BRANCH) == human


async def test_closed_unmerged_is_not_reopened_but_a_newer_image_is_proposed(world):
    await world.reconcile()
    (pr,) = world.open_pulls()
    await close_as_person(world, pr["number"])  # the simulator sends `closed`
    assert world.store.is_declined(REPO, "podinfo-update", pr_change_set(pr))

    outcome = await world.reconcile()
    assert outcome.automations["podinfo-update"] == "declined before; not proposed again"
    assert world.open_pulls() == []

    world.registry.push(IMAGE, "5.0.4")
    outcome = await world.reconcile()
    (new,) = world.open_pulls()
    assert new["number"] != pr["number"]
    assert f"{IMAGE}:5.0.0 -> {IMAGE}:5.0.4" in new["body"]


async def test_a_close_without_a_webhook_is_noticed_when_the_pr_is_next_updated(world):
    await world.reconcile()
    (pr,) = world.open_pulls()
    world.sim.drop_deliveries(event="pull_request", action="closed")
    await close_as_person(world, pr["number"])  # and the webhook never arrives
    world.registry.push(IMAGE, "5.0.4")
    outcome = await world.reconcile()
    (new,) = world.open_pulls()
    assert outcome.automations["podinfo-update"] == f"opened #{new['number']}"
    assert new["number"] != pr["number"]
    assert world.store.is_declined(REPO, "podinfo-update", pr_change_set(pr))


async def test_nothing_left_to_change_closes_the_pr_with_a_comment(world):
    await world.reconcile()
    (pr,) = world.open_pulls()
    world.sim.push(REPO, "main", {DEPLOY_PATH: deployment("5.0.3")}, message="by hand")
    outcome = await world.reconcile()
    assert outcome.automations["podinfo-update"] == f"closed #{pr['number']}"
    (closed,) = world.sim.pulls(REPO)
    assert closed["state"] == "closed"
    assert "Nothing is left to update" in closed["comments"][-1]["body"]
    assert (await world.reconcile()).short_circuited
    world.store.mark_dirty(REPO)  # a full run finds nothing to do either
    assert (await world.reconcile()).automations["podinfo-update"] == "up to date"
    assert world.open_pulls() == []


async def test_merged_pr_is_recorded_and_the_next_update_opens_a_new_one(world):
    await world.reconcile()
    (pr,) = world.open_pulls()
    world.sim.merge_pull(REPO, pr["number"], as_user="alice")
    await world.sim.wait_deliveries()
    assert world.store.merged_prs(REPO) == [("podinfo-update", pr["number"], pr_change_set(pr))]
    assert world.store.automation_state(REPO, "podinfo-update").pr_number is None


def pr_change_set(pr: dict) -> str:
    return PullRequestState.parse(pr["body"]).change_set


async def test_a_crash_between_branch_and_pr_never_makes_a_duplicate(world):
    world.sim.inject(method="POST", route="/repos/{owner}/{repo}/pulls", status=500, times=None)
    with pytest.raises(GitHubError):
        await world.reconcile()
    assert world.sim.branch_sha(REPO, BRANCH) is not None
    assert world.open_pulls() == []
    world.sim.clear_faults()

    await world.reconcile()
    assert len(world.open_pulls()) == 1
    # Even with the store lost entirely, the existing PR is found, not duplicated.
    world.deps.store = Store.open("sqlite:///:memory:")
    world.deps.store.add_repository(REPO, world.installation)
    world.registry.push(IMAGE, "5.0.4")
    await world.reconcile()
    (pr,) = world.open_pulls()
    assert f"{IMAGE}:5.0.0 -> {IMAGE}:5.0.4" in pr["body"]
    assert len(world.sim.pulls(REPO)) == 1


# -- direct-commit mode --------------------------------------------------------------------

DIRECT_CONFIG = podinfo_config(
    git="{push: {branch: main}, commit: {author: {name: bot, email: bot@example.com}}}"
)


async def test_direct_commit_mode_fast_forwards_without_a_pr(world):
    world.sim.push(REPO, "main", {CONFIG_PATH: DIRECT_CONFIG.encode()}, message="direct")
    before = world.sim.branch_sha(REPO, "main")
    outcome = await world.reconcile()
    assert outcome.automations["podinfo-update"].startswith("committed ")
    after = world.sim.branch_sha(REPO, "main")
    assert world.sim.repo(REPO).git.is_ancestor(before, after) and after != before
    assert world.sim.read_file(REPO, "main", DEPLOY_PATH) == deployment("5.0.3")
    assert world.sim.pulls(REPO) == []
    assert world.sim.branch_sha(REPO, BRANCH) is None
    world.sim.reset_counters()
    assert (await world.reconcile()).short_circuited  # its own commit is the known head


async def test_direct_commit_mode_rereads_and_retries_when_it_loses_a_race(world):
    world.sim.push(REPO, "main", {CONFIG_PATH: DIRECT_CONFIG.encode()}, message="direct")
    world.sim.inject(
        method="POST", route="/repos/{owner}/{repo}/git/commits", status=None, delay=0.3
    )
    task = asyncio.create_task(world.reconcile())
    for _ in range(200):  # until the bot is committing on the old head
        if world.sim.counters.get("POST /repos/{owner}/{repo}/git/commits"):
            break
        await asyncio.sleep(0.01)
    raced = world.sim.push(REPO, "main", {"README.md": b"raced\n"}, message="race")
    outcome = await task
    assert outcome.automations["podinfo-update"].startswith("committed ")
    head = world.sim.branch_sha(REPO, "main")
    assert parents(world, head) == [raced]  # rebuilt on the winner, never forced over it
    assert world.sim.read_file(REPO, "main", "README.md") == b"raced\n"
    assert world.sim.read_file(REPO, "main", DEPLOY_PATH) == deployment("5.0.3")


# -- GitHub misbehaving --------------------------------------------------------------------


async def test_an_expired_token_is_replaced_and_the_run_succeeds(world):
    await world.reconcile()
    for token in world.sim.tokens.values():
        token.expires_at = 0.0  # GitHub now answers 401 to it
    minted = world.tokens.minted
    world.registry.push(IMAGE, "5.0.4")
    await world.reconcile()
    assert world.tokens.minted == minted + 1
    (pr,) = world.open_pulls()
    assert f"{IMAGE}:5.0.0 -> {IMAGE}:5.0.4" in pr["body"]


async def test_secondary_rate_limit_is_waited_out(world):
    world.sim.inject(
        method="GET",
        route="/repos/{owner}/{repo}/git/trees/{tree_sha}",
        status=403,
        headers={"retry-after": "7"},
        body={"message": "You have exceeded a secondary rate limit."},
    )
    await world.reconcile()
    assert len(world.open_pulls()) == 1
    assert 7.0 in world.sleeps


async def test_transient_5xx_is_retried(world):
    world.sim.inject(method="POST", route="/repos/{owner}/{repo}/git/commits", status=502, times=2)
    await world.reconcile()
    assert len(world.open_pulls()) == 1


@pytest.mark.parametrize("full_runs", [1, 2])
async def test_runs_past_the_short_circuit_are_bounded_apart(world, full_runs):
    """Head checks run at `CONCURRENCY`; the reading, planning and writing after the
    short-circuit only `full_runs` at a time, so at most that many PRs are under way."""
    names = [REPO, *(f"octo-org/app{i}" for i in range(4))]
    for name in names[1:]:
        world.add_repository(name, podinfo_files("5.0.0"))
    world.deps.full_runs = asyncio.Semaphore(full_runs)
    world.sim.exchanges = []
    await world.sim.wait_deliveries()
    await asyncio.gather(*(reconcile(world.deps, name) for name in names))

    writes = [
        ex for ex in world.sim.exchanges if ex.method != "GET" and ex.path.startswith("/repos/")
    ]
    assert all(len(world.open_pulls(name)) == 1 for name in names)
    # Between a repository's first write and its last, at most `full_runs` are writing.
    spans = {}
    for index, ex in enumerate(writes):
        name = "/".join(ex.path.split("/")[2:4])
        first, _last = spans.get(name, (index, index))
        spans[name] = (first, index)
    assert sorted(spans) == sorted(names)
    most = max(
        sum(1 for first, last in spans.values() if first <= index <= last)
        for index in range(len(writes))
    )
    assert most == full_runs


async def test_a_failing_repository_does_not_affect_another(world):
    world.add_repository("octo-org/other", podinfo_files("5.0.0"))
    world.sim.inject(
        method="GET",
        route="/repos/{owner}/{repo}/git/trees/{tree_sha}",
        status=500,
        times=4,  # every attempt of the first tree read fails
    )
    scheduler = Scheduler(
        lambda claim: run_repository(world.deps, claim.repository, snapshot=claim.snapshot),
        world.store.schedule,
        concurrency=1,
        tick=0.05,
    )
    scheduler.start()
    scheduler.enqueue(REPO)
    scheduler.enqueue("octo-org/other")
    await scheduler.wait_idle(timeout=30)
    await scheduler.stop()
    assert world.open_pulls(REPO) == []
    assert len(world.open_pulls("octo-org/other")) == 1
    assert world.store.repository(REPO).dirty  # nothing recorded: the next run is a full one
    assert 0 < scheduler.due_in(REPO) <= 60  # retried soon


# -- bad config and workflow files -----------------------------------------------------------


async def test_a_broken_config_is_reported_with_file_and_line_and_nothing_is_written(world):
    broken = podinfo_config(semver_range="not a range")
    world.add_repository("octo-org/broken", podinfo_files("5.0.0", config=broken))
    outcome = await world.reconcile("octo-org/broken")
    assert outcome.problems
    assert world.sim.pulls("octo-org/broken") == []
    assert world.sim.branch_sha("octo-org/broken", BRANCH) is None
    (check,) = world.sim.check_runs("octo-org/broken")
    assert check["conclusion"] == "failure"
    (annotation,) = [a for a in check["annotations"] if a["path"] == CONFIG_PATH]
    line = broken.splitlines().index("      semver: {range: 'not a range'}") + 1
    assert annotation["start_line"] == line
    # The healthy repository next to it is unaffected.
    await world.reconcile()
    assert len(world.open_pulls()) == 1


async def test_a_single_file_update_path_flux_never_updates_is_a_warning_not_an_edit(world):
    text = podinfo_config(update_path="./clusters/podinfo.yaml.bak")
    files = {CONFIG_PATH: text.encode(), "clusters/podinfo.yaml.bak": deployment("5.0.0")}
    world.add_repository("octo-org/bak", files)
    outcome = await world.reconcile("octo-org/bak")
    assert outcome.automations == {"podinfo-update": "up to date"}
    assert world.sim.pulls("octo-org/bak") == []
    (check,) = world.sim.check_runs("octo-org/bak")
    (annotation,) = check["annotations"]
    assert annotation["annotation_level"] == "warning"
    lines = text.splitlines()
    assert annotation["start_line"] == 1 + next(
        i for i, line in enumerate(lines) if "update: {path:" in line
    )
    assert "names a file that is never updated" in annotation["message"]


async def test_a_marker_in_another_namespace_is_a_warning_in_the_check_run(world):
    """No silent no-op (issue 11 §4): the marker names `apps:…`, the config is `flux-system`."""
    wrong = deployment("5.0.0").replace(b'"flux-system:', b'"apps:')
    world.add_repository("octo-org/elsewhere", {**podinfo_files("5.0.0"), DEPLOY_PATH: wrong})
    outcome = await world.reconcile("octo-org/elsewhere")
    assert world.sim.pulls("octo-org/elsewhere") == []
    assert outcome.automations == {"podinfo-update": "up to date"}
    (check,) = world.sim.check_runs("octo-org/elsewhere")
    (annotation,) = check["annotations"]
    assert annotation["annotation_level"] == "warning"
    assert annotation["path"] == DEPLOY_PATH
    assert annotation["start_line"] == 1 + wrong.decode().splitlines().index(
        next(line for line in wrong.decode().splitlines() if "$imagepolicy" in line)
    )
    assert "did you mean `namespace: apps` in the config?" in annotation["message"]


async def test_unreadable_config_yaml_is_reported_not_raised(world):
    world.add_repository(
        "octo-org/garbled", {CONFIG_PATH: b"version: 1\nimagePolicies: [\n", "a.yaml": b"a: 1\n"}
    )
    outcome = await world.reconcile("octo-org/garbled")
    assert outcome.problems
    (check,) = world.sim.check_runs("octo-org/garbled")
    assert check["conclusion"] == "failure"
    assert check["annotations"][0]["path"] == CONFIG_PATH


async def test_workflow_files_are_reported_not_written(world):
    workflow = f"""\
jobs:
  test:
    container:
      image: {IMAGE}:5.0.0 {MARKER}
""".encode()
    config = podinfo_config(update_path=".")
    world.add_repository(
        "octo-org/wf",
        {**podinfo_files("5.0.0", config=config), ".github/workflows/ci.yaml": workflow},
    )
    await world.reconcile("octo-org/wf")
    (pr,) = world.open_pulls("octo-org/wf")
    assert world.sim.read_file("octo-org/wf", BRANCH, ".github/workflows/ci.yaml") == workflow
    assert world.sim.read_file("octo-org/wf", BRANCH, DEPLOY_PATH) == deployment("5.0.3")
    (check,) = world.sim.check_runs("octo-org/wf")
    assert ".github/workflows/ci.yaml" in check["output"]["summary"]
    assert json.dumps(pr["body"])  # the PR still exists for the files the bot may write


async def test_a_repository_without_config_is_left_alone_cheaply(world):
    world.add_repository("octo-org/plain", {"a.yaml": b"a: 1\n"})
    outcome = await world.reconcile("octo-org/plain")
    assert outcome.automations == {"*": f"no {CONFIG_PATH}"}
    assert world.sim.check_runs("octo-org/plain") == []
    world.sim.reset_counters()
    await world.reconcile("octo-org/plain")
    assert world.requests() == 1


async def test_suspended_installations_are_not_reconciled(world):
    world.store.set_suspended(world.installation, True)
    world.sim.reset_counters()
    await world.reconcile()
    assert world.requests() == 0
    assert world.registry.scans == {}  # nor the registry


async def test_a_missing_checkout_branch_is_an_error_for_that_automation_only(world):
    config = podinfo_config() + (
        "  - name: release\n"
        "    git: {checkout: {ref: {branch: release}}}\n"
        "    update: {path: ./clusters, strategy: Setters}\n"
    )
    world.sim.push(REPO, "main", {CONFIG_PATH: config.encode()}, message="two automations")
    outcome = await world.reconcile()
    assert outcome.automations["release"] == "checkout branch missing"
    assert outcome.automations["podinfo-update"].startswith("opened #")
    (check,) = world.sim.check_runs(REPO)
    assert check["conclusion"] == "failure"
    assert any("no branch 'release'" in a["message"] for a in check["annotations"])


async def test_a_failing_policy_is_reported_even_when_its_image_stays_and_cleared_when_fixed(world):
    await world.reconcile()  # opens the PR
    checks = len(world.sim.check_runs(REPO))
    del world.registry.images[IMAGE]  # the registry goes away: the policy keeps 5.0.3
    outcome = await world.reconcile()
    assert not outcome.short_circuited
    (check,) = world.sim.check_runs(REPO)[checks:]
    assert check["conclusion"] == "neutral"
    assert [a["path"] for a in check["annotations"]] == [CONFIG_PATH]
    assert (await world.reconcile()).short_circuited  # said once, not every tick
    world.registry.images[IMAGE] = ["5.0.0", "5.0.3"]
    outcome = await world.reconcile()
    assert not outcome.short_circuited
    (cleared,) = world.sim.check_runs(REPO)[checks + 1 :]
    assert cleared["conclusion"] == "success" and cleared["annotations"] == []


async def test_a_request_github_refuses_for_good_is_an_error_on_that_automation(world):
    world.sim.inject(
        method="POST",
        route="/repos/{owner}/{repo}/pulls",
        status=422,
        times=None,
        body={"message": "Validation Failed", "errors": [{"message": "Drafts are not supported"}]},
    )
    outcome = await world.reconcile()  # no exception: not retried for ever
    assert outcome.automations["podinfo-update"] == "GitHub refused a request (see errors)"
    (check,) = world.sim.check_runs(REPO)
    (annotation,) = check["annotations"]
    assert annotation["path"] == CONFIG_PATH and "GitHub refused" in annotation["message"]
    assert check["conclusion"] == "failure"


async def test_a_late_push_webhook_for_the_bots_own_commit_does_not_lock_it_out(world):
    world.sim.drop_deliveries(event="push")  # held back: it arrives late, below
    await world.reconcile()  # opens #1: creating the branch is a push
    (late,) = [d for d in world.sim.deliveries if d.state == "dropped"]
    assert late.payload["ref"] == f"refs/heads/{BRANCH}"
    for tag in ("5.0.4", "5.0.5"):
        world.registry.push(IMAGE, tag)
        await world.reconcile()
    world.sim.redeliver(late.id)
    await world.sim.wait_deliveries()
    assert world.store.automation_state(REPO, "podinfo-update").taken_over  # for now
    outcome = await world.reconcile()
    (pr,) = world.open_pulls()
    assert outcome.automations["podinfo-update"] == f"up to date #{pr['number']}"
    assert pr["comments"] == []
    world.registry.push(IMAGE, "5.0.6")
    assert (await world.reconcile()).automations["podinfo-update"] == f"updated #{pr['number']}"


async def test_branch_moves_that_failed_twice_are_not_mistaken_for_someone_elses(world):
    await world.reconcile()
    world.sim.inject(
        method="PATCH", route="/repos/{owner}/{repo}/git/refs/{ref}", status=502, times=None
    )
    for tag in ("5.0.4", "5.0.5"):
        world.registry.push(IMAGE, tag)
        with pytest.raises(GitHubError):
            await world.reconcile()
    world.sim.clear_faults()
    outcome = await world.reconcile()
    (pr,) = world.open_pulls()
    assert outcome.automations["podinfo-update"] == f"updated #{pr['number']}"
    assert pr["comments"] == []
    assert world.sim.read_file(REPO, BRANCH, DEPLOY_PATH) == deployment("5.0.5")


async def test_a_pr_reopened_while_no_webhook_came_is_kept_not_closed_again(world):
    await world.reconcile()
    (pr,) = world.open_pulls()
    await close_as_person(world, pr["number"])
    world.sim.drop_deliveries(event="pull_request", action="reopened")
    world.sim.reopen_pull(REPO, pr["number"], as_user="alice")
    await world.sim.wait_deliveries()
    world.store.mark_dirty(REPO)
    outcome = await world.reconcile()
    assert outcome.automations["podinfo-update"] == f"up to date #{pr['number']}"
    (still,) = world.open_pulls()
    assert still["number"] == pr["number"]
    assert not world.store.is_declined(REPO, "podinfo-update", pr_change_set(pr))


async def test_a_pr_someone_pushed_to_is_not_closed_when_nothing_is_left(world):
    await world.reconcile()
    (pr,) = world.open_pulls()
    world.sim.drop_deliveries(event="push")
    world.sim.drop_deliveries(event="pull_request", action="synchronize")
    human = world.sim.push(REPO, BRANCH, {"NOTES.md": b"mine\n"}, as_user="alice")
    world.sim.push(REPO, "main", {DEPLOY_PATH: deployment("5.0.3")}, message="by hand")
    await world.sim.wait_deliveries()
    outcome = await world.reconcile()
    assert outcome.automations["podinfo-update"].startswith("left alone")
    (still,) = world.open_pulls()
    assert still["number"] == pr["number"] and world.sim.branch_sha(REPO, BRANCH) == human


async def test_a_new_pr_title_in_the_config_reaches_the_open_pr(world):
    # The automation checks out `release`; its config lives on `main`: the base does not move.
    config = podinfo_config(git="{checkout: {ref: {branch: release}}}")
    world.sim.push(REPO, "main", {CONFIG_PATH: config.encode()}, message="release")
    world.sim.push(REPO, "release", {}, message="branch")
    await world.reconcile()
    (pr,) = world.open_pulls()
    titled = config.replace(
        "    pullRequest:\n", "    pullRequest:\n      title: Images for release\n"
    )
    world.sim.push(REPO, "main", {CONFIG_PATH: titled.encode()}, message="title")
    outcome = await world.reconcile()
    assert outcome.automations["podinfo-update"] == f"updated #{pr['number']}"
    (pr,) = world.open_pulls()
    assert pr["title"] == "Images for release"


async def test_an_automation_removed_from_the_config_has_its_pr_closed_and_is_forgotten(world):
    await world.reconcile()
    (pr,) = world.open_pulls()
    renamed = podinfo_config().replace("- name: podinfo-update", "- name: podinfo-renamed")
    world.sim.push(REPO, "main", {CONFIG_PATH: renamed.encode()}, message="rename")
    outcome = await world.reconcile()
    assert (
        outcome.automations["podinfo-update"] == f"removed from the config: closed #{pr['number']}"
    )
    closed = next(p for p in world.sim.pulls(REPO) if p["number"] == pr["number"])
    assert (
        closed["state"] == "closed"
        and "no longer in the bot's config" in closed["comments"][-1]["body"]
    )
    assert [s.automation for s in world.store.automation_states(REPO)] == ["podinfo-renamed"]
    (new,) = world.open_pulls()
    assert new["head"] == "image-automation/podinfo-renamed"


async def test_a_config_with_errors_does_not_retire_automations(world):
    await world.reconcile()
    broken = podinfo_config().replace("- name: podinfo-update", "- name: Not_Valid!")
    world.sim.push(REPO, "main", {CONFIG_PATH: broken.encode()}, message="typo")
    outcome = await world.reconcile()
    assert "podinfo-update" not in outcome.automations
    assert len(world.open_pulls()) == 1


async def test_a_lost_database_does_not_repropose_what_a_person_declined(world):
    await world.reconcile()
    (pr,) = world.open_pulls()
    await close_as_person(world, pr["number"])
    # The database is gone (the webhook endpoint keeps writing to the old one: unseen here).
    world.store = world.deps.store = Store.open("sqlite:///:memory:")
    world.store.add_repository(REPO, world.installation)
    outcome = await world.reconcile()
    assert outcome.automations["podinfo-update"] == "declined before; not proposed again"
    assert world.open_pulls() == []
    # Newer images are proposed, on the branch the closed PR left (its commits stay in it).
    world.registry.push(IMAGE, "5.0.4")
    outcome = await world.reconcile()
    (new,) = world.open_pulls()
    assert outcome.automations["podinfo-update"] == f"opened #{new['number']}"
    assert world.sim.read_file(REPO, BRANCH, DEPLOY_PATH) == deployment("5.0.4")


# -- shared work -----------------------------------------------------------------------


async def test_repositories_on_one_image_share_its_ranking(world):
    """Through the reconcile: a second repository with the same policy ranks nothing."""
    other = "octo-org/other"
    world.add_repository(other, podinfo_files("5.0.0"))
    await world.reconcile()
    assert world.deps.rankings.computed == 1
    outcome = await world.reconcile(other)
    assert outcome.automations == {"podinfo-update": "opened #1"}
    assert world.deps.rankings.computed == 1


async def test_a_run_that_changes_nothing_does_not_parse_the_config_again(world):
    await world.reconcile()
    again = await world.reconcile()
    assert again.short_circuited
    assert world.deps.configs.parses == 1
