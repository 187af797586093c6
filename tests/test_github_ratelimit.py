"""`RateBudget`: a credential's primary limit spread over its window, postponed before it
runs out; and the client that consults it before every request."""

from __future__ import annotations

import pytest

from bot.github.errors import RateLimited
from bot.github.ratelimit import RateBudget

NOW = 1_800_000_000.0


def budget(limit: int, remaining: int, reset_in: float, now: list[float] | None = None):
    clock = now or [NOW]
    b = RateBudget(who="installation 7", clock=lambda: clock[0])
    b.observe(
        {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(NOW + reset_in),
        }
    )
    return b, clock


def test_nothing_known_or_plenty_left_goes_at_once():
    assert RateBudget().pause_before_request() == 0.0
    b, _ = budget(5000, 2600, 3000)
    assert [b.pause_before_request() for _ in range(50)] == [0.0] * 50


def test_less_than_half_left_is_spread_over_the_window():
    b, _ = budget(5000, 1100, 500)  # 1,000 usable (100 kept back) over 500 s: one every 0.5 s
    pauses = [b.pause_before_request() for _ in range(4)]
    assert pauses == pytest.approx([0.0, 0.5, 1.0, 1.5], abs=0.01)  # slots one after another
    with pytest.raises(RateLimited) as info:
        for _ in range(2):
            pauses.append(b.pause_before_request())
    # The slot that would be more than a pause away is where the run resumes.
    assert info.value.resume_at(NOW) == pytest.approx(NOW + 0.5 * len(pauses), abs=0.05)
    assert "installation 7" in info.value.message and "postponed" in info.value.message


def test_the_reserve_is_not_spent_on_reads_but_writes_may_use_it():
    b, _ = budget(5000, 20, 600)
    with pytest.raises(RateLimited) as info:
        b.pause_before_request()
    assert info.value.resume_at(NOW) == NOW + 601  # after the reset
    assert b.pause_before_request(write=True) == 0.0
    b.remaining = 0
    with pytest.raises(RateLimited):
        b.pause_before_request(write=True)


def test_a_new_window_forgets_the_old_one():
    b, clock = budget(5000, 0, 60)
    with pytest.raises(RateLimited):
        b.pause_before_request()
    clock[0] = NOW + 61
    assert b.pause_before_request() == 0.0


def test_an_answer_overtaken_by_a_newer_one_does_not_undo_it():
    b, _ = budget(5000, 100, 600)
    b.observe({"x-ratelimit-remaining": "4000", "x-ratelimit-reset": str(NOW + 300)})
    assert b.remaining == 100  # an older window's answer, arriving late
    b.observe({"x-ratelimit-remaining": "junk", "x-ratelimit-reset": "soon"})
    assert b.remaining == 100


def test_rate_limited_answers_say_when_to_resume():
    assert RateLimited("x", headers={"retry-after": "30"}).resume_at(NOW) == NOW + 30
    assert RateLimited("x", headers={"x-ratelimit-reset": str(NOW + 90)}).resume_at(NOW) == (
        NOW + 91
    )
    assert RateLimited("x").resume_at(NOW) == NOW + RateLimited.FALLBACK_WAIT


def test_within_a_window_an_earlier_answer_never_gives_requests_back():
    b, _ = budget(5000, 100, 600)
    for _ in range(5):
        b.pause_before_request(write=True)  # five sent, answers not back yet
    b.observe(
        {"x-ratelimit-remaining": "99", "x-ratelimit-reset": str(NOW + 600)}
    )  # the answer to the first
    assert b.remaining == 95


def test_conditional_reads_are_not_counted_ahead_of_their_answer():
    b, _ = budget(5000, 1020, 500)
    for _ in range(3):
        b.pause_before_request(conditional=True)  # 304s cost nothing
    assert b.remaining == 1020
