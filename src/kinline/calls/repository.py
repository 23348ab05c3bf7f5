"""Every query about sessions and the usage counters that decisions read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Executable, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kinline.db.engine import core
from kinline.db.tables import GapMarkRow, SessionRow, UsageCounterRow, UsageEntryRow
from kinline.rules.model import DAY, MONTH, WEEK, Rule
from kinline.rules.periods import period_key
from kinline.rules.usage import Tally, UsageChange, UsageSnapshot

_COUNTERS = UsageCounterRow.__table__
# Statements every call set-up runs, built once.
_READ_COUNTERS = select(
    _COUNTERS.c.rule_id, _COUNTERS.c.period_key, _COUNTERS.c.sessions, _COUNTERS.c.minutes
).where(
    _COUNTERS.c.facility_id == bindparam("facility_id"),
    _COUNTERS.c.person_id == bindparam("person_id"),
    _COUNTERS.c.rule_id.in_(bindparam("rule_ids", expanding=True)),
    _COUNTERS.c.period_key.in_(bindparam("keys", expanding=True)),
)
_COUNTER_KEY = ["facility_id", "person_id", "rule_id", "period_key"]


def _upsert_counter(dialect: str) -> Executable:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(UsageCounterRow).values(
        facility_id=bindparam("c_facility_id"),
        person_id=bindparam("c_person_id"),
        rule_id=bindparam("c_rule_id"),
        period_key=bindparam("c_period_key"),
        sessions=1,
        minutes=bindparam("c_minutes"),
    )
    return statement.on_conflict_do_update(
        index_elements=_COUNTER_KEY,
        set_={
            "sessions": UsageCounterRow.sessions + 1,
            "minutes": UsageCounterRow.minutes + bindparam("c_minutes"),
        },
    )


_UPSERT_COUNTER = {dialect: _upsert_counter(dialect) for dialect in ("postgresql", "sqlite")}
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
) -> UsageSnapshot:
    """The counters, rolling entries and gap marks that ``rules`` can read at ``at``."""
    wanted = [rule for rule in rules if rule.quota is not None or rule.min_gap_minutes]
    calendar_ids = [r.id for r in wanted if r.quota is not None and not r.quota.per.is_rolling]
    rolling = [r for r in wanted if r.quota is not None and r.quota.per.is_rolling]
    gap_ids = [r.id for r in wanted if r.min_gap_minutes]
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
                UsageEntryRow.started_at <= at,
            )
        ):
            entries.setdefault(rule_id, []).append((started_at.astimezone(UTC), minutes))
    gaps: dict[str, datetime] = {}
    if gap_ids:
        for mark in session.scalars(
            select(GapMarkRow).where(
                GapMarkRow.facility_id == facility_id,
                GapMarkRow.person_id == person_id,
                GapMarkRow.rule_id.in_(gap_ids),
            )
        ):
            gaps[mark.rule_id] = mark.last_end
        later = [rule_id for rule_id, last_end in gaps.items() if last_end > at]
        if later:
            # A session that started after ``at`` moved the mark: asked about a
            # past moment, measure from the last governed session that had
            # started by then, as SPEC 3.1 says, from the session log.
            for rule_id in later:
                del gaps[rule_id]
            gaps.update(_gap_ends_at(session, facility_id, person_id, later, at))
    return UsageSnapshot(zone=zone, counters=counters, rolling=entries, gaps=gaps)


COUNTED = ("completed", "held", "connected")
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
        # The mark is the latest end, as ``apply_usage`` keeps it; an earlier start
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


def apply_usage(
    session: Session, facility_id: str, person_id: str, change: UsageChange
) -> dict[str, object]:
    """Add one session to the counters: an upsert each, safe under concurrent writers.

    Returns where it was added (counter keys, rolling entry ids, and each gap mark
    before and after), so a held session can later be settled by ``settle_usage``.
    """
    connection = core(session)
    upsert = _UPSERT_COUNTER[connection.dialect.name]
    counters: list[list[str]] = []
    for increment in change.counters:
        params = {
            "c_facility_id": facility_id,
            "c_person_id": person_id,
            "c_rule_id": increment.rule_id,
            "c_period_key": increment.period_key,
            "c_minutes": increment.minutes,
        }
        connection.execute(upsert, params)
        counters.append([increment.rule_id, increment.period_key])
    entry_rows = [
        UsageEntryRow(
            facility_id=facility_id,
            person_id=person_id,
            rule_id=entry.rule_id,
            started_at=entry.started_at,
            minutes=entry.minutes,
        )
        for entry in change.entries
    ]
    session.add_all(entry_rows)
    gaps: list[list[str | None]] = []
    for mark in change.gaps:
        mark_row = session.get(GapMarkRow, (facility_id, person_id, mark.rule_id))
        prior = None if mark_row is None else mark_row.last_end
        if mark_row is None:
            session.add(
                GapMarkRow(
                    facility_id=facility_id,
                    person_id=person_id,
                    rule_id=mark.rule_id,
                    last_end=mark.ends_at,
                )
            )
        elif mark.ends_at > mark_row.last_end:
            mark_row.last_end = mark.ends_at
        gaps.append([mark.rule_id, _iso(prior), _iso(max(mark.ends_at, prior or mark.ends_at))])
    session.flush()
    return {"counters": counters, "entries": [row.id for row in entry_rows], "gaps": gaps}


def settle_usage(
    session: Session,
    facility_id: str,
    person_id: str,
    reserved: Mapping[str, object],
    *,
    started_at: datetime,
    held_minutes: int,
    minutes: int | None,
) -> dict[str, object]:
    """Settle a held session's usage from ``held_minutes`` to ``minutes``, or take it
    back entirely when ``minutes`` is None (released: it never happened).

    A gap mark is moved back only while it is still the one this session set; a
    later session's mark stays. Returns the reservation as it now stands.
    """
    counters = _pairs(reserved.get("counters"))
    entry_ids = [int(str(value)) for value in _list(reserved.get("entries"))]
    gaps = [
        [None if v is None else str(v) for v in _list(item)] for item in _list(reserved.get("gaps"))
    ]
    taken_back = minutes is None
    used = 0 if minutes is None else minutes
    connection = core(session)
    for rule_id, key in counters:
        params = {
            "c_facility_id": facility_id,
            "c_person_id": person_id,
            "c_rule_id": rule_id,
            "c_period_key": key,
            "c_sessions": 1 if taken_back else 0,
            "c_minutes": held_minutes - used,
        }
        connection.execute(_SETTLE_COUNTER, params)
    if entry_ids:
        mine = (UsageEntryRow.facility_id == facility_id) & UsageEntryRow.id.in_(entry_ids)
        if taken_back:
            session.execute(delete(UsageEntryRow).where(mine))
        else:
            session.execute(update(UsageEntryRow).where(mine).values(minutes=used))
    settled_gaps: list[list[str | None]] = []
    for gap_rule, prior_text, set_text in gaps:
        assert gap_rule is not None and set_text is not None
        prior = None if prior_text is None else datetime.fromisoformat(prior_text)
        own_end = started_at + timedelta(minutes=used)
        wanted = prior if taken_back else max(own_end, prior or own_end)
        mark_row = session.get(GapMarkRow, (facility_id, person_id, gap_rule))
        if mark_row is not None and mark_row.last_end == datetime.fromisoformat(set_text):
            if wanted is None:
                session.delete(mark_row)
            else:
                mark_row.last_end = wanted
        settled_gaps.append([gap_rule, prior_text, _iso(wanted) if wanted else None])
    session.flush()
    return {
        "counters": [list(pair) for pair in counters],
        "entries": [] if taken_back else entry_ids,
        "gaps": [] if taken_back else settled_gaps,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def _pairs(value: object) -> list[tuple[str, str]]:
    return [(str(item[0]), str(item[1])) for item in _list(value) if isinstance(item, list)]


def add_session(session: Session, row: SessionRow) -> SessionRow:
    session.add(row)
    session.flush()
    return row


def completed_sessions(
    session: Session,
    facility_id: str,
    channel: str,
    start: datetime,
    end: datetime,
    person_id: str | None,
) -> list[SessionRow]:
    query = select(SessionRow).where(
        SessionRow.facility_id == facility_id,
        SessionRow.channel == channel,
        SessionRow.status == "completed",
        SessionRow.started_at >= start,
        SessionRow.started_at < end,
    )
    if person_id is not None:
        query = query.where(SessionRow.person_id == person_id)
    return list(session.scalars(query.order_by(SessionRow.started_at)))
