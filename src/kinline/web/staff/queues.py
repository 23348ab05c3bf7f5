"""The staff queues: approvals (contacts and visitors), the visits calendar with
check-in, appeals (overdue first) and notices nobody has acknowledged.

Each decision goes through the service the API calls: ``changes.service.
approve_contact``, ``changes.visitors.decide_visitor``, ``visits.booking.
check_in``. A reason is required where the person concerned will read one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from kinline.access import Access
from kinline.appeals.service import list_appeals
from kinline.changes.service import approve_contact
from kinline.changes.visitors import decide_visitor
from kinline.errors import InvalidInput, KinlineError
from kinline.http import in_thread
from kinline.identity.model import Action
from kinline.notices.service import overdue_notices
from kinline.people.api import contact_target
from kinline.people.service import list_contacts, list_people
from kinline.rules.model import Channel
from kinline.rules.periods import local
from kinline.visits.api import visitor_target
from kinline.visits.booking import check_in, list_bookings
from kinline.visits.booking_api import booking_target
from kinline.visits.model import Verdict, VisitorStatus
from kinline.visits.sessions import list_rooms, list_slots
from kinline.visits.visitors import list_visitors
from kinline.web.guard import field_errors
from kinline.web.render import flash, gettext_for, render
from kinline.web.staff.common import TEMPLATES, base, may, now, staff

router = APIRouter(include_in_schema=False)
OVERDUE_DAYS = 7


# --- approvals ----------------------------------------------------------------


def _approvals(grant: Access, at: datetime) -> dict[str, Any]:
    db, place = grant.db, grant.facility
    privileged = grant.privileged()
    names = {p.id: p.name for p in list_people(db, place.id)}
    waiting = [
        (view, [c for c in Channel if c not in view.contact.approved])
        for view in list_contacts(db, place.id, None, at=at, include_privileged=privileged)
        if privileged or not view.contact.privileged
    ]
    applied = list_visitors(db, place.id, at=at, status=VisitorStatus.APPLIED)
    return {
        "names": names,
        "contacts": [(view, missing) for view, missing in waiting if missing],
        "visitors": applied,
    }


async def _approvals_page(
    request: Request, grant: Access, *, status: int = 200, errors: Any = None,
    form: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    found = await in_thread(_approvals, grant, now())
    return render(
        request, TEMPLATES, "approvals.html", status=status, base=base(grant),
        facility=grant.facility, errors=errors or {}, form=form or {},
        may=may(grant, Action.APPROVAL_DECIDE, Action.VISITOR_DECIDE), **found,
    )  # fmt: skip


@router.get("/staff/{facility_id}/approvals")
async def approvals(
    request: Request, grant: Annotated[Access, staff(Action.CONTACT_READ)]
) -> Response:
    return await _approvals_page(request, grant)


def _reason(form: Any, field: str) -> str:
    reason = str(form.get("reason", "")).strip()
    if not reason:
        raise InvalidInput("give the reason: the person concerned reads it", field=field)
    return reason


@router.post("/staff/{facility_id}/contacts/{contact_id}/approve")
async def approve_post(
    request: Request,
    contact_id: str,
    grant: Annotated[Access, staff(Action.APPROVAL_DECIDE, contact_target)],
) -> Response:
    sent = await request.form()
    key = f"contact-{contact_id}"
    try:
        reason = _reason(sent, key)
        channel = str(sent.get("channel", ""))
        if channel not in {str(c) for c in Channel}:
            raise InvalidInput("choose phone, video or visit", field=key)
        await in_thread(
            approve_contact, grant.db, grant.facility.id, contact_id, channel, at=now(),
            actor=grant.actor, reason=reason,
        )  # fmt: skip
    except KinlineError as error:
        if error.status not in (409, 422):
            raise
        [message] = field_errors(request, TEMPLATES, error).values()
        return await _approvals_page(
            request,
            grant,
            status=422,
            errors={key: message},
            form={key: str(sent.get("reason", ""))},
        )
    return _back(request, grant, "approvals", "Approved. The person has been sent a notice.")


@router.post("/staff/{facility_id}/visitors/{visitor_id}/decide")
async def visitor_post(
    request: Request,
    visitor_id: int,
    grant: Annotated[Access, staff(Action.VISITOR_DECIDE, visitor_target)],
) -> Response:
    """Approve or refuse an application (``decide_visitor``: the warden alone
    decides a former co-defendant's, as the API says)."""
    sent = await request.form()
    key = f"visitor-{visitor_id}"
    try:
        reason = _reason(sent, key)
        verdict = str(sent.get("verdict", ""))
        if verdict not in {str(v) for v in Verdict}:
            raise InvalidInput("choose approve or refuse", field=key)
        await in_thread(_decide_visitor, grant, visitor_id, Verdict(verdict), reason)
    except KinlineError as error:
        if error.status not in (403, 409, 422):
            raise
        [message] = field_errors(request, TEMPLATES, error).values()
        return await _approvals_page(
            request, grant, status=error.status, errors={key: message},
            form={key: str(sent.get("reason", ""))},
        )  # fmt: skip
    return _back(request, grant, "approvals", "Decided. The person and the visitor are told.")


@router.get("/staff/{facility_id}/contacts/{contact_id}/approve")
async def approve_again(grant: Annotated[Access, staff(Action.CONTACT_READ)]) -> Response:
    """Where a refused approval's page is got again (say, after changing the
    language): the approvals queue."""
    return RedirectResponse(f"{base(grant)}/approvals", status_code=303)


@router.get("/staff/{facility_id}/visitors/{visitor_id}/decide")
async def decide_again(grant: Annotated[Access, staff(Action.VISITOR_READ)]) -> Response:
    return RedirectResponse(f"{base(grant)}/approvals", status_code=303)


def _decide_visitor(grant: Access, visitor_id: int, verdict: Verdict, reason: str) -> None:
    decide_visitor(
        grant.db,
        grant.facility.id,
        visitor_id,
        verdict=verdict,
        reason=reason,
        warden=grant.may(Action.VISITOR_FLAGGED),
        at=now(),
        actor=grant.actor,
    )


def _back(request: Request, grant: Access, page: str, message: str) -> Response:
    response = RedirectResponse(f"{base(grant)}/{page}", status_code=303)
    flash(response, gettext_for(request, TEMPLATES)(message))
    return response


# --- visits -------------------------------------------------------------------


def _calendar(grant: Access, day: date) -> dict[str, Any]:
    db, place = grant.db, grant.facility
    rooms = list_rooms(db, place.id)
    bookings = list_bookings(db, place.id, first=day, last=day)
    slots = list_slots(db, place.id, day, day)
    names = {p.id: p.name for p in list_people(db, place.id)}
    visitors = {
        v.contact.id: v.name
        for v in list_contacts(db, place.id, None, at=now(), include_privileged=False)
    }
    return {
        "rooms": [
            (
                room,
                [s for s in slots if s.occurrence.room_id == room.id],
                [b for b in bookings if b.room_id == room.id],
            )
            for room in rooms
        ],
        "names": names,
        "visitor_names": visitors,
    }


@router.get("/staff/{facility_id}/visits")
async def visits(
    request: Request,
    grant: Annotated[Access, staff(Action.VISIT_READ)],
    day: Annotated[date | None, Query()] = None,
) -> Response:
    """The day's sessions per room, with their bookings and check-in."""
    shown = day or local(now(), grant.facility.zone).date()
    found = await in_thread(_calendar, grant, shown)
    return render(
        request, TEMPLATES, "visits.html", base=base(grant), facility=grant.facility,
        day=shown, previous=shown - timedelta(days=1), next=shown + timedelta(days=1),
        may=may(grant, Action.VISIT_MANAGE), **found,
    )  # fmt: skip


@router.post("/staff/{facility_id}/visits/{booking_id}/check-in")
async def check_in_post(
    request: Request,
    booking_id: int,
    grant: Annotated[Access, staff(Action.VISIT_MANAGE, booking_target)],
) -> Response:
    booking = await in_thread(
        check_in, grant.db, grant.facility.id, booking_id, actor=grant.actor, now=now()
    )
    response = RedirectResponse(
        f"{base(grant)}/visits?day={booking.day.isoformat()}", status_code=303
    )
    flash(response, gettext_for(request, TEMPLATES)("Checked in."))
    return response


# --- appeals and notices ------------------------------------------------------


@router.get("/staff/{facility_id}/appeals")
async def appeals(
    request: Request, grant: Annotated[Access, staff(Action.APPEAL_READ)]
) -> Response:
    """Open appeals, overdue first, then by when the answer is due."""
    at = now()
    found = await in_thread(list_appeals, grant.db, grant.facility.id, at=at)
    open_ = [a for a in found if a.status == "pending"]
    open_.sort(key=lambda a: (not a.overdue, a.answer_due or datetime.max.replace(tzinfo=UTC)))
    names = {p.id: p.name for p in await in_thread(list_people, grant.db, grant.facility.id)}
    return render(
        request, TEMPLATES, "appeals.html", base=base(grant), facility=grant.facility,
        appeals=open_, names=names, at=at,
    )  # fmt: skip


@router.get("/staff/{facility_id}/notices/overdue")
async def notices_overdue(
    request: Request, grant: Annotated[Access, staff(Action.NOTICE_QUEUE)]
) -> Response:
    found = await in_thread(
        overdue_notices, grant.db, grant.facility.id, days=OVERDUE_DAYS, now=now()
    )
    names = {p.id: p.name for p in await in_thread(list_people, grant.db, grant.facility.id)}
    return render(
        request, TEMPLATES, "overdue.html", base=base(grant), facility=grant.facility,
        notices=found, names=names, days=OVERDUE_DAYS,
    )  # fmt: skip
