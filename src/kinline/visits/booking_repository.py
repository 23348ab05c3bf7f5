"""Every query of rooms, session templates, blocks, slots and bookings; nothing else.

The slot row is the lock a booking takes (``lock_slot``): on PostgreSQL a
``SELECT ... FOR UPDATE``, on SQLite the write lock every transaction holds
from its first statement (BEGIN IMMEDIATE), so bookings for one session run
one after the other and its counters never overfill.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kinline.db.tables import (
    ContactRow,
    NonAssociationRow,
    VisitBlockRow,
    VisitBookingRow,
    VisitBookingVisitorRow,
    VisitRoomRow,
    VisitSlotRow,
    VisitTemplateRow,
)

# -- rooms and templates -------------------------------------------------------


def get_room(session: Session, facility_id: str, room_id: str) -> VisitRoomRow | None:
    return session.get(VisitRoomRow, (facility_id, room_id))


def list_rooms(session: Session, facility_id: str) -> list[VisitRoomRow]:
    return list(
        session.scalars(
            select(VisitRoomRow).where(VisitRoomRow.facility_id == facility_id).order_by("id")
        )
    )


def get_template(session: Session, facility_id: str, template_id: str) -> VisitTemplateRow | None:
    return session.get(VisitTemplateRow, (facility_id, template_id))


def list_templates(session: Session, facility_id: str) -> list[VisitTemplateRow]:
    return list(
        session.scalars(
            select(VisitTemplateRow)
            .where(VisitTemplateRow.facility_id == facility_id)
            .order_by(VisitTemplateRow.id)
        )
    )


def add(session: Session, row: object) -> None:
    session.add(row)
    session.flush()


# -- blocks --------------------------------------------------------------------


def blocks_between(
    session: Session, facility_id: str, first: date, last: date
) -> list[VisitBlockRow]:
    return list(
        session.scalars(
            select(VisitBlockRow)
            .where(
                VisitBlockRow.facility_id == facility_id,
                VisitBlockRow.on_date >= first,
                VisitBlockRow.on_date <= last,
                VisitBlockRow.lifted_at.is_(None),
            )
            .order_by(VisitBlockRow.on_date, VisitBlockRow.id)
        )
    )


# -- slots ---------------------------------------------------------------------


def slots_between(
    session: Session, facility_id: str, first: date, last: date
) -> list[VisitSlotRow]:
    return list(
        session.scalars(
            select(VisitSlotRow).where(
                VisitSlotRow.facility_id == facility_id,
                VisitSlotRow.on_date >= first,
                VisitSlotRow.on_date <= last,
            )
        )
    )


def ensure_slot(session: Session, values: dict[str, object]) -> None:
    """Insert the slot unless it exists (two bookings may create it at once)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(VisitSlotRow).values(**values)
    session.execute(
        statement.on_conflict_do_nothing(index_elements=["facility_id", "template_id", "on_date"])
    )


def lock_slot_of(
    session: Session, facility_id: str, template_id: str, on: date
) -> VisitSlotRow | None:
    """The slot of a template on a date, locked until the transaction ends."""
    return session.scalars(
        select(VisitSlotRow)
        .where(
            VisitSlotRow.facility_id == facility_id,
            VisitSlotRow.template_id == template_id,
            VisitSlotRow.on_date == on,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def lock_slot(session: Session, facility_id: str, slot_id: int) -> VisitSlotRow | None:
    return session.scalars(
        select(VisitSlotRow)
        .where(VisitSlotRow.facility_id == facility_id, VisitSlotRow.id == slot_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def get_slot(session: Session, facility_id: str, slot_id: int) -> VisitSlotRow | None:
    return session.scalars(
        select(VisitSlotRow).where(
            VisitSlotRow.facility_id == facility_id, VisitSlotRow.id == slot_id
        )
    ).one_or_none()


def slots_on(session: Session, facility_id: str, on: date, room_id: str | None) -> list[int]:
    """Ids of the slots on a date (in one room, or all rooms)."""
    query = select(VisitSlotRow.id).where(
        VisitSlotRow.facility_id == facility_id, VisitSlotRow.on_date == on
    )
    if room_id is not None:
        query = query.where(VisitSlotRow.room_id == room_id)
    return sorted(session.scalars(query))


# -- bookings ------------------------------------------------------------------


def get_booking(session: Session, facility_id: str, booking_id: int) -> VisitBookingRow | None:
    return session.scalars(
        select(VisitBookingRow)
        .where(VisitBookingRow.facility_id == facility_id, VisitBookingRow.id == booking_id)
        .execution_options(populate_existing=True)
    ).one_or_none()


def booking_by_key(session: Session, facility_id: str, key: str) -> VisitBookingRow | None:
    return session.scalars(
        select(VisitBookingRow).where(
            VisitBookingRow.facility_id == facility_id, VisitBookingRow.idempotency_key == key
        )
    ).one_or_none()


def booking_visitors(session: Session, facility_id: str, booking_id: int) -> list[str]:
    return list(
        session.scalars(
            select(VisitBookingVisitorRow.contact_id)
            .where(
                VisitBookingVisitorRow.facility_id == facility_id,
                VisitBookingVisitorRow.booking_id == booking_id,
            )
            .order_by(VisitBookingVisitorRow.contact_id)
        )
    )


def add_booking_visitors(
    session: Session, facility_id: str, booking_id: int, contact_ids: Iterable[str]
) -> None:
    session.add_all(
        VisitBookingVisitorRow(facility_id=facility_id, booking_id=booking_id, contact_id=c)
        for c in contact_ids
    )
    session.flush()


def bookings_in_slot(
    session: Session, facility_id: str, slot_id: int, statuses: Sequence[str]
) -> list[VisitBookingRow]:
    return list(
        session.scalars(
            select(VisitBookingRow)
            .where(
                VisitBookingRow.facility_id == facility_id,
                VisitBookingRow.slot_id == slot_id,
                VisitBookingRow.status.in_(statuses),
            )
            .order_by(VisitBookingRow.id)
        )
    )


def person_bookings_at(
    session: Session, facility_id: str, person_id: str, on: date, statuses: Sequence[str]
) -> list[tuple[int, datetime, datetime]]:
    """(booking id, start, end) of the person's bookings on a date."""
    rows = session.execute(
        select(VisitBookingRow.id, VisitSlotRow.starts_at, VisitSlotRow.ends_at)
        .join(
            VisitSlotRow,
            (VisitSlotRow.facility_id == VisitBookingRow.facility_id)
            & (VisitSlotRow.id == VisitBookingRow.slot_id),
        )
        .where(
            VisitBookingRow.facility_id == facility_id,
            VisitBookingRow.person_id == person_id,
            VisitBookingRow.status.in_(statuses),
            VisitSlotRow.on_date == on,
        )
    )
    return [(booking_id, starts, ends) for booking_id, starts, ends in rows]


def list_bookings(
    session: Session,
    facility_id: str,
    *,
    person_id: str | None,
    first: date | None,
    last: date | None,
    status: str | None,
) -> list[tuple[VisitBookingRow, VisitSlotRow]]:
    query = (
        select(VisitBookingRow, VisitSlotRow)
        .join(
            VisitSlotRow,
            (VisitSlotRow.facility_id == VisitBookingRow.facility_id)
            & (VisitSlotRow.id == VisitBookingRow.slot_id),
        )
        .where(VisitBookingRow.facility_id == facility_id)
    )
    if person_id is not None:
        query = query.where(VisitBookingRow.person_id == person_id)
    if first is not None:
        query = query.where(VisitSlotRow.on_date >= first)
    if last is not None:
        query = query.where(VisitSlotRow.on_date <= last)
    if status is not None:
        query = query.where(VisitBookingRow.status == status)
    query = query.order_by(VisitSlotRow.starts_at, VisitBookingRow.id).limit(1000)
    return [(row[0], row[1]) for row in session.execute(query)]


def due_bookings(
    session: Session, statuses: Sequence[str], *, expiring_by: datetime | None = None
) -> list[tuple[str, int, str, datetime | None]]:
    """(facility, booking id, person, requested at) of bookings in ``statuses``;
    with ``expiring_by``, only those whose reservation expired by then."""
    query = select(
        VisitBookingRow.facility_id,
        VisitBookingRow.id,
        VisitBookingRow.person_id,
        VisitBookingRow.requested_at,
    ).where(VisitBookingRow.status.in_(statuses))
    if expiring_by is not None:
        query = query.where(VisitBookingRow.expires_at <= expiring_by)
    return [(f, i, p, r) for f, i, p, r in session.execute(query.limit(10_000))]


# -- non-associations and contacts (read only) ----------------------------------


def non_associates(session: Session, facility_id: str, person_id: str) -> set[str]:
    """People who must not share a visiting session with this person (either direction)."""
    rows = session.execute(
        select(NonAssociationRow.person_id, NonAssociationRow.other_person_id).where(
            NonAssociationRow.facility_id == facility_id,
            NonAssociationRow.ended_at.is_(None),
            or_(
                NonAssociationRow.person_id == person_id,
                NonAssociationRow.other_person_id == person_id,
            ),
        )
    )
    return {other if mine == person_id else mine for mine, other in rows}


def contacts(session: Session, facility_id: str, contact_ids: Sequence[str]) -> list[ContactRow]:
    return list(
        session.scalars(
            select(ContactRow).where(
                ContactRow.facility_id == facility_id, ContactRow.id.in_(contact_ids)
            )
        )
    )
