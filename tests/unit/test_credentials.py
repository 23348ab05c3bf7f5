"""The rules of signing in: password policy, lockout schedule, session expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinline.identity.credentials import (
    ABSOLUTE,
    FREE_FAILURES,
    IDLE_DEFAULT,
    LONGEST_LOCK,
    SessionTimes,
    idle_limit,
    lock_for,
    lock_remaining,
    locked_until,
    password_problem,
    session_expiry,
    session_live,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("short", False),
        ("a" * 11 + "b", True),
        ("abcdefghijk", False),
        ("x" * 12, False),
        (" " * 13, False),
        ("correct horse battery", True),
        ("p" * 64 + "q" * 64, True),
        ("p" * 64 + "q" * 65, False),
    ],
)
def test_password_policy(password: str, ok: bool) -> None:
    assert (password_problem(password) is None) is ok


def test_no_lock_for_the_first_failures() -> None:
    assert all(lock_for(n) == timedelta(0) for n in range(FREE_FAILURES))
    assert locked_until(FREE_FAILURES - 1, T0) is None


def test_lock_starts_at_a_minute_and_doubles_to_an_hour() -> None:
    assert lock_for(5) == timedelta(minutes=1)
    assert lock_for(6) == timedelta(minutes=2)
    assert lock_for(7) == timedelta(minutes=4)
    assert lock_for(11) == LONGEST_LOCK  # 64 minutes capped
    assert lock_for(10_000) == LONGEST_LOCK
    assert locked_until(5, T0) == T0 + timedelta(minutes=1)


@given(st.integers(min_value=0, max_value=500))
def test_lock_never_shrinks_with_more_failures(n: int) -> None:
    assert lock_for(n) <= lock_for(n + 1) <= LONGEST_LOCK


def test_lock_remaining() -> None:
    until = T0 + timedelta(seconds=90)
    assert lock_remaining(until, T0) == timedelta(seconds=90)
    assert lock_remaining(until, until) == timedelta(0)
    assert lock_remaining(None, T0) == timedelta(0)


def test_idle_limit_from_the_environment() -> None:
    assert idle_limit({}) == IDLE_DEFAULT
    assert idle_limit({"KINLINE_SESSION_IDLE_MINUTES": "5"}) == timedelta(minutes=5)
    with pytest.raises(ValueError, match="whole number"):
        idle_limit({"KINLINE_SESSION_IDLE_MINUTES": "soon"})
    with pytest.raises(ValueError, match="1 to 720"):
        idle_limit({"KINLINE_SESSION_IDLE_MINUTES": "0"})


def test_session_idle_absolute_and_ended() -> None:
    times = SessionTimes(T0, T0, session_expiry(T0))
    idle = timedelta(minutes=30)
    assert session_live(times, T0 + timedelta(minutes=29), idle)
    assert not session_live(times, T0 + timedelta(minutes=30), idle)
    busy = SessionTimes(T0, T0 + ABSOLUTE - timedelta(minutes=1), session_expiry(T0))
    assert session_live(busy, T0 + ABSOLUTE - timedelta(seconds=1), idle)
    assert not session_live(busy, T0 + ABSOLUTE, idle)
    ended = SessionTimes(T0, T0, session_expiry(T0), ended_at=T0 + timedelta(minutes=1))
    assert session_live(ended, T0, idle)
    assert not session_live(ended, T0 + timedelta(minutes=1), idle)
