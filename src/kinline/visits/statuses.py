"""A visit booking's life: its statuses, the moves between them, and the
reservation and auto-refusal clocks. Pure: time is passed in.

A booking begins ``reserved`` (its place held for a few minutes while the
booking is completed), then becomes ``booked`` (booked by staff) or
``requested`` (by the public, until staff answer). A reservation that lapses
or a request left unanswered ends ``cancelled`` with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum


class VisitStatus(StrEnum):
    RESERVED = "reserved"
    REQUESTED = "requested"
    BOOKED = "booked"
    CHECKED_IN = "checked_in"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"

    @property
    def holds_place(self) -> bool:
        """Whether a booking in this status counts against its session's capacity."""
        return self not in (VisitStatus.CANCELLED, VisitStatus.NO_SHOW)

    @property
    def upcoming(self) -> bool:
        """Whether the visit is still to happen (and so may be cancelled or rescheduled)."""
        return self in (VisitStatus.RESERVED, VisitStatus.REQUESTED, VisitStatus.BOOKED)


_MOVES: Mapping[VisitStatus, frozenset[VisitStatus]] = {
    VisitStatus.RESERVED: frozenset(
        {VisitStatus.REQUESTED, VisitStatus.BOOKED, VisitStatus.CANCELLED}
    ),
    VisitStatus.REQUESTED: frozenset({VisitStatus.BOOKED, VisitStatus.CANCELLED}),
    VisitStatus.BOOKED: frozenset(
        {VisitStatus.CHECKED_IN, VisitStatus.CANCELLED, VisitStatus.NO_SHOW}
    ),
    VisitStatus.CHECKED_IN: frozenset({VisitStatus.COMPLETED}),
    VisitStatus.COMPLETED: frozenset(),
    VisitStatus.CANCELLED: frozenset(),
    VisitStatus.NO_SHOW: frozenset(),
}


def may_move(current: VisitStatus, to: VisitStatus) -> bool:
    return to in _MOVES[current]


class CancelReason(StrEnum):
    """Why a booking ended cancelled, beside a person's own words."""

    CANCELLED = "cancelled"  # by the visitor, the person or staff
    REFUSED = "refused"  # a request staff turned down
    AUTO_REFUSED = "auto_refused"  # a request staff left unanswered too long
    RESERVATION_LAPSED = "reservation_lapsed"
    BLOCKED = "blocked"  # the session's date or room was taken out of service
    RESCHEDULED = "rescheduled"


def reservation_expiry(now: datetime, minutes: int) -> datetime:
    return now + timedelta(minutes=minutes)


def lapsed(status: VisitStatus, expires_at: datetime | None, now: datetime) -> bool:
    """Whether a reservation's time is up (its place is free again)."""
    return status is VisitStatus.RESERVED and expires_at is not None and expires_at <= now


def refusal_due(requested_at: datetime, hours: int, now: datetime) -> bool:
    """Whether a request left unanswered since ``requested_at`` is refused at ``now``."""
    return now >= requested_at + timedelta(hours=hours)
