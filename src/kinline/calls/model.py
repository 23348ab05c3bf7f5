"""A call's life as plain values: its status, what sessions add to the usage
ledger, the reservation a hold makes on it, the arithmetic of settling it, and
the state machine of a call set-up (authorize -> held -> connected ->
completed | released | expired).

Pure: no database, no I/O. The call path (``calls.path``) reads a set-up,
asks this module what a step does, and writes the answer back with the
repositories; the same functions are unit-tested here without a store.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from kinline.errors import WrongState
from kinline.rules.decide import Decision
from kinline.rules.model import Monitoring, Reason, Rule, Setting
from kinline.rules.usage import ZERO, Tally, UsageChange, usage_change


class Status(StrEnum):
    """Where a session stands; one vocabulary for every source of sessions."""

    DENIED = "denied"  # refused: a record of the attempt, never counted
    HELD = "held"  # allowed, waiting to connect; counts at its max_minutes
    CONNECTED = "connected"  # under way; still counts at its max_minutes
    COMPLETED = "completed"  # happened: counts its minutes
    RELEASED = "released"  # never connected: counts nothing
    EXPIRED = "expired"  # never connected in time: counts nothing


COUNTED = (Status.COMPLETED, Status.HELD, Status.CONNECTED)
OPEN = (Status.HELD, Status.CONNECTED)


class SettledBy(StrEnum):
    PLATFORM = "platform"
    TIMEOUT = "timeout"


# ---------------------------------------------------------------------------
# The decision a call carries


def decision_json(decision: Decision, *, dialed: str | None = None) -> dict[str, object]:
    """The decision as stored with its session (and the number dialled, if unknown);
    the limits that governed it are the session's own column."""
    stored = decision.as_dict()
    if dialed is not None:
        stored["dialed"] = dialed
    return stored


def decision_from_json(stored: Mapping[str, object], governed_by: Iterable[str] = ()) -> Decision:
    """The typed decision back from its stored form (``decision_json``)."""

    def names(key: str) -> tuple[str, ...]:
        value = stored.get(key)
        return tuple(str(item) for item in value) if isinstance(value, list) else ()

    reason, monitoring, setting = (
        stored.get("reason"),
        stored.get("monitoring"),
        stored.get("setting"),
    )
    max_minutes, charged, interpreter = (
        stored.get("max_minutes"),
        stored.get("charged_to"),
        stored.get("interpreter"),
    )
    return Decision(
        allowed=stored.get("allowed") is True,
        reason=None if reason is None else Reason(str(reason)),
        rules=names("rules"),
        charged_to=None if charged is None else str(charged),
        max_minutes=max_minutes if isinstance(max_minutes, int) else None,
        monitoring=None if monitoring is None else Monitoring(str(monitoring)),
        interpreter=None if interpreter is None else str(interpreter),
        setting=None if setting is None else Setting(str(setting)),
        conflicts=names("conflicts"),
        governed_by=tuple(governed_by),
    )


def charged_usage(
    decision: Decision,
    rules: Mapping[str, Rule],
    started_at: datetime,
    minutes: int,
    zone: ZoneInfo,
) -> UsageChange | None:
    """What a session this decision allowed adds to the usage ledger, at ``minutes``
    (its grant's quota and each governing limit's); None when it was refused."""
    if not decision.allowed or decision.charged_to is None:
        return None
    governing = [rules[rule_id] for rule_id in decision.governed_by]
    return usage_change(rules[decision.charged_to], governing, started_at, minutes, zone)


# ---------------------------------------------------------------------------
# What sessions add to the usage ledger, as one write

CounterKey = tuple[str, str, str]  # person, rule, period key
GapKey = tuple[str, str]  # person, rule


@dataclass(frozen=True, slots=True)
class EntryAdded:
    """A rolling entry to be written for one person."""

    person: str
    rule_id: str
    started_at: datetime
    minutes: int


@dataclass(frozen=True, slots=True)
class UsageAdded:
    """What one session or a whole batch adds to the usage ledger, summed so that
    it is written in one go (``calls.ledger.write_usage``) whatever its size:
    each counter's sessions and minutes summed per (person, rule, period key),
    every new rolling entry in the order the sessions came, and per (person,
    gap rule) the latest end, the one the mark is raised to."""

    counters: Mapping[CounterKey, Tally] = field(default_factory=dict)
    entries: tuple[EntryAdded, ...] = ()
    gaps: Mapping[GapKey, datetime] = field(default_factory=dict)


def usage_added(changes: Iterable[tuple[str, UsageChange]]) -> UsageAdded:
    """The sum of what each (person, change) adds: one call set-up's single change,
    or every change of an import's batch."""
    counters: dict[CounterKey, Tally] = {}
    entries: list[EntryAdded] = []
    gaps: dict[GapKey, datetime] = {}
    for person, change in changes:
        for increment in change.counters:
            key = (person, increment.rule_id, increment.period_key)
            counters[key] = counters.get(key, ZERO).plus(increment.minutes)
        for entry in change.entries:
            started = entry.started_at.astimezone(UTC)
            entries.append(EntryAdded(person, entry.rule_id, started, entry.minutes))
        for mark in change.gaps:
            gap = (person, mark.rule_id)
            latest = gaps.get(gap)
            if latest is None or mark.ends_at > latest:
                gaps[gap] = mark.ends_at.astimezone(UTC)
    return UsageAdded(counters, tuple(entries), gaps)


# ---------------------------------------------------------------------------
# The reservation a hold makes, and settling it


@dataclass(frozen=True, slots=True)
class GapHeld:
    """A gap mark a hold moved: what it was before, and what the hold set it to."""

    rule_id: str
    prior: datetime | None
    set_to: datetime | None


@dataclass(frozen=True, slots=True)
class Reservation:
    """Where a held session sits in the usage ledger: the counters it was added to,
    the rolling entries it wrote, the gap marks it moved."""

    counters: tuple[tuple[str, str], ...] = ()
    entries: tuple[int, ...] = ()
    gaps: tuple[GapHeld, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {
            "counters": [[rule_id, key] for rule_id, key in self.counters],
            "entries": list(self.entries),
            "gaps": [[gap.rule_id, _iso(gap.prior), _iso(gap.set_to)] for gap in self.gaps],
        }

    @classmethod
    def from_json(cls, stored: Mapping[str, object] | None) -> Reservation:
        if not stored:
            return cls()
        counters = tuple((str(item[0]), str(item[1])) for item in _items(stored.get("counters")))
        entries = tuple(int(str(value)) for value in _list(stored.get("entries")))
        gaps = tuple(
            GapHeld(str(item[0]), _instant(item[1]), _instant(item[2]))
            for item in _items(stored.get("gaps"))
        )
        return cls(counters, entries, gaps)


def reservation(
    change: UsageChange, gap_marks: Mapping[str, datetime], entry_ids: Sequence[int]
) -> Reservation:
    """Where a hold's ``change`` sits in the ledger once written: the counters it
    was added to, its rolling entries (``entry_ids``, as written, in the order of
    ``change.entries``) and each gap mark it raised, from the mark as it stood
    before (``gap_marks`` by rule; absent: there was none) to the later end."""
    if len(entry_ids) != len(change.entries):
        raise ValueError(f"{len(change.entries)} rolling entries, {len(entry_ids)} ids")
    gaps = []
    for mark in change.gaps:
        stood = gap_marks.get(mark.rule_id)
        prior = None if stood is None else stood.astimezone(UTC)
        set_to = mark.ends_at.astimezone(UTC) if prior is None else max(mark.ends_at, prior)
        gaps.append(GapHeld(mark.rule_id, prior, set_to.astimezone(UTC)))
    return Reservation(
        counters=tuple((c.rule_id, c.period_key) for c in change.counters),
        entries=tuple(entry_ids),
        gaps=tuple(gaps),
    )


@dataclass(frozen=True, slots=True)
class GapMove:
    """Move a gap mark from ``expected`` to ``wanted`` (None: remove it), but only
    while it is still ``expected``: a later session's mark stays."""

    rule_id: str
    expected: datetime | None
    wanted: datetime | None


@dataclass(frozen=True, slots=True)
class Settlement:
    """What settling a hold changes in the usage ledger."""

    counters: tuple[tuple[str, str], ...]
    sessions_back: int  # taken off each counter's session count
    minutes_back: int  # taken off each counter's minutes
    entries: tuple[int, ...]
    entry_minutes: int | None  # the entries' minutes from now on; None: delete them
    gaps: tuple[GapMove, ...]
    reservation: Reservation  # the reservation as it stands afterwards


def settlement(
    reservation: Reservation, *, started_at: datetime, held_minutes: int, minutes: int | None
) -> Settlement:
    """Settle a hold of ``held_minutes`` to ``minutes`` used, or take it back
    entirely when ``minutes`` is None (it never happened)."""
    taken_back = minutes is None
    used = 0 if minutes is None else minutes
    own_end = started_at + timedelta(minutes=used)
    moves: list[GapMove] = []
    settled: list[GapHeld] = []
    for gap in reservation.gaps:
        wanted = gap.prior if taken_back else max(own_end, gap.prior or own_end)
        moves.append(GapMove(gap.rule_id, gap.set_to, wanted))
        settled.append(GapHeld(gap.rule_id, gap.prior, wanted))
    after = Reservation(
        counters=reservation.counters,
        entries=() if taken_back else reservation.entries,
        gaps=() if taken_back else tuple(settled),
    )
    return Settlement(
        counters=reservation.counters,
        sessions_back=1 if taken_back else 0,
        minutes_back=held_minutes - used,
        entries=reservation.entries,
        entry_minutes=None if taken_back else used,
        gaps=tuple(moves),
        reservation=after,
    )


# ---------------------------------------------------------------------------
# The state machine of a call set-up


@dataclass(frozen=True, slots=True)
class CallState:
    """What the call path keeps of a set-up between its steps."""

    hold_id: str
    status: Status
    started_at: datetime
    minutes: int  # held while open, charged once settled
    max_minutes: int
    expires_at: datetime | None
    connected_at: datetime | None = None
    ended_at: datetime | None = None
    settled_by: SettledBy | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """A step's outcome: the state after it, the audit tag of what changed (None:
    nothing did, a repeat), how the hold settles (``settles`` with ``settle_to``
    minutes, None: taken back) and whether the hold had lapsed (commit, then
    answer that it expired)."""

    state: CallState
    tag: str | None = None
    settles: bool = False
    settle_to: int | None = None
    lapsed: bool = False

    @property
    def replayed(self) -> bool:
        return self.tag is None


TAGS = {
    Status.CONNECTED: "calls:call:connected",
    Status.COMPLETED: "calls:call:ended",
    Status.RELEASED: "calls:call:released",
    Status.EXPIRED: "calls:call:expired",
}


def hold(hold_id: str, started_at: datetime, max_minutes: int, timeout: timedelta) -> CallState:
    """An allowed set-up: its allowance is held at ``max_minutes`` until it connects."""
    return CallState(
        hold_id=hold_id,
        status=Status.HELD,
        started_at=started_at,
        minutes=max_minutes,
        max_minutes=max_minutes,
        expires_at=started_at + timeout,
    )


def lapsed(state: CallState, at: datetime) -> bool:
    """Its time is up: a hold that never connected, or a call that never ended."""
    return state.status in OPEN and state.expires_at is not None and state.expires_at <= at


def connect(state: CallState, at: datetime, grace: timedelta) -> Step:
    """The call connected: it may now run until its last allowed minute, and is
    settled at its maximum ``grace`` after that unless its end is reported."""
    if state.status == Status.CONNECTED:
        return Step(state)
    if state.status == Status.HELD and lapsed(state, at):
        return _settled(state, None, Status.EXPIRED, SettledBy.TIMEOUT, at, lapsed=True)
    _require(state, Status.HELD, "connect")
    connected = replace(
        state,
        status=Status.CONNECTED,
        connected_at=at,
        expires_at=at + timedelta(minutes=state.max_minutes) + grace,
    )
    return Step(connected, TAGS[Status.CONNECTED])


def charged_minutes(state: CallState, seconds: int) -> int:
    """Whole minutes, rounded up, never above the call's maximum."""
    return min(math.ceil(seconds / 60), state.max_minutes)


def end(state: CallState, seconds: int, at: datetime) -> Step:
    """The call ended after ``seconds``. An end without a connect connects and ends;
    an end after kinline settled the call at its maximum corrects the charge."""
    minutes = charged_minutes(state, seconds)
    if state.status == Status.COMPLETED and state.settled_by == SettledBy.PLATFORM:
        if state.minutes == minutes:
            return Step(state)
        raise WrongState(
            f"call {state.hold_id!r} already ended with {state.minutes} minutes charged",
            field="hold_id",
        )
    if state.status == Status.COMPLETED and state.settled_by == SettledBy.TIMEOUT:
        return _settled(state, minutes, Status.COMPLETED, SettledBy.PLATFORM, at)
    if state.status == Status.HELD and lapsed(state, at):
        return _settled(state, None, Status.EXPIRED, SettledBy.TIMEOUT, at, lapsed=True)
    if state.status == Status.HELD:
        state = replace(state, connected_at=at - timedelta(seconds=seconds))
    else:
        _require(state, Status.CONNECTED, "end")
    return _settled(state, minutes, Status.COMPLETED, SettledBy.PLATFORM, at)


def release(state: CallState, at: datetime) -> Step:
    """The call never connected: its hold is taken back and nothing is charged."""
    if state.status in (Status.RELEASED, Status.EXPIRED):
        return Step(state)
    _require(state, Status.HELD, "release")
    return _settled(state, None, Status.RELEASED, SettledBy.PLATFORM, at)


def sweep(state: CallState, at: datetime) -> Step:
    """Settle what its time has run out on: a hold that never connected expires,
    a connected call whose end never came is charged its maximum."""
    if not lapsed(state, at):
        return Step(state)
    if state.status == Status.HELD:
        return _settled(state, None, Status.EXPIRED, SettledBy.TIMEOUT, at)
    return _settled(state, state.max_minutes, Status.COMPLETED, SettledBy.TIMEOUT, at)


def _settled(
    state: CallState,
    minutes: int | None,
    status: Status,
    by: SettledBy,
    at: datetime,
    *,
    lapsed: bool = False,
) -> Step:
    after = replace(
        state,
        status=status,
        minutes=0 if minutes is None else minutes,
        settled_by=by,
        ended_at=at,
        expires_at=None,
    )
    return Step(after, TAGS[status], settles=True, settle_to=minutes, lapsed=lapsed)


def _require(state: CallState, wanted: Status, action: str) -> None:
    if state.status != wanted:
        raise WrongState(
            f"cannot {action} call {state.hold_id!r}: it is {state.status}", field="hold_id"
        )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _instant(value: object) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def _items(value: object) -> list[list[object]]:
    return [item for item in _list(value) if isinstance(item, list)]
