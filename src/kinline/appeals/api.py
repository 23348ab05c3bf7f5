"""Routes for appeals: the person (or counsel) files, escalates and withdraws their
own; a family member files for the person they are a contact of, where the
facility accepts it; staff answer and extend, and may file for a person, late
or dated."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from kinline import access
from kinline.access import Access, Params, allowed, people_for, whole
from kinline.appeals import service
from kinline.appeals.model import last_day
from kinline.appeals.schemas import (
    AnswerIn,
    AppealDetailOut,
    AppealIn,
    AppealOut,
    EscalateIn,
    ExtendIn,
    StepOut,
    WithdrawIn,
)
from kinline.db.engine import Database
from kinline.errors import Forbidden
from kinline.http import moment
from kinline.identity.model import Action, Kind, Record, Target
from kinline.people.model import Facility
from kinline.rules.periods import local

router = APIRouter(prefix="/v1/appeals", tags=["appeals"])
AppealId = Annotated[int, Path(ge=1, lt=2**31, description="The appeal's id")]


def appeal_target(db: Database, place: Facility, params: Params) -> Target:
    """The appeal named in the path, as the person's it is for."""
    found = service.get_appeal(db, place.id, whole(params, "appeal_id"), at=datetime.now(UTC))
    return Target(place.id, Record.APPEAL, person_id=found.person_id)


def _staff_only(grant: Access, field: str, value: object) -> None:
    """Only staff may date a filing or accept it late: anyone else files now."""
    if value is not None and not grant.may(Action.APPEAL_LATE):
        raise Forbidden(f"only staff may set {field}", field=field)


def _filed_as(grant: Access, body: AppealIn) -> tuple[str, str | None]:
    """Who files: staff say so (default the person); anyone else files as who they
    are, a family member with their contact record of the person."""
    kind = grant.subject.kind
    if kind is Kind.STAFF:
        return body.filed_by or "person", body.contact_id
    if kind is not Kind.FAMILY:
        return str(kind), None
    place, person = grant.facility.id, body.person_id
    theirs = sorted(
        binding.contact_id
        for binding in grant.subject.bindings
        if binding.facility_id == place
        and binding.person_id == person
        and binding.contact_id is not None
    )
    if body.contact_id is not None and body.contact_id not in theirs:
        raise Forbidden("not a contact record of yours", field="contact_id")
    return "family", body.contact_id or theirs[0]


def _wall(value: datetime | None, place: Facility) -> str | None:
    return None if value is None else local(value, place.zone).isoformat()


def _day(value: datetime | None, place: Facility) -> str | None:
    return None if value is None else last_day(value, place.zone).isoformat()


def appeal_out(appeal: service.Appeal, place: Facility) -> AppealOut:
    return AppealOut(
        id=appeal.id,
        person_id=appeal.person_id,
        notice_id=appeal.notice_id,
        session_id=appeal.session_id,
        filed_by=appeal.filed_by,
        filer=appeal.filer,
        text=appeal.text,
        route=appeal.route,
        level=appeal.level,
        level_name=appeal.level_name,
        status=appeal.status,
        event_at=local(appeal.event_at, place.zone).isoformat(),
        filed_at=local(appeal.filed_at, place.zone).isoformat(),
        answer_due=_wall(appeal.answer_due, place),
        answer_by=_day(appeal.answer_due, place),
        file_next_by=_wall(appeal.file_next_by, place),
        escalate_by=_day(appeal.file_next_by, place),
        extended=appeal.extended,
        overdue=appeal.overdue,
    )


def detail_out(appeal: service.Appeal, place: Facility) -> AppealDetailOut:
    return AppealDetailOut(
        **appeal_out(appeal, place).model_dump(),
        steps=[
            StepOut(
                level=step.level,
                kind=step.kind,
                at=local(step.at, place.zone).isoformat(),
                actor=step.actor,
                outcome=step.outcome,
                text=step.text,
                due=_wall(step.due, place),
            )
            for step in appeal.steps
        ],
    )


@router.post("", response_model=AppealDetailOut, status_code=201)
def file_appeal(
    body: AppealIn, grant: Annotated[Access, allowed(Action.APPEAL_FILE)]
) -> AppealDetailOut:
    """File an appeal against a notice or a decision, at the first level: the person,
    counsel for a person they represent, a family member for the person they are a
    contact of (where the facility accepts family filings), or staff. Late filings
    are refused naming `at`, unless staff accept them with `late_reason`."""
    place = grant.facility
    grant.require(Target(place.id, Record.PERSON, person_id=body.person_id))
    _staff_only(grant, "at", body.at)
    _staff_only(grant, "late_reason", body.late_reason)
    filed_by, contact_id = _filed_as(grant, body)
    appeal = service.file_appeal(
        grant.db,
        place.id,
        person_id=body.person_id,
        notice_id=body.notice_id,
        session_id=body.session_id,
        filed_by=filed_by,
        contact_id=contact_id,
        filer=body.filer,
        text=body.text,
        route=body.route,
        at=moment(body.at, place),
        actor=grant.actor,
        late_reason=body.late_reason,
    )
    return detail_out(appeal, place)


@router.get("", response_model=list[AppealOut])
def list_appeals(
    grant: Annotated[Access, allowed(Action.APPEAL_READ, access.person)],
    person_id: Annotated[str | None, Query(max_length=64, description="One person's")] = None,
    overdue: Annotated[bool, Query(description="Only those whose answer is past due")] = False,
    at: Annotated[str | None, Query(description="Local wall time; default now")] = None,
) -> list[AppealOut]:
    """Appeals the caller may read, oldest first."""
    place = grant.facility
    when = moment(at, place)
    appeals = [
        appeal
        for who in people_for(grant, person_id)
        for appeal in service.list_appeals(
            grant.db, place.id, at=when, person_id=who, overdue=overdue
        )
    ]
    appeals.sort(key=lambda appeal: appeal.id)
    return [appeal_out(appeal, place) for appeal in appeals]


@router.get("/{appeal_id}", response_model=AppealDetailOut)
def get_appeal(
    appeal_id: AppealId,
    grant: Annotated[Access, allowed(Action.APPEAL_READ, appeal_target)],
    at: Annotated[str | None, Query(description="Local wall time; default now")] = None,
) -> AppealDetailOut:
    """One appeal with every step."""
    place = grant.facility
    return detail_out(
        service.get_appeal(grant.db, place.id, appeal_id, at=moment(at, place)), place
    )


@router.post("/{appeal_id}/answer", response_model=AppealDetailOut)
def answer_appeal(
    appeal_id: AppealId,
    body: AnswerIn,
    grant: Annotated[Access, allowed(Action.APPEAL_ANSWER, appeal_target)],
) -> AppealDetailOut:
    """Answer the current level: granted, partially_granted or denied."""
    place = grant.facility
    appeal = service.answer_appeal(
        grant.db,
        place.id,
        appeal_id,
        outcome=body.outcome,
        text=body.text,
        at=moment(body.at, place),
        actor=grant.actor,
    )
    return detail_out(appeal, place)


@router.post("/{appeal_id}/extend", response_model=AppealDetailOut)
def extend_appeal(
    appeal_id: AppealId,
    body: ExtendIn,
    grant: Annotated[Access, allowed(Action.APPEAL_EXTEND, appeal_target)],
) -> AppealDetailOut:
    """Take the level's one extension of the time to answer, before the answer is due."""
    place = grant.facility
    appeal = service.extend_appeal(
        grant.db,
        place.id,
        appeal_id,
        reason=body.reason,
        at=moment(body.at, place),
        actor=grant.actor,
    )
    return detail_out(appeal, place)


@router.post("/{appeal_id}/escalate", response_model=AppealDetailOut)
def escalate_appeal(
    appeal_id: AppealId,
    body: EscalateIn,
    grant: Annotated[Access, allowed(Action.APPEAL_ESCALATE, appeal_target)],
) -> AppealDetailOut:
    """Take the appeal to the next level after a denial, a partial grant, or no answer
    in time."""
    place = grant.facility
    _staff_only(grant, "at", body.at)
    _staff_only(grant, "late_reason", body.late_reason)
    appeal = service.escalate_appeal(
        grant.db,
        place.id,
        appeal_id,
        text=body.text,
        at=moment(body.at, place),
        actor=grant.actor,
        late_reason=body.late_reason,
    )
    return detail_out(appeal, place)


@router.post("/{appeal_id}/withdraw", response_model=AppealDetailOut)
def withdraw_appeal(
    appeal_id: AppealId,
    body: WithdrawIn,
    grant: Annotated[Access, allowed(Action.APPEAL_WITHDRAW, appeal_target)],
) -> AppealDetailOut:
    """Withdraw an appeal that is still open: the person's own (or counsel's for
    them), or staff."""
    place = grant.facility
    _staff_only(grant, "at", body.at)
    appeal = service.withdraw_appeal(
        grant.db,
        place.id,
        appeal_id,
        reason=body.reason,
        at=moment(body.at, place),
        actor=grant.actor,
    )
    return detail_out(appeal, place)
