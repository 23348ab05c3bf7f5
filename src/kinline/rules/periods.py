"""Time in the facility's zone: wall times, calendar periods and their keys.

A wall time that falls in a DST gap or fold is resolved as ``zoneinfo`` does
with ``fold=0``. Durations are always taken between UTC instants: Python
subtracts two datetimes that share a tzinfo as wall clocks, which is wrong
across a DST change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kinline.rules.model import Period


def wall_to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall time as an aware UTC instant (fold=0)."""
    if wall.tzinfo is not None:
        raise ValueError("expected a naive wall time")
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def local(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall time of an instant."""
    return instant.astimezone(zone).replace(tzinfo=None)


def elapsed(start: datetime, end: datetime) -> timedelta:
    """Absolute time from ``start`` to ``end``."""
    return end.astimezone(UTC) - start.astimezone(UTC)


def whole_minutes(delta: timedelta) -> int:
    """Whole minutes in a duration, rounded down."""
    return int(delta.total_seconds() // 60)


def period_key(period: Period, instant: datetime, zone: ZoneInfo) -> str:
    """The calendar period holding ``instant``: ``2024-03-04``, ``2024-W10`` or ``2024-03``."""
    wall = local(instant, zone)
    if period.kind == "day":
        return wall.date().isoformat()
    if period.kind == "week":
        year, week, _ = wall.isocalendar()
        return f"{year:04d}-W{week:02d}"
    if period.kind == "month":
        return f"{wall.year:04d}-{wall.month:02d}"
    raise ValueError(f"a {period.kind} period has no calendar key")


@dataclass(frozen=True, slots=True)
class PeriodSpan:
    """A calendar period as local dates ``[first, after)`` and UTC instants ``[start, end)``."""

    key: str
    period: Period
    first: date
    after: date
    start: datetime
    end: datetime

    def holds(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    def overlaps(self, starts_at: datetime | None, ends_at: datetime | None) -> bool:
        """Whether an interval ``[starts_at, ends_at)`` shares any moment with this period."""
        if starts_at is not None and starts_at >= self.end:
            return False
        return ends_at is None or ends_at > self.start


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def parse_period(key: str, zone: ZoneInfo) -> PeriodSpan:
    """Read ``YYYY-MM``, ``YYYY-Www`` or ``YYYY-MM-DD``; ValueError names what is wrong."""
    if match := _MONTH.fullmatch(key):
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            raise ValueError(f"{key!r}: month must be 01 to 12")
        first = date(year, month, 1)
        after = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        period = Period("month")
    elif match := _WEEK.fullmatch(key):
        try:
            first = date.fromisocalendar(int(match[1]), int(match[2]), 1)
        except ValueError as error:
            raise ValueError(f"{key!r}: no such ISO week") from error
        after = first + timedelta(days=7)
        period = Period("week")
    elif _DAY.fullmatch(key):
        try:
            first = date.fromisoformat(key)
        except ValueError as error:
            raise ValueError(f"{key!r}: no such day") from error
        after = first + timedelta(days=1)
        period = Period("day")
    else:
        raise ValueError(f"{key!r}: a period is written YYYY-MM, YYYY-Www or YYYY-MM-DD")
    return PeriodSpan(
        key=key,
        period=period,
        first=first,
        after=after,
        start=wall_to_instant(datetime.combine(first, time()), zone),
        end=wall_to_instant(datetime.combine(after, time()), zone),
    )


def span_of(period: Period, instant: datetime, zone: ZoneInfo) -> PeriodSpan:
    """The calendar period of kind ``period`` that holds ``instant``."""
    return parse_period(period_key(period, instant, zone), zone)


def rolling_start(period: Period, instant: datetime) -> datetime:
    """Sessions that started after this instant (and up to ``instant``) count."""
    return instant.astimezone(UTC) - timedelta(days=period.days)


def closing_instant(instant: datetime, closes: time, zone: ZoneInfo) -> datetime:
    """When the window closing at local ``closes`` on the instant's local day closes."""
    wall = local(instant, zone)
    return wall_to_instant(datetime.combine(wall.date(), closes), zone)
