"""How a notice travels: the outbox's plain rules, with no store and no clock.

A notice reaches a person three ways: in the kiosk inbox (it is in the store,
so it is delivered when written), on paper (one batch per housing unit a day),
and by email to counsel and to the contacts who asked. Email is sent by a
worker that retries with exponential backoff and jitter, and gives up (keeping
the row for staff to see) after ``MAX_ATTEMPTS`` tries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum


class Channel(StrEnum):
    INBOX = "inbox"
    EMAIL = "email"
    PRINT = "print"


class Status(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


KIOSK = "kiosk"
UNASSIGNED = "unassigned"
MAX_ATTEMPTS = 12
BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)


def print_recipient(housing_unit: str | None) -> str:
    """Where a person's paper notices go: their housing unit, or ``unassigned``."""
    unit = (housing_unit or "").strip()
    return unit or UNASSIGNED


def retry_delay(attempts: int, jitter: float) -> timedelta:
    """How long to wait after the ``attempts``-th failed try.

    30 s, 60 s, 120 s ... doubling, capped at an hour; ``jitter`` in [0, 1)
    spreads each wait over its upper half ("equal jitter"), so workers that
    failed together against a dead server do not all come back at once.
    """
    if attempts < 1:
        raise ValueError("attempts must be 1 or more")
    if not 0.0 <= jitter < 1.0:
        raise ValueError("jitter must be in [0, 1)")
    ceiling = min(MAX_DELAY, BASE_DELAY * (1 << min(attempts - 1, 20)))
    return ceiling / 2 + ceiling / 2 * jitter


def message_id(delivery_id: int, notice_id: int | None, domain: str) -> str:
    """The same ``Message-ID`` every time one delivery is sent, so a resend after
    a crash is recognisably the same message (RFC 5322 3.6.4). A message of its
    own (no notice) is named by its delivery alone."""
    if notice_id is None:
        return f"<message.delivery-{delivery_id}@{domain}>"
    return f"<notice-{notice_id}.delivery-{delivery_id}@{domain}>"


def sender_domain(sender: str) -> str:
    _, _, domain = sender.rpartition("@")
    domain = domain.strip().rstrip(">").strip()
    return domain if re.fullmatch(r"[A-Za-z0-9.-]+", domain or "") else "kinline.invalid"


@dataclass(frozen=True, slots=True)
class Attempt:
    id: int
    attempted_at: datetime
    outcome: str  # sent, error
    error: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    facility_id: str
    notice_id: int
    channel: str
    recipient: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    claimed_until: datetime | None
    message_id: str | None
    last_error: str | None
    sent_at: datetime | None
    batch_id: int | None
    created_at: datetime
    history: tuple[Attempt, ...] = ()


@dataclass(frozen=True, slots=True)
class ClaimedEmail:
    """An email delivery a worker holds until ``claimed_until``; ``attempt`` counts
    this try (claims that ended in a crash count too). ``notice_id`` is None for
    a message of its own (a password reset link): its subject and plain-text
    body travel with the delivery and it is sent without a PDF."""

    id: int
    facility_id: str
    notice_id: int | None
    recipient: str
    attempt: int
    claimed_until: datetime


@dataclass(frozen=True, slots=True)
class PrintBatch:
    id: int
    facility_id: str
    housing_unit: str
    day: date
    notice_count: int
    size: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EmailRun:
    """What one pass of the email worker did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def __add__(self, other: EmailRun) -> EmailRun:
        return EmailRun(
            self.sent + other.sent, self.retrying + other.retrying, self.failed + other.failed
        )

    @property
    def claimed(self) -> int:
        return self.sent + self.retrying + self.failed
