"""``imageUpdateAutomations[]``: Flux's ImageUpdateAutomation spec (git, update,
policySelector) plus the bot's ``pullRequest``."""

from __future__ import annotations

import posixpath

from ruamel.yaml.nodes import Node, SequenceNode

from bot.config.checker import Checker, line_of
from bot.config.grammar import is_github_login, is_team_slug, is_valid_branch_name
from bot.config.model import (
    DEFAULT_AUTOMATION_INTERVAL,
    MAX_ASSIGNEES,
    MAX_REVIEWERS,
    UPDATE_STRATEGIES,
    AutomationConfig,
)
from bot.config.schedule import Schedule, ScheduleError, parse_timezone, parse_window
from bot.update.template_names import COMMIT_MESSAGE, PR_BODY, PR_TITLE

FIELDS = (
    "name",
    "interval",
    "git",
    "update",
    "policySelector",
    "pullRequest",
    "schedule",
)

_REF_HINTS = {
    key: "only 'branch' is supported: the bot proposes changes to a branch"
    for key in ("tag", "semver", "name", "commit")
}


def read_automation(
    check: Checker, item: Node, where: str, fields: dict[str, Node], name: str
) -> AutomationConfig | None:
    name_node = fields.get("name")
    automation = AutomationConfig(name=name, line=line_of(item))
    default_push_branch = automation.push_branch
    interval = check.duration_field(fields, "interval", where, DEFAULT_AUTOMATION_INTERVAL)
    if interval is not None:
        automation.interval = interval
    if "git" in fields:
        _git(check, fields["git"], f"{where}.git", automation)
    default_kept = automation.push_branch == default_push_branch
    if default_kept and name_node is not None and not is_valid_branch_name(default_push_branch):
        check.error(
            name_node,
            f"{where}.name",
            f"the default push branch '{default_push_branch}' is not a valid git "
            "branch name; set git.push.branch",
        )
    if "update" in fields:
        _update(check, fields["update"], f"{where}.update", automation)
    if "policySelector" in fields:
        automation.policy_selector = check.selector(
            fields["policySelector"], f"{where}.policySelector"
        )
    if "pullRequest" in fields:
        _pull_request(check, fields["pullRequest"], f"{where}.pullRequest", automation)
    if "schedule" in fields:
        automation.schedule = _schedule(check, fields["schedule"], f"{where}.schedule")
        automation.schedule_line = line_of(fields["schedule"])
    return automation


def _schedule(check: Checker, node: Node, path: str) -> Schedule | None:
    """``schedule: {timezone: Europe/Berlin, windows: [...]}``, or just the list (UTC)."""
    timezone, windows_node = "UTC", node
    if not isinstance(node, SequenceNode):
        fields = check.mapping(node, path, ("timezone", "windows"))
        if fields is None:
            return None
        if "windows" not in fields:
            check.error(node, path, "missing 'windows', e.g. windows: ['after 22:00 on weekdays']")
            return None
        windows_node = fields["windows"]
        if "timezone" in fields:
            name = check.nonempty_string(fields["timezone"], f"{path}.timezone")
            try:
                timezone = parse_timezone(name) if name is not None else timezone
            except ScheduleError as err:
                check.error(fields["timezone"], f"{path}.timezone", str(err))
                return None
        path = f"{path}.windows"
    texts = check.string_list(windows_node, path)
    if texts is None:
        return None
    if not texts:
        check.error(windows_node, path, "empty; give at least one window")
        return None
    windows = []
    for index, text in enumerate(texts):
        try:
            windows.append(parse_window(text))
        except ScheduleError as err:
            check.error(windows_node.value[index], f"{path}[{index}]", str(err))
    if len(windows) != len(texts):
        return None
    return Schedule(timezone=timezone, windows=tuple(windows))


def _git(check: Checker, node: Node, path: str, automation: AutomationConfig) -> None:
    git = check.mapping(node, path, ("checkout", "commit", "push"))
    if git is None:
        return
    if "checkout" in git:
        checkout = check.mapping(git["checkout"], f"{path}.checkout", ("ref",))
        if checkout and "ref" in checkout:
            ref = check.mapping(checkout["ref"], f"{path}.checkout.ref", ("branch",), _REF_HINTS)
            if ref and "branch" in ref:
                automation.checkout_branch = check.branch(
                    ref["branch"], f"{path}.checkout.ref.branch"
                )
    if "commit" in git:
        _commit(check, git["commit"], f"{path}.commit", automation)
    if "push" in git:
        push = check.mapping(git["push"], f"{path}.push", ("branch",))
        if push and "branch" in push:
            branch = check.branch(push["branch"], f"{path}.push.branch")
            if branch:
                automation.push_branch = branch


def _commit(check: Checker, node: Node, path: str, automation: AutomationConfig) -> None:
    commit = check.mapping(node, path, ("author", "messageTemplate", "messageTemplateValues"))
    if commit is None:
        return
    if "author" in commit:
        author = check.mapping(commit["author"], f"{path}.author", ("name", "email"))
        if author is not None:
            if "email" not in author:
                check.error(
                    commit["author"],
                    f"{path}.author",
                    "missing 'email'; an author needs an email address",
                )
            else:
                email = check.email(author["email"], f"{path}.author.email")
                if email is not None:
                    automation.author_email = email
            name = check.optional(author, "name", f"{path}.author", check.nonempty_string)
            if name:
                automation.author_name = name
    if "messageTemplate" in commit:
        automation.message_template = check.template(
            commit["messageTemplate"], f"{path}.messageTemplate", COMMIT_MESSAGE, automation
        )
    if "messageTemplateValues" in commit:
        automation.message_template_values = (
            check.string_map(commit["messageTemplateValues"], f"{path}.messageTemplateValues") or {}
        )


def _update(check: Checker, node: Node, path: str, automation: AutomationConfig) -> None:
    update = check.mapping(node, path, ("path", "strategy"))
    if update is None:
        return
    if "strategy" in update:
        check.enum(update["strategy"], f"{path}.strategy", UPDATE_STRATEGIES)
    if "path" in update:
        raw = check.nonempty_string(update["path"], f"{path}.path")
        if raw is None:
            return
        normal = posixpath.normpath(raw)
        if raw.startswith("/") or "\\" in raw or "\x00" in raw:
            check.error(
                update["path"],
                f"{path}.path",
                f"'{raw}' must be a relative path inside the repository, like ./clusters/prod",
            )
        elif normal == ".." or normal.startswith("../"):
            check.error(
                update["path"],
                f"{path}.path",
                f"'{raw}' points outside the repository; remove the '..'",
            )
        else:
            automation.update_path = normal
            automation.update_path_line = line_of(update["path"])


def _pull_request(check: Checker, node: Node, path: str, automation: AutomationConfig) -> None:
    pr = check.mapping(
        node,
        path,
        ("title", "bodyTemplate", "labels", "draft", "assignees", "reviewers", "teamReviewers"),
    )
    if pr is None:
        return
    if "title" in pr:
        automation.pr_title = check.template(pr["title"], f"{path}.title", PR_TITLE, automation)
    if "bodyTemplate" in pr:
        automation.pr_body_template = check.template(
            pr["bodyTemplate"], f"{path}.bodyTemplate", PR_BODY, automation
        )
    if "labels" in pr:
        labels = check.string_list(pr["labels"], f"{path}.labels") or []
        for index, label in enumerate(labels):
            if not label.strip() or len(label) > 50:
                check.error(
                    pr["labels"].value[index],
                    f"{path}.labels[{index}]",
                    "a GitHub label is 1-50 characters; shorten or fill it",
                )
        automation.pr_labels = labels
    if "draft" in pr:
        draft = check.boolean(pr["draft"], f"{path}.draft")
        automation.pr_draft = bool(draft)
    automation.pr_assignees = _people(check, pr, "assignees", path)
    if len(automation.pr_assignees) > MAX_ASSIGNEES:
        check.error(
            pr["assignees"],
            f"{path}.assignees",
            f"has {len(automation.pr_assignees)} people; GitHub assigns at most {MAX_ASSIGNEES}",
        )
    automation.pr_reviewers = _people(check, pr, "reviewers", path)
    automation.pr_team_reviewers = _people(check, pr, "teamReviewers", path, teams=True)
    asked = len(automation.pr_reviewers) + len(automation.pr_team_reviewers)
    if asked > MAX_REVIEWERS:
        check.error(
            pr.get("reviewers") or pr["teamReviewers"],
            f"{path}.reviewers",
            f"{asked} people and teams are asked to review; GitHub takes at most {MAX_REVIEWERS}",
        )


def _people(
    check: Checker, pr: dict[str, Node], key: str, path: str, *, teams: bool = False
) -> list[str]:
    """GitHub logins, or team slugs (``org/slug`` is taken as ``slug``), in order, once each."""
    if key not in pr:
        return []
    names = check.string_list(pr[key], f"{path}.{key}") or []
    kept: list[str] = []
    for index, name in enumerate(names):
        value = name.rsplit("/", 1)[-1] if teams else name.removeprefix("@")
        valid = is_team_slug(value) if teams else is_github_login(value)
        if not valid:
            what = "a team's slug, like platform-team" if teams else "a GitHub login, like octocat"
            check.error(pr[key].value[index], f"{path}.{key}[{index}]", f"'{name}' is not {what}")
        elif value.lower() not in (k.lower() for k in kept):
            kept.append(value)
    return kept
