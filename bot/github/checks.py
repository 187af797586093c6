"""The `image-automation` check run: what the bot saw and did, shown on a commit."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from bot.github.client import GitHubClient
from bot.github.repo import split_full_name

CHECK_NAME = "image-automation"
#: GitHub takes at most 50 annotations per request; later requests append.
ANNOTATIONS_PER_REQUEST = 50
MAX_OUTPUT_CHARS = 65535
CONCLUSIONS = frozenset(
    {"action_required", "cancelled", "failure", "neutral", "success", "skipped", "timed_out"}
)


def _clip(text: str) -> str:
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    marker = "\n\n(truncated)"
    return text[: MAX_OUTPUT_CHARS - len(marker)] + marker


async def report_check(
    gh: GitHubClient,
    full_name: str,
    *,
    head_sha: str,
    conclusion: str,
    title: str,
    summary: str,
    text: str | None = None,
    annotations: Sequence[dict[str, Any]] = (),
) -> int:
    """Create a completed check run on `head_sha`; return its id.

    More than 50 annotations are sent in further PATCH requests of 50 each.
    """
    if conclusion not in CONCLUSIONS:
        raise ValueError(f"check conclusion {conclusion!r} is not one of {sorted(CONCLUSIONS)}")
    owner, repo = split_full_name(full_name)
    output: dict[str, Any] = {"title": title[:255], "summary": _clip(summary)}
    if text:
        output["text"] = _clip(text)
    chunks = [
        list(annotations[i : i + ANNOTATIONS_PER_REQUEST])
        for i in range(0, len(annotations), ANNOTATIONS_PER_REQUEST)
    ]
    if chunks:
        output["annotations"] = chunks[0]
    created = await gh.post(
        "/repos/{owner}/{repo}/check-runs",
        {"owner": owner, "repo": repo},
        data={
            "name": CHECK_NAME,
            "head_sha": head_sha,
            "status": "completed",
            "conclusion": conclusion,
            "completed_at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "output": output,
        },
    )
    run_id = int(created["id"])
    for chunk in chunks[1:]:
        await gh.patch(
            "/repos/{owner}/{repo}/check-runs/{check_run_id}",
            {"owner": owner, "repo": repo, "check_run_id": run_id},
            data={
                "output": {
                    "title": output["title"],
                    "summary": output["summary"],
                    "annotations": chunk,
                }
            },
        )
    return run_id
