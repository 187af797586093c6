"""The pull-request lifecycle end to end (issue 7 §2): `python -m bot serve` as a process,
the simulator sending its own webhooks, people acting as people, a real registry.

Each test starts the bot, installs the App (the simulator delivers `installation`),
and then only does what a person or a registry would do.
"""

from __future__ import annotations

import pytest

from bot.config import CONFIG_PATH
from bot.update.prbody import MAX_BODY_CHARS, PullRequestState
from tests.e2e.conftest import REPOSITORY, config, install, line_of, manifest
from tests.e2e.served import Served
from tests.githubsim.gitstore import MODE_SYMLINK
from tests.manifests import podinfo_config
from tests.registryharness.registry_proc import free_port, start_basic_auth_registry

pytestmark = pytest.mark.e2e


# -- a. policy errors are annotated at the policy ---------------------------------------


async def test_policy_errors_are_annotated_at_the_policys_line(bot, image):
    unreachable = f"127.0.0.1:{free_port()}/team/gone"
    policies = """\
  - name: nothing-matches
    imageRepositoryRef: podinfo
    policy:
      semver: {range: '>=99'}
  - name: unreachable
    imageRepositoryRef: gone
    policy:
      semver: {range: '>=1'}
"""
    text = config(image, policies=policies).replace(
        "imagePolicies:",
        f"  - name: gone\n    image: {unreachable}\n    timeout: 2s\nimagePolicies:",
    )
    head = install(bot, {CONFIG_PATH: text.encode(), "deploy/app.yaml": manifest(image, "5.0.0")})

    check = await bot.check_run(REPOSITORY, lambda c: c["head_sha"] == head)
    by_line = {a["start_line"]: a for a in check["annotations"] if a["path"] == CONFIG_PATH}
    for name in ("nothing-matches", "unreachable"):
        annotation = by_line[line_of(text, f"- name: {name}")]
        assert annotation["annotation_level"] == "failure"
    assert (
        "unable to determine latest version"
        in by_line[line_of(text, "- name: nothing-matches")]["message"]
    )
    # The automation still did its job for the policy that works, and says what failed.
    (pr,) = await bot.pull_opened(REPOSITORY)
    assert f"{image}:5.0.0 -> {image}:5.0.3" in pr["body"]
    assert "policy nothing-matches, unreachable failed" in check["output"]["summary"]


# -- b, c. workflow files, directly or through a symlink ----------------------------------


async def test_workflow_files_leave_the_pr_and_become_warnings_even_through_a_symlink(bot, image):
    workflow = manifest(image, "5.0.0")
    files = {
        CONFIG_PATH: config(image, path="./").encode(),
        "deploy/app.yaml": manifest(image, "5.0.0"),
        ".github/workflows/ci.yml": workflow,
    }
    head = bot.sim.create_repository(REPOSITORY, files=files)
    # deploy/ci.yaml -> ../.github/workflows/ci.yml: judged by where it leads.
    git = bot.sim.repo(REPOSITORY).git
    tree = git.build_tree(
        git.commit_tree(head),
        [("deploy/ci.yaml", MODE_SYMLINK, git.add_blob(b"../.github/workflows/ci.yml"))],
    )
    person = ("Alice", "alice@example.com", 1_700_000_000)
    head = git.make_commit(
        tree=tree, parents=[head], message="link", author=person, committer=person
    )
    git.set_ref("refs/heads/main", head)
    bot.sim.create_installation(bot.app_id, account="octo-org", repositories=[REPOSITORY])

    (pr,) = await bot.pull_opened(REPOSITORY)
    branch = pr["head"]
    # The PR lists exactly what the branch changes.
    assert "deploy/app.yaml" in pr["body"]
    assert "ci.yml" not in pr["body"] and "deploy/ci.yaml" not in pr["body"]
    assert bot.sim.read_file(REPOSITORY, branch, ".github/workflows/ci.yml") == workflow
    assert bot.sim.read_file(REPOSITORY, branch, "deploy/app.yaml") == manifest(image, "5.0.3")
    check = await bot.check_run(REPOSITORY, lambda c: c["head_sha"] == head)
    warnings = {a["path"]: a for a in check["annotations"] if a["annotation_level"] == "warning"}
    marker_line = line_of(workflow.decode(), "$imagepolicy")
    assert warnings[".github/workflows/ci.yml"]["start_line"] == marker_line
    assert warnings["deploy/ci.yaml"]["start_line"] == marker_line
    assert "a link to .github/workflows/ci.yml" in warnings["deploy/ci.yaml"]["message"]
    assert "retrying" not in bot.text()  # nothing wedged


# -- d. never force-move a branch whose head the bot did not write ----------------------


async def test_an_existing_push_branch_with_human_commits_is_left_alone(bot, image):
    text = config(image, git="{push: {branch: release}}")
    files = {
        CONFIG_PATH: text.encode(),
        "deploy/app.yaml": manifest(image, "5.0.0"),
    }
    head = bot.sim.create_repository(REPOSITORY, files=files)
    human = bot.sim.push(REPOSITORY, "release", {"NOTES.md": b"mine\n"}, as_user="alice")
    bot.sim.create_installation(bot.app_id, account="octo-org", repositories=[REPOSITORY])

    check = await bot.check_run(REPOSITORY, lambda c: c["head_sha"] == head)
    (warning,) = [a for a in check["annotations"] if a["annotation_level"] == "warning"]
    assert warning["path"] == CONFIG_PATH
    assert warning["start_line"] == line_of(text, "- name: podinfo-update")
    assert "'release' holds a commit the bot did not write" in warning["message"]
    assert bot.sim.branch_sha(REPOSITORY, "release") == human
    assert bot.open_pulls(REPOSITORY) == []


async def test_a_reused_bot_branch_with_someone_elses_commit_is_left_alone(bot, image):
    install(bot, {CONFIG_PATH: config(image).encode(), "deploy/app.yaml": manifest(image, "5.0.0")})
    (pr,) = await bot.pull_opened(REPOSITORY)
    branch = pr["head"]
    bot.sim.merge_pull(REPOSITORY, pr["number"], as_user="alice")  # the branch stays
    await bot.log_line("merged")
    # Someone commits on the old bot branch; the webhook is lost.
    bot.sim.drop_deliveries(event="push")
    theirs = bot.sim.push(REPOSITORY, branch, {"NOTES.md": b"mine\n"}, as_user="bob")
    await bot.sim.wait_deliveries()
    image.push("5.0.4")  # a new proposal is due

    check = await bot.check_run(
        REPOSITORY, lambda c: any("did not write" in a["message"] for a in c["annotations"])
    )
    assert check["conclusion"] == "neutral"
    assert bot.sim.branch_sha(REPOSITORY, branch) == theirs
    assert bot.open_pulls(REPOSITORY) == []


# -- e. a missed close of a taken-over PR does not silence the automation ----------------


async def test_a_taken_over_pr_closed_while_no_webhook_came_is_noticed(bot, image):
    install(bot, {CONFIG_PATH: config(image).encode(), "deploy/app.yaml": manifest(image, "5.0.0")})
    (pr,) = await bot.pull_opened(REPOSITORY)
    bot.sim.push(REPOSITORY, pr["head"], {"NOTES.md": b"mine\n"}, as_user="alice")
    await bot.wait_until(
        lambda: _async([p for p in bot.sim.pulls(REPOSITORY) if p["comments"]]),
        what="the bot's note on the PR",
    )
    bot.sim.drop_deliveries(event="pull_request", action="closed")
    bot.sim.close_pull(REPOSITORY, pr["number"], as_user="alice")
    await bot.sim.wait_deliveries()
    (closed,) = bot.sim.pulls(REPOSITORY)
    image.push("5.0.4")  # newer than what the closed PR proposed

    (new,) = await bot.pull_opened(REPOSITORY)
    assert new["number"] != pr["number"]
    assert f"{image}:5.0.0 -> {image}:5.0.4" in new["body"]
    old = next(p for p in bot.sim.pulls(REPOSITORY) if p["number"] == pr["number"])
    assert (old["title"], old["body"], old["state"]) == (closed["title"], closed["body"], "closed")
    assert len(old["comments"]) == 1  # said once, never rewritten after the close


async def _async(value):
    return value


# -- f. an early push is someone else's ----------------------------------------------------


async def test_a_push_before_the_pr_exists_is_recognised_as_someone_elses(bot, image):
    pulls = "/repos/{owner}/{repo}/pulls"
    bot.sim.inject(method="POST", route=pulls, status=None, delay=3.0)  # the PR is slow to open
    install(bot, {CONFIG_PATH: config(image).encode(), "deploy/app.yaml": manifest(image, "5.0.0")})
    branch = "image-automation/podinfo-update"

    async def branch_written():
        return bot.sim.branch_sha(REPOSITORY, branch)

    await bot.wait_until(branch_written, what="the bot branch")
    theirs = bot.sim.push(REPOSITORY, branch, {"NOTES.md": b"mine\n"}, as_user="alice")
    (pr,) = await bot.pull_opened(REPOSITORY)

    async def noted():
        pull = next(p for p in bot.sim.pulls(REPOSITORY) if p["number"] == pr["number"])
        return pull["comments"]

    (comment,) = await bot.wait_until(noted, what="the bot's note")
    assert "Someone other than the bot pushed" in comment["body"]
    check = await bot.check_run(
        REPOSITORY, lambda c: any("did not write" in a["message"] for a in c["annotations"])
    )
    assert any("close the pull request" in a["message"] for a in check["annotations"])
    image.push("5.0.4")
    await bot.log_line("left alone", count=2)
    assert bot.sim.branch_sha(REPOSITORY, branch) == theirs


# -- g. two automations on one push branch ----------------------------------------------


async def test_two_automations_with_one_push_branch_are_a_config_error_on_both(bot, image):
    text = config(image, git="{push: {branch: shared}}") + (
        "  - name: other\n    git:\n      push:\n        branch: shared\n"
    )
    head = install(bot, {CONFIG_PATH: text.encode(), "deploy/app.yaml": manifest(image, "5.0.0")})
    check = await bot.check_run(REPOSITORY, lambda c: c["head_sha"] == head)
    assert check["conclusion"] == "failure"
    lines = sorted(a["start_line"] for a in check["annotations"] if "push branch" in a["message"])
    assert lines == [
        line_of(text, "push: {branch: shared}"),
        line_of(text, "        branch: shared"),
    ]


# -- h. a very large update still becomes a PR -------------------------------------------


async def test_a_change_list_too_long_for_a_pr_body_is_shortened_and_in_the_check(bot, image):
    files = {CONFIG_PATH: config(image).encode()}
    files.update({f"deploy/app-{i:03}.yaml": manifest(image, "5.0.0") for i in range(700)})
    head = install(bot, files)
    (pr,) = await bot.pull_opened(REPOSITORY)
    assert len(pr["body"]) <= MAX_BODY_CHARS
    assert "The list is too long for a pull request" in pr["body"]
    assert PullRequestState.parse(pr["body"]).head == bot.sim.branch_sha(REPOSITORY, pr["head"])
    check = await bot.check_run(REPOSITORY, lambda c: c["head_sha"] == head)
    text = check["output"]["text"]
    assert "in 700 place(s)" in text and "app-699.yaml (Deployment/default/podinfo)" in text
    assert "(truncated)" not in text
    assert bot.sim.read_file(REPOSITORY, pr["head"], "deploy/app-699.yaml") == manifest(
        image, "5.0.3"
    )


# -- i. retries back off ------------------------------------------------------------------


async def test_github_failures_are_retried_with_growing_delays(bot, image):
    bot.sim.inject(
        method="GET", route="/repos/{owner}/{repo}/git/trees/{tree_sha}", status=502, times=None
    )
    install(bot, {CONFIG_PATH: config(image).encode(), "deploy/app.yaml": manifest(image, "5.0.0")})
    await bot.log_line("reconcile stopped", count=3)
    delays = [
        float(line.rsplit("retrying in ", 1)[1].split(" s")[0])
        for line in bot.text().splitlines()
        if "reconcile stopped" in line
    ]
    assert delays[0] < delays[1] < delays[2]
    assert delays[0] <= 5.0 and delays[2] <= 60.0
    bot.sim.clear_faults()
    # A push asks for a run now, instead of waiting out the next (longer) delay.
    bot.sim.push(REPOSITORY, "main", {"NOTES.md": b"go\n"}, as_user="alice")
    await bot.pull_opened(REPOSITORY)


# -- problems keep their own file and line, all the way to the annotations ----------------


async def test_a_broken_file_deep_in_the_tree_is_annotated_at_its_own_path(bot, image):
    broken = b'a: [unclosed\nimage: x # {"$imagepolicy": "flux-system:podinfo"}\n'
    head = install(
        bot,
        {
            CONFIG_PATH: config(image).encode(),
            "deploy/app.yaml": manifest(image, "5.0.0"),
            "deploy/prod/broken.yaml": broken,
        },
    )
    check = await bot.check_run(REPOSITORY, lambda c: c["head_sha"] == head)
    (warning,) = [a for a in check["annotations"] if a["annotation_level"] == "warning"]
    assert (warning["path"], warning["start_line"]) == ("deploy/prod/broken.yaml", 2)
    (pr,) = await bot.pull_opened(REPOSITORY)
    assert "app.yaml" in pr["body"]


async def test_a_config_that_is_not_utf8_is_annotated_as_such(bot, image):
    text = config(image).encode().replace(b"namespace: flux-system", b"namespace: flux-\xffsystem")
    head = install(bot, {CONFIG_PATH: text, "deploy/app.yaml": manifest(image, "5.0.0")})
    check = await bot.check_run(REPOSITORY, lambda c: c["head_sha"] == head)
    (annotation,) = check["annotations"]
    assert annotation["path"] == CONFIG_PATH and annotation["start_line"] == 2
    assert "UTF-8" in annotation["message"] and "\ufffd" not in annotation["message"]
    assert check["conclusion"] == "failure"


async def test_writes_whose_answer_was_lost_are_looked_up_not_repeated(bot, image):
    # GitHub creates the branch and the PR, but the bot never hears back.
    for route in ("/repos/{owner}/{repo}/git/refs", "/repos/{owner}/{repo}/pulls"):
        bot.sim.inject(method="POST", route=route, status=None, lose_answer=True)
    install(bot, {CONFIG_PATH: config(image).encode(), "deploy/app.yaml": manifest(image, "5.0.0")})
    (pr,) = await bot.pull_opened(REPOSITORY)
    await bot.log_line(f"opened #{pr['number']}")
    assert len(bot.sim.pulls(REPOSITORY)) == 1
    assert bot.sim.counters["POST /repos/{owner}/{repo}/pulls"] == 1  # never sent twice
    assert bot.sim.counters["POST /repos/{owner}/{repo}/git/refs"] == 1
    assert "reconcile stopped" not in bot.text()


async def test_refused_registry_credentials_are_annotated_at_the_policy(
    tmp_path, github_sim, app_key
):
    registry, _authorization = start_basic_auth_registry(
        "robot", "right-Pa55", prefix="e2e-refused-"
    )
    try:
        credentials = tmp_path / "registry-credentials.yml"
        credentials.write_text(
            f"private:\n  registry: {registry.host}\n  username: robot\n"
            "  password: wrong-Pa55\n  allowed: ['octo-org/*']\n"
        )
        bot = Served(
            tmp_path, github_sim, app_key, extra_env={"REGISTRY_CREDENTIALS": str(credentials)}
        )
        await bot.start()
        try:
            image = f"{registry.host}/team/private"
            text = podinfo_config(
                image=image, credentials="private", update_path="./deploy", labels=()
            )
            head = install(
                bot, {CONFIG_PATH: text.encode(), "deploy/app.yaml": manifest(image, "5.0.0")}
            )
            check = await bot.check_run(REPOSITORY, lambda c: c["head_sha"] == head)
            (annotation,) = check["annotations"]
            assert annotation["path"] == CONFIG_PATH
            assert annotation["start_line"] == line_of(text, "imagePolicies:") + 1
            assert annotation["annotation_level"] == "failure"
            assert (
                "credentials" in annotation["message"] and "wrong-Pa55" not in annotation["message"]
            )
            assert "wrong-Pa55" not in bot.text()
        finally:
            assert await bot.stop() == 0
    finally:
        registry.stop()
