"""The rules of signing in, as plain functions of the timestamps: what a
password must be, how long a login is locked after failed attempts, and when a
session has ended. Standard library only; the clock is always passed in."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta

MIN_PASSWORD = 12
MAX_PASSWORD = 128
FREE_FAILURES = 5
FIRST_LOCK = timedelta(minutes=1)
LONGEST_LOCK = timedelta(hours=1)
IDLE_DEFAULT = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)
RESET_VALID = timedelta(minutes=30)
IDLE_ENV = "KINLINE_SESSION_IDLE_MINUTES"


def password_problem(password: str) -> str | None:
    """Why ``password`` may not be used, or None. Length is what makes a password
    strong (NIST SP 800-63B): 12 to 128 characters, not all one character, and
    no rules about classes of character."""
    if len(password) < MIN_PASSWORD:
        return f"at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"at most {MAX_PASSWORD} characters"
    if len(set(password)) == 1:
        return "not one character repeated"
    if password.strip() == "":
        return "not only spaces"
    return None


def lock_for(failures: int) -> timedelta:
    """How long a login is locked after its ``failures``-th failure in a row:
    not at all for the first few, then a minute, doubling with each further
    failure up to an hour."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    doublings: int = min(failures - FREE_FAILURES, 12)
    wait: timedelta = FIRST_LOCK * (1 << doublings)
    return min(wait, LONGEST_LOCK)


def locked_until(failures: int, at: datetime) -> datetime | None:
    """Until when a login that failed for the ``failures``-th time at ``at`` is locked."""
    wait = lock_for(failures)
    return at + wait if wait else None


def lock_remaining(until: datetime | None, at: datetime) -> timedelta:
    """How long is left of a lock at ``at`` (zero when none)."""
    if until is None or until <= at:
        return timedelta(0)
    return until - at


def idle_limit(environ: dict[str, str] | None = None) -> timedelta:
    """The idle expiry: ``KINLINE_SESSION_IDLE_MINUTES`` (1 to 720), else 30 minutes."""
    text = (os.environ if environ is None else environ).get(IDLE_ENV, "").strip()
    if not text:
        return IDLE_DEFAULT
    try:
        minutes = int(text)
    except ValueError:
        raise ValueError(f"{IDLE_ENV} must be a whole number of minutes, not {text!r}") from None
    if not 1 <= minutes <= 720:
        raise ValueError(f"{IDLE_ENV} must be from 1 to 720, not {minutes}")
    return timedelta(minutes=minutes)


@dataclass(frozen=True, slots=True)
class SessionTimes:
    """What decides whether a session is still live."""

    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None


def session_expiry(created_at: datetime) -> datetime:
    """The absolute end of a session begun at ``created_at``."""
    return created_at + ABSOLUTE


def session_live(times: SessionTimes, at: datetime, idle: timedelta = IDLE_DEFAULT) -> bool:
    """Whether the session may act at ``at``: not ended, not past its absolute
    expiry, and not idle for ``idle`` or longer."""
    if times.ended_at is not None and times.ended_at <= at:
        return False
    if at >= times.expires_at:
        return False
    return at - times.last_seen_at < idle
