"""The `image-automation` check run's content: what the bot saw and did, per base commit.

Pure: `render_checks` turns one reconcile's reports into check runs; the
reconcile posts them (`bot.github.checks.report_check`). Problems arrive
typed and become annotations as they are: nothing is parsed back from text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.planner import AutomationPlan
from bot.policy import LatestRef
from bot.problems import Problem, Severity
from bot.update.result import Result

#: Annotations past this many are left out (GitHub shows 50 per request; this bounds requests).
MAX_ANNOTATIONS = 500


@dataclass
class AutomationReport:
    """What one automation's run says in the check run."""

    automation: str
    base_sha: str
    status: str
    plan: AutomationPlan | None = None
    problems: list[Problem] = field(default_factory=list)
    direct_commit: bool = False

    @property
    def all_problems(self) -> list[Problem]:
        planned = [*self.plan.errors, *self.plan.warnings] if self.plan else []
        return [*planned, *self.problems]


@dataclass
class CheckRun:
    head_sha: str
    conclusion: str
    title: str
    summary: str
    text: str | None
    annotations: list[dict[str, Any]]


def render_checks(
    reports: list[AutomationReport],
    *,
    config_head: str,
    config_problems: list[Problem],
    policy_problems: Mapping[str, Problem],
    latest: Mapping[str, LatestRef],
    config_changed: bool,
    policies_changed: bool = False,
    explanations: Mapping[str, str] | None = None,
) -> list[CheckRun]:
    """One check run per base commit with something to say that a pull request does not show.

    That is: errors and warnings, a new or edited config (its verdict), a
    direct commit (no PR shows it), or a change list too long for the PR
    body; and, on the config's head, a change in which policies fail (so a
    check that said a registry was down is superseded once it is back). A
    routine PR update adds none, so a busy base branch does not get one per
    commit. Config and policy problems go on the default branch's head, where
    the config file is.
    """
    by_head: dict[str, list[AutomationReport]] = {}
    for report in reports:
        by_head.setdefault(report.base_sha, []).append(report)
    by_head.setdefault(config_head, [])
    checks = []
    for head, group in by_head.items():
        problems = _unique(p for r in group for p in r.all_problems)
        policies: list[Problem] = []
        news = config_changed
        if head == config_head:
            problems = [*config_problems, *problems]
            policies = [policy_problems[name] for name in sorted(policy_problems)]
            news = news or policies_changed
        shortened = [r for r in group if r.plan and r.plan.result and r.plan.body_shortened]
        direct = any(r.direct_commit for r in group)
        if not (problems or policies or direct or shortened or news):
            continue
        errors = [p for p in problems if p.is_error]
        warnings = [p for p in problems if not p.is_error]  # and notices: no verdict of their own
        if errors:
            conclusion = "failure"
        elif policies or any(p.severity is Severity.WARNING for p in warnings):
            conclusion = "neutral"
        else:
            conclusion = "success"
        checks.append(
            CheckRun(
                head_sha=head,
                conclusion=conclusion,
                title=_title(group, errors, policies),
                summary=_summary(group, errors, policies, warnings, latest)
                + _explained(policies, policy_problems, explanations or {}),
                text=_text(group),
                annotations=[annotation(p) for p in [*errors, *policies, *warnings]][
                    :MAX_ANNOTATIONS
                ],
            )
        )
    return checks


_LEVELS = {Severity.ERROR: "failure", Severity.WARNING: "warning", Severity.NOTICE: "notice"}


def annotation(problem: Problem) -> dict[str, Any]:
    """A check-run annotation, at the problem's file and line (line 1 for a whole file)."""
    line = max(problem.line, 1)
    return {
        "path": problem.path,
        "start_line": line,
        "end_line": line,
        "annotation_level": _LEVELS[problem.severity],
        "message": problem.message,
    }


def _unique(problems: Iterable[Problem]) -> list[Problem]:
    # Automations over the same files see the same bad files: say each once.
    return list(dict.fromkeys(problems))


def _title(group: list[AutomationReport], errors: list[Problem], policies: list[Problem]) -> str:
    if errors:
        return f"{len(errors)} error(s) in the image automation"
    changed = [r for r in group if r.plan is not None and r.plan.result]
    if changed:
        return "; ".join(f"{r.automation}: {r.status}" for r in changed)
    if policies:
        return f"{len(policies)} policy error(s); images up to date otherwise"
    return "Images up to date"


def _summary(
    group: list[AutomationReport],
    errors: list[Problem],
    policies: list[Problem],
    warnings: list[Problem],
    latest: Mapping[str, LatestRef],
) -> str:
    lines = ["| policy | image |", "| --- | --- |"]
    lines += [f"| {name} | `{ref}` |" for name, ref in sorted(latest.items())]
    if group:
        lines += ["", "| automation | outcome |", "| --- | --- |"]
        lines += [f"| {r.automation} | {r.status} |" for r in group]
    for heading, items in (("Errors", errors), ("Policy errors", policies), ("Warnings", warnings)):
        if items:
            lines += ["", f"**{heading}**", ""] + [f"- {item}" for item in items]
    return "\n".join(lines)


def _explained(
    policies: list[Problem], by_name: Mapping[str, Problem], explanations: Mapping[str, str]
) -> str:
    """Why each failed policy picked nothing, one collapsed section each."""
    shown = set(policies)
    fence = "`" * 3
    parts = [
        f"\n\n<details><summary>Why policy {name} picked nothing</summary>\n\n"
        f"{fence}\n{explanations[name].replace(fence, '')}\n{fence}\n\n</details>"
        for name, problem in sorted(by_name.items())
        if problem in shown and name in explanations
    ]
    return "".join(parts)


def _text(group: list[AutomationReport]) -> str | None:
    """Each automation's PR text; the full change list where the PR body had to be shortened."""
    parts = []
    for report in group:
        plan = report.plan
        if plan is None or not plan.result:
            continue
        if plan.body_shortened:
            parts.append(f"### {report.automation}: every change\n\n{change_list(plan.result)}")
        else:
            parts.append(plan.body_text)
    return "\n\n---\n\n".join(parts) or None


def change_list(result: Result) -> str:
    """Every change, compactly: each distinct old -> new once, with the places it is made.

    Thousands of changes of one image still fit in a check run's text this way.
    """
    places: dict[tuple[str, str], list[str]] = {}
    for path, objects in result.sorted_files():
        for obj, changes in objects:
            for change in changes:
                places.setdefault((change.old_value, change.new_value), []).append(
                    f"{path} ({obj})"
                )
    return "\n".join(
        f"- `{old}` -> `{new}` in {len(where)} place(s): " + ", ".join(where)
        for (old, new), where in places.items()
    )
