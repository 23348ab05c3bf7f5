"""Every query of a call import: a batch's people, contacts, rules and usage
read in a few statements, and its sessions and usage written in bulk.

Lists of ids are sent in chunks: PostgreSQL takes at most 65,535 bound
parameters a statement, SQLite 32,766.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Table, case, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

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

CHUNK = 2_000
T = TypeVar("T")
# Core tables: a list of plain dicts goes to the driver's executemany, no ORM objects.
SESSIONS = cast(Table, SessionRow.__table__)
USAGE_ENTRIES = cast(Table, UsageEntryRow.__table__)


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def known_people(
    session: Session, facility_id: str, person_ids: Sequence[str], *, lock: bool
) -> set[str]:
    """Which of ``person_ids`` exist; with ``lock``, each one's allowance ledger is
    locked until the transaction ends.

    The lock is ``people.repository.lock_person``'s (``SELECT ... FOR UPDATE``
    on the person's row), taken for many people per statement in id order, so
    two imports, or an import and the call path, never lock in opposite
    orders. On SQLite the transaction already holds the database's write lock.
    """
    found: set[str] = set()
    for chunk in _chunks(sorted(person_ids)):
        query = (
            select(PersonRow.id)
            .where(PersonRow.facility_id == facility_id, PersonRow.id.in_(chunk))
            .order_by(PersonRow.id)
        )
        if lock:
            query = query.with_for_update()
        found.update(session.scalars(query))
    return found


def phone_book(
    session: Session, facility_id: str, person_ids: Sequence[str]
) -> dict[tuple[str, str], ContactEntry]:
    """Each person's contacts by E.164 number, with every approval they ever had.

    A number two of one person's contacts share goes to the first by id.
    """
    book: dict[tuple[str, str], ContactEntry] = {}
    entries: dict[str, ContactEntry] = {}
    for chunk in _chunks(sorted(person_ids)):
        rows = session.execute(
            select(
                ContactRow.person_id,
                ContactPhoneRow.e164,
                ContactRow.id,
                ContactRow.relationship,
                ContactRow.privileged,
            )
            .join(
                ContactPhoneRow,
                (ContactPhoneRow.facility_id == ContactRow.facility_id)
                & (ContactPhoneRow.contact_id == ContactRow.id),
            )
            .where(ContactRow.facility_id == facility_id, ContactRow.person_id.in_(chunk))
            .order_by(ContactRow.id)
        )
        for person_id, e164, contact_id, relationship, privileged in rows:
            entry = entries.get(contact_id)
            if entry is None:
                entry = ContactEntry(contact_id, person_id, relationship, privileged)
                entries[contact_id] = entry
            book.setdefault((person_id, e164), entry)
    contact_ids = sorted(entries)
    for chunk in _chunks(contact_ids):
        approvals = session.execute(
            select(
                ApprovalRow.contact_id,
                ApprovalRow.channel,
                ApprovalRow.approved_at,
                ApprovalRow.revoked_at,
            )
            .where(ApprovalRow.facility_id == facility_id, ApprovalRow.contact_id.in_(chunk))
            .order_by(ApprovalRow.id)
        )
        for contact_id, channel, approved_at, revoked_at in approvals:
            entries[contact_id].approvals.append(
                Approval(Channel(channel), approved_at, revoked_at)
            )
    return book


def rules_of(
    session: Session,
    facility_id: str,
    person_ids: Sequence[str],
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
    for chunk in _chunks(sorted(person_ids)):
        rows.extend(session.scalars(query.where(RuleRow.person_id.in_(chunk))))
    return sorted((rule_from_row(row) for row in rows), key=lambda rule: rule.order)


@dataclass
class StoredUsage:
    counters: list[tuple[str, str, str, Tally]] = field(default_factory=list)
    entries: list[tuple[str, str, datetime, int]] = field(default_factory=list)
    gaps: list[tuple[str, str, datetime]] = field(default_factory=list)


def stored_usage(
    session: Session,
    facility_id: str,
    person_ids: Sequence[str],
    *,
    period_keys: Sequence[str],
    rolling_since: datetime | None,
) -> StoredUsage:
    """The counters of ``period_keys``, the rolling entries started after
    ``rolling_since`` (none if None) and every gap mark of ``person_ids``."""
    usage = StoredUsage()
    keys = sorted(period_keys)
    for people in _chunks(sorted(person_ids), CHUNK // 2):
        for key_chunk in _chunks(keys, CHUNK // 2):
            for counter in session.execute(
                select(
                    UsageCounterRow.person_id,
                    UsageCounterRow.rule_id,
                    UsageCounterRow.period_key,
                    UsageCounterRow.sessions,
                    UsageCounterRow.minutes,
                ).where(
                    UsageCounterRow.facility_id == facility_id,
                    UsageCounterRow.person_id.in_(people),
                    UsageCounterRow.period_key.in_(key_chunk),
                )
            ):
                usage.counters.append(
                    (counter[0], counter[1], counter[2], Tally(counter[3], counter[4]))
                )
        if rolling_since is not None:
            for person_id, rule_id, started_at, minutes in session.execute(
                select(
                    UsageEntryRow.person_id,
                    UsageEntryRow.rule_id,
                    UsageEntryRow.started_at,
                    UsageEntryRow.minutes,
                ).where(
                    UsageEntryRow.facility_id == facility_id,
                    UsageEntryRow.person_id.in_(people),
                    UsageEntryRow.started_at > rolling_since,
                )
            ):
                usage.entries.append((person_id, rule_id, started_at, minutes))
        for person_id, rule_id, last_end in session.execute(
            select(GapMarkRow.person_id, GapMarkRow.rule_id, GapMarkRow.last_end).where(
                GapMarkRow.facility_id == facility_id, GapMarkRow.person_id.in_(people)
            )
        ):
            usage.gaps.append((person_id, rule_id, last_end))
    return usage


def add_sessions(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert sessions in one executemany (Core, no ORM objects)."""
    if rows:
        session.execute(insert(SESSIONS), list(rows))


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def add_counters(session: Session, facility_id: str, added: Mapping[CounterKey, Tally]) -> None:
    """Add sessions and minutes to counters, creating those that do not exist:
    one multi-row upsert per chunk, safe beside the call path's upserts."""
    values = [
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
    insert_ = _insert(session)
    for chunk in _chunks(values, CHUNK // 2):
        statement = insert_(UsageCounterRow).values(list(chunk))
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["facility_id", "person_id", "rule_id", "period_key"],
                set_={
                    "sessions": UsageCounterRow.sessions + statement.excluded.sessions,
                    "minutes": UsageCounterRow.minutes + statement.excluded.minutes,
                },
            )
        )


def add_entries(session: Session, facility_id: str, entries: Sequence[EntryAdded]) -> None:
    if entries:
        session.execute(
            insert(USAGE_ENTRIES),
            [
                {
                    "facility_id": facility_id,
                    "person_id": entry.person,
                    "rule_id": entry.rule_id,
                    "started_at": entry.started_at,
                    "minutes": entry.minutes,
                }
                for entry in entries
            ],
        )


def raise_gap_marks(session: Session, facility_id: str, marks: Mapping[GapKey, datetime]) -> None:
    """Move each gap mark to the given end unless it is already later."""
    values = [
        {"facility_id": facility_id, "person_id": person_id, "rule_id": rule_id, "last_end": end}
        for (person_id, rule_id), end in sorted(marks.items())
    ]
    insert_ = _insert(session)
    for chunk in _chunks(values, CHUNK // 2):
        statement = insert_(GapMarkRow).values(list(chunk))
        later = statement.excluded.last_end > GapMarkRow.last_end
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["facility_id", "person_id", "rule_id"],
                set_={
                    "last_end": case(
                        (later, statement.excluded.last_end), else_=GapMarkRow.last_end
                    )
                },
            )
        )
