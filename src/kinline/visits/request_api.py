"""Routes of the weekly request window: families ask, staff close it and allocate."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from kinline.access import Access, Params, allowed, whole
from kinline.db.engine import Database
from kinline.http import in_thread
from kinline.identity.model import Action, Record, Target
from kinline.people.model import Facility
from kinline.visits import requests
from kinline.visits.allocation import RequestStatus
from kinline.visits.model import choice
from kinline.visits.request_schemas import (
    AllocateIn,
    AllocationOut,
    PreferenceOut,
    RequestIn,
    RequestOut,
)
from kinline.visits.requests import Preferred, VisitRequest

router = APIRouter(prefix="/v1/visits", tags=["visits"])
RequestId = Annotated[int, Path(ge=1, le=2_147_483_647)]


def request_target(db: Database, place: Facility, params: Params) -> Target:
    """A request: the person to be visited and its first visitor."""
    person_id, visitors = requests.request_parties(db, place.id, whole(params, "request_id"))
    return Target(
        place.id, Record.VISIT, person_id=person_id, contact_id=visitors[0] if visitors else None
    )


def _target(found: VisitRequest, facility_id: str) -> Target:
    return Target(
        facility_id,
        Record.VISIT,
        person_id=found.person_id,
        contact_id=found.visitors[0] if found.visitors else None,
    )


def request_out(found: VisitRequest) -> RequestOut:
    return RequestOut(
        id=found.id,
        person_id=found.person_id,
        requested_by=found.requested_by,
        visitors=list(found.visitors),
        preferences=[
            PreferenceOut(template_id=p.template_id, date=p.day) for p in found.preferences
        ],
        window_closes_at=found.window_closes_at.astimezone(UTC),
        status=str(found.status),
        reason=found.reason,
        booking_id=found.booking_id,
        created_at=found.created_at.astimezone(UTC),
        decided_at=None if found.decided_at is None else found.decided_at.astimezone(UTC),
    )


@router.post(
    "/requests",
    response_model=RequestOut,
    status_code=201,
    summary="Ask for a visit in one of up to five ranked sessions of a week, while it is open",
)
async def submit(
    body: RequestIn, grant: Annotated[Access, allowed(Action.VISIT_BOOK)]
) -> RequestOut:
    grant.require(
        Target(
            grant.facility.id, Record.VISIT, person_id=body.person_id, contact_id=body.visitors[0]
        )
    )
    found = await in_thread(
        requests.submit_request,
        grant.db,
        grant.facility.id,
        body.person_id,
        body.visitors,
        [Preferred(p.template_id, p.date) for p in body.preferences],
        actor=grant.actor,
        now=datetime.now(UTC),
    )
    return request_out(found)


@router.get("/requests", response_model=list[RequestOut], summary="List visit requests")
async def list_requests(
    grant: Annotated[Access, allowed(Action.VISIT_READ)],
    person_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
) -> list[RequestOut]:
    wanted = None if status is None else choice(RequestStatus, status, "status")
    found = await in_thread(
        requests.list_requests, grant.db, grant.facility.id, person_id=person_id, status=wanted
    )
    return [request_out(r) for r in found if grant.sees(_target(r, grant.facility.id))]


@router.get("/requests/{request_id}", response_model=RequestOut, summary="One visit request")
async def get_request(
    request_id: RequestId,
    grant: Annotated[Access, allowed(Action.VISIT_READ, request_target)],
) -> RequestOut:
    found = await in_thread(requests.get_request, grant.db, grant.facility.id, request_id)
    return request_out(found)


@router.post(
    "/requests/{request_id}/withdraw",
    response_model=RequestOut,
    summary="Withdraw a pending visit request",
)
async def withdraw(
    request_id: RequestId,
    grant: Annotated[Access, allowed(Action.VISIT_BOOK, request_target)],
) -> RequestOut:
    found = await in_thread(
        requests.withdraw_request,
        grant.db,
        grant.facility.id,
        request_id,
        actor=grant.actor,
        now=datetime.now(UTC),
    )
    return request_out(found)


@router.post(
    "/allocations",
    response_model=AllocationOut,
    summary="Allocate every request whose window has closed: book the met, tell the unmet why",
)
async def allocate(
    grant: Annotated[Access, allowed(Action.VISIT_MANAGE)], body: AllocateIn | None = None
) -> AllocationOut:
    run = await in_thread(
        requests.allocate_closed,
        grant.db,
        grant.facility.id,
        actor=grant.actor,
        now=datetime.now(UTC),
        seconds=(body or AllocateIn()).seconds,
    )
    return AllocationOut(
        requests=[request_out(r) for r in run.requests],
        met=run.met,
        unmet=run.unmet,
        fcfs_met=run.fcfs_met,
        solver_status=run.solver_status,
        gap=run.gap,
        seconds=run.seconds,
    )
