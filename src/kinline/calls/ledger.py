"""The usage ledger: the counters, rolling entries and gap marks decisions read,
and the one place they are written, per call set-up and in bulk."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Insert,
    Table,
    Update,
    bindparam,
    delete,
    insert,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from kinline.calls.model import COUNTED, Reservation, Settlement, UsageAdded
from kinline.db.bulk import among, write_rows
from kinline.db.engine import core
from kinline.db.tables import GapMarkRow, SessionRow, UsageCounterRow, UsageEntryRow
from kinline.rules.model import DAY, MONTH, WEEK, Rule
from kinline.rules.periods import period_key
from kinline.rules.usage import Tally, UsageSnapshot

USAGE_ENTRIES = cast(Table, UsageEntryRow.__table__)
COUNTERS = cast(Table, UsageCounterRow.__table__)
GAP_MARKS = cast(Table, GapMarkRow.__table__)
COUNTER_KEY = ("facility_id", "person_id", "rule_id", "period_key")
GAP_KEY = ("facility_id", "person_id", "rule_id")
# Statements every call set-up runs, built once.
_READ_COUNTERS = select(
    COUNTERS.c.rule_id, COUNTERS.c.period_key, COUNTERS.c.sessions, COUNTERS.c.minutes
).where(
    COUNTERS.c.facility_id == bindparam("facility_id"),
    COUNTERS.c.person_id == bindparam("person_id"),
    COUNTERS.c.rule_id.in_(bindparam("rule_ids", expanding=True)),
    COUNTERS.c.period_key.in_(bindparam("keys", expanding=True)),
)
# Fewer entries than this are inserted by one statement; COPY takes two round trips.
COPY_ENTRIES_FROM = 100
_INSERT_ENTRIES_RETURNING = insert(USAGE_ENTRIES).returning(
    USAGE_ENTRIES.c.id, sort_by_parameter_order=True
)
_SETTLE_COUNTER = (
    update(UsageCounterRow)
    .where(
        UsageCounterRow.facility_id == bindparam("c_facility_id"),
        UsageCounterRow.person_id == bindparam("c_person_id"),
        UsageCounterRow.rule_id == bindparam("c_rule_id"),
        UsageCounterRow.period_key == bindparam("c_period_key"),
    )
    .values(
        sessions=UsageCounterRow.sessions - bindparam("c_sessions"),
        minutes=UsageCounterRow.minutes - bindparam("c_minutes"),
    )
)


def load_usage(
    session: Session,
    facility_id: str,
    person_id: str,
    rules: Iterable[Rule],
    at: datetime,
    zone: ZoneInfo,
    *,
    recording: bool = False,
) -> UsageSnapshot:
    """The counters, rolling entries and gap marks that ``rules`` can read at ``at``.

    A question about ``at`` (``recording`` False) sees what had started by then,
    as SPEC 4 reads it. A session about to be recorded at ``at`` (a hold, a
    scenario's call, an import) must also fit every later window that will
    hold it, so it sees the ledger whole: rolling entries up to a window after
    ``at`` (the snapshot then counts the fullest window that holds ``at``) and
    each gap mark as it stands, the end of the latest governed session.
    """
    wanted = [rule for rule in rules if rule.quota is not None or rule.min_gap_minutes is not None]
    calendar_ids = [r.id for r in wanted if r.quota is not None and not r.quota.per.is_rolling]
    rolling = [r for r in wanted if r.quota is not None and r.quota.per.is_rolling]
    gap_ids = [r.id for r in wanted if r.min_gap_minutes is not None]
    counters: dict[tuple[str, str], Tally] = {}
    if calendar_ids:
        keys = {period_key(period, at, zone) for period in (DAY, WEEK, MONTH)}
        params = {
            "facility_id": facility_id,
            "person_id": person_id,
            "rule_ids": calendar_ids,
            "keys": sorted(keys),
        }
        for rule_id, key, sessions, minutes in core(session).execute(_READ_COUNTERS, params):
            counters[(rule_id, key)] = Tally(sessions, minutes)
    entries: dict[str, list[tuple[datetime, int]]] = {}
    if rolling:
        longest = max(rule.quota.per.days for rule in rolling if rule.quota is not None)
        for rule_id, started_at, minutes in session.execute(
            select(UsageEntryRow.rule_id, UsageEntryRow.started_at, UsageEntryRow.minutes).where(
                UsageEntryRow.facility_id == facility_id,
                UsageEntryRow.person_id == person_id,
                UsageEntryRow.rule_id.in_([rule.id for rule in rolling]),
                UsageEntryRow.started_at > at - timedelta(days=longest),
                UsageEntryRow.started_at < at + timedelta(days=longest)
                if recording
                else UsageEntryRow.started_at <= at,
            )
        ):
            entries.setdefault(rule_id, []).append((started_at.astimezone(UTC), minutes))
    gaps: dict[str, datetime] = {}
    if gap_ids:
        for rule_id, last_end in session.execute(
            select(GapMarkRow.rule_id, GapMarkRow.last_end).where(
                GapMarkRow.facility_id == facility_id,
                GapMarkRow.person_id == person_id,
                GapMarkRow.rule_id.in_(gap_ids),
            )
        ):
            gaps[rule_id] = last_end
        later = [rule_id for rule_id, last_end in gaps.items() if last_end > at]
        if later and not recording:
            # A session that started after ``at`` moved the mark: asked about a
            # past moment, measure from the last governed session that had
            # started by then, as SPEC 3.1 says, from the session log.
            for rule_id in later:
                del gaps[rule_id]
            gaps.update(_gap_ends_at(session, facility_id, person_id, later, at))
    return UsageSnapshot(zone=zone, counters=counters, rolling=entries, gaps=gaps, ahead=recording)


OVERLAP = timedelta(days=2)


def _gap_ends_at(
    session: Session, facility_id: str, person_id: str, rule_ids: list[str], at: datetime
) -> dict[str, datetime]:
    """When the last session each gap limit governed, of those started by ``at``,
    ended; read from the sessions themselves (the slow path, for past moments)."""
    ends: dict[str, datetime] = {}
    wanted = set(rule_ids)
    done: set[str] = set()
    for started_at, minutes, governed_by in session.execute(
        select(SessionRow.started_at, SessionRow.minutes, SessionRow.governed_by)
        .where(
            SessionRow.facility_id == facility_id,
            SessionRow.person_id == person_id,
            SessionRow.status.in_(COUNTED),
            SessionRow.started_at <= at,
        )
        .order_by(SessionRow.started_at.desc(), SessionRow.id.desc())
    ):
        # The mark is the latest end, as ``write_usage`` keeps it; an earlier start
        # can end later only while sessions overlap, so two days back suffices.
        for rule_id, end in ends.items():
            if started_at < end - OVERLAP:
                done.add(rule_id)
        wanted.difference_update(done)
        if not wanted:
            break
        for rule_id in wanted.intersection(governed_by or ()):
            end = started_at + timedelta(minutes=minutes)
            ends[rule_id] = max(end, ends.get(rule_id, end))
    return ends


@functools.cache
def settling_pg(counters: int) -> tuple[Update, ...]:
    """``settle_usage``'s counter updates for ``counters`` counters, with
    parameters ``c<i>_<name>`` (``counter_params`` of ``settled_counters``),
    built once per number of counters: to run as CTEs of another statement
    (PostgreSQL)."""
    return tuple(
        update(UsageCounterRow)
        .where(
            UsageCounterRow.facility_id == bindparam(f"c{i}_facility_id"),
            UsageCounterRow.person_id == bindparam(f"c{i}_person_id"),
            UsageCounterRow.rule_id == bindparam(f"c{i}_rule_id"),
            UsageCounterRow.period_key == bindparam(f"c{i}_period_key"),
        )
        .values(
            sessions=UsageCounterRow.sessions - bindparam(f"c{i}_sessions"),
            minutes=UsageCounterRow.minutes - bindparam(f"c{i}_minutes"),
        )
        for i in range(counters)
    )


def settled_counters(
    facility_id: str, person_id: str, settled: Settlement
) -> list[dict[str, object]]:
    """What ``settled`` takes back from each counter it touches."""
    return [
        {
            "facility_id": facility_id,
            "person_id": person_id,
            "rule_id": rule_id,
            "period_key": key,
            "sessions": settled.sessions_back,
            "minutes": settled.minutes_back,
        }
        for rule_id, key in settled.counters
    ]


def settle_usage(
    session: Session,
    facility_id: str,
    person_id: str,
    settled: Settlement,
    *,
    counters: bool = True,
) -> Reservation:
    """Apply a hold's settlement (``calls.model.settlement``) to the ledger; the
    reservation as it now stands. Without ``counters`` the counters are left to
    the caller, in the same transaction (``settling_pg``)."""
    connection = core(session)
    for values in settled_counters(facility_id, person_id, settled) if counters else ():
        connection.execute(_SETTLE_COUNTER, {f"c_{name}": value for name, value in values.items()})
    if settled.entries:
        mine = (UsageEntryRow.facility_id == facility_id) & UsageEntryRow.id.in_(settled.entries)
        if settled.entry_minutes is None:
            session.execute(delete(UsageEntryRow).where(mine))
        else:
            session.execute(update(UsageEntryRow).where(mine).values(minutes=settled.entry_minutes))
    for move in settled.gaps:
        mark_row = session.get(GapMarkRow, (facility_id, person_id, move.rule_id))
        if mark_row is not None and _utc(mark_row.last_end) == move.expected:
            if move.wanted is None:
                session.delete(mark_row)
            else:
                mark_row.last_end = move.wanted
    session.flush()
    return settled.reservation


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


@dataclass
class StoredUsage:
    counters: list[tuple[str, str, str, Tally]] = field(default_factory=list)
    entries: list[tuple[str, str, datetime, int]] = field(default_factory=list)
    gaps: list[tuple[str, str, datetime]] = field(default_factory=list)


def stored_usage(
    session: Session,
    facility_id: str,
    person_ids: Iterable[str],
    *,
    period_keys: Iterable[str],
    rolling_since: datetime | None,
) -> StoredUsage:
    """The counters of ``period_keys``, the rolling entries started after
    ``rolling_since`` (none if None) and every gap mark of ``person_ids``."""
    usage = StoredUsage()
    people = sorted(person_ids)
    keys = sorted(period_keys)
    if keys:
        for person_id, rule_id, period_key, sessions, minutes in session.execute(
            select(
                UsageCounterRow.person_id,
                UsageCounterRow.rule_id,
                UsageCounterRow.period_key,
                UsageCounterRow.sessions,
                UsageCounterRow.minutes,
            ).where(
                UsageCounterRow.facility_id == facility_id,
                among(session, UsageCounterRow.person_id, people),
                UsageCounterRow.period_key.in_(keys),
            )
        ).all():
            usage.counters.append((person_id, rule_id, period_key, Tally(sessions, minutes)))
    if rolling_since is not None:
        for person_id, rule_id, started_at, minutes in session.execute(
            select(
                UsageEntryRow.person_id,
                UsageEntryRow.rule_id,
                UsageEntryRow.started_at,
                UsageEntryRow.minutes,
            ).where(
                UsageEntryRow.facility_id == facility_id,
                among(session, UsageEntryRow.person_id, people),
                UsageEntryRow.started_at > rolling_since,
            )
        ).all():
            usage.entries.append((person_id, rule_id, started_at, minutes))
    for person_id, rule_id, last_end in session.execute(
        select(GapMarkRow.person_id, GapMarkRow.rule_id, GapMarkRow.last_end).where(
            GapMarkRow.facility_id == facility_id,
            among(session, GapMarkRow.person_id, people),
        )
    ).all():
        usage.gaps.append((person_id, rule_id, last_end))
    return usage


def counter_rows(facility_id: str, added: UsageAdded) -> list[dict[str, object]]:
    """The counter rows ``write_usage`` adds to the stored ones, in key order."""
    return [
        {
            "facility_id": facility_id,
            "person_id": person_id,
            "rule_id": rule_id,
            "period_key": key,
            "sessions": tally.sessions,
            "minutes": tally.minutes,
        }
        for (person_id, rule_id, key), tally in sorted(added.counters.items())
    ]


_COUNTER_COLUMNS = ("facility_id", "person_id", "rule_id", "period_key", "sessions", "minutes")


@functools.cache
def counting_pg(rows: int) -> Insert:
    """PostgreSQL's upsert of ``rows`` counter rows (``counter_rows``), adding to
    the stored ones as ``write_usage`` does, with parameters ``c<i>_<column>``:
    built once per number of rows, to run as a CTE of another statement.

    The rows come from a SELECT of the parameters (a UNION ALL of one per
    row), not a multi-row VALUES: SQLAlchemy keeps no compiled form of a
    statement with a multi-row VALUES (it has no cache key), and compiling
    this one for every set-up was an eighth of the call path's CPU."""
    one_per_row = [
        select(
            *(
                bindparam(f"c{i}_{name}", type_=COUNTERS.c[name].type).label(name)
                for name in _COUNTER_COLUMNS
            )
        )
        for i in range(rows)
    ]
    source = one_per_row[0] if rows == 1 else union_all(*one_per_row)
    upsert = postgresql.insert(COUNTERS).from_select(list(_COUNTER_COLUMNS), source)
    return upsert.on_conflict_do_update(
        index_elements=list(COUNTER_KEY),
        set_={
            "sessions": COUNTERS.c.sessions + upsert.excluded.sessions,
            "minutes": COUNTERS.c.minutes + upsert.excluded.minutes,
        },
    )


def counter_params(rows: list[dict[str, object]]) -> dict[str, object]:
    """Counter rows (``counter_rows``, ``settled_counters``) as the parameters of
    ``counting_pg`` or ``settling_pg``."""
    return {f"c{i}_{name}": value for i, row in enumerate(rows) for name, value in row.items()}


def write_usage(
    session: Session,
    facility_id: str,
    added: UsageAdded,
    *,
    entry_ids: bool = False,
    counters: bool = True,
) -> tuple[int, ...]:
    """Add ``added`` to the ledger: the one code that adds to it, for a call set-up's
    single session and an import's whole batch alike.

    Counters are upserted with the sums, rolling entries inserted, gap marks
    raised to the later end; one statement per table however many rows
    (``db.bulk.write_rows``), each safe beside concurrent writers since the
    store itself adds or keeps the later value. Rolling entries go by one
    ``INSERT ... RETURNING``, and with ``entry_ids`` (a hold, which later
    settles its own entries) their ids come back in the order of
    ``added.entries``; without, a batch of ``COPY_ENTRIES_FROM`` or more goes
    by ``COPY`` on PostgreSQL (an import's), and nothing comes back.
    Without ``counters`` the counters are left to the caller, who writes
    ``counter_rows`` in the same transaction (a hold, on PostgreSQL, with its
    set-up's own INSERT: ``counting_pg``).
    """
    if counters:
        rows = counter_rows(facility_id, added)
        write_rows(session, COUNTERS, rows, conflict=COUNTER_KEY, update=("sessions", "minutes"))
    entries = [
        {
            "facility_id": facility_id,
            "person_id": entry.person,
            "rule_id": entry.rule_id,
            "started_at": entry.started_at,
            "minutes": entry.minutes,
        }
        for entry in added.entries
    ]
    ids: tuple[int, ...] = ()
    if len(entries) >= COPY_ENTRIES_FROM and not entry_ids:
        write_rows(session, USAGE_ENTRIES, entries)
    elif entries:
        ids = tuple(session.execute(_INSERT_ENTRIES_RETURNING, entries).scalars())
    marks = [
        {"facility_id": facility_id, "person_id": person_id, "rule_id": rule_id, "last_end": end}
        for (person_id, rule_id), end in sorted(added.gaps.items())
    ]
    write_rows(session, GAP_MARKS, marks, conflict=GAP_KEY, latest=("last_end",))
    return ids if entry_ids else ()
