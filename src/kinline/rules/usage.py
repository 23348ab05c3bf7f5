"""What a person has used, as the engine reads it, and how a session adds to it.

Decisions never rescan history: calendar quotas read one counter per rule and
period, rolling quotas read the few sessions inside their window, gap limits
read when the last governed session ended. ``usage_change`` says what one
recorded session adds; the store and the in-memory ledger both apply it, so
they cannot disagree about what counts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from kinline.rules.model import Period, Rule
from kinline.rules.periods import period_key, rolling_start


@dataclass(frozen=True, slots=True)
class Tally:
    sessions: int = 0
    minutes: int = 0

    def plus(self, minutes: int) -> Tally:
        return Tally(self.sessions + 1, self.minutes + minutes)


ZERO = Tally()


@dataclass(frozen=True, slots=True)
class CounterIncrement:
    rule_id: str
    period_key: str
    minutes: int


@dataclass(frozen=True, slots=True)
class RollingEntry:
    rule_id: str
    started_at: datetime
    minutes: int


@dataclass(frozen=True, slots=True)
class GapMark:
    rule_id: str
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class UsageChange:
    counters: tuple[CounterIncrement, ...] = ()
    entries: tuple[RollingEntry, ...] = ()
    gaps: tuple[GapMark, ...] = ()


def usage_change(
    charged: Rule,
    governing: Iterable[Rule],
    started_at: datetime,
    minutes: int,
    zone: ZoneInfo,
) -> UsageChange:
    """What a completed session adds: its grant's quota, and each governing limit's."""
    counters: list[CounterIncrement] = []
    entries: list[RollingEntry] = []
    gaps: list[GapMark] = []
    for rule in (charged, *governing):
        if rule.quota is not None:
            if rule.quota.per.is_rolling:
                entries.append(RollingEntry(rule.id, started_at, minutes))
            else:
                key = period_key(rule.quota.per, started_at, zone)
                counters.append(CounterIncrement(rule.id, key, minutes))
        if rule.min_gap_minutes is not None and rule is not charged:
            gaps.append(GapMark(rule.id, started_at + timedelta(minutes=minutes)))
    return UsageChange(tuple(counters), tuple(entries), tuple(gaps))


@dataclass(frozen=True)
class UsageSnapshot:
    """One person's usage, as loaded for one decision."""

    zone: ZoneInfo
    counters: Mapping[tuple[str, str], Tally] = field(default_factory=dict)
    rolling: Mapping[str, Sequence[tuple[datetime, int]]] = field(default_factory=dict)
    gaps: Mapping[str, datetime] = field(default_factory=dict)
    # A session about to be recorded at ``at`` must fit every rolling window that
    # will hold it, not only the one ending at ``at``: with ``ahead``, a rolling
    # tally is the fullest of the windows (t - N, t] for t in [at, at + N), each
    # of sessions and of minutes. With no session after ``at`` that is the
    # window ending at ``at``, so for a ledger written in time order it changes
    # nothing; it keeps a session recorded before later ones from overfilling
    # a window that closes after it.
    ahead: bool = False

    def tally(self, rule_id: str, period: Period, at: datetime) -> Tally:
        if period.is_rolling:
            entries = self.rolling.get(rule_id, ())
            used = _window(entries, rolling_start(period, at), at.astimezone(UTC))
            if self.ahead:
                upto = at.astimezone(UTC)
                span = upto - rolling_start(period, at)
                for started, _minutes in entries:
                    if upto < started < upto + span:
                        later = _window(entries, started - span, started)
                        used = Tally(
                            max(used.sessions, later.sessions), max(used.minutes, later.minutes)
                        )
            return used
        return self.counters.get((rule_id, period_key(period, at, self.zone)), ZERO)

    def last_end(self, rule_id: str) -> datetime | None:
        return self.gaps.get(rule_id)


def _window(entries: Iterable[tuple[datetime, int]], after: datetime, upto: datetime) -> Tally:
    """The sessions and minutes of the entries started in (after, upto]."""
    sessions = minutes = 0
    for started, used in entries:
        if after < started <= upto:
            sessions += 1
            minutes += used
    return Tally(sessions, minutes)


class UsageLedger:
    """An in-memory store of usage for many people: the engine's test double and benchmark store."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._counters: dict[str, dict[tuple[str, str], Tally]] = defaultdict(dict)
        self._rolling: dict[str, dict[str, list[tuple[datetime, int]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self._gaps: dict[str, dict[str, datetime]] = defaultdict(dict)

    def apply(self, person: str, change: UsageChange) -> None:
        counters = self._counters[person]
        for increment in change.counters:
            key = (increment.rule_id, increment.period_key)
            counters[key] = counters.get(key, ZERO).plus(increment.minutes)
        for entry in change.entries:
            self._rolling[person][entry.rule_id].append(
                (entry.started_at.astimezone(UTC), entry.minutes)
            )
        gaps = self._gaps[person]
        for mark in change.gaps:
            previous = gaps.get(mark.rule_id)
            if previous is None or mark.ends_at > previous:
                gaps[mark.rule_id] = mark.ends_at

    def snapshot(self, person: str) -> UsageSnapshot:
        return UsageSnapshot(
            zone=self.zone,
            counters=self._counters[person],
            rolling=self._rolling[person],
            gaps=self._gaps[person],
        )
