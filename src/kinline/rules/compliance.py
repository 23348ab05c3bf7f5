"""Court-order compliance: what an order promised in a period against what was delivered."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from kinline.rules.model import Contact, Kind, Rule
from kinline.rules.periods import PeriodSpan, parse_period


class ComplianceError(ValueError):
    """The order or the period cannot be reported on; the message says why."""


@dataclass(frozen=True, slots=True)
class DeliveredSession:
    person: str
    contact: Contact
    channel: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class Compliance:
    order: str
    period: str
    entitled: int
    delivered: int
    shortfall: int
    start: datetime
    end: datetime


def order_period(order: Rule, period: str, zone: ZoneInfo) -> PeriodSpan:
    """Check that ``order`` is a court-order grant with a count quota and ``period`` is one
    of its periods; return the period's span."""
    if order.kind is not Kind.GRANT or order.authority != "court_order":
        raise ComplianceError(f"{order.id} is not a court-order grant")
    if order.quota is None or order.quota.count is None:
        raise ComplianceError(f"{order.id} has no count quota to report against")
    try:
        span = parse_period(period, zone)
    except ValueError as error:
        raise ComplianceError(str(error)) from None
    if span.period != order.quota.per:
        raise ComplianceError(
            f"{order.id} counts per {order.quota.per.kind}; {period!r} is a {span.period.kind}"
        )
    return span


def compliance(order: Rule, span: PeriodSpan, sessions: Iterable[DeliveredSession]) -> Compliance:
    """``sessions``: completed sessions started in the span (any grant charged)."""
    assert order.quota is not None and order.quota.count is not None
    entitled = order.quota.count if span.overlaps(order.starts_at, order.ends_at) else 0
    delivered = sum(
        1
        for session in sessions
        if session.channel == order.channel
        and order.concerns(session.person)
        and session.contact.person == session.person
        and order.contacts.matches(session.contact)
        and span.holds(session.started_at)
    )
    return Compliance(
        order=order.id,
        period=span.key,
        entitled=entitled,
        delivered=delivered,
        shortfall=max(0, entitled - delivered),
        start=span.start,
        end=span.end,
    )
