"""Hostile templates against `python -m bot serve` as a real process (issue 8 §1).

A repository's config carries a template built to make gigabytes (a join, a
replace, a ``%`` width...). The bot must refuse it before it allocates: the
check run names the template, its line, and sits on that line of the config;
no pull request is opened; and the peak RSS of the bot stays within 100 MB of
what it held when idle.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import CONFIG_PATH
from tests.e2e.conftest import REPOSITORY, line_of
from tests.e2e.served import serving
from tests.manifests import BRANCH, deployment, podinfo_config

pytestmark = pytest.mark.e2e

MAX_GROWTH_KB = 100 * 1024

BOMB = '{% set s = "x" * 65536 %}{% set l = [s] * 65536 %}{{ l | join }}'

#: id -> (config lines for the automation, the template's name, the line that fails in it).
CASES = {
    "join-of-a-repeated-list": (
        [
            "    git:",
            "      commit:",
            "        messageTemplate: |",
            "          Images",
            f"          {BOMB}",
        ],
        "messageTemplate",
        2,
    ),
    "replace-with-a-long-replacement": (
        [
            "    git:",
            "      commit:",
            "        messageTemplate: |",
            '          {% set s = "x" * 65536 %}',
            "          {{ s | replace('x', s) }}",
        ],
        "messageTemplate",
        2,
    ),
    "percent-width": (
        ["    git:", "      commit:", """        messageTemplate: '{{ "%2000000000d" % 1 }}'"""],
        "messageTemplate",
        1,
    ),
    "str-format-width": (
        ["    pullRequest:", """      title: "{{ '{:>999999999}'.format(1) }}\""""],
        "pullRequest.title",
        1,
    ),
    "indent-in-the-body": (
        [
            "    pullRequest:",
            "      bodyTemplate: |",
            "        {{ Changed.Changes | join(', ') }}",
            '        {% set s = "x" * 65536 %}',
            '        {{ ("x\\n" * 30000) | indent(s) }}',
        ],
        "pullRequest.bodyTemplate",
        3,
    ),
    "work-of-many-small-values": (
        [
            "    git:",
            "      commit:",
            """        messageTemplate: '{{ range(10000) | map("center", 60000) | join }}'""",
        ],
        "messageTemplate",
        1,
    ),
}


@pytest.fixture
async def bot(tmp_path, github_sim, app_key):
    # WORKERS=0: plan inside `serve` itself, the process every installation shares.
    async with serving(tmp_path, github_sim, app_key, WORKERS="0") as served:
        yield served


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for process {pid}")


def descendants(pid: int) -> list[int]:
    """The processes started under ``pid`` (a worker pool, if one plans instead)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


@pytest.mark.parametrize("case", list(CASES))
async def test_a_hostile_template_is_refused_at_its_line_without_the_memory(bot, image, case):
    lines, name, template_line = CASES[case]
    text = podinfo_config(image=image, update_path="./deploy", labels=(), interval="1s")
    text += "\n".join(lines) + "\n"
    idle_kb = status_kb(bot.process.pid, "VmRSS")

    head = bot.sim.create_repository(
        REPOSITORY,
        files={CONFIG_PATH: text.encode(), "deploy/app.yaml": deployment("5.0.0", image=image)},
    )
    bot.sim.create_installation(bot.app_id, account="octo-org", repositories=[REPOSITORY])
    check = await bot.check_run(REPOSITORY, lambda c: c["head_sha"] == head)

    (annotation,) = [a for a in check["annotations"] if a["annotation_level"] == "failure"]
    assert annotation["path"] == CONFIG_PATH
    message = annotation["message"]
    assert f"automation 'podinfo-update': {name}:{template_line}: not allowed: " in message
    # Each case fails on its template's last line: the annotation points at that config line.
    assert annotation["start_line"] == line_of(text, lines[-1].strip())
    assert bot.open_pulls(REPOSITORY) == []
    assert bot.sim.branch_sha(REPOSITORY, BRANCH) is None

    assert status_kb(bot.process.pid, "VmHWM") - idle_kb < MAX_GROWTH_KB
    for pid in descendants(bot.process.pid):
        try:
            grown = status_kb(pid, "VmHWM") - idle_kb
        except OSError:
            continue  # exited since
        assert grown < MAX_GROWTH_KB, f"process {pid} peaked {grown} kB above serve at idle"
