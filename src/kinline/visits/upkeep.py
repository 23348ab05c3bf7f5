"""Upkeep of visits: blocking a date or a room, and the sweep that frees lapsed
reservations and refuses requests left unanswered; one transaction each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from kinline.audit.service import facility_chain, person_chain, record_event
from kinline.db.engine import Database
from kinline.db.routing import cross_facility
from kinline.db.tables import NonAssociationRow, VisitBlockRow
from kinline.errors import AlreadyExists, InvalidInput, NotFound
from kinline.people.service import require_facility, require_person
from kinline.visits import booking_repository as repository
from kinline.visits.booking import UPCOMING, cancel_in, check_reason, open_booking
from kinline.visits.statuses import CancelReason, VisitStatus, lapsed, refusal_due
from kinline.visits.visitors import settings_in

# -- blocks ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlockResult:
    block_id: int
    cancelled: tuple[int, ...]


def block(
    db: Database,
    facility_id: str,
    day: date,
    *,
    room_id: str | None,
    reason: str,
    actor: str,
    now: datetime,
) -> BlockResult:
    """Take a date (of one room, or every room) out of service: every booking it
    hits is cancelled with the reason, and its visitors told."""
    check_reason(reason)
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        if room_id is not None and repository.get_room(session, facility_id, room_id) is None:
            raise NotFound(f"no room {room_id!r}", field="room_id")
        row = VisitBlockRow(
            facility_id=facility_id,
            room_id=room_id,
            on_date=day,
            reason=reason,
            blocked_by=actor,
            blocked_at=now,
        )
        repository.add(session, row)
        slot_ids = repository.slots_on(session, facility_id, day, room_id)
        hit = [
            b
            for slot_id in slot_ids
            for b in repository.bookings_in_slot(session, facility_id, slot_id, UPCOMING)
        ]
        for person_id in sorted({b.person_id for b in hit}):
            require_person(session, facility_id, person_id, lock=True)
        cancelled: list[int] = []
        for slot_id in slot_ids:
            slot = repository.lock_slot(session, facility_id, slot_id)
            assert slot is not None
            slot.blocked_at = now
            slot.block_reason = reason
            for booking in repository.bookings_in_slot(session, facility_id, slot_id, UPCOMING):
                require_person(session, facility_id, booking.person_id, lock=True)
                cancel_in(
                    session, facility, booking, slot, CancelReason.BLOCKED, reason, actor, now
                )
                cancelled.append(booking.id)
        record_event(
            session,
            facility_id=facility_id,
            chain=facility_chain(facility_id),
            actor=actor,
            tag="visits:block:added",
            payload={
                "block_id": row.id,
                "date": day,
                "room_id": room_id,
                "reason": reason,
                "cancelled": cancelled,
            },
            at=now,
        )
        return BlockResult(row.id, tuple(cancelled))


# -- the sweep -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VisitSweep:
    lapsed: int
    refused: int


def sweep_visits(db: Database, *, now: datetime, actor: str = "kinline:sweep") -> VisitSweep:
    """Free lapsed reservations and refuse requests staff left unanswered past the
    facility's hours; each in its own transaction."""
    with cross_facility("visit-sweep"), db.transaction() as session:
        due = repository.due_bookings(session, [str(VisitStatus.RESERVED)], expiring_by=now)
        asked = repository.due_bookings(session, [str(VisitStatus.REQUESTED)])
    freed = refused = 0
    for facility_id, booking_id, _person, _at in due:
        with db.transaction() as session:
            facility, row, slot = open_booking(session, facility_id, booking_id)
            if lapsed(VisitStatus(row.status), row.expires_at, now):
                cancel_in(
                    session,
                    facility,
                    row,
                    slot,
                    CancelReason.RESERVATION_LAPSED,
                    "the reservation lapsed",
                    actor,
                    now,
                )
                freed += 1
    hours: dict[str, int] = {}
    for facility_id, booking_id, _person, requested_at in asked:
        if facility_id not in hours:
            with db.transaction() as session:
                hours[facility_id] = settings_in(session, facility_id).auto_refuse_hours
        if requested_at is None or not refusal_due(requested_at, hours[facility_id], now):
            continue
        with db.transaction() as session:
            facility, row, slot = open_booking(session, facility_id, booking_id)
            if row.status == VisitStatus.REQUESTED:
                words = f"the request was not answered within {hours[facility_id]} hours"
                cancel_in(
                    session, facility, row, slot, CancelReason.AUTO_REFUSED, words, actor, now
                )
                refused += 1
    return VisitSweep(freed, refused)


# -- non-associations --------------------------------------------------------------


def record_non_association(
    db: Database,
    facility_id: str,
    person_id: str,
    other_person_id: str,
    *,
    reason: str,
    actor: str,
    at: datetime,
) -> int:
    """Two people who must not be booked into the same visiting session (security's
    word; each of them is kept apart from the other). Returns its id."""
    check_reason(reason)
    if person_id == other_person_id:
        raise InvalidInput("a person cannot be kept apart from themselves", field="other_person_id")
    with db.transaction() as session:
        require_facility(session, facility_id)
        for who in sorted({person_id, other_person_id}):
            require_person(session, facility_id, who)
        if other_person_id in repository.non_associates(session, facility_id, person_id):
            raise AlreadyExists(
                f"{person_id!r} and {other_person_id!r} are already kept apart",
                field="other_person_id",
            )
        row = NonAssociationRow(
            facility_id=facility_id,
            person_id=person_id,
            other_person_id=other_person_id,
            reason=reason,
            recorded_at=at,
            recorded_by=actor,
        )
        repository.add(session, row)
        for who, other in ((person_id, other_person_id), (other_person_id, person_id)):
            record_event(
                session,
                facility_id=facility_id,
                chain=person_chain(facility_id, who),
                actor=actor,
                tag="visits:non_association:recorded",
                payload={"id": row.id, "other_person_id": other, "reason": reason},
                at=at,
            )
        return row.id
