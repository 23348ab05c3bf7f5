"""The staff console: find a person, read their page; the rule pages
(``rules``) and the queues (``queues``) are included here.

Every page is ``/staff/{facility_id}/...`` behind ``common.staff(Action.X)``,
which is the access policy itself: a button for an action the reader lacks is
not shown, and its POST is refused anyway.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from kinline.access import Access, Reach, person_record
from kinline.http import in_thread
from kinline.identity.model import Action, Kind
from kinline.people.service import list_people
from kinline.web.guard import page_everywhere
from kinline.web.render import render
from kinline.web.staff import queues, rules
from kinline.web.staff.common import TEMPLATES, base, may, now, reader, staff
from kinline.web.staff.views import person_view

router = APIRouter(include_in_schema=False)


@router.get("/staff")
async def staff_home(
    request: Request, reach: Annotated[Reach, page_everywhere(Action.FACILITY_READ)]
) -> Response:
    """The console of the one facility the reader is bound to, else a choice."""
    if reach.subject.kind is not Kind.STAFF:
        return RedirectResponse("/", status_code=303)
    places = sorted(reach.subject.facilities())
    if len(places) == 1:
        return RedirectResponse(f"/staff/{places[0]}", status_code=303)
    return render(request, TEMPLATES, "facilities.html", places=places)


@router.get("/staff/{facility_id}")
async def console(
    request: Request, grant: Annotated[Access, staff(Action.PERSON_READ)]
) -> Response:
    return render(
        request,
        TEMPLATES,
        "console.html",
        base=base(grant),
        facility=grant.facility,
        may=_console_may(grant),
        q="",
    )


@router.get("/staff/{facility_id}/people")
async def find_person(
    request: Request,
    grant: Annotated[Access, staff(Action.PERSON_READ)],
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """People whose name or id holds ``q`` (every person when it is empty)."""
    people = await in_thread(list_people, grant.db, grant.facility.id)
    wanted = q.strip().casefold()
    found = [p for p in people if wanted in p.name.casefold() or wanted in p.id.casefold()]
    return render(
        request,
        TEMPLATES,
        "people.html",
        base=base(grant),
        facility=grant.facility,
        may=_console_may(grant),
        q=q,
        people=found,
    )


@router.get("/staff/{facility_id}/people/{person_id}")
async def person_page(
    request: Request,
    person_id: str,
    grant: Annotated[Access, staff(Action.PERSON_READ, person_record)],
) -> Response:
    at = now()
    view = await in_thread(person_view, grant, person_id, reader(request), at)
    return render(
        request,
        TEMPLATES,
        "person.html",
        base=base(grant),
        facility=grant.facility,
        v=view,
        at=at,
        may={
            **_console_may(grant),
            **may(grant, Action.RULE_IMPOSE, Action.RULE_LIFT, Action.APPROVAL_DECIDE),
        },
    )


def _console_may(grant: Access) -> dict[str, bool]:
    return may(
        grant,
        Action.CONTACT_READ,
        Action.VISIT_READ,
        Action.APPEAL_READ,
        Action.NOTICE_QUEUE,
        Action.RULE_IMPOSE,
    )


router.include_router(rules.router)
router.include_router(queues.router)
