"""Court-order compliance: what an order promised in a period against what was delivered."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from kinline.rules.model import Contact, Kind, Rule
from kinline.rules.periods import PeriodSpan, local, parse_period, span_of


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


# Longest range a report spans, in periods (a daily order over three years).
MOST_PERIODS = 1200


class RangeError(ComplianceError):
    """A report's range of months is not one; ``field`` is ``from`` or ``to``.
    The messages are fixed words, so a page can translate them."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def periods_between(order: Rule, first: str, last: str, zone: ZoneInfo) -> list[PeriodSpan]:
    """The periods of ``order``'s quota (days, weeks or months) that share a
    moment with the months ``first`` to ``last`` (``YYYY-MM``, both included), in
    order. ``RangeError`` when either is not a month, ``last`` comes before
    ``first``, or the range holds more than ``MOST_PERIODS`` periods;
    ``ComplianceError`` for an order without a count per calendar period."""
    if order.quota is None or order.quota.count is None:
        raise ComplianceError(f"{order.id} has no count quota to report against")
    per = order.quota.per
    if per.is_rolling:
        raise ComplianceError(f"{order.id} counts over a rolling window, not calendar periods")
    opening, closing = _month(first, "from", zone), _month(last, "to", zone)
    if closing.start < opening.start:
        raise RangeError("the last month comes before the first", "to")
    spans: list[PeriodSpan] = []
    instant = opening.start
    while instant < closing.end:
        span = span_of(per, instant, zone)
        spans.append(span)
        if len(spans) > MOST_PERIODS:
            raise RangeError("the range is too long: choose fewer months", "from")
        instant = span.end
    return spans


def _month(key: str, field: str, zone: ZoneInfo) -> PeriodSpan:
    try:
        span = parse_period(key, zone)
    except ValueError:
        span = None
    if span is None or span.period.kind != "month":
        raise RangeError("write a month as a year and a month, for example 2024-03", field)
    return span


def days_in_force(rule: Rule, span: PeriodSpan, zone: ZoneInfo) -> tuple[date, date] | None:
    """The first and last local dates of ``span`` on which ``rule`` was in force
    at some moment, or None when it never was."""
    if not span.overlaps(rule.starts_at, rule.ends_at):
        return None
    begin = span.start if rule.starts_at is None else max(rule.starts_at, span.start)
    finish = span.end if rule.ends_at is None else min(rule.ends_at, span.end)
    last = local(finish - timedelta(microseconds=1), zone).date()
    return local(begin, zone).date(), last
