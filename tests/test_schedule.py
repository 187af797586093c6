"""When to propose (issue 12 §4): an automation's `schedule` windows."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import pytest

from bot.config import CONFIG_PATH, load_config
from bot.config.schedule import ScheduleError, parse_window
from tests.manifests import IMAGE, deployment
from tests.test_automation_lifecycle import World

REPO = "octo-org/scheduled"
# Tuesday 1 December 2026, 13:00 in Berlin (UTC+1).
TUESDAY_NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()
NIGHT = "after 22:00 and before 05:00 on weekdays"


def config(schedule: str) -> bytes:
    return (
        f"version: 1\nnamespace: flux-system\nimageRepositories:\n  - {{name: podinfo, image: {IMAGE}}}\n"
        "imagePolicies:\n  - {name: podinfo, imageRepositoryRef: podinfo, policy: {semver: {range: '5.x'}}}\n"
        "imageUpdateAutomations:\n  - name: apps\n    update: {path: ./apps}\n"
        f"    schedule: {schedule}\n"
    ).encode()


def at(year, month, day, hour, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "inside", "outside"),
    [
        # Local times (the schedule's zone): Tuesday night in, Tuesday evening and a
        # Saturday night out.
        (NIGHT, [at(2026, 12, 1, 22, 0), at(2026, 12, 2, 4, 59)], [at(2026, 12, 1, 21, 59),
                                                                    at(2026, 12, 5, 23, 0)]),
        ("before 06:00", [at(2026, 12, 6, 0, 0)], [at(2026, 12, 6, 6, 0)]),
        ("on saturday and sun", [at(2026, 12, 5, 12)], [at(2026, 12, 4, 12)]),
        ("* 22-23,0-4 * * 1-5", [at(2026, 12, 1, 22, 30)], [at(2026, 12, 5, 22, 30)]),
    ],
)
def test_windows(window, inside, outside):
    parsed = parse_window(window)
    assert all(parsed.contains(moment) for moment in inside)
    assert not any(parsed.contains(moment) for moment in outside)


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("after 25:00", "is not a window"),
        ("on funday", "'funday' in 'on funday' is not a day"),
        ("* * * *", "is not a window"),
        ("61 * * * *", "is not a valid cron expression"),
        ("0 0 30 2 *", "never matches a date"),
    ],
)
def test_bad_windows_say_what_to_write(bad, says):
    with pytest.raises(ScheduleError, match=says):
        parse_window(bad)


def test_the_config_reads_a_schedule_and_names_a_bad_time_zone():
    loaded, problems = load_config(config("{timezone: Europe/Berlin, windows: ['" + NIGHT + "']}"))
    assert problems == []
    schedule = loaded.automations["apps"].schedule
    assert schedule.timezone == "Europe/Berlin"
    now = datetime.fromtimestamp(TUESDAY_NOON, UTC)
    assert not schedule.is_open(now)
    assert schedule.next_open(now) == datetime.fromisoformat("2026-12-01T22:00:00+01:00")
    _loaded, problems = load_config(config("{timezone: Mars/Olympus, windows: [before 06:00]}"))
    (problem,) = problems
    assert problem.line == 10 and "'Mars/Olympus' is not a time zone" in problem.message
    shorthand, problems = load_config(config("['on weekends']"))
    assert problems == [] and shorthand.automations["apps"].schedule.timezone == "UTC"


async def test_outside_its_window_the_pr_waits_and_the_check_run_says_until_when(
    github_sim, app_key
):
    async with aiohttp.ClientSession() as session:
        world = World(github_sim, app_key, session)
        now = [TUESDAY_NOON]
        world.deps.clock = lambda: now[0]
        world.add_repository(REPO, files={
            CONFIG_PATH: config("{timezone: Europe/Berlin, windows: ['" + NIGHT + "']}"),
            "apps/app.yaml": deployment("5.0.0")})  # fmt: skip

        outcome = await world.reconcile(REPO)
        assert world.open_pulls(REPO) == []
        assert outcome.automations == {"apps": "waiting for its schedule"}
        assert outcome.next_run == 300  # the repository's interval comes first
        # Two minutes before the window: due when it opens, before the interval.
        now[0] = datetime(2026, 12, 1, 20, 58, tzinfo=UTC).timestamp()
        outcome = await world.reconcile(REPO)
        assert outcome.short_circuited and outcome.next_run == 120
        (check,) = world.sim.check_runs(REPO)
        (annotation,) = check["annotations"]
        assert annotation["annotation_level"] == "notice" and annotation["start_line"] == 10
        assert "the next window opens at 2026-12-01 22:00 Europe/Berlin" in annotation["message"]

        # Inside: the PR is opened, although nothing else changed.
        now[0] += 300
        outcome = await world.reconcile(REPO)
        assert not outcome.short_circuited
        (pull,) = world.open_pulls(REPO)
        assert pull["head"] == "image-automation/apps"
        assert (await world.reconcile(REPO)).short_circuited  # and then it rests
