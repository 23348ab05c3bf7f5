"""Routes of visiting rooms, session templates, blocks, slots and bookings.

A booking's answer is ``allowed`` with the booking, or ``allowed: false`` with
the reason (``no_capacity``, ``visitor_not_approved``, an engine reason...): a
refusal is an answer, not an error, as at the call path. Staff book (a visit
is ``booked`` at once); anyone else requests (``requested`` until staff answer).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from kinline import access
from kinline.access import Access, Params, allowed, whole
from kinline.db.engine import Database
from kinline.http import in_thread
from kinline.identity.model import Action, Kind, Record, Target
from kinline.people.model import Facility
from kinline.visits import booking, sessions, upkeep
from kinline.visits.booking import Answer, Booking
from kinline.visits.booking_schemas import (
    AnswerIn,
    AvailabilityOut,
    BlockIn,
    BlockOut,
    BookIn,
    BookingAnswerOut,
    BookingOut,
    CompleteIn,
    LocalTimeOut,
    NonAssociationIn,
    NonAssociationOut,
    ReasonIn,
    RescheduleIn,
    RoomIn,
    RoomOut,
    SlotOut,
    TemplateIn,
    TemplateOut,
    VisitorTimeOut,
)
from kinline.visits.calendar import LocalTime
from kinline.visits.slots import Booker, Template
from kinline.visits.statuses import VisitStatus

router = APIRouter(prefix="/v1/visits", tags=["visits"])
BookingId = Annotated[int, Path(ge=1, le=2_147_483_647)]


def booking_target(db: Database, place: Facility, params: Params) -> Target:
    """A booking: the person visited and its first visitor."""
    person_id, visitors = booking.booking_parties(db, place.id, whole(params, "booking_id"))
    return Target(
        place.id, Record.VISIT, person_id=person_id, contact_id=visitors[0] if visitors else None
    )


Manage = Annotated[Access, allowed(Action.VISIT_MANAGE)]
Read = Annotated[Access, allowed(Action.VISIT_READ)]
BookOne = Annotated[Access, allowed(Action.VISIT_BOOK, booking_target)]
ManageOne = Annotated[Access, allowed(Action.VISIT_MANAGE, booking_target)]


def _now() -> datetime:
    return datetime.now(UTC)


def _template_out(t: Template) -> TemplateOut:
    return TemplateOut(
        id=t.id,
        room_id=t.room_id,
        weekday=t.weekday,
        starts=t.starts.isoformat("minutes"),
        ends=t.ends.isoformat("minutes"),
        kind=str(t.kind),
        capacity_open=t.capacity_open,
        capacity_closed=t.capacity_closed,
        valid_from=t.valid_from,
        valid_to=t.valid_to,
        every_weeks=t.every_weeks,
        excluded_dates=sorted(t.excluded),
    )


def _local(shown: LocalTime) -> LocalTimeOut:
    return LocalTimeOut(
        timezone=shown.timezone,
        starts=shown.starts.isoformat(),
        ends=shown.ends.isoformat(),
        utc_offset=shown.utc_offset,
    )


def booking_out(b: Booking) -> BookingOut:
    return BookingOut(
        id=b.id,
        person_id=b.person_id,
        visitors=list(b.visitors),
        template_id=b.template_id,
        room_id=b.room_id,
        date=b.day,
        kind=str(b.kind),
        setting=b.setting,
        status=str(b.status),
        booker=str(b.booker),
        starts_at=b.starts_at.astimezone(UTC).isoformat(),
        ends_at=b.ends_at.astimezone(UTC).isoformat(),
        expires_at=None if b.expires_at is None else b.expires_at.astimezone(UTC).isoformat(),
        cancel_reason=b.cancel_reason,
        cancelled_by=b.cancelled_by,
        session_id=b.session_id,
        facility_time=_local(b.facility_time),
        visitor_times=[
            VisitorTimeOut(contact_id=t.contact_id, name=t.name, local=_local(t.local))
            for t in b.visitor_times
        ],
    )


def answer_out(answer: Answer) -> BookingAnswerOut:
    return BookingAnswerOut(
        allowed=answer.allowed,
        reason=answer.reason,
        detail=answer.detail,
        contact_id=answer.contact_id,
        rules=list(answer.rules),
        booking=None if answer.booking is None else booking_out(answer.booking),
    )


# -- rooms, templates, blocks, slots ----------------------------------------------


@router.post("/rooms", response_model=RoomOut, status_code=201, summary="Add a visiting room")
async def add_room(body: RoomIn, grant: Manage) -> RoomOut:
    room = await in_thread(
        sessions.add_room,
        grant.db,
        grant.facility.id,
        body.id,
        body.name,
        actor=grant.actor,
        at=_now(),
    )
    return RoomOut(id=room.id, name=room.name)


@router.get("/rooms", response_model=list[RoomOut], summary="List the visiting rooms")
async def list_rooms(grant: Read) -> list[RoomOut]:
    rooms = await in_thread(sessions.list_rooms, grant.db, grant.facility.id)
    return [RoomOut(id=r.id, name=r.name) for r in rooms]


@router.post(
    "/templates",
    response_model=TemplateOut,
    status_code=201,
    summary="Add a session template: a room on a weekday, weekly or fortnightly",
)
async def add_template(body: TemplateIn, grant: Manage) -> TemplateOut:
    template = await in_thread(
        sessions.add_template,
        grant.db,
        grant.facility.id,
        body.id,
        room_id=body.room_id,
        weekday=body.weekday,
        starts=body.starts,
        ends=body.ends,
        kind=body.kind,
        capacity_open=body.capacity_open,
        capacity_closed=body.capacity_closed,
        valid_from=body.valid_from,
        valid_to=body.valid_to,
        every_weeks=body.every_weeks,
        excluded=frozenset(body.excluded_dates),
        actor=grant.actor,
        at=_now(),
    )
    return _template_out(template)


@router.get("/templates", response_model=list[TemplateOut], summary="List session templates")
async def list_templates(grant: Read) -> list[TemplateOut]:
    found = await in_thread(sessions.list_templates, grant.db, grant.facility.id)
    return [_template_out(t) for t in found]


@router.post(
    "/blocks",
    response_model=BlockOut,
    status_code=201,
    summary="Block a date (one room or all): its bookings are cancelled and visitors told",
)
async def add_block(body: BlockIn, grant: Manage) -> BlockOut:
    result = await in_thread(
        upkeep.block,
        grant.db,
        grant.facility.id,
        body.date,
        room_id=body.room_id,
        reason=body.reason,
        actor=grant.actor,
        now=_now(),
    )
    return BlockOut(block_id=result.block_id, cancelled=list(result.cancelled))


@router.get("/slots", response_model=list[SlotOut], summary="Sessions offered, with places left")
async def list_slots(
    grant: Read,
    first: Annotated[date, Query()],
    last: Annotated[date, Query()],
    kind: Annotated[str | None, Query(max_length=16)] = None,
) -> list[SlotOut]:
    wanted = None if kind is None else sessions.parse_kind(kind)
    found = await in_thread(
        sessions.list_slots, grant.db, grant.facility.id, first, last, kind=wanted
    )
    zone = grant.facility.zone
    return [
        SlotOut(
            template_id=v.occurrence.template_id,
            room_id=v.occurrence.room_id,
            date=v.occurrence.day,
            kind=str(v.occurrence.kind),
            starts_at=v.occurrence.starts_at.isoformat(),
            ends_at=v.occurrence.ends_at.isoformat(),
            local_start=v.occurrence.starts_at.astimezone(zone).isoformat(),
            local_end=v.occurrence.ends_at.astimezone(zone).isoformat(),
            free_open=v.free_open,
            free_closed=v.free_closed,
        )
        for v in found
    ]


# -- bookings ------------------------------------------------------------------


@router.post(
    "/bookings",
    response_model=BookingAnswerOut,
    summary="Book (staff) or request (others) a visit, or reserve its place for a while",
)
async def book(
    body: BookIn, grant: Annotated[Access, allowed(Action.VISIT_BOOK)]
) -> BookingAnswerOut:
    grant.require(
        Target(
            grant.facility.id, Record.VISIT, person_id=body.person_id, contact_id=body.visitors[0]
        )
    )
    booker = Booker.STAFF if grant.subject.kind is Kind.STAFF else Booker.PUBLIC
    answer = await in_thread(
        booking.book,
        grant.db,
        grant.facility.id,
        body.person_id,
        body.template_id,
        body.date,
        body.visitors,
        booker=booker,
        actor=grant.actor,
        now=_now(),
        reserve_only=body.reserve_only,
        idempotency_key=body.idempotency_key,
    )
    return answer_out(answer)


@router.get("/bookings", response_model=list[BookingOut], summary="List visit bookings")
async def list_bookings(
    grant: Read,
    person_id: Annotated[str | None, Query(max_length=64)] = None,
    first: Annotated[date | None, Query()] = None,
    last: Annotated[date | None, Query()] = None,
    status: Annotated[VisitStatus | None, Query()] = None,
) -> list[BookingOut]:
    found = await in_thread(
        booking.list_bookings,
        grant.db,
        grant.facility.id,
        person_id=person_id,
        first=first,
        last=last,
        status=status,
    )
    return [
        booking_out(b)
        for b in found
        if grant.sees(
            Target(
                grant.facility.id,
                Record.VISIT,
                person_id=b.person_id,
                contact_id=b.visitors[0] if b.visitors else None,
            )
        )
    ]


@router.get("/bookings/{booking_id}", response_model=BookingOut, summary="Read a booking")
async def read_booking(
    booking_id: BookingId,
    grant: Annotated[Access, allowed(Action.VISIT_READ, booking_target)],
) -> BookingOut:
    return booking_out(
        await in_thread(booking.get_booking, grant.db, grant.facility.id, booking_id)
    )


@router.post(
    "/bookings/{booking_id}/confirm",
    response_model=BookingOut,
    summary="Complete a reservation before it lapses",
)
async def confirm(booking_id: BookingId, grant: BookOne) -> BookingOut:
    done = await in_thread(
        booking.confirm, grant.db, grant.facility.id, booking_id, actor=grant.actor, now=_now()
    )
    return booking_out(done)


@router.post(
    "/bookings/{booking_id}/answer",
    response_model=BookingOut,
    summary="Accept a requested visit, or refuse it with a reason",
)
async def answer(booking_id: BookingId, body: AnswerIn, grant: ManageOne) -> BookingOut:
    done = await in_thread(
        booking.answer_request,
        grant.db,
        grant.facility.id,
        booking_id,
        accept=body.accept,
        reason=body.reason,
        actor=grant.actor,
        now=_now(),
    )
    return booking_out(done)


@router.post(
    "/bookings/{booking_id}/cancel", response_model=BookingOut, summary="Cancel a visit, saying why"
)
async def cancel(booking_id: BookingId, body: ReasonIn, grant: BookOne) -> BookingOut:
    done = await in_thread(
        booking.cancel,
        grant.db,
        grant.facility.id,
        booking_id,
        reason=body.reason,
        actor=grant.actor,
        now=_now(),
    )
    return booking_out(done)


@router.post(
    "/bookings/{booking_id}/reschedule",
    response_model=BookingAnswerOut,
    summary="Move a visit to another session: cancel and book at once, or nothing changes",
)
async def reschedule(booking_id: BookingId, body: RescheduleIn, grant: BookOne) -> BookingAnswerOut:
    answer = await in_thread(
        booking.reschedule,
        grant.db,
        grant.facility.id,
        booking_id,
        body.template_id,
        body.date,
        reason=body.reason,
        actor=grant.actor,
        now=_now(),
    )
    return answer_out(answer)


@router.post(
    "/bookings/{booking_id}/check-in", response_model=BookingOut, summary="The visitors arrived"
)
async def check_in(booking_id: BookingId, grant: ManageOne) -> BookingOut:
    done = await in_thread(
        booking.check_in, grant.db, grant.facility.id, booking_id, actor=grant.actor, now=_now()
    )
    return booking_out(done)


@router.post(
    "/bookings/{booking_id}/complete",
    response_model=BookingOut,
    summary="The visit happened: a completed session that counts against visit quotas",
)
async def complete(booking_id: BookingId, body: CompleteIn, grant: ManageOne) -> BookingOut:
    done = await in_thread(
        booking.complete,
        grant.db,
        grant.facility.id,
        booking_id,
        minutes=body.minutes,
        actor=grant.actor,
        now=_now(),
    )
    return booking_out(done)


@router.post("/bookings/{booking_id}/no-show", response_model=BookingOut, summary="Nobody came")
async def no_show(booking_id: BookingId, grant: ManageOne) -> BookingOut:
    done = await in_thread(
        booking.no_show, grant.db, grant.facility.id, booking_id, actor=grant.actor, now=_now()
    )
    return booking_out(done)


@router.post(
    "/non-associations",
    response_model=NonAssociationOut,
    status_code=201,
    summary="Keep two people out of the same visiting session",
)
async def add_non_association(body: NonAssociationIn, grant: Manage) -> NonAssociationOut:
    for who in (body.person_id, body.other_person_id):
        grant.require(Target(grant.facility.id, Record.PERSON, person_id=who))
    found = await in_thread(
        upkeep.record_non_association,
        grant.db,
        grant.facility.id,
        body.person_id,
        body.other_person_id,
        reason=body.reason,
        actor=grant.actor,
        at=_now(),
    )
    return NonAssociationOut(
        id=found, person_id=body.person_id, other_person_id=body.other_person_id
    )


@router.get(
    "/availability",
    response_model=list[AvailabilityOut],
    summary="Sessions a person and a group of visitors could book now, or why not",
)
async def availability(
    person_id: Annotated[str, Query(min_length=1, max_length=64)],
    visitors: Annotated[list[str], Query(min_length=1, max_length=10)],
    first: Annotated[date, Query()],
    last: Annotated[date, Query()],
    grant: Annotated[Access, allowed(Action.VISIT_READ, access.person)],
) -> list[AvailabilityOut]:
    booker = Booker.STAFF if grant.subject.kind is Kind.STAFF else Booker.PUBLIC
    found = await in_thread(
        booking.available_slots,
        grant.db,
        grant.facility.id,
        person_id,
        visitors,
        first,
        last,
        booker=booker,
        now=_now(),
    )
    return [
        AvailabilityOut(
            template_id=a.template_id,
            room_id=a.room_id,
            date=a.day,
            kind=str(a.kind),
            starts_at=a.starts_at.isoformat(),
            ends_at=a.ends_at.isoformat(),
            allowed=a.allowed,
            reason=a.reason,
            detail=a.detail,
            contact_id=a.contact_id,
        )
        for a in found
    ]
