"""Booking a visit and everything that happens to it after; one transaction each.

Every step that changes a booking first locks the person's allowance ledger
(``require_person(lock=True)``, as the call path does), then the session's
slot row: always in that order, so two steps never wait on each other in a
circle. A booking is allowed only when every check of the issue passes, in
this order, and a refusal names the first that failed: the session is offered
and not blocked; the date is inside the booker's window; the session is not
full whatever the setting; every visitor is the
person's, approved and not banned; the group fits the facility's limits; the
person has no other visit then; no non-associated person is in the session;
the engine allows the channel for the person and each visitor at the start
(its reasons); the session has a place of the setting required; then the
visit is held in the usage ledger (``calls.service.hold_visit``) and takes
its place. A reservation that lapsed is freed by the next booking of its
session or by the sweep, whichever comes first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.orm import Session

from kinline.audit.service import person_chain, record_event
from kinline.calls.service import ExplainedDecision, decide_in, hold_visit, settle_visit
from kinline.db.engine import Database
from kinline.db.tables import VisitBookingRow, VisitSlotRow
from kinline.errors import Conflict, InvalidInput, NotFound, WrongState
from kinline.notices.delivery.outbox import enqueue_message
from kinline.notices.messages import visit_email
from kinline.notices.model import Change, ChangeFacts
from kinline.notices.service import write_notices
from kinline.people.model import Facility
from kinline.people.service import require_facility, require_person
from kinline.rules.model import Setting
from kinline.rules.periods import local
from kinline.visits import booking_repository as repository
from kinline.visits import calendar, slots
from kinline.visits.calendar import LocalTime
from kinline.visits.model import VisitSettings
from kinline.visits.sessions import check_range, template_of
from kinline.visits.slots import Booker, Place, Refusal, SessionKind
from kinline.visits.statuses import (
    CancelReason,
    VisitStatus,
    lapsed,
    may_move,
    reservation_expiry,
)
from kinline.visits.visitors import settings_in, standings, visitor_timezone

MAX_VISITORS = 10
MAX_REASON = 2000
HOLDING = tuple(str(s) for s in VisitStatus if s.holds_place and s is not VisitStatus.COMPLETED)
UPCOMING = tuple(str(s) for s in VisitStatus if s.upcoming)


@dataclass(frozen=True, slots=True)
class VisitorTime:
    contact_id: str
    name: str
    local: LocalTime


@dataclass(frozen=True, slots=True)
class Booking:
    id: int
    person_id: str
    visitors: tuple[str, ...]
    slot_id: int
    template_id: str
    room_id: str
    day: date
    starts_at: datetime
    ends_at: datetime
    kind: SessionKind
    setting: str
    status: VisitStatus
    booker: Booker
    expires_at: datetime | None
    cancel_reason: str | None
    cancelled_by: str | None
    session_id: int | None
    facility_time: LocalTime
    visitor_times: tuple[VisitorTime, ...] = ()


@dataclass(frozen=True, slots=True)
class Answer:
    """A booking made, or the reason it was refused (``no_capacity``, an engine
    reason, ...), the visitor it concerns and what it means in plain words."""

    allowed: bool
    reason: str | None = None
    detail: str | None = None
    contact_id: str | None = None
    booking: Booking | None = None
    rules: tuple[str, ...] = field(default_factory=tuple)


class _Refused(Exception):
    def __init__(self, reason: str, detail: str, contact_id: str | None = None) -> None:
        super().__init__(detail)
        self.answer = Answer(False, reason, detail, contact_id)


def check_reason(reason: str | None, field: str = "reason") -> str | None:
    if reason is not None and (not reason.strip() or len(reason) > MAX_REASON):
        raise InvalidInput(f"must be 1 to {MAX_REASON} characters", field=field)
    return reason


# -- reading -------------------------------------------------------------------


def _booking(
    session: Session, facility: Facility, row: VisitBookingRow, slot: VisitSlotRow
) -> Booking:
    visitors = repository.booking_visitors(session, facility.id, row.id)
    times: list[VisitorTime] = []
    if slot.kind == SessionKind.VIDEO:
        for contact in repository.contacts(session, facility.id, visitors):
            zone = calendar.visitor_zone(
                visitor_timezone(session, facility.id, contact.id),
                contact.country,
                facility.timezone,
            )
            times.append(
                VisitorTime(
                    contact.id,
                    contact.name,
                    calendar.local_time(slot.starts_at, slot.ends_at, zone),
                )
            )
    return Booking(
        id=row.id,
        person_id=row.person_id,
        visitors=tuple(visitors),
        slot_id=slot.id,
        template_id=slot.template_id,
        room_id=slot.room_id,
        day=slot.on_date,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        kind=SessionKind(slot.kind),
        setting=row.setting,
        status=VisitStatus(row.status),
        booker=Booker(row.booker_kind),
        expires_at=row.expires_at,
        cancel_reason=row.cancel_reason,
        cancelled_by=row.cancelled_by,
        session_id=row.session_id,
        facility_time=calendar.local_time(slot.starts_at, slot.ends_at, facility.timezone),
        visitor_times=tuple(times),
    )


def get_booking(db: Database, facility_id: str, booking_id: int) -> Booking:
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        row, slot = _found(session, facility_id, booking_id)
        return _booking(session, facility, row, slot)


def booking_parties(db: Database, facility_id: str, booking_id: int) -> tuple[str, list[str]]:
    """The person visited and the visitors' contact ids (what access reads)."""
    with db.transaction() as session:
        row, _slot = _found(session, facility_id, booking_id)
        return row.person_id, repository.booking_visitors(session, facility_id, row.id)


def list_bookings(
    db: Database,
    facility_id: str,
    *,
    person_id: str | None = None,
    first: date | None = None,
    last: date | None = None,
    status: VisitStatus | None = None,
) -> list[Booking]:
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        found = repository.list_bookings(
            session,
            facility_id,
            person_id=person_id,
            first=first,
            last=last,
            status=None if status is None else str(status),
        )
        return [_booking(session, facility, row, slot) for row, slot in found]


def _found(
    session: Session, facility_id: str, booking_id: int
) -> tuple[VisitBookingRow, VisitSlotRow]:
    row = repository.get_booking(session, facility_id, booking_id)
    if row is None:
        raise NotFound(f"no visit booking {booking_id}", field="booking_id")
    slot = repository.get_slot(session, facility_id, row.slot_id)
    assert slot is not None
    return row, slot


# -- booking -------------------------------------------------------------------


def book(
    db: Database,
    facility_id: str,
    person_id: str,
    template_id: str,
    day: date,
    visitors: Sequence[str],
    *,
    booker: Booker | str,
    actor: str,
    now: datetime,
    reserve_only: bool = False,
    idempotency_key: str | None = None,
) -> Answer:
    """Book a visit (staff: ``booked``; the public: ``requested``, until staff
    answer), or with ``reserve_only`` hold its place for the facility's
    reservation minutes until ``confirm``. A refusal is an answer, not an error:
    what was freed on the way (lapsed reservations) stays freed."""
    booker = _booker(booker)
    visitors = _visitors(visitors)
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        require_person(session, facility_id, person_id, lock=True)
        if idempotency_key is not None:
            earlier = repository.booking_by_key(session, facility_id, idempotency_key)
            if earlier is not None:
                if earlier.person_id != person_id:
                    raise Conflict("this idempotency key was used for another booking")
                _row, slot = _found(session, facility_id, earlier.id)
                return Answer(True, booking=_booking(session, facility, earlier, slot))
        try:
            row, slot = _take_place(
                session, facility, person_id, template_id, day, visitors, booker, actor, now
            )
        except _Refused as refused:
            record_event(
                session,
                facility_id=facility_id,
                chain=person_chain(facility_id, person_id),
                actor=actor,
                tag="visits:booking:refused",
                payload={
                    "template_id": template_id,
                    "date": day,
                    "visitors": list(visitors),
                    "reason": refused.answer.reason,
                    "contact_id": refused.answer.contact_id,
                    "detail": refused.answer.detail,
                },
                at=now,
            )
            return refused.answer
        row.idempotency_key = idempotency_key
        if not reserve_only:
            _confirm(session, facility, row, slot, actor, now)
        session.flush()
        return Answer(True, booking=_booking(session, facility, row, slot))


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether a person and a group of visitors could book one session now, and
    if not, the reason a booking would be refused."""

    template_id: str
    room_id: str
    day: date
    starts_at: datetime
    ends_at: datetime
    kind: SessionKind
    allowed: bool
    reason: str | None
    detail: str | None
    contact_id: str | None


MAX_AVAILABILITY_DAYS = 62


def available_slots(
    db: Database,
    facility_id: str,
    person_id: str,
    visitors: Sequence[str],
    first: date,
    last: date,
    *,
    booker: Booker | str,
    now: datetime,
) -> list[Availability]:
    """Every session from ``first`` to ``last`` with whether this person and these
    visitors could book it now: each is tried exactly as ``book`` would, every
    check included, inside a savepoint that is then rolled back, so the answer
    and a booking can never disagree and nothing is written."""
    booker = _booker(booker)
    visitors = _visitors(visitors)
    check_range(first, last)
    if (last - first).days >= MAX_AVAILABILITY_DAYS:
        raise InvalidInput(f"at most {MAX_AVAILABILITY_DAYS} days at once", field="last")
    found: list[Availability] = []
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        require_person(session, facility_id, person_id, lock=True)
        templates = [template_of(row) for row in repository.list_templates(session, facility_id)]
        for occ in slots.occurrences(templates, [], first, last, facility.zone):
            trial = session.begin_nested()
            refused: Answer | None = None
            try:
                _take_place(
                    session, facility, person_id, occ.template_id, occ.day, visitors, booker,
                    "kinline:availability", now,
                )  # fmt: skip
            except _Refused as refusal:
                refused = refusal.answer
            finally:
                trial.rollback()
            found.append(
                Availability(
                    template_id=occ.template_id,
                    room_id=occ.room_id,
                    day=occ.day,
                    starts_at=occ.starts_at,
                    ends_at=occ.ends_at,
                    kind=occ.kind,
                    allowed=refused is None,
                    reason=None if refused is None else refused.reason,
                    detail=None if refused is None else refused.detail,
                    contact_id=None if refused is None else refused.contact_id,
                )
            )
    return found


def _booker(value: Booker | str) -> Booker:
    try:
        return Booker(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not staff or public", field="booker") from None


def _visitors(visitors: Sequence[str]) -> tuple[str, ...]:
    unique = tuple(dict.fromkeys(visitors))
    if not unique:
        raise InvalidInput("name at least one visitor", field="visitors")
    if len(unique) > MAX_VISITORS:
        raise InvalidInput(f"at most {MAX_VISITORS} visitors", field="visitors")
    return unique


def _take_place(
    session: Session,
    facility: Facility,
    person_id: str,
    template_id: str,
    day: date,
    visitors: tuple[str, ...],
    booker: Booker,
    actor: str,
    now: datetime,
) -> tuple[VisitBookingRow, VisitSlotRow]:
    """Every check, then the place; raises ``_Refused`` naming the first that failed."""
    template_row = repository.get_template(session, facility.id, template_id)
    if template_row is None:
        raise NotFound(f"no session template {template_id!r}", field="template_id")
    template = template_of(template_row)
    if not slots.occurs_on(template, day):
        raise InvalidInput(f"session {template_id!r} is not offered on {day}", field="date")
    settings = settings_in(session, facility.id)
    blocks = [
        slots.Block(b.on_date, b.room_id, b.reason)
        for b in repository.blocks_between(session, facility.id, day, day)
    ]
    hit = slots.blocking(blocks, template.room_id, day)
    if hit is not None:
        raise _Refused(Refusal.SESSION_BLOCKED, f"no visits on {day}: {hit.reason}")
    occ = slots.occurrence(template, day, facility.zone)
    slot = _locked_slot(session, facility.id, occ)
    if slot.blocked_at is not None:
        raise _Refused(Refusal.SESSION_BLOCKED, f"no visits on {day}: {slot.block_reason}")
    _free_lapsed(session, facility, slot, now)
    today = local(now, facility.zone).date()
    window = settings.booking_window(booker)
    if not slots.within_window(window, today, day):
        raise _Refused(
            Refusal.OUTSIDE_BOOKING_WINDOW,
            f"{booker} bookings are made {window.min_days} to {window.max_days} days ahead",
        )
    if slot.booked_open >= slot.capacity_open and slot.booked_closed >= slot.capacity_closed:
        # Full whatever the setting: said before the visitors and the engine are
        # asked, so the many refused at a popular session cost little.
        raise _Refused(Refusal.NO_CAPACITY, "no places left in this session")
    required = _check_visitors(session, facility, person_id, visitors, day, settings, now)
    overlapping = [
        booking_id
        for booking_id, starts, ends in repository.person_bookings_at(
            session, facility.id, person_id, day, HOLDING
        )
        if starts < occ.ends_at and occ.starts_at < ends
    ]
    if overlapping:
        raise _Refused(Refusal.ALREADY_BOOKED, f"the person has visit {overlapping[0]} then")
    associates = repository.non_associates(session, facility.id, person_id)
    if associates:
        present = {
            b.person_id for b in repository.bookings_in_slot(session, facility.id, slot.id, HOLDING)
        }
        if present & associates:
            raise _Refused(
                Refusal.NON_ASSOCIATION, "someone who must not meet the person is in this session"
            )
    channel = occ.kind.channel
    for contact_id in visitors:
        explained = decide_in(
            session,
            facility,
            person_id,
            contact_id,
            channel,
            occ.starts_at,
            person_checked=True,
            recording=True,
        )
        decision = explained.decision
        if not decision.allowed:
            refused = _Refused(str(decision.reason), _engine_detail(explained), contact_id)
            refused.answer = Answer(
                False,
                str(decision.reason),
                _engine_detail(explained),
                contact_id,
                rules=tuple(decision.rules),
            )
            raise refused
        required = slots.most_restrictive([required, decision.setting])
    found = slots.place_for(occ.kind, required)
    if found is None:  # pragma: no cover - every kind offers a place of some setting
        raise _Refused(Refusal.SETTING_NOT_OFFERED, f"no {required} places in this session")
    place, setting = found
    taken = slot.booked_open if place is Place.OPEN else slot.booked_closed
    if taken >= slots.capacity(occ, place):
        raise _Refused(Refusal.NO_CAPACITY, f"no {setting or 'video'} places left in this session")
    _explained, session_id = hold_visit(
        session, facility, person_id, visitors[0], channel, occ.starts_at, occ.minutes, actor=actor
    )
    if place is Place.OPEN:
        slot.booked_open += 1
    else:
        slot.booked_closed += 1
    row = VisitBookingRow(
        facility_id=facility.id,
        slot_id=slot.id,
        person_id=person_id,
        setting=str(setting or Setting.OPEN),
        status=str(VisitStatus.RESERVED),
        booker_kind=str(booker),
        expires_at=reservation_expiry(now, settings.reservation_minutes),
        created_at=now,
        created_by=actor,
        session_id=session_id,
    )
    repository.add(session, row)
    repository.add_booking_visitors(session, facility.id, row.id, visitors)
    _event(
        session,
        row,
        "reserved",
        actor,
        now,
        {"slot_id": slot.id, "visitors": list(visitors), "place": str(place)},
    )
    return row, slot


def _engine_detail(explained: ExplainedDecision) -> str:
    words = [rule.text for rule in explained.explained() if rule.text]
    reason = str(explained.decision.reason)
    return f"{reason}: {'; '.join(words)}" if words else reason


def _check_visitors(
    session: Session,
    facility: Facility,
    person_id: str,
    visitors: tuple[str, ...],
    day: date,
    settings: VisitSettings,
    now: datetime,
) -> Setting:
    """Each visitor the person's, approved and not banned on ``day`` (the
    visitors' standings); the group within limits. Returns the setting their
    restrictions require."""
    known = {c.id: c for c in repository.contacts(session, facility.id, list(visitors))}
    for contact_id in visitors:
        contact = known.get(contact_id)
        if contact is None or contact.person_id != person_id:
            raise NotFound(f"no contact {contact_id!r} of {person_id!r}", field="visitors")
    found = standings(session, facility.id, list(visitors), day, at=now)
    for standing in found:
        if standing.refusal is not None:
            raise _Refused(standing.refusal, standing.message or "", standing.contact_id)
    required = slots.most_restrictive(standing.setting for standing in found)
    births = [standing.date_of_birth for standing in found]
    problem = slots.group_problem(births, settings.group_limits, day)
    if problem is not None:
        raise _Refused(Refusal.GROUP_LIMIT, problem)
    return required


def _locked_slot(session: Session, facility_id: str, occ: slots.Occurrence) -> VisitSlotRow:
    """The occurrence's slot row, created if need be, locked."""
    slot = repository.lock_slot_of(session, facility_id, occ.template_id, occ.day)
    if slot is None:
        repository.ensure_slot(
            session,
            {
                "facility_id": facility_id,
                "template_id": occ.template_id,
                "room_id": occ.room_id,
                "on_date": occ.day,
                "starts_at": occ.starts_at,
                "ends_at": occ.ends_at,
                "kind": str(occ.kind),
                "capacity_open": occ.capacity_open,
                "capacity_closed": occ.capacity_closed,
                "booked_open": 0,
                "booked_closed": 0,
            },
        )
        slot = repository.lock_slot_of(session, facility_id, occ.template_id, occ.day)
    assert slot is not None
    return slot


def _free_lapsed(session: Session, facility: Facility, slot: VisitSlotRow, now: datetime) -> None:
    for row in repository.bookings_in_slot(
        session, facility.id, slot.id, [str(VisitStatus.RESERVED)]
    ):
        if lapsed(VisitStatus(row.status), row.expires_at, now):
            cancel_in(
                session,
                facility,
                row,
                slot,
                CancelReason.RESERVATION_LAPSED,
                "the reservation lapsed",
                "kinline:sweep",
                now,
            )


# -- after booking ---------------------------------------------------------------


def confirm(
    db: Database, facility_id: str, booking_id: int, *, actor: str, now: datetime
) -> Booking:
    """Complete a reservation: staff's become ``booked``, the public's ``requested``.
    A reservation that has lapsed is freed and the answer is a conflict."""
    with db.transaction() as session:
        facility, row, slot = open_booking(session, facility_id, booking_id)
        if row.status == VisitStatus.RESERVED and lapsed(VisitStatus.RESERVED, row.expires_at, now):
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
            lapsed_now = True
        else:
            _require(row, VisitStatus.RESERVED, "confirmed")
            _confirm(session, facility, row, slot, actor, now)
            return _booking(session, facility, row, slot)
    assert lapsed_now
    raise WrongState(
        f"the reservation of visit {booking_id} lapsed; book again", field="booking_id"
    )


def _confirm(
    session: Session,
    facility: Facility,
    row: VisitBookingRow,
    slot: VisitSlotRow,
    actor: str,
    now: datetime,
) -> None:
    row.expires_at = None
    if row.booker_kind == Booker.STAFF:
        row.status = str(VisitStatus.BOOKED)
        row.booked_at = now
        row.booked_by = actor
        _event(session, row, "booked", actor, now, {})
        _invite(session, facility, row, slot, now)
    else:
        row.status = str(VisitStatus.REQUESTED)
        row.requested_at = now
        _event(session, row, "requested", actor, now, {})


def answer_request(
    db: Database,
    facility_id: str,
    booking_id: int,
    *,
    accept: bool,
    reason: str | None,
    actor: str,
    now: datetime,
) -> Booking:
    """Staff accept a requested visit (``booked``) or refuse it, with a reason."""
    if not accept and reason is None:
        raise InvalidInput("a refusal needs a reason", field="reason")
    check_reason(reason)
    with db.transaction() as session:
        facility, row, slot = open_booking(session, facility_id, booking_id)
        _require(row, VisitStatus.REQUESTED, "answered")
        if accept:
            row.status = str(VisitStatus.BOOKED)
            row.booked_at = now
            row.booked_by = actor
            _event(session, row, "booked", actor, now, {"reason": reason})
            _invite(session, facility, row, slot, now)
        else:
            assert reason is not None
            cancel_in(session, facility, row, slot, CancelReason.REFUSED, reason, actor, now)
        return _booking(session, facility, row, slot)


def cancel(
    db: Database, facility_id: str, booking_id: int, *, reason: str, actor: str, now: datetime
) -> Booking:
    check_reason(reason)
    with db.transaction() as session:
        facility, row, slot = open_booking(session, facility_id, booking_id)
        if not VisitStatus(row.status).upcoming:
            raise WrongState(
                f"visit {booking_id} is {row.status}; only an upcoming visit is cancelled",
                field="booking_id",
            )
        cancel_in(session, facility, row, slot, CancelReason.CANCELLED, reason, actor, now)
        return _booking(session, facility, row, slot)


def reschedule(
    db: Database,
    facility_id: str,
    booking_id: int,
    template_id: str,
    day: date,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> Answer:
    """Cancel a visit and book the same visitors into another session, in one
    transaction: if the new booking is refused, the old one stands."""
    check_reason(reason)
    with db.transaction() as session:
        facility, row, slot = open_booking(session, facility_id, booking_id)
        if not VisitStatus(row.status).upcoming:
            raise WrongState(
                f"visit {booking_id} is {row.status}; only an upcoming visit is rescheduled",
                field="booking_id",
            )
        visitors = tuple(repository.booking_visitors(session, facility_id, row.id))
        nested = session.begin_nested()
        cancel_in(
            session, facility, row, slot, CancelReason.RESCHEDULED, reason, actor, now, tell=False
        )
        try:
            new, new_slot = _take_place(
                session,
                facility,
                row.person_id,
                template_id,
                day,
                visitors,
                Booker(row.booker_kind),
                actor,
                now,
            )
        except _Refused as refused:
            nested.rollback()
            return refused.answer
        nested.commit()
        new.rescheduled_from = row.id
        _confirm(session, facility, new, new_slot, actor, now)
        session.flush()
        return Answer(True, booking=_booking(session, facility, new, new_slot))


def check_in(
    db: Database, facility_id: str, booking_id: int, *, actor: str, now: datetime
) -> Booking:
    with db.transaction() as session:
        facility, row, slot = open_booking(session, facility_id, booking_id)
        _require(row, VisitStatus.BOOKED, "checked in")
        row.status = str(VisitStatus.CHECKED_IN)
        row.checked_in_at = now
        row.checked_in_by = actor
        _event(session, row, "checked_in", actor, now, {})
        return _booking(session, facility, row, slot)


def complete(
    db: Database,
    facility_id: str,
    booking_id: int,
    *,
    minutes: int | None = None,
    actor: str,
    now: datetime,
) -> Booking:
    """The visit happened: it becomes a completed session of the usage ledger,
    at ``minutes`` (default: the session's length, at most what was allowed)."""
    if minutes is not None and minutes < 0:
        raise InvalidInput("must be zero or more", field="minutes")
    with db.transaction() as session:
        facility, row, slot = open_booking(session, facility_id, booking_id)
        _require(row, VisitStatus.CHECKED_IN, "completed")
        row.status = str(VisitStatus.COMPLETED)
        row.completed_at = now
        row.completed_by = actor
        length = int((slot.ends_at - slot.starts_at).total_seconds() // 60)
        if row.session_id is not None:
            settle_visit(
                session,
                facility_id,
                row.session_id,
                length if minutes is None else minutes,
                actor=actor,
                at=now,
            )
        _event(session, row, "completed", actor, now, {"session_id": row.session_id})
        return _booking(session, facility, row, slot)


def no_show(
    db: Database, facility_id: str, booking_id: int, *, actor: str, now: datetime
) -> Booking:
    """Nobody came: the visit counts against no quota."""
    with db.transaction() as session:
        facility, row, slot = open_booking(session, facility_id, booking_id)
        _require(row, VisitStatus.BOOKED, "marked a no-show")
        row.status = str(VisitStatus.NO_SHOW)
        row.no_show_at = now
        row.no_show_by = actor
        if row.session_id is not None:
            settle_visit(session, facility_id, row.session_id, None, actor=actor, at=now)
        _event(session, row, "no_show", actor, now, {})
        return _booking(session, facility, row, slot)


def open_booking(
    session: Session, facility_id: str, booking_id: int
) -> tuple[Facility, VisitBookingRow, VisitSlotRow]:
    """The booking with its person's ledger, then its slot, locked."""
    facility = require_facility(session, facility_id)
    found = repository.get_booking(session, facility_id, booking_id)
    if found is None:
        raise NotFound(f"no visit booking {booking_id}", field="booking_id")
    require_person(session, facility_id, found.person_id, lock=True)
    slot = repository.lock_slot(session, facility_id, found.slot_id)
    row = repository.get_booking(session, facility_id, booking_id)
    assert slot is not None and row is not None
    return facility, row, slot


def _require(row: VisitBookingRow, wanted: VisitStatus, action: str) -> None:
    if row.status != wanted:
        raise WrongState(
            f"visit {row.id} is {row.status}, not {wanted}: it cannot be {action}",
            field="booking_id",
        )


def cancel_in(
    session: Session,
    facility: Facility,
    row: VisitBookingRow,
    slot: VisitSlotRow,
    why: CancelReason,
    reason: str,
    actor: str,
    now: datetime,
    *,
    tell: bool = True,
) -> None:
    """End a booking cancelled: its place freed, its hold in the ledger taken back,
    and (``tell``) a visit that was booked or requested ends with a notice to the
    person and a message to each visitor with an email, with the reason."""
    status = VisitStatus(row.status)
    assert may_move(status, VisitStatus.CANCELLED)
    told = status in (VisitStatus.REQUESTED, VisitStatus.BOOKED) and tell
    row.status = str(VisitStatus.CANCELLED)
    row.cancelled_at = now
    row.cancelled_by = actor
    row.cancel_reason = reason
    row.expires_at = None
    if row.setting == Setting.CLOSED:
        slot.booked_closed = max(0, slot.booked_closed - 1)
    else:
        slot.booked_open = max(0, slot.booked_open - 1)
    if row.session_id is not None:
        settle_visit(session, facility.id, row.session_id, None, actor=actor, at=now)
    _event(session, row, "cancelled", actor, now, {"why": str(why), "reason": reason})
    if told:
        _notify_person(session, facility, row, slot, reason, actor, now)
        _tell(session, facility, row, slot, now, cancelled=True, reason=reason)


def _notify_person(
    session: Session,
    facility: Facility,
    row: VisitBookingRow,
    slot: VisitSlotRow,
    reason: str,
    actor: str,
    now: datetime,
) -> None:
    person = require_person(session, facility.id, row.person_id)
    visitors = repository.contacts(
        session, facility.id, repository.booking_visitors(session, facility.id, row.id)
    )
    write_notices(
        session,
        facility,
        [person],
        ChangeFacts(
            change=Change.VISIT_CANCELLED,
            subject=f"{local(slot.starts_at, facility.zone):%Y-%m-%d %H:%M}",
            channel=str(SessionKind(slot.kind).channel),
            effective_at=now,
            contact_name=", ".join(contact.name for contact in visitors),
            reason=reason,
        ),
        at=now,
        actor=actor,
    )


# -- telling visitors ------------------------------------------------------------


def _event(
    session: Session,
    row: VisitBookingRow,
    action: str,
    actor: str,
    at: datetime,
    extra: dict[str, object],
) -> None:
    record_event(
        session,
        facility_id=row.facility_id,
        chain=person_chain(row.facility_id, row.person_id),
        actor=actor,
        tag=f"visits:booking:{action}",
        payload={"booking_id": row.id, "status": row.status, **extra},
        at=at,
    )


def _invite(
    session: Session, facility: Facility, row: VisitBookingRow, slot: VisitSlotRow, now: datetime
) -> None:
    _tell(session, facility, row, slot, now, cancelled=False, reason=None)


def _tell(
    session: Session,
    facility: Facility,
    row: VisitBookingRow,
    slot: VisitSlotRow,
    now: datetime,
    *,
    cancelled: bool,
    reason: str | None,
) -> None:
    """Queue, for each visitor with an email, a message with the visit's time on
    the facility's clock and their own, and its iCalendar invitation (or its
    cancellation) in the body."""
    booking = _booking(session, facility, row, slot)
    visitors = repository.contacts(session, facility.id, list(booking.visitors))
    own_times = {t.contact_id: t.local for t in booking.visitor_times}
    kind = "Video visit" if booking.kind is SessionKind.VIDEO else "Visit"
    invitation = calendar.Invitation(
        uid=f"visit-{row.id}@{facility.id}.kinline",
        summary=f"{kind} at {facility.name}",
        description=f"{kind} {row.id}, room {slot.room_id}",
        location=f"{facility.name}, room {slot.room_id}",
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        timezone=facility.timezone,
        attendees=[calendar.Attendee(c.name, c.email) for c in visitors],
        sequence=calendar.visit_sequence(confirmed=True, cancelled=cancelled),
        cancelled=cancelled,
    )
    ics = calendar.invitation_ics(invitation, stamp=now)
    for contact in visitors:
        if not contact.email:
            continue
        own = own_times.get(contact.id)
        subject, body = visit_email(
            contact.language or "en",
            name=contact.name,
            video=booking.kind is SessionKind.VIDEO,
            booking_id=row.id,
            cancelled=cancelled,
            reason=reason,
            facility_time=booking.facility_time.shown(),
            own_time=None if own is None else own.shown(),
            invitation=ics,
        )
        enqueue_message(
            session,
            facility_id=facility.id,
            recipient=contact.email,
            subject=subject,
            body=body,
            at=now,
        )
