"""The pull request's default title and body, and the hidden block the bot reads back.

The default body starts with the change list of design §4, then adds what
makes review easy (a table of values old -> new and the observed policies),
and ends with a hidden machine-readable block: which automation opened the PR
and which exact set of changes it proposed (`change_set_id`), so a PR closed
unmerged is not proposed again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.problems import Problem
from bot.update.result import Result
from bot.update.template_names import PR_BODY

STATE_MARKER = "image-automation-bot:state"
_STATE_BLOCK = re.compile(rf"<!-- {re.escape(STATE_MARKER)} (\{{.*?\}}) -->", re.DOTALL)
_MAX_TITLE_CHARS = 256  # GitHub's limit for a PR title

#: The default body; its first block is design §4's contract, byte for byte.
DEFAULT_BODY_TEMPLATE = """\
Automation: {{ AutomationObject }}
{% for file, objects in Changed.FileChanges.items() %}
- File: {{ file }}
{%- for object, changes in objects.items() %}
  - Object: {{ object }}
    Changes:
{%- for change in changes %}
    - {{ change.OldValue }} -> {{ change.NewValue }}
{%- endfor %}
{%- endfor %}
{%- endfor %}

### Review

| Setter | Old value | New value |
| --- | --- | --- |
{% for change in Changed.Changes -%}
| `{{ change.Setter | md_code }}` | `{{ change.OldValue | md_code }}` | `{{ change.NewValue | md_code }}` |
{% endfor %}
{%- if ObservedPolicies %}
### Observed policies

| Policy | Image | Tag | Digest |
| --- | --- | --- | --- |
{% for policy, ref in ObservedPolicies.items() -%}
| `{{ policy | md_code }}` | `{{ ref.name | md_code }}` | `{{ ref.tag | md_code }}` | \
{{ ('`' ~ (ref.digest | md_code) ~ '`') if ref.digest else '' }} |
{% endfor %}
{%- endif %}"""


def default_pr_title(automation_name: str, result: Result) -> str:
    """``Update <image> to <value>`` for a single change, else a count of changes."""
    changes = result.changes()
    if len(changes) == 1:
        title = f"Update {changes[0].old_value} to {changes[0].new_value}"
    else:
        full = [c for c in changes if c.setter.count(":") == 1] or changes
        images = sorted({c.new_value for c in full})
        if len(images) == 1:
            title = f"Update images to {images[0]} ({automation_name})"
        else:
            title = f"Update {len(images)} images ({automation_name})"
    return title if len(title) <= _MAX_TITLE_CHARS else title[: _MAX_TITLE_CHARS - 1] + "…"


#: GitHub refuses a pull-request body longer than this (characters).
MAX_BODY_CHARS = 65536
#: The body template may render more than fits; `compose_body` shortens it. This caps memory.
MAX_RENDERED_BODY_CHARS = 1 << 20
SHORTENED_NOTE = (
    "\n\n… The list is too long for a pull request: {hidden} more line(s) are left out here. "
    "The full list is in the `image-automation` check run."
)


def render_pr_body(data: Mapping[str, Any], *, body_template: str | None) -> str:
    """``body_template`` (or the default) rendered: the text above the hidden block.

    Raises `TemplateError` when a user template fails. It may be longer than
    GitHub takes; `compose_body` fits it.
    """
    if body_template is None:
        return default_body(data).rstrip()
    from bot.update.templates import render_template  # Jinja2: only for a user's template

    return render_template(
        body_template, data, name=PR_BODY, max_chars=MAX_RENDERED_BODY_CHARS
    ).rstrip()


def default_body(data: Mapping[str, Any]) -> str:
    """`DEFAULT_BODY_TEMPLATE` rendered without Jinja2, character for character.

    It is ours, not a stranger's, so it needs no sandbox and no size limit
    (`compose_body` fits it), and a plan without templates never imports Jinja2.
    tests/test_update_templates.py holds it to the template.
    """
    changed = data["Changed"]
    out = [f"Automation: {data['AutomationObject']}\n"]
    for file, objects in changed.FileChanges.items():
        out.append(f"\n- File: {file}")
        for obj, changes in objects.items():
            out.append(f"\n  - Object: {obj}\n    Changes:")
            out.extend(f"\n    - {c.OldValue} -> {c.NewValue}" for c in changes)
    out.append("\n\n### Review\n\n| Setter | Old value | New value |\n| --- | --- | --- |\n")
    out.extend(
        f"| `{markdown_code(c.Setter)}` | `{markdown_code(c.OldValue)}` | "
        f"`{markdown_code(c.NewValue)}` |\n"
        for c in changed.Changes
    )
    policies = data["ObservedPolicies"]
    if policies:
        out.append(
            "\n### Observed policies\n\n"
            "| Policy | Image | Tag | Digest |\n| --- | --- | --- | --- |\n"
        )
        for policy, ref in policies.items():
            digest = f"`{markdown_code(ref['digest'])}`" if ref["digest"] else ""
            out.append(
                f"| `{markdown_code(policy)}` | `{markdown_code(ref['name'])}` | "
                f"`{markdown_code(ref['tag'])}` | {digest} |\n"
            )
    return "".join(out)


def markdown_code(value: Any) -> str:
    """Text safe inside a Markdown table cell's code span (no backtick, pipe or newline)."""
    text = " ".join(str(value).splitlines())
    return text.replace("`", "'").replace("|", "\\|")


def compose_body(rendered: str, state: PullRequestState, *, limit: int = MAX_BODY_CHARS) -> str:
    """The PR body: the rendered text, shortened at a line end to fit ``limit``, then the block."""
    block = state.block()
    room = limit - len(block) - 2
    if too_long(rendered, state, limit=limit):
        lines = rendered.splitlines()
        kept: list[str] = []
        size = 0
        for line in lines:
            note = SHORTENED_NOTE.format(hidden=len(lines) - len(kept))
            if size + len(line) + 1 + len(note) > room:
                break
            kept.append(line)
            size += len(line) + 1
        rendered = "\n".join(kept) + SHORTENED_NOTE.format(hidden=len(lines) - len(kept))
    return f"{rendered}\n\n{block}\n"


def too_long(rendered: str, state: PullRequestState, *, limit: int = MAX_BODY_CHARS) -> bool:
    """Must `compose_body` cut ``rendered`` to fit GitHub's limit?"""
    return len(rendered) + 1 > limit - len(state.block()) - 2


@dataclass(frozen=True)
class PullRequestState:
    """The hidden block in every bot PR's body: which automation proposed what, on which commit.

    ``version`` lets a later bot read an older block; a block without one is
    version 1 (no ``head``). ``head`` is the commit the bot put on the branch
    for this text, so a bot that lost its database can still tell its own
    branch head from someone else's push.
    """

    automation: str
    change_set: str
    #: The latest image of each policy applied (Flux's observed policies).
    latest: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    head: str | None = None
    version: int = 2

    def block(self) -> str:
        """An HTML comment GitHub does not display, holding the state as JSON."""
        payload: dict[str, Any] = {
            "version": self.version,
            "automation": self.automation,
            "changeSet": self.change_set,
            "observed": {k: dict(v) for k, v in sorted(self.latest.items())},
        }
        if self.head is not None:
            payload["head"] = self.head
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        # "<" and ">" escaped so no value can end the comment early.
        text = text.replace("<", "\\u003c").replace(">", "\\u003e")
        return f"<!-- {STATE_MARKER} {text} -->"

    @classmethod
    def parse(cls, body: str | None) -> PullRequestState | None:
        """The state of the last valid hidden block in ``body``, or None."""
        if not body:
            return None
        for match in reversed(list(_STATE_BLOCK.finditer(body))):
            try:
                raw = json.loads(match.group(1))
            except ValueError:
                continue
            state = cls._from_json(raw)
            if state is not None:
                return state
        return None

    @classmethod
    def _from_json(cls, raw: Any) -> PullRequestState | None:
        if not isinstance(raw, dict):
            return None
        automation, change_set = raw.get("automation"), raw.get("changeSet")
        version = raw.get("version", 1)
        head = raw.get("head")
        observed = raw.get("observed") or {}
        if not isinstance(automation, str) or not isinstance(change_set, str):
            return None
        if not isinstance(version, int) or not isinstance(observed, dict):
            return None
        return cls(
            automation=automation,
            change_set=change_set,
            latest={k: v for k, v in observed.items() if isinstance(v, dict)},
            head=head if isinstance(head, str) else None,
            version=version,
        )


def change_set_id(result: Result) -> str:
    """A stable hash of exactly which values change where (file, object, old, new, setter)."""
    entries = sorted(
        [path, *obj.to_json().values(), change.old_value, change.new_value, change.setter]
        for path, objects in result.sorted_files()
        for obj, changes in objects
        for change in changes
    )
    canonical = json.dumps(entries, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def problems_section(problems: Sequence[Problem]) -> str:
    """The problems a check run would show, as a collapsed section of the PR body (for a
    token that may not create check runs: `python -m bot run`). Empty without problems."""
    if not problems:
        return ""
    count = len(problems)
    lines = [
        "",
        "<details><summary>"
        f"{count} problem{'s' if count != 1 else ''} found in this repository "
        "(shown here: the token may not create a check run)</summary>",
        "",
    ]
    for problem in problems:
        where = f"{problem.path}:{problem.line}:{problem.column}" if problem.line else problem.path
        # Neither HTML nor @-mentions from a message reach the page.
        text = problem.message.replace("<", "&lt;").replace("@", "&#64;")
        lines.append(f"- `{where}` ({problem.severity}): {text}")
    lines += ["", "</details>"]
    return "\n".join(lines)

