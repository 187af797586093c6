"""The bot's pull requests: find, open (never twice), update, label, comment, close."""

from __future__ import annotations

import logging
from typing import Any

from bot.github.client import GitHubClient
from bot.github.errors import GitHubError, Unreachable, ValidationFailed
from bot.github.repo import split_full_name

log = logging.getLogger(__name__)


class Pulls:
    """Pull requests of one repository (`owner/name`)."""

    def __init__(self, gh: GitHubClient, full_name: str) -> None:
        self.owner, self.name = split_full_name(full_name)
        self.gh = gh
        self.full_name = full_name

    def __repr__(self) -> str:
        return f"Pulls({self.full_name!r})"

    def _vars(self, **more: Any) -> dict[str, Any]:
        return {"owner": self.owner, "repo": self.name, **more}

    async def find_open(self, *, head_branch: str, base: str | None = None) -> dict | None:
        """The open PR from `head_branch` (of this repository) into `base`, if any.

        Uses the response cache: asking again while nothing changed costs a 304.
        """
        pulls = await self.gh.getitem(
            "/repos/{owner}/{repo}/pulls{?head,state,base}",
            self._vars(head=f"{self.owner}:{head_branch}", state="open", base=base),
        )
        for pull in pulls or []:
            # Filter again: never act on a PR the server matched loosely.
            if pull.get("head", {}).get("ref") == head_branch and (
                base is None or pull.get("base", {}).get("ref") == base
            ):
                return pull
        return None

    async def closed_from(self, head_branch: str) -> list[dict]:
        """The closed PRs from `head_branch` (of this repository), newest first; one page."""
        pulls = await self.gh.getitem(
            "/repos/{owner}/{repo}/pulls{?head,state,sort,direction,per_page}",
            self._vars(
                head=f"{self.owner}:{head_branch}",
                state="closed",
                sort="created",
                direction="desc",
                per_page=100,
            ),
        )
        return [p for p in pulls or [] if p.get("head", {}).get("ref") == head_branch]

    async def get(self, number: int) -> dict:
        """The PR as it is now (a conditional request: 304 while it is unchanged)."""
        return await self.gh.getitem(
            "/repos/{owner}/{repo}/pulls/{number}", self._vars(number=number)
        )

    async def create(
        self, *, head_branch: str, base: str, title: str, body: str, draft: bool = False
    ) -> dict:
        """Open the PR; if one already exists for the branch, return that one instead.

        A request that got no answer may still have opened it: look before failing.
        """
        try:
            return await self.gh.post(
                "/repos/{owner}/{repo}/pulls",
                self._vars(),
                data={
                    "title": title,
                    "head": head_branch,
                    "base": base,
                    "body": body,
                    "draft": draft,
                    "maintainer_can_modify": True,
                },
            )
        except Unreachable:
            existing = await self.find_open(head_branch=head_branch, base=base)
            if existing is None:
                raise
            return existing
        except ValidationFailed as exc:
            if "already exists" not in exc.message.lower():
                raise
            existing = await self.find_open(head_branch=head_branch, base=base)
            if existing is None:
                existing = await self.find_open(head_branch=head_branch)
            if existing is None:
                raise GitHubError(
                    f"{self.full_name}: GitHub says a pull request from {head_branch!r} "
                    "already exists, but none is open; it may be in another state",
                    status=422,
                ) from None
            log.info(
                "%s: pull request #%s already open for %s",
                self.full_name,
                existing.get("number"),
                head_branch,
            )
            return existing

    async def update(
        self, number: int, *, title: str | None = None, body: str | None = None
    ) -> dict:
        data = {k: v for k, v in (("title", title), ("body", body)) if v is not None}
        return await self.gh.patch(
            "/repos/{owner}/{repo}/pulls/{number}", self._vars(number=number), data=data
        )

    async def close(self, number: int, *, comment: str | None = None) -> None:
        """Close the PR, after saying why when `comment` is given."""
        if comment:
            await self.comment(number, comment)
        await self.gh.patch(
            "/repos/{owner}/{repo}/pulls/{number}",
            self._vars(number=number),
            data={"state": "closed"},
        )

    async def set_labels(self, number: int, labels: list[str]) -> None:
        """Add `labels` to the PR in one request; labels people added stay."""
        if not labels:
            return
        await self.gh.post(
            "/repos/{owner}/{repo}/issues/{number}/labels",
            self._vars(number=number),
            data={"labels": list(labels)},
        )

    async def add_assignees(self, number: int, logins: list[str]) -> list[str]:
        """Assign people; returns who is assigned now (GitHub leaves out, without an error,
        anyone who may not be assigned)."""
        issue = await self.gh.post(
            "/repos/{owner}/{repo}/issues/{number}/assignees",
            self._vars(number=number),
            data={"assignees": list(logins)},
        )
        return [person["login"] for person in issue.get("assignees") or []]

    async def request_reviewers(
        self, number: int, *, reviewers: list[str], teams: list[str]
    ) -> None:
        """Ask for reviews; GitHub refuses the whole request (422) if one person or team
        cannot review here."""
        await self.gh.post(
            "/repos/{owner}/{repo}/pulls/{number}/requested_reviewers",
            self._vars(number=number),
            data={"reviewers": list(reviewers), "team_reviewers": list(teams)},
        )

    async def comment(self, number: int, body: str) -> None:
        await self.gh.post(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            self._vars(number=number),
            data={"body": body},
        )
