"""The weekly request window: families ask for ranked sessions, the allocation books.

Where a week's demand exceeds its places, booking in order of arrival rewards
whoever is first online, not whoever most needs the visit. A family instead
submits a request (its visitors and up to five ranked sessions of one week)
while the week's window is open. When it closes (``allocation.window_closes_at``),
``allocate_closed`` shares the places out with CP-SAT (``allocation.allocate``)
and books each winner through the booking service, with every check of a
booking, and marks each other request unmet with its reason.

How each preference is checked before allocating: the booking service's own
checks run for it inside a savepoint that is rolled back (a dry run of
``booking._take_place``), so a preference refused for a visitor not approved,
a restriction, the booking window, a non-association already booked, the
engine's reasons or a full session carries exactly the reason a booking would
give, and the allocation never second-guesses the booking path. A person's
room in the visit quotas is found the same way: their requests are booked one
after another in a savepoint until the engine refuses one.

Each request's outcome is its own transaction (the booking and the request's
status together), taken in the booking path's lock order: the person, then the
session. Bookings made meanwhile by others are respected: a winner whose place
went is told the reason the booking service gives.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from kinline.audit.service import facility_chain, person_chain, record_event
from kinline.db.engine import Database
from kinline.db.tables import VisitRequestRow
from kinline.errors import InvalidInput, KinlineError, NotFound, WrongState
from kinline.people.model import Facility
from kinline.people.service import require_contact, require_facility, require_held, require_person
from kinline.rules.model import Reason, Setting
from kinline.rules.periods import local
from kinline.visits import allocation, slots
from kinline.visits import booking_repository as bookings
from kinline.visits import request_repository as repository
from kinline.visits.allocation import (
    MOST_PREFERENCES,
    RECENT_DAYS,
    Allocation,
    Outcome,
    Problem,
    RequestStatus,
    window_closes_at,
)
from kinline.visits.booking import _confirm, _Refused, _take_place
from kinline.visits.sessions import template_of
from kinline.visits.slots import Booker, Place, SessionKind

MOST_VISITORS = 10
MOST_PENDING = 5  # a person's pending requests in one window
NOT_OFFERED = "session_not_offered"


@dataclass(frozen=True, slots=True)
class Preferred:
    template_id: str
    day: date


@dataclass(frozen=True, slots=True)
class VisitRequest:
    id: int
    person_id: str
    requested_by: str
    visitors: tuple[str, ...]
    preferences: tuple[Preferred, ...]
    window_closes_at: datetime
    status: RequestStatus
    reason: str | None
    booking_id: int | None
    created_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class AllocationRun:
    """What one close of the window did: requests met and unmet, and how the
    solver did against first come, first served on the same requests."""

    requests: tuple[VisitRequest, ...]
    met: int
    unmet: int
    fcfs_met: int
    solver_status: str
    gap: float
    seconds: float


def _view(row: VisitRequestRow) -> VisitRequest:
    return VisitRequest(
        id=row.id,
        person_id=row.person_id,
        requested_by=row.requested_by,
        visitors=tuple(str(v) for v in row.visitors),
        preferences=tuple(
            Preferred(str(p["template_id"]), date.fromisoformat(str(p["date"])))
            for p in row.preferences
        ),
        window_closes_at=row.window_closes_at,
        status=RequestStatus(row.status),
        reason=row.outcome_reason,
        booking_id=row.booking_id,
        created_at=row.created_at,
        decided_at=row.decided_at,
    )


# -- asking --------------------------------------------------------------------


def _checked_visitors(visitors: Sequence[str]) -> tuple[str, ...]:
    unique = tuple(dict.fromkeys(visitors))
    if not unique:
        raise InvalidInput("name at least one visitor", field="visitors")
    if len(unique) > MOST_VISITORS:
        raise InvalidInput(f"at most {MOST_VISITORS} visitors", field="visitors")
    return unique


def _checked_preferences(preferences: Sequence[Preferred]) -> tuple[Preferred, ...]:
    unique = tuple(dict.fromkeys(preferences))
    if not unique:
        raise InvalidInput("name at least one session you would like", field="preferences")
    if len(unique) > MOST_PREFERENCES:
        raise InvalidInput(f"at most {MOST_PREFERENCES} sessions", field="preferences")
    weeks = {allocation.week_of(p.day) for p in unique}
    if len(weeks) > 1:
        raise InvalidInput("every session must be in the same week", field="preferences")
    return unique


def submit_request(
    db: Database,
    facility_id: str,
    person_id: str,
    visitors: Sequence[str],
    preferences: Sequence[Preferred],
    *,
    actor: str,
    now: datetime,
) -> VisitRequest:
    """A family asks for a visit in one of its ranked sessions of one week, while
    that week's window is open."""
    visitors = _checked_visitors(visitors)
    preferences = _checked_preferences(preferences)
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        require_held(session, facility_id, person_id, now)
        for contact_id in visitors:
            contact = require_contact(session, facility_id, contact_id, now)
            if contact.person != person_id:
                raise InvalidInput(
                    f"{contact_id!r} is not a contact of {person_id!r}", field="visitors"
                )
        for preferred in preferences:
            template_row = bookings.get_template(session, facility_id, preferred.template_id)
            if template_row is None:
                raise NotFound(
                    f"no session template {preferred.template_id!r}", field="preferences"
                )
            if not slots.occurs_on(template_of(template_row), preferred.day):
                raise InvalidInput(
                    f"session {preferred.template_id!r} is not offered on {preferred.day}",
                    field="preferences",
                )
        closes = window_closes_at(preferences[0].day, facility.zone)
        if now >= closes:
            raise WrongState(
                f"requests for the week of {allocation.week_of(preferences[0].day)} closed at "
                f"{local(closes, facility.zone):%Y-%m-%d %H:%M} facility time; book instead",
                field="preferences",
            )
        if repository.pending_for(session, facility_id, person_id, closes) >= MOST_PENDING:
            raise WrongState(
                f"{person_id!r} already has {MOST_PENDING} requests for that week",
                field="person_id",
            )
        row = repository.add(
            session,
            VisitRequestRow(
                facility_id=facility_id,
                person_id=person_id,
                requested_by=actor,
                visitors=list(visitors),
                preferences=[
                    {"template_id": p.template_id, "date": p.day.isoformat()} for p in preferences
                ],
                setting=str(Setting.OPEN),
                window_closes_at=closes,
                status=str(RequestStatus.PENDING),
                created_at=now,
            ),
        )
        record_event(
            session,
            facility_id=facility_id,
            chain=person_chain(facility_id, person_id),
            actor=actor,
            tag="visits:request:submitted",
            payload={
                "request_id": row.id,
                "visitors": list(visitors),
                "preferences": row.preferences,
                "window_closes_at": closes,
            },
            at=now,
        )
        return _view(row)


def withdraw_request(
    db: Database, facility_id: str, request_id: int, *, actor: str, now: datetime
) -> VisitRequest:
    with db.transaction() as session:
        row = _locked(session, facility_id, request_id)
        if row.status != RequestStatus.PENDING:
            raise WrongState(f"request {request_id} is {row.status}", field="request_id")
        row.status = str(RequestStatus.WITHDRAWN)
        row.decided_at = now
        _record(session, row, "withdrawn", actor, now)
        return _view(row)


def _locked(session: Session, facility_id: str, request_id: int) -> VisitRequestRow:
    row = repository.lock(session, facility_id, request_id)
    if row is None:
        raise NotFound(f"no visit request {request_id}", field="request_id")
    return row


def get_request(db: Database, facility_id: str, request_id: int) -> VisitRequest:
    with db.transaction() as session:
        row = repository.get(session, facility_id, request_id)
        if row is None:
            raise NotFound(f"no visit request {request_id}", field="request_id")
        return _view(row)


def request_parties(db: Database, facility_id: str, request_id: int) -> tuple[str, list[str]]:
    """The person and the visitors' contact ids of a request (what access reads)."""
    found = get_request(db, facility_id, request_id)
    return found.person_id, list(found.visitors)


def list_requests(
    db: Database,
    facility_id: str,
    *,
    person_id: str | None = None,
    status: RequestStatus | None = None,
) -> list[VisitRequest]:
    with db.transaction() as session:
        require_facility(session, facility_id)
        rows = repository.listed(
            session,
            facility_id,
            person_id=person_id,
            status=None if status is None else str(status),
        )
        return [_view(row) for row in rows]


# -- allocating ------------------------------------------------------------------


def _key(preferred: Preferred) -> str:
    return f"{preferred.template_id}@{preferred.day.isoformat()}"


def _dry_run(
    session: Session,
    facility: Facility,
    request: VisitRequest,
    preferred: Preferred,
    actor: str,
    now: datetime,
) -> allocation.Preference:
    """The booking service's checks for one preference, undone: its refusal, or
    the kind of place it would take."""
    savepoint = session.begin_nested()
    try:
        row, slot = _take_place(
            session,
            facility,
            request.person_id,
            preferred.template_id,
            preferred.day,
            request.visitors,
            Booker.STAFF,
            actor,
            now,
        )
        found = slots.place_for(SessionKind(slot.kind), Setting(row.setting))
        place = Place.OPEN if found is None else found[0]
        return allocation.Preference(_key(preferred), allocation.Place(str(place)))
    except _Refused as refused:
        return allocation.Preference(_key(preferred), refusal=refused.answer.reason)
    except KinlineError as error:
        why = "visitor_not_approved" if error.field == "visitors" else NOT_OFFERED
        return allocation.Preference(_key(preferred), refusal=why)
    finally:
        savepoint.rollback()


def _visits_left(
    session: Session,
    facility: Facility,
    requests: Sequence[VisitRequest],
    checked: dict[int, tuple[allocation.Preference, ...]],
    actor: str,
    now: datetime,
) -> int | None:
    """How many of one person's requests the engine's quotas let through when
    booked one after another (None: all of them)."""
    savepoint = session.begin_nested()
    taken = 0
    try:
        for request in requests:
            preferred = next(
                (
                    p
                    for p, c in zip(request.preferences, checked[request.id], strict=True)
                    if c.refusal is None
                ),
                None,
            )
            if preferred is None:
                continue
            try:
                _take_place(
                    session,
                    facility,
                    request.person_id,
                    preferred.template_id,
                    preferred.day,
                    request.visitors,
                    Booker.STAFF,
                    actor,
                    now,
                )
                taken += 1
            except _Refused as refused:
                if refused.answer.reason in (Reason.QUOTA_EXHAUSTED, Reason.TOO_SOON):
                    return taken
    finally:
        savepoint.rollback()
    return None


def _problem(
    session: Session,
    facility: Facility,
    requests: Sequence[VisitRequest],
    actor: str,
    now: datetime,
) -> Problem:
    checked: dict[int, tuple[allocation.Preference, ...]] = {}
    by_person: dict[str, list[VisitRequest]] = defaultdict(list)
    for request in requests:
        require_person(session, facility.id, request.person_id, lock=True)
        checked[request.id] = tuple(
            _dry_run(session, facility, request, p, actor, now) for p in request.preferences
        )
        by_person[request.person_id].append(request)
    allowed: dict[str, int] = {}
    for person, theirs in by_person.items():
        if len(theirs) > 1:
            left = _visits_left(session, facility, theirs, checked, actor, now)
            if left is not None:
                allowed[person] = left
    places: dict[str, allocation.Session] = {}
    for request in requests:
        for preferred in request.preferences:
            key = _key(preferred)
            if key not in places:
                places[key] = _places(session, facility, preferred, key)
    people = sorted(by_person)
    recent = repository.completed_since(
        session, facility.id, people, now - timedelta(days=RECENT_DAYS)
    )
    pairs = frozenset(
        frozenset(pair) for pair in repository.non_association_pairs(session, facility.id, people)
    )
    return Problem(
        sessions=tuple(places.values()),
        requests=tuple(
            allocation.Request(
                key=str(request.id),
                person=request.person_id,
                visitors=len(request.visitors),
                preferences=checked[request.id],
                submitted_at=request.created_at,
                recent_visits=recent.get(request.person_id, 0),
            )
            for request in requests
        ),
        visits_allowed=allowed,
        non_associations=pairs,
    )


def _places(
    session: Session, facility: Facility, preferred: Preferred, key: str
) -> allocation.Session:
    """The places a session has left: its counters if booked before, else its template's."""
    slot = repository.slot_of(session, facility.id, preferred.template_id, preferred.day)
    if slot is not None:
        return allocation.Session(
            key,
            max(0, slot.capacity_open - slot.booked_open),
            max(0, slot.capacity_closed - slot.booked_closed),
        )
    template_row = bookings.get_template(session, facility.id, preferred.template_id)
    if template_row is None:
        return allocation.Session(key, 0, 0)
    occ = slots.occurrence(template_of(template_row), preferred.day, facility.zone)
    return allocation.Session(key, occ.capacity_open, occ.capacity_closed)


def allocate_closed(
    db: Database,
    facility_id: str,
    *,
    actor: str,
    now: datetime,
    seconds: float = 10.0,
) -> AllocationRun:
    """Allocate every pending request whose window has closed by ``now``."""
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        requests = [_view(row) for row in repository.closed_pending(session, facility_id, now)]
        if not requests:
            return AllocationRun((), 0, 0, 0, "NOTHING_TO_ALLOCATE", 0.0, 0.0)
        probe = session.begin_nested()
        try:
            problem = _problem(session, facility, requests, actor, now)
        finally:
            probe.rollback()
    baseline = allocation.first_come_first_served(problem)
    solved = allocation.allocate(problem, seconds=seconds)
    outcomes = {outcome.request: outcome for outcome in solved.outcomes}
    # Winners first, so that a place is not taken by anyone the solver left out.
    ordered = sorted(requests, key=lambda r: (outcomes[str(r.id)].session is None, r.id))
    done = [_settle(db, facility_id, r, outcomes[str(r.id)], actor, now) for r in ordered]
    met = sum(1 for r in done if r.status is RequestStatus.MET)
    with db.transaction() as session:
        record_event(
            session,
            facility_id=facility_id,
            chain=facility_chain(facility_id),
            actor=actor,
            tag="visits:allocation:closed",
            payload=_summary(solved, baseline, len(done), met),
            at=now,
        )
    return AllocationRun(
        requests=tuple(sorted(done, key=lambda r: r.id)),
        met=met,
        unmet=len(done) - met,
        fcfs_met=baseline.met,
        solver_status=solved.status,
        gap=solved.gap,
        seconds=solved.seconds,
    )


def _summary(solved: Allocation, baseline: Allocation, count: int, met: int) -> dict[str, object]:
    return {
        "requests": count,
        "met": met,
        "allocated": solved.met,
        "fcfs_met": baseline.met,
        "solver_status": solved.status,
        "gap": round(solved.gap, 6),
        "seconds": round(solved.seconds, 3),
    }


def _settle(
    db: Database,
    facility_id: str,
    request: VisitRequest,
    outcome: Outcome,
    actor: str,
    now: datetime,
) -> VisitRequest:
    """Book the request's allocated session, or mark it unmet with its reason."""
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        require_person(session, facility_id, request.person_id, lock=True)
        row = _locked(session, facility_id, request.id)
        if row.status != RequestStatus.PENDING:  # withdrawn meanwhile
            return _view(row)
        reason = outcome.reason
        if outcome.session is not None and outcome.rank is not None:
            preferred = request.preferences[outcome.rank - 1]
            try:
                booking, slot = _take_place(
                    session,
                    facility,
                    request.person_id,
                    preferred.template_id,
                    preferred.day,
                    request.visitors,
                    Booker.STAFF,
                    actor,
                    now,
                )
            except _Refused as refused:
                reason = refused.answer.reason
            else:
                _confirm(session, facility, booking, slot, actor, now)
                row.status = str(RequestStatus.MET)
                row.booking_id = booking.id
                row.decided_at = now
                _record(session, row, "met", actor, now, rank=outcome.rank)
                return _view(row)
        row.status = str(RequestStatus.UNMET)
        row.outcome_reason = reason or allocation.Unmet.NO_CAPACITY
        row.decided_at = now
        _record(session, row, "unmet", actor, now, reasons=list(outcome.reasons))
        return _view(row)


def _record(
    session: Session,
    row: VisitRequestRow,
    action: str,
    actor: str,
    now: datetime,
    **extra: object,
) -> None:
    record_event(
        session,
        facility_id=row.facility_id,
        chain=person_chain(row.facility_id, row.person_id),
        actor=actor,
        tag=f"visits:request:{action}",
        payload={
            "request_id": row.id,
            "status": row.status,
            "reason": row.outcome_reason,
            "booking_id": row.booking_id,
            **extra,
        },
        at=now,
    )
