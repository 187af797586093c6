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
from collections.abc import Mapping
from typing import Any

from bot.update.result import Result
from bot.update.templates import MAX_OUTPUT_CHARS, render_template

STATE_MARKER = "image-automation-bot:state"
_STATE_BLOCK = re.compile(r"<!-- image-automation-bot:state (\{.*?\}) -->", re.DOTALL)
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


def render_pr_body(
    data: Mapping[str, Any], *, body_template: str | None, state: Mapping[str, Any]
) -> str:
    """The PR body: ``body_template`` (or the default) rendered, then the hidden state block.

    Raises `TemplateError` when a user template fails.
    """
    block = state_block(state)
    budget = MAX_OUTPUT_CHARS - len(block) - 2
    source, name = (
        (DEFAULT_BODY_TEMPLATE, "default body")
        if body_template is None
        else (body_template, "pullRequest.bodyTemplate")
    )
    body = render_template(source, data, name=name, max_chars=budget)
    return f"{body.rstrip()}\n\n{block}\n"


def state_block(state: Mapping[str, Any]) -> str:
    """An HTML comment GitHub does not display, holding ``state`` as JSON."""
    payload = json.dumps(dict(state), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    # "<" and ">" escaped so no value can end the comment early.
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e")
    return f"<!-- {STATE_MARKER} {payload} -->"


def parse_state_block(body: str | None) -> dict | None:
    """The state of the last hidden block in ``body``, or None if there is no valid one."""
    if not body:
        return None
    for match in reversed(list(_STATE_BLOCK.finditer(body))):
        try:
            state = json.loads(match.group(1))
        except ValueError:
            continue
        if isinstance(state, dict):
            return state
    return None


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
