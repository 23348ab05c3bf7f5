"""Every query of a call import: a batch's people, contacts, rules and usage
read in a few statements, and its sessions and usage written in bulk.

A list of ids goes to the server as one parameter (an array on PostgreSQL,
``= ANY(...)``; a JSON array read by ``json_each`` on SQLite), not as one
parameter per id: a batch names thousands of people, and an ``IN`` list
that long costs more to render, send and plan than to run, and runs into
the drivers' limits on parameters. On PostgreSQL it is also a plain index
condition, so the plan stays good when the tables' statistics are stale,
as they are while a first import fills them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Dialect,
    String,
    Table,
    TextClause,
    any_,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from kinline.db.tables import (
    ApprovalRow,
    ContactPhoneRow,
    ContactRow,
    GapMarkRow,
    PersonRow,
    RuleRow,
    SessionRow,
    UsageCounterRow,
    UsageEntryRow,
)
from kinline.imports.model import Approval, ContactEntry, CounterKey, EntryAdded, GapKey
from kinline.policy.repository import rule_from_row
from kinline.rules.model import Channel, Rule
from kinline.rules.usage import Tally

# Written through Core, never as ORM objects.
SESSIONS = cast(Table, SessionRow.__table__)
USAGE_ENTRIES = cast(Table, UsageEntryRow.__table__)
COUNTERS = cast(Table, UsageCounterRow.__table__)
GAP_MARKS = cast(Table, GapMarkRow.__table__)
CONTACTS = cast(Table, ContactRow.__table__)
PHONES = cast(Table, ContactPhoneRow.__table__)
APPROVALS = cast(Table, ApprovalRow.__table__)
COUNTER_KEY = ("facility_id", "person_id", "rule_id", "period_key")
GAP_KEY = ("facility_id", "person_id", "rule_id")


def _among(
    session: Session,
    column: ColumnElement[Any] | InstrumentedAttribute[Any],
    values: Iterable[str],
) -> ColumnElement[bool]:
    """``column`` is one of ``values``, sent as one parameter."""
    ids = sorted(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=ARRAY(String)))
    members = func.json_each(literal(json.dumps(ids), String)).table_valued("value")
    return column.in_(select(members.c.value))


def plan_with_values(session: Session) -> None:
    """Until the transaction ends, plan every query for its parameters' values.

    psycopg prepares a statement it has run five times, and PostgreSQL then
    plans it once for any values: ``id = ANY($1)`` over thousands of ids
    becomes a filter that walks the whole array for each row, and a batch's
    lookups went from milliseconds to a second each. Planned for the values,
    the array is hashed or used as an index condition.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


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
        .where(PersonRow.facility_id == facility_id, _among(session, PersonRow.id, person_ids))
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
                _among(session, phones.e164, {e164 for _, e164 in wanted}),
            )
        ).all()
    ]
    if not numbers:
        return {}
    contacts = CONTACTS.c
    found = session.execute(
        select(contacts.id, contacts.person_id, contacts.relationship, contacts.privileged).where(
            contacts.facility_id == facility_id,
            _among(session, contacts.id, {contact_id for contact_id, _ in numbers}),
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
            _among(session, approvals.contact_id, reached),
        )
        .order_by(approvals.id)
    ).all():
        reached[contact_id].approvals.append(Approval(channels[channel], approved_at, revoked_at))
    return book


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
    rows += session.scalars(query.where(_among(session, RuleRow.person_id, person_ids)))
    return sorted((rule_from_row(row) for row in rows), key=lambda rule: rule.order)


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
                _among(session, UsageCounterRow.person_id, people),
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
                _among(session, UsageEntryRow.person_id, people),
                UsageEntryRow.started_at > rolling_since,
            )
        ).all():
            usage.entries.append((person_id, rule_id, started_at, minutes))
    for person_id, rule_id, last_end in session.execute(
        select(GapMarkRow.person_id, GapMarkRow.rule_id, GapMarkRow.last_end).where(
            GapMarkRow.facility_id == facility_id,
            _among(session, GapMarkRow.person_id, people),
        )
    ).all():
        usage.gaps.append((person_id, rule_id, last_end))
    return usage


def add_sessions(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert sessions, given as column values."""
    _write(session, SESSIONS, rows)


def add_counters(session: Session, facility_id: str, added: Mapping[CounterKey, Tally]) -> None:
    """Add sessions and minutes to counters, creating those that do not exist;
    safe beside the call path's own upserts."""
    rows = [
        {
            "facility_id": facility_id,
            "person_id": person_id,
            "rule_id": rule_id,
            "period_key": period_key,
            "sessions": tally.sessions,
            "minutes": tally.minutes,
        }
        for (person_id, rule_id, period_key), tally in sorted(added.items())
    ]
    _write(session, COUNTERS, rows, conflict=COUNTER_KEY, update=("sessions", "minutes"))


def add_entries(session: Session, facility_id: str, entries: Sequence[EntryAdded]) -> None:
    rows = [
        {
            "facility_id": facility_id,
            "person_id": entry.person,
            "rule_id": entry.rule_id,
            "started_at": entry.started_at,
            "minutes": entry.minutes,
        }
        for entry in entries
    ]
    _write(session, USAGE_ENTRIES, rows)


def raise_gap_marks(session: Session, facility_id: str, marks: Mapping[GapKey, datetime]) -> None:
    """Move each gap mark to the given end unless it is already later."""
    rows = [
        {"facility_id": facility_id, "person_id": person_id, "rule_id": rule_id, "last_end": end}
        for (person_id, rule_id), end in sorted(marks.items())
    ]
    _write(session, GAP_MARKS, rows, conflict=GAP_KEY, latest=("last_end",))


def _write(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict: Sequence[str] = (),
    update: Sequence[str] = (),
    latest: Sequence[str] = (),
) -> None:
    """Insert ``rows`` in one statement; on a ``conflict`` of keys, add the new
    values of the ``update`` columns to the stored ones and keep the later of
    the ``latest`` columns.

    On PostgreSQL plain inserts go by ``COPY``, and upserts as one JSON
    document into ``INSERT ... SELECT FROM json_to_recordset(...) ON
    CONFLICT``: one statement and one round trip however many rows. An
    ``executemany``, even pipelined, sends each row on its own and managed
    some 13,000 sessions/s here by itself, and a whole import has to reach
    10,000 rows/s; ``COPY`` takes 10,000 sessions in about a tenth of a
    second. Elsewhere (SQLite, in process), one ``executemany`` of the Core
    insert.
    """
    if not rows:
        return
    names = list(rows[0])
    if session.get_bind().dialect.name == "postgresql":
        if not conflict:
            _copy(session, table, names, rows)
            return
        dialect = session.get_bind().dialect
        shape = (tuple(names), tuple(conflict), tuple(update), tuple(latest))
        document = json.dumps(rows, separators=(",", ":"), default=_json_instant)
        session.execute(_recordset_insert(dialect, table, *shape), {"rows": document})
        return
    insert_ = sqlite.insert(table)
    if conflict:
        excluded = insert_.excluded
        changes: dict[str, Any] = {name: table.c[name] + excluded[name] for name in update}
        for name in latest:
            later = excluded[name] > table.c[name]
            changes[name] = case((later, excluded[name]), else_=table.c[name])
        session.execute(
            insert_.on_conflict_do_update(index_elements=list(conflict), set_=changes), list(rows)
        )
    else:
        session.execute(insert(table), list(rows))


def _copy(
    session: Session, table: Table, names: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    """``COPY table (names) FROM STDIN`` on the session's own connection, so in its
    transaction; JSON columns go as their text."""
    json_columns = {name for name in names if isinstance(table.c[name].type, JSON)}
    # Rows often share one value object (a decision); each is serialised once.
    texts: dict[int, str] = {}

    def as_text(value: object) -> str:
        text_ = texts.get(id(value))
        if text_ is None:
            text_ = texts[id(value)] = json.dumps(value)
        return text_

    driver = session.connection().connection.driver_connection
    assert driver is not None
    values = itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)
    positions = [index for index, name in enumerate(names) if name in json_columns]
    # Every name comes from the table's metadata; the rows are data, never SQL.
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            line = list(values(row))
            for index in positions:
                line[index] = as_text(line[index])
            copy.write_row(line)


def _json_instant(value: object) -> str:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat()
    raise TypeError(f"{value!r} cannot be sent as JSON")


@functools.cache
def _recordset_insert(
    dialect: Dialect,
    table: Table,
    names: tuple[str, ...],
    conflict: tuple[str, ...],
    update: tuple[str, ...],
    latest: tuple[str, ...],
) -> TextClause:
    """``INSERT INTO table (names) SELECT names FROM json_to_recordset(:rows)``."""
    # Every name comes from the table's metadata; the rows are one bound parameter.
    columns = ", ".join(names)
    shape = ", ".join(f"{name} {table.c[name].type.compile(dialect=dialect)}" for name in names)
    sql = (
        f"INSERT INTO {table.name} ({columns}) SELECT {columns}"  # noqa: S608
        f" FROM json_to_recordset(CAST(:rows AS json)) AS rows({shape})"
    )
    if conflict:
        changes = [f"{name} = {table.name}.{name} + excluded.{name}" for name in update]
        changes += [f"{name} = GREATEST({table.name}.{name}, excluded.{name})" for name in latest]
        sql += f" ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {', '.join(changes)}"
    return text(sql)
