"""Every query about sessions: held call set-ups (sessions with a hold id), the
sessions a report reads, and the people, contacts and rules an import's batch
reads in a few statements.

The call path runs these on every set-up, so they are built once and run as
Core statements: a set-up's session is a plain ``SessionRow`` that the ORM
never tracks, inserted by ``add`` and written back by ``save``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Executable,
    Insert,
    Integer,
    String,
    Table,
    Update,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    union,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from kinline.audit.repository import Writes, appending
from kinline.calls.rows import Approval, ContactEntry
from kinline.db.bulk import among, write_rows
from kinline.db.engine import core
from kinline.db.raw import Raw, array
from kinline.db.tables import (
    ApprovalRow,
    AuditHeadRow,
    ContactPhoneRow,
    ContactRow,
    FacilityRow,
    ImportedCallRow,
    PersonRow,
    RuleRow,
    SessionRow,
)
from kinline.db.types import UTCDateTime
from kinline.people.model import Facility
from kinline.people.repository import facility_from_row
from kinline.policy.repository import rule_from_row, stored_rule
from kinline.rules.model import Channel, Rule
from kinline.rules.usage import Tally

OPEN = ("held", "connected")
# Written through Core, never as ORM objects.
SESSIONS = cast(Table, SessionRow.__table__)
CONTACTS = cast(Table, ContactRow.__table__)
PHONES = cast(Table, ContactPhoneRow.__table__)
APPROVALS = cast(Table, ApprovalRow.__table__)
_SESSIONS = SessionRow.__table__
_PEOPLE = PersonRow.__table__
_FACILITIES = FacilityRow.__table__
_COLUMNS = [column for column in _SESSIONS.c if column.key != "id"]
# What a step of the call path changes on a set-up.
_CHANGING = (
    "minutes",
    "status",
    "expires_at",
    "connected_at",
    "ended_at",
    "settled_by",
    "reserved",
)

_ADD = insert(SessionRow).returning(SessionRow.id)
_SAVE = (
    update(SessionRow)
    .where(SessionRow.facility_id == bindparam("s_facility_id"), SessionRow.id == bindparam("s_id"))
    .values({name: bindparam(f"s_{name}") for name in _CHANGING})
)
_BY_KEY = select(_SESSIONS).where(
    _SESSIONS.c.facility_id == bindparam("facility_id"),
    _SESSIONS.c.idempotency_key == bindparam("key"),
)
_BY_HOLD = select(_SESSIONS).where(
    _SESSIONS.c.facility_id == bindparam("facility_id"),
    _SESSIONS.c.hold_id == bindparam("hold_id"),
)
_HEADS = cast(Table, AuditHeadRow.__table__)
Head = tuple[int, str]
"""An audit chain's head as ``audit.repository.lock_head`` gives it: (seq, hash)."""


def _escaped(part: Any) -> Any:
    """``audit.chain._escape`` in SQL."""
    return func.replace(func.replace(part, "%", "%25"), ":", "%3A")


# The person's ledger is locked first (its own CTE), and only then, in the same
# statement, the head of their audit chain: the order every step of the call
# path (and every other writer of the person's chain) takes them in, one round
# trip instead of two. The head CTE joins the locked rows, so no head is
# locked before the ledger; a chain with no head yet gives NULLs and the audit
# log creates it as usual (``record_event`` without ``head``).
_HELD = (
    select(_SESSIONS)
    .join(
        _PEOPLE,
        (_PEOPLE.c.facility_id == _SESSIONS.c.facility_id)
        & (_PEOPLE.c.id == _SESSIONS.c.person_id),
    )
    .where(
        _SESSIONS.c.facility_id == bindparam("facility_id"),
        _SESSIONS.c.hold_id == bindparam("hold_id"),
    )
    .with_for_update(of=[_PEOPLE, _SESSIONS])
    .cte("held")
)
_HELD_HEAD = (
    select(_HEADS.c.chain, _HEADS.c.seq, _HEADS.c.hash)
    .select_from(_HEADS.join(_HELD, true()))
    .where(
        _HEADS.c.facility_id == bindparam("facility_id"),
        _HEADS.c.chain
        == literal("person:")
        + _escaped(_HELD.c.facility_id)
        + literal(":")
        + _escaped(_HELD.c.person_id),
    )
    .with_for_update(of=_HEADS)
    .cte("held_head")
)
_LOCK_BY_HOLD = select(
    _HELD,
    _HELD_HEAD.c.chain.label("head_chain"),
    _HELD_HEAD.c.seq.label("head_seq"),
    _HELD_HEAD.c.hash.label("head_hash"),
).select_from(_HELD.outerjoin(_HELD_HEAD, true()))
_HEAD_COLUMNS = ("head_chain", "head_seq", "head_hash")

# What a facility is read from (``people.repository.facility_from_row``).
_FACILITY = (
    _FACILITIES.c.id,
    _FACILITIES.c.name,
    _FACILITIES.c.timezone,
    _FACILITIES.c.country,
    _FACILITIES.c.appeal_days,
    _FACILITIES.c.retaliation_window_days,
)
_LEDGER = (
    select(_PEOPLE.c.facility_id, _PEOPLE.c.id)
    .where(
        _PEOPLE.c.facility_id == bindparam("facility_id"), _PEOPLE.c.id == bindparam("person_id")
    )
    .with_for_update()
    .cte("ledger")
)
_LEDGER_HEAD = (
    select(_HEADS.c.seq, _HEADS.c.hash)
    .select_from(_HEADS.join(_LEDGER, true()))
    .where(_HEADS.c.facility_id == bindparam("facility_id"), _HEADS.c.chain == bindparam("chain"))
    .with_for_update(of=_HEADS)
    .cte("ledger_head")
)
_OPEN_LEDGER = select(
    *_FACILITY,
    select(_SESSIONS.c.id)
    .where(
        _SESSIONS.c.facility_id == bindparam("facility_id"),
        _SESSIONS.c.idempotency_key == bindparam("key"),
    )
    .scalar_subquery()
    .label("earlier"),
    _LEDGER_HEAD.c.seq.label("head_seq"),
    _LEDGER_HEAD.c.hash.label("head_hash"),
).select_from(
    _LEDGER.join(_FACILITIES, _FACILITIES.c.id == _LEDGER.c.facility_id).outerjoin(
        _LEDGER_HEAD, true()
    )
)


def open_ledger(
    session: Session, facility_id: str, person_id: str, key: str, chain: str
) -> tuple[Facility, bool, Head | None] | None:
    """Lock the person's allowance ledger (as ``people.repository.lock_person``
    does), then the head of their audit ``chain``, and read, in the same
    statement, their facility and whether a set-up already used ``key``; None
    if the facility or the person is missing. The head is None when the chain
    has none yet."""
    params = {"facility_id": facility_id, "person_id": person_id, "key": key, "chain": chain}
    row = core(session).execute(_OPEN_LEDGER, params).one_or_none()
    if row is None:
        return None
    head = None if row.head_seq is None else (row.head_seq, row.head_hash)
    return facility_from_row(row), row.earlier is not None, head


# A round's ledgers, locked in person id order (its own CTE), then the heads of
# their audit chains (as ``_OPEN_LEDGER`` takes one person's), with their
# facility and which of the round's keys were used: one statement.
_ROUND_LEDGER = (
    select(
        _PEOPLE.c.facility_id, _PEOPLE.c.id, _PEOPLE.c.custody_status, _PEOPLE.c.custody_changed_at
    )
    .where(
        _PEOPLE.c.facility_id == bindparam("facility_id"),
        # A union, not an OR of the two: each arm an index look-up.
        _PEOPLE.c.id.in_(
            union(
                select(func.unnest(bindparam("person_ids", type_=ARRAY(String)))),
                select(_SESSIONS.c.person_id).where(
                    _SESSIONS.c.facility_id == bindparam("facility_id"),
                    _SESSIONS.c.hold_id == func.any(bindparam("hold_ids", type_=ARRAY(String))),
                ),
            )
        ),
    )
    .order_by(_PEOPLE.c.id)
    .with_for_update(of=_PEOPLE)
    .cte("round_ledger")
)
_ROUND_HEADS = (
    select(_HEADS.c.seq, _HEADS.c.hash, _ROUND_LEDGER.c.id.label("person_id"))
    .select_from(
        _HEADS.join(
            _ROUND_LEDGER,
            _HEADS.c.chain
            == literal("person:")
            + _escaped(_ROUND_LEDGER.c.facility_id)
            + literal(":")
            + _escaped(_ROUND_LEDGER.c.id),
        )
    )
    .where(_HEADS.c.facility_id == bindparam("facility_id"))
    .order_by(_HEADS.c.chain)
    .with_for_update(of=_HEADS)
    .cte("round_heads")
)
_ROUND = (
    select(
        *_FACILITY,
        _ROUND_LEDGER.c.id.label("person_id"),
        _ROUND_LEDGER.c.custody_status,
        _ROUND_LEDGER.c.custody_changed_at,
        _ROUND_HEADS.c.seq.label("head_seq"),
        _ROUND_HEADS.c.hash.label("head_hash"),
        select(func.array_agg(_SESSIONS.c.idempotency_key))
        .where(
            _SESSIONS.c.facility_id == bindparam("facility_id"),
            _SESSIONS.c.idempotency_key == func.any(bindparam("keys", type_=ARRAY(String))),
        )
        .scalar_subquery()
        .label("used"),
    )
    .select_from(
        _ROUND_LEDGER.join(_FACILITIES, _FACILITIES.c.id == _ROUND_LEDGER.c.facility_id).outerjoin(
            _ROUND_HEADS, _ROUND_HEADS.c.person_id == _ROUND_LEDGER.c.id
        )
    )
    .order_by(_ROUND_LEDGER.c.id)
)
_ROUND_RAW = Raw("open_ledgers", _ROUND)
Custody = tuple[str, datetime | None]
"""A person's custody status and when it last changed."""


@dataclass(frozen=True, slots=True)
class Ledgers:
    """What a round locked and read first (``open_ledgers``)."""

    facility: Facility
    custody: dict[str, Custody]
    heads: dict[str, Head]  # by person, for those whose chain has begun
    used: set[str]  # the round's idempotency keys already used


def open_ledgers(
    session: Session,
    facility_id: str,
    person_ids: Iterable[str],
    hold_ids: Iterable[str],
    keys: Iterable[str],
) -> Ledgers | None:
    """Lock the allowance ledgers of those of ``person_ids`` who exist and of the
    people of the set-ups ``hold_ids`` (as ``open_ledger`` and ``lock_by_hold_id``
    lock one), in person id order, so two writers that lock several never wait
    for each other in a circle; then the heads of their audit chains. Their
    facility, custody and heads, and which of ``keys`` a set-up has used, read
    by the same statement. None if there is no one (or no facility)."""
    params = {
        "facility_id": facility_id,
        "person_ids": array(sorted(set(person_ids))),
        "hold_ids": array(sorted(set(hold_ids))),
        "keys": array(sorted(set(keys))),
    }
    rows = _ROUND_RAW.rows(session, params)
    if not rows:
        return None
    first = rows[0]
    facility = Facility(*first[: len(_FACILITY)])  # the columns of _FACILITY, in order
    custody: dict[str, Custody] = {}
    heads: dict[str, Head] = {}
    for *_, person_id, status, changed_at, head_seq, head_hash, _used in rows:
        custody[person_id] = (status, changed_at)
        if head_seq is not None:
            heads[person_id] = (head_seq, head_hash)
    return Ledgers(facility=facility, custody=custody, heads=heads, used=set(first[-1] or ()))


_HELD_MANY = (
    select(_SESSIONS)
    .where(
        _SESSIONS.c.facility_id == bindparam("facility_id"),
        _SESSIONS.c.hold_id == func.any(bindparam("hold_ids", type_=ARRAY(String))),
    )
    .with_for_update()
)
_HELD_MANY_RAW = Raw("lock_holds", _HELD_MANY)


def lock_holds(session: Session, facility_id: str, hold_ids: Iterable[str]) -> list[SessionRow]:
    """The set-ups of ``hold_ids`` (those that exist), each locked until the
    transaction ends; their people's ledgers must be locked already."""
    params = {"facility_id": facility_id, "hold_ids": array(sorted(set(hold_ids)))}
    return [SessionRow(**values) for values in _HELD_MANY_RAW.mappings(session, params)]


# A round's ends: each set-up's new state and what each settles off the
# counters, as two writes of the statement that appends the round's audit
# events (``audit.repository.appending``): no round trip of their own. The
# counters' rows are summed per counter first: an UPDATE ... FROM changes a row
# once however many rows of FROM match it.
_SETTLE_WRITES = """
    stepped AS (
        UPDATE sessions AS s
        SET minutes = v.minutes, status = v.status, expires_at = v.expires_at,
            connected_at = v.connected_at, ended_at = v.ended_at, settled_by = v.settled_by,
            reserved = CAST(v.reserved AS json)
        FROM unnest(
            CAST(:ids AS bigint[]), CAST(:minutes AS int[]), CAST(:statuses AS text[]),
            CAST(:expires AS timestamptz[]), CAST(:connected AS timestamptz[]),
            CAST(:ended AS timestamptz[]), CAST(:settled_by AS text[]), CAST(:reserved AS text[])
        ) AS v(id, minutes, status, expires_at, connected_at, ended_at, settled_by, reserved)
        WHERE s.facility_id = :facility_id AND s.id = v.id
    ), settled AS (
        UPDATE usage_counters AS c
        SET sessions = c.sessions - v.sessions, minutes = c.minutes - v.minutes
        FROM (
            SELECT person_id, rule_id, period_key, sum(sessions) AS sessions,
                   sum(minutes) AS minutes
            FROM unnest(
                CAST(:c_people AS text[]), CAST(:c_rules AS text[]), CAST(:c_keys AS text[]),
                CAST(:c_sessions AS int[]), CAST(:c_minutes AS int[])
            ) AS u(person_id, rule_id, period_key, sessions, minutes)
            GROUP BY person_id, rule_id, period_key
        ) AS v
        WHERE c.facility_id = :facility_id AND c.person_id = v.person_id
          AND c.rule_id = v.rule_id AND c.period_key = v.period_key
    )
"""
_SETTLE_AND_APPEND = appending("settle_and_append", _SETTLE_WRITES)


def settling(
    facility_id: str, rows: Sequence[SessionRow], counters: Sequence[Mapping[str, object]]
) -> Writes:
    """``save`` of each set-up (what a step changed, ``_CHANGING``) and the
    counter rows their settlements take back (``ledger.settled_counters``), to
    be written by the statement that records the round's events
    (``audit.service.record_events``'s ``also``; PostgreSQL)."""
    return _SETTLE_AND_APPEND, {
        "ids": array(row.id for row in rows),
        "minutes": array(row.minutes for row in rows),
        "statuses": array(row.status for row in rows),
        "expires": array(row.expires_at for row in rows),
        "connected": array(row.connected_at for row in rows),
        "ended": array(row.ended_at for row in rows),
        "settled_by": array(row.settled_by for row in rows),
        "reserved": array(_json_text(row, _SESSIONS.c.reserved) for row in rows),
        **_counter_arrays(counters),
    }


def _array_type(column: Any) -> str:
    """The SQL type of an array of ``column``'s values, as a round passes them."""
    if isinstance(column.type, UTCDateTime):
        return "timestamptz"
    if isinstance(column.type, Integer):
        return "int"
    if isinstance(column.type, String | JSON):
        return "text"  # JSON as its text, cast back per row
    raise TypeError(f"no array type for sessions.{column.key}")  # pragma: no cover


def _add_many_pg() -> TextClause:
    """A round's set-ups and the counters their holds add to, in one statement of
    arrays (PostgreSQL): the counters first (summed per counter, as
    ``ledger.counter_rows`` gives them), then the set-ups, their ids drawn in
    the arrays' order, as one INSERT each would."""
    # The facility is one bound value, not an array: a statement on a
    # facility's data names it, so sharded by facility it reaches one shard.
    names = [column.key for column in _COLUMNS if column.key != "facility_id"]
    arrays = ", ".join(f"CAST(:{name} AS {_array_type(SESSIONS.c[name])}[])" for name in names)
    values = ", ".join(
        f"CAST(v.{name} AS json)" if isinstance(SESSIONS.c[name].type, JSON) else f"v.{name}"
        for name in names
    )
    return text(
        f"""
        WITH counted AS (
            INSERT INTO usage_counters
                (facility_id, person_id, rule_id, period_key, sessions, minutes)
            SELECT :facility_id, u.person_id, u.rule_id, u.period_key, u.sessions, u.minutes
            FROM unnest(
                CAST(:c_people AS text[]), CAST(:c_rules AS text[]), CAST(:c_keys AS text[]),
                CAST(:c_sessions AS int[]), CAST(:c_minutes AS int[])
            ) AS u(person_id, rule_id, period_key, sessions, minutes)
            ON CONFLICT (facility_id, person_id, rule_id, period_key) DO UPDATE
            SET sessions = usage_counters.sessions + excluded.sessions,
                minutes = usage_counters.minutes + excluded.minutes
        )
        INSERT INTO sessions (id, facility_id, {", ".join(names)})
        SELECT nextval('sessions_id_seq'), :facility_id, {values}
        FROM unnest({arrays}) WITH ORDINALITY AS v({", ".join(names)}, n)
        ORDER BY v.n
        RETURNING id, idempotency_key
        """  # noqa: S608 - the names are the table's own columns
    )


_ADD_MANY_RAW = Raw("add_many", _add_many_pg())


def add_many(
    session: Session,
    facility_id: str,
    rows: Sequence[SessionRow],
    counters: Sequence[Mapping[str, object]],
) -> None:
    """Insert the facility's set-ups, with distinct idempotency keys, and add
    ``counters`` (``ledger.counter_rows``) to the stored ones: one statement
    (PostgreSQL). Each ``row.id`` is set from the database."""
    assert all(row.facility_id == facility_id for row in rows)
    params: dict[str, object] = {
        column.key: array(_json_text(row, column) for row in rows)
        for column in _COLUMNS
        if column.key != "facility_id"
    }
    params["facility_id"] = facility_id
    params.update(_counter_arrays(counters))
    ids = {key: id_ for id_, key in _ADD_MANY_RAW.rows(session, params)}
    for row in rows:
        row.id = ids[row.idempotency_key]


_COUNTER_ARRAYS = (
    ("person_id", "people"),
    ("rule_id", "rules"),
    ("period_key", "keys"),
    ("sessions", "sessions"),
    ("minutes", "minutes"),
)


def _counter_arrays(counters: Sequence[Mapping[str, object]]) -> dict[str, str]:
    """The ``c_*`` arrays of counter rows (``ledger.counter_rows``,
    ``ledger.settled_counters``), as the round's statements take them."""
    return {
        f"c_{plural}": array(counter[name] for counter in counters)
        for name, plural in _COUNTER_ARRAYS
    }


def _json_text(row: SessionRow, column: Any) -> object:
    value = getattr(row, column.key)
    if value is None or not isinstance(column.type, JSON):
        return value
    return json.dumps(value)


Also = tuple[tuple[Insert | Update, ...], Mapping[str, object]]
"""Other writes built once (``ledger.counting_pg``, ``ledger.settling_pg``;
PostgreSQL only) and their parameters, for ``add`` or ``save`` to run as CTEs of
their own statement: one round trip for both."""


def add(session: Session, row: SessionRow, also: Also | None = None) -> SessionRow:
    """Insert the set-up, and ``also``; ``row.id`` is set from the database."""
    values = {column.key: getattr(row, column.key) for column in _COLUMNS}
    statement: Executable = _ADD
    if also is not None:
        statement = _with(_ADD, also[0])
        values.update(also[1])
    row.id = core(session).execute(statement, values).scalar_one()
    return row


@functools.cache
def _with(statement: Insert | Update, others: tuple[Insert | Update, ...]) -> Executable:
    ctes = [other.cte(f"also{i}") for i, other in enumerate(others)]
    return statement.add_cte(*ctes)


def save(session: Session, row: SessionRow, also: Also | None = None) -> None:
    """Write back what a step changed (``_CHANGING``) on a set-up read by this
    module, and ``also``."""
    values: dict[str, object] = {f"s_{name}": getattr(row, name) for name in _CHANGING}
    values["s_id"] = row.id
    values["s_facility_id"] = row.facility_id
    statement: Executable = _SAVE
    if also is not None:
        statement = _with(_SAVE, also[0])
        values.update(also[1])
    core(session).execute(statement, values)


def _one(session: Session, statement: Executable, params: dict[str, str]) -> SessionRow | None:
    found = core(session).execute(statement, params).mappings().one_or_none()
    return None if found is None else SessionRow(**found)


def by_idempotency_key(session: Session, facility_id: str, key: str) -> SessionRow | None:
    return _one(session, _BY_KEY, {"facility_id": facility_id, "key": key})


def by_hold_id(session: Session, facility_id: str, hold_id: str) -> SessionRow | None:
    return _one(session, _BY_HOLD, {"facility_id": facility_id, "hold_id": hold_id})


def lock_by_hold_id(
    session: Session, facility_id: str, hold_id: str
) -> tuple[SessionRow, tuple[str, Head] | None] | None:
    """The call set-up, with its person's ledger and its own row locked until the
    transaction ends, then the head of the person's audit chain: the set-up and
    (chain, head), the latter None when the chain has no head yet; in one
    statement.

    On PostgreSQL, a statement that waited for the locks returns the rows as
    the transaction that held them committed them (READ COMMITTED re-reads
    locked rows); SQLite's write lock is already held (BEGIN IMMEDIATE).
    """
    params = {"facility_id": facility_id, "hold_id": hold_id}
    found = core(session).execute(_LOCK_BY_HOLD, params).mappings().one_or_none()
    if found is None:
        return None
    values = dict(found)
    chain, seq, hash = (values.pop(name) for name in _HEAD_COLUMNS)
    return SessionRow(**values), None if chain is None else (chain, (seq, hash))


def due(session: Session, at: datetime, limit: int = 10_000) -> list[tuple[str, str]]:
    """(facility id, hold id) of holds and connected calls whose time is up."""
    rows = session.execute(
        select(SessionRow.facility_id, SessionRow.hold_id)
        .where(SessionRow.status.in_(OPEN), SessionRow.expires_at <= at)
        .order_by(SessionRow.expires_at)
        .limit(limit)
    )
    return [(facility_id, hold_id) for facility_id, hold_id in rows if hold_id is not None]


def session_by_id(session: Session, facility_id: str, session_id: int) -> SessionRow | None:
    """One session as an ORM row (changes to it are written at commit)."""
    return session.scalars(
        select(SessionRow).where(SessionRow.facility_id == facility_id, SessionRow.id == session_id)
    ).one_or_none()


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


def known_people(
    session: Session, facility_id: str, person_ids: Iterable[str], *, lock: bool
) -> set[str]:
    """Which of ``person_ids`` exist; with ``lock``, each one's allowance ledger is
    locked until the transaction ends.

    The lock is ``people.repository.lock_person``'s (``SELECT ... FOR UPDATE``
    on the person's row), taken for all the people in one statement, in id
    order, so two imports, or an import and the call path, never wait for
    each other in a circle. On SQLite the transaction already holds the
    database's write lock.
    """
    query = (
        select(PersonRow.id)
        .where(PersonRow.facility_id == facility_id, among(session, PersonRow.id, person_ids))
        .order_by(PersonRow.id)
    )
    if lock:
        query = query.with_for_update(of=PersonRow)
    return set(session.scalars(query).all())


def phone_book(
    session: Session, facility_id: str, dialed: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], ContactEntry]:
    """The contact each (person, E.164 number) pair reaches, if any, with every
    approval the contact ever had.

    A number two of one person's contacts share goes to the first by id.
    Three lookups on their own indexes rather than one join, so the plan
    stays right on a freshly loaded table whose statistics are stale.
    """
    wanted = set(dialed)
    phones = PHONES.c
    numbers = [
        (contact_id, e164)  # plain tuples: rows sort a hundred times slower
        for contact_id, e164 in session.execute(
            select(phones.contact_id, phones.e164).where(
                phones.facility_id == facility_id,
                among(session, phones.e164, {e164 for _, e164 in wanted}),
            )
        ).all()
    ]
    if not numbers:
        return {}
    contacts = CONTACTS.c
    found = session.execute(
        select(contacts.id, contacts.person_id, contacts.relationship, contacts.privileged).where(
            contacts.facility_id == facility_id,
            among(session, contacts.id, {contact_id for contact_id, _ in numbers}),
        )
    ).all()
    entries = {
        contact_id: ContactEntry(contact_id, person_id, relationship, privileged)
        for contact_id, person_id, relationship, privileged in found
    }
    book: dict[tuple[str, str], ContactEntry] = {}
    for contact_id, e164 in sorted(numbers):
        entry = entries.get(contact_id)
        if entry is not None and (entry.person, e164) in wanted:
            book.setdefault((entry.person, e164), entry)
    reached = {entry.id: entry for entry in book.values()}
    if not reached:
        return {}
    approvals = APPROVALS.c
    channels = {str(channel): channel for channel in Channel}
    for contact_id, channel, approved_at, revoked_at in session.execute(
        select(approvals.contact_id, approvals.channel, approvals.approved_at, approvals.revoked_at)
        .where(
            approvals.facility_id == facility_id,
            among(session, approvals.contact_id, reached),
        )
        .order_by(approvals.id)
    ).all():
        reached[contact_id].approvals.append(Approval(channels[channel], approved_at, revoked_at))
    return book


def _book(
    rows: Iterable[Sequence[Any]], wanted: set[tuple[str, str]]
) -> dict[tuple[str, str], ContactEntry]:
    """The phone book of contact rows (id, person, relationship, privileged,
    number, approval channel, approved at, revoked at), in contact id order."""
    entries: dict[str, ContactEntry] = {}
    numbers: dict[str, set[str]] = {}
    approved: dict[str, set[tuple[object, ...]]] = {}
    channels = {str(channel): channel for channel in Channel}
    for contact_id, person_id, relationship, privileged, e164, channel, since, until in rows:
        entry = entries.get(contact_id)
        if entry is None:
            entry = entries[contact_id] = ContactEntry(
                contact_id, person_id, relationship, privileged
            )
        numbers.setdefault(contact_id, set()).add(e164)
        # A contact with two of the numbers comes once per number and approval.
        seen = approved.setdefault(contact_id, set())
        if channel is not None and (channel, since, until) not in seen:
            seen.add((channel, since, until))
            entry.approvals.append(Approval(channels[channel], since, until))
    book: dict[tuple[str, str], ContactEntry] = {}
    for contact_id, entry in entries.items():  # by contact id
        for e164 in numbers[contact_id]:
            if (entry.person, e164) in wanted:
                book.setdefault((entry.person, e164), entry)
    return book


# What a round's set-ups are decided on, read by one statement (PostgreSQL):
# the contacts dialled with their approvals ('c'), the rules that may be in
# force ('r'), the calendar counters ('u') and the gap marks ('g') of the
# round's people, one kind of row each, in the columns of a common shape.
_ROUND_READS = text(
    """
    SELECT 'c' AS kind, c.id AS a, c.person_id AS b, c.relationship AS c, p.e164 AS d,
           a.channel AS e, c.privileged AS flag, a.approved_at AS t1, a.revoked_at AS t2,
           CAST(NULL AS timestamptz) AS t3, a.id AS n1, CAST(NULL AS int) AS n2
    FROM contact_phones AS p
    JOIN contacts AS c ON c.facility_id = p.facility_id AND c.id = p.contact_id
    LEFT JOIN approvals AS a ON a.facility_id = c.facility_id AND a.contact_id = c.id
    WHERE p.facility_id = :facility_id AND p.e164 = ANY(CAST(:numbers AS text[]))
      AND c.person_id = ANY(CAST(:person_ids AS text[]))
    UNION ALL
    SELECT 'r', r.definition, NULL, NULL, NULL, NULL, NULL, r.starts_at, r.ends_at, r.lifted_at,
           r.seq, NULL
    FROM rules AS r
    WHERE r.facility_id = :facility_id
      AND (r.person_id IS NULL OR r.person_id = ANY(CAST(:person_ids AS text[])))
      AND r.channel = ANY(CAST(:channels AS text[]))
      AND (r.starts_at IS NULL OR r.starts_at <= :last)
      AND (r.ends_at IS NULL OR r.ends_at > :first)
      AND (r.lifted_at IS NULL OR r.lifted_at > :first)
    UNION ALL
    SELECT 'u', u.person_id, u.rule_id, u.period_key, NULL, NULL, NULL, NULL, NULL, NULL,
           u.sessions, u.minutes
    FROM usage_counters AS u
    WHERE u.facility_id = :facility_id AND u.person_id = ANY(CAST(:person_ids AS text[]))
      AND u.period_key = ANY(CAST(:keys AS text[]))
    UNION ALL
    SELECT 'g', g.person_id, g.rule_id, NULL, NULL, NULL, NULL, g.last_end, NULL, NULL,
           NULL, NULL
    FROM gap_marks AS g
    WHERE g.facility_id = :facility_id AND g.person_id = ANY(CAST(:person_ids AS text[]))
    """
)
_ROUND_READS_RAW = Raw("round_reads", _ROUND_READS)


@dataclass(frozen=True, slots=True)
class RoundReads:
    """What a round's set-ups are decided on (``round_reads``)."""

    book: dict[tuple[str, str], ContactEntry]  # each pair's contact, as ``phone_book``
    rules: list[Rule]  # that may be in force, in listing order
    counters: list[tuple[str, str, str, Tally]]  # person, rule, period key, tally
    gaps: list[tuple[str, str, datetime]]  # person, rule, last end


def round_reads(
    session: Session,
    facility_id: str,
    dialed: Iterable[tuple[str, str]],
    channels: Iterable[Channel],
    first: datetime,
    last: datetime,
    period_keys: Iterable[str],
) -> RoundReads:
    """For a round's (person, E.164 number) pairs, in one statement (PostgreSQL):
    the contact each pair reaches, if any (the first by id, as ``phone_book``),
    with every approval it ever had; the rules for every person and for theirs
    on ``channels`` in force at some moment of ``[first, last]`` (the engine
    keeps those in force at each set-up's instant); their counters of
    ``period_keys`` and every gap mark."""
    wanted = set(dialed)
    params = {
        "facility_id": facility_id,
        "numbers": array(sorted({e164 for _, e164 in wanted})),
        "person_ids": array(sorted({person for person, _ in wanted})),
        "channels": array(sorted({str(channel) for channel in channels})),
        "first": first,
        "last": last,
        "keys": array(sorted(set(period_keys))),
    }
    contacts: list[tuple[Any, ...]] = []
    rules: list[tuple[int, Rule]] = []
    counters: list[tuple[str, str, str, Tally]] = []
    gaps: list[tuple[str, str, datetime]] = []
    for kind, a, b, c, d, e, flag, t1, t2, t3, n1, n2 in _ROUND_READS_RAW.rows(session, params):
        if kind == "c":
            contacts.append((a, -1 if n1 is None else n1, b, c, flag, d, e, t1, t2))
        elif kind == "r":
            rules.append((n1, stored_rule(a, t1, t2, t3, n1)))
        elif kind == "u":
            counters.append((a, b, c, Tally(n1, n2)))
        else:
            gaps.append((a, b, t1))
    contacts.sort(key=lambda row: (row[0], row[1]))  # by contact, then approval
    book = _book([(row[0], *row[2:]) for row in contacts], wanted)
    rules.sort(key=lambda seq_rule: seq_rule[0])
    return RoundReads(book, [rule for _, rule in rules], counters, gaps)


def rules_of(
    session: Session,
    facility_id: str,
    person_ids: Iterable[str],
    channels: Iterable[Channel],
    first: datetime,
    last: datetime,
) -> list[Rule]:
    """Rules for every person and for ``person_ids``, on ``channels``, in force at
    some moment of ``[first, last]``, in listing order."""
    query = select(RuleRow).where(
        RuleRow.facility_id == facility_id,
        RuleRow.channel.in_(sorted(str(channel) for channel in channels)),
        or_(RuleRow.starts_at.is_(None), RuleRow.starts_at <= last),
        or_(RuleRow.ends_at.is_(None), RuleRow.ends_at > first),
        or_(RuleRow.lifted_at.is_(None), RuleRow.lifted_at > first),
    )
    rows = list(session.scalars(query.where(RuleRow.person_id.is_(None))))
    rows += session.scalars(query.where(among(session, RuleRow.person_id, person_ids)))
    return sorted((rule_from_row(row) for row in rows), key=lambda rule: rule.order)


def add_sessions(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert sessions, given as column values."""
    write_rows(session, SESSIONS, rows)


IMPORTED = cast(Table, ImportedCallRow.__table__)


def imported_records(session: Session, facility_id: str, keys: Iterable[str]) -> set[str]:
    """Which of the record ``keys`` an earlier import has counted."""
    query = select(IMPORTED.c.record_key).where(
        IMPORTED.c.facility_id == facility_id, among(session, IMPORTED.c.record_key, keys)
    )
    return set(session.scalars(query).all())


def claim_records(
    session: Session,
    facility_id: str,
    records: Sequence[tuple[str, int]],
    *,
    file_sha256: str,
    at: datetime,
) -> set[str]:
    """Mark the (record key, row) pairs imported; the keys this transaction claimed.

    A key already stored is skipped, not an error (``ON CONFLICT DO NOTHING``):
    on PostgreSQL a concurrent import claiming the same key makes this one
    wait for it and then skip it, so a record is counted by one import only.
    Keys go in sorted order, so two imports claim in the same order and never
    wait for each other in a circle. On SQLite the transaction holds the
    database's write lock, so what is not stored yet is this one's.
    """
    ordered = sorted(records)
    if not ordered:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        pairs = (
            func.unnest(
                bindparam("keys", [key for key, _ in ordered], type_=ARRAY(String)),
                bindparam("rows", [row for _, row in ordered], type_=ARRAY(Integer)),
            )
            .table_valued("record_key", "row")
            .render_derived(name="claimed")
        )
        claim = (
            postgresql.insert(IMPORTED)
            .from_select(
                ["facility_id", "record_key", "file_sha256", "row", "imported_at"],
                select(
                    literal(facility_id, String),
                    pairs.c.record_key,
                    literal(file_sha256, String),
                    pairs.c.row,
                    literal(at, IMPORTED.c.imported_at.type),
                ),
            )
            .on_conflict_do_nothing()
            .returning(IMPORTED.c.record_key)
        )
        return set(session.scalars(claim).all())
    stored = imported_records(session, facility_id, (key for key, _ in ordered))
    fresh = [
        {
            "facility_id": facility_id,
            "record_key": key,
            "file_sha256": file_sha256,
            "row": row,
            "imported_at": at,
        }
        for key, row in ordered
        if key not in stored
    ]
    if fresh:
        session.execute(sqlite.insert(IMPORTED).on_conflict_do_nothing(), fresh)
    return {key for key, _ in ordered if key not in stored}
