"""Pulls and check runs against the GitHub simulator."""

from __future__ import annotations

import pytest

from bot.github.checks import report_check
from bot.github.errors import GitHubError, ValidationFailed
from bot.github.pulls import Pulls
from tests.test_github_repo import REPO, Env, open_env


@pytest.fixture
async def env(github_sim, app_key):
    async with open_env(github_sim, app_key) as opened:
        opened.sim.create_repository(REPO, files={"a.yaml": b"a: 1\n"})
        opened.sim.push(REPO, "image-automation/podinfo", {"a.yaml": b"a: 2\n"})
        yield opened


async def _open(env: Env, **overrides) -> dict:
    args = {"head_branch": "image-automation/podinfo", "base": "main", "title": "Update images",
            "body": "- a.yaml", "draft": False}  # fmt: skip
    args.update(overrides)
    return await Pulls(env.gh, REPO).create(**args)


async def test_find_open_is_none_before_and_the_pr_after_create(env):
    pulls = Pulls(env.gh, REPO)
    assert await pulls.find_open(head_branch="image-automation/podinfo", base="main") is None
    created = await _open(env)
    found = await pulls.find_open(head_branch="image-automation/podinfo", base="main")
    assert found is not None and found["number"] == created["number"]
    assert found["head"]["ref"] == "image-automation/podinfo"
    assert await pulls.find_open(head_branch="image-automation/podinfo", base="other") is None


async def test_find_open_unchanged_costs_a_304(env):
    pulls = Pulls(env.gh, REPO)
    await _open(env)
    await pulls.find_open(head_branch="image-automation/podinfo", base="main")
    env.sim.reset_counters()
    assert await pulls.find_open(head_branch="image-automation/podinfo", base="main") is not None
    assert env.sim.counters["GET /repos/{owner}/{repo}/pulls 304"] == 1


async def test_create_opens_a_draft_with_title_and_body(env):
    created = await _open(env, draft=True, title="T", body="B")
    (pr,) = env.sim.pulls(REPO)
    assert pr["number"] == created["number"]
    assert (pr["title"], pr["body"], pr["draft"], pr["state"]) == ("T", "B", True, "open")
    assert pr["head"] == "image-automation/podinfo" and pr["base"] == "main"


async def test_create_twice_returns_the_existing_pr_never_a_duplicate(env):
    first = await _open(env)
    second = await _open(env, title="again")
    assert second["number"] == first["number"]
    assert len(env.sim.pulls(REPO)) == 1


async def test_create_with_nothing_to_merge_is_a_validation_error(env):
    env.sim.repo(REPO).git.set_ref("refs/heads/same-as-main", env.sim.branch_sha(REPO, "main"))
    with pytest.raises(ValidationFailed) as info:
        await _open(env, head_branch="same-as-main")
    assert "No commits between" in str(info.value)


async def test_update_title_and_body(env):
    created = await _open(env)
    pulls = Pulls(env.gh, REPO)
    await pulls.update(created["number"], title="New title", body="New body")
    (pr,) = env.sim.pulls(REPO)
    assert (pr["title"], pr["body"]) == ("New title", "New body")
    await pulls.update(created["number"], body="Only body")
    (pr,) = env.sim.pulls(REPO)
    assert (pr["title"], pr["body"]) == ("New title", "Only body")


async def test_labels_are_added_in_one_request_and_keep_existing_ones(env):
    created = await _open(env)
    pulls = Pulls(env.gh, REPO)
    await pulls.set_labels(created["number"], ["human-label"])
    env.sim.reset_counters()
    await pulls.set_labels(created["number"], ["image-automation", "dependencies"])
    assert env.requests() == 1
    labels = {label if isinstance(label, str) else label["name"] for label in
              env.sim.pulls(REPO)[0]["labels"]}  # fmt: skip
    assert labels == {"human-label", "image-automation", "dependencies"}


async def test_close_with_a_comment(env):
    created = await _open(env)
    await Pulls(env.gh, REPO).close(created["number"], comment="Nothing to update any more.")
    (pr,) = env.sim.pulls(REPO)
    assert pr["state"] == "closed"
    assert [c["body"] for c in pr["comments"]] == ["Nothing to update any more."]


async def test_comment(env):
    created = await _open(env)
    await Pulls(env.gh, REPO).comment(created["number"], "Someone pushed to this branch.")
    assert env.sim.pulls(REPO)[0]["comments"][0]["body"] == "Someone pushed to this branch."


# -- check runs ------------------------------------------------------------------------


def _annotation(i: int) -> dict:
    return {"path": ".github/image-automation.yml", "start_line": i + 1, "end_line": i + 1,
            "annotation_level": "failure", "message": f"problem {i}"}  # fmt: skip


async def test_check_run_with_few_annotations_is_one_request(env):
    head = env.sim.branch_sha(REPO, "main")
    env.sim.reset_counters()
    run_id = await report_check(
        env.gh, REPO, head_sha=head, conclusion="failure", title="Config error",
        summary="1 error", text="details", annotations=[_annotation(0)],
    )  # fmt: skip
    assert env.requests() == 1
    (run,) = env.sim.check_runs(REPO)
    assert run["id"] == run_id
    assert (run["name"], run["head_sha"], run["status"], run["conclusion"]) == (
        "image-automation",
        head,
        "completed",
        "failure",
    )
    assert run["output"]["title"] == "Config error"
    assert run["output"]["summary"] == "1 error"
    assert run["annotations"] == [_annotation(0)]


async def test_check_run_with_many_annotations_is_chunked_by_50(env):
    head = env.sim.branch_sha(REPO, "main")
    annotations = [_annotation(i) for i in range(120)]
    env.sim.reset_counters()
    await report_check(
        env.gh, REPO, head_sha=head, conclusion="failure", title="t", summary="s",
        annotations=annotations,
    )  # fmt: skip
    assert env.sim.counters["POST /repos/{owner}/{repo}/check-runs"] == 1
    assert env.sim.counters["PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}"] == 2
    (run,) = env.sim.check_runs(REPO)
    assert run["annotations"] == annotations


async def test_check_run_rejects_unknown_conclusion_before_sending(env):
    env.sim.reset_counters()
    with pytest.raises(ValueError, match="conclusion"):
        await report_check(env.gh, REPO, head_sha="0" * 40, conclusion="great", title="t",
                           summary="s", annotations=[])  # fmt: skip
    assert env.requests() == 0


async def test_check_run_on_unknown_commit_is_a_clear_error(env):
    with pytest.raises(GitHubError) as info:
        await report_check(env.gh, REPO, head_sha="1" * 40, conclusion="success", title="t",
                           summary="s", annotations=[])  # fmt: skip
    assert "check-runs" in str(info.value)


def lose_answers(env: Env, method: str, suffix: str, *, reached: bool = True) -> list[str]:
    """The network edge drops the answer to the next `method` on a URL ending in `suffix`.

    `reached`: the request got to GitHub (and took effect) before the answer was lost.
    """
    import aiohttp

    original = env.gh._send
    lost: list[str] = []

    async def send(m, url, headers, body, **kwargs):
        if m == method and url.split("?")[0].endswith(suffix) and not lost:
            lost.append(url)
            if reached:
                await original(m, url, headers, body, **kwargs)
            raise aiohttp.ServerDisconnectedError()
        return await original(m, url, headers, body, **kwargs)

    env.gh._send = send
    return lost


async def test_a_pr_opened_whose_answer_was_lost_is_found_not_opened_twice(env):
    lost = lose_answers(env, "POST", "/pulls")
    created = await _open(env)
    assert lost and len(env.sim.pulls(REPO)) == 1
    assert created["number"] == env.sim.pulls(REPO)[0]["number"]


async def test_a_pr_request_that_never_arrived_is_an_error_to_retry(env):
    from bot.github.errors import Unreachable

    lose_answers(env, "POST", "/pulls", reached=False)
    with pytest.raises(Unreachable):
        await _open(env)
    assert env.sim.pulls(REPO) == []


async def test_a_branch_created_whose_answer_was_lost_is_checked_not_failed(env):

    repo = env.repo()
    head = env.sim.branch_sha(REPO, "main")
    lost = lose_answers(env, "POST", "/git/refs")
    await repo.set_branch("image-automation/new", head, expected=None, force=False)
    assert lost and env.sim.branch_sha(REPO, "image-automation/new") == head
