"""Routes for appeals: a person or counsel files and escalates (scope read); staff
answer and extend (scope staff)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

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
from kinline.auth.model import IMPLIED, Scope
from kinline.auth.service import Caller
from kinline.errors import Forbidden
from kinline.http import DbDep, FacilityDep, Reader, Staff, moment
from kinline.people.model import Facility
from kinline.rules.periods import local

router = APIRouter(prefix="/v1/appeals", tags=["appeals"])
AppealId = Annotated[int, Path(ge=1, lt=2**31, description="The appeal's id")]


def _actor(who: Caller) -> str:
    return f"token:{who.name}"


def _staff_only(who: Caller, field: str, value: object) -> None:
    """Only staff may date a filing or accept it late: anyone else files now."""
    if value is not None and Scope.STAFF not in IMPLIED[who.scope]:
        raise Forbidden(f"only staff may set {field}; the token has {who.scope}", field=field)


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
def file_appeal(body: AppealIn, db: DbDep, place: FacilityDep, who: Reader) -> AppealDetailOut:
    """File an appeal against a notice or a decision, at the first level. Late filings
    are refused naming `at`, unless staff accept them with `late_reason`."""
    _staff_only(who, "at", body.at)
    _staff_only(who, "late_reason", body.late_reason)
    appeal = service.file_appeal(
        db,
        place.id,
        person_id=body.person_id,
        notice_id=body.notice_id,
        session_id=body.session_id,
        filed_by=body.filed_by,
        filer=body.filer,
        text=body.text,
        route=body.route,
        at=moment(body.at, place),
        actor=_actor(who),
        late_reason=body.late_reason,
    )
    return detail_out(appeal, place)


@router.get("", response_model=list[AppealOut])
def list_appeals(
    db: DbDep,
    place: FacilityDep,
    _who: Reader,
    person_id: Annotated[str | None, Query(max_length=64, description="One person's")] = None,
    overdue: Annotated[bool, Query(description="Only those whose answer is past due")] = False,
    at: Annotated[str | None, Query(description="Local wall time; default now")] = None,
) -> list[AppealOut]:
    """Appeals, oldest first."""
    appeals = service.list_appeals(
        db, place.id, at=moment(at, place), person_id=person_id, overdue=overdue
    )
    return [appeal_out(appeal, place) for appeal in appeals]


@router.get("/{appeal_id}", response_model=AppealDetailOut)
def get_appeal(
    appeal_id: AppealId,
    db: DbDep,
    place: FacilityDep,
    _who: Reader,
    at: Annotated[str | None, Query(description="Local wall time; default now")] = None,
) -> AppealDetailOut:
    """One appeal with every step."""
    return detail_out(service.get_appeal(db, place.id, appeal_id, at=moment(at, place)), place)


@router.post("/{appeal_id}/answer", response_model=AppealDetailOut)
def answer_appeal(
    appeal_id: AppealId, body: AnswerIn, db: DbDep, place: FacilityDep, who: Staff
) -> AppealDetailOut:
    """Answer the current level: granted, partially_granted or denied."""
    appeal = service.answer_appeal(
        db,
        place.id,
        appeal_id,
        outcome=body.outcome,
        text=body.text,
        at=moment(body.at, place),
        actor=_actor(who),
    )
    return detail_out(appeal, place)


@router.post("/{appeal_id}/extend", response_model=AppealDetailOut)
def extend_appeal(
    appeal_id: AppealId, body: ExtendIn, db: DbDep, place: FacilityDep, who: Staff
) -> AppealDetailOut:
    """Take the level's one extension of the time to answer, before the answer is due."""
    appeal = service.extend_appeal(
        db, place.id, appeal_id, reason=body.reason, at=moment(body.at, place), actor=_actor(who)
    )
    return detail_out(appeal, place)


@router.post("/{appeal_id}/escalate", response_model=AppealDetailOut)
def escalate_appeal(
    appeal_id: AppealId, body: EscalateIn, db: DbDep, place: FacilityDep, who: Reader
) -> AppealDetailOut:
    """Take the appeal to the next level after a denial, a partial grant, or no answer
    in time."""
    _staff_only(who, "at", body.at)
    _staff_only(who, "late_reason", body.late_reason)
    appeal = service.escalate_appeal(
        db,
        place.id,
        appeal_id,
        text=body.text,
        at=moment(body.at, place),
        actor=_actor(who),
        late_reason=body.late_reason,
    )
    return detail_out(appeal, place)


@router.post("/{appeal_id}/withdraw", response_model=AppealDetailOut)
def withdraw_appeal(
    appeal_id: AppealId, body: WithdrawIn, db: DbDep, place: FacilityDep, who: Reader
) -> AppealDetailOut:
    """Withdraw an appeal that is still open."""
    _staff_only(who, "at", body.at)
    appeal = service.withdraw_appeal(
        db, place.id, appeal_id, reason=body.reason, at=moment(body.at, place), actor=_actor(who)
    )
    return detail_out(appeal, place)
