"""Routes that change what a person may do: approving and revoking a contact's
channel, imposing and lifting a rule. Each answers once the change, its
notices and its audit events have committed together."""

from __future__ import annotations

from fastapi import APIRouter

from kinline.changes import service
from kinline.http import DbDep, FacilityDep, Staff, moment
from kinline.people.schemas import ApprovalIn, ApprovalOut, RevocationIn
from kinline.policy.api import rule_out
from kinline.policy.schemas import ImposeIn, LiftIn, RuleOut

router = APIRouter(prefix="/v1")


@router.post("/contacts/{contact_id}/approvals", response_model=ApprovalOut, tags=["people"])
def approve(
    contact_id: str, body: ApprovalIn, db: DbDep, place: FacilityDep, who: Staff
) -> ApprovalOut:
    notice = service.approve_contact(
        db,
        place.id,
        contact_id,
        body.channel,
        at=moment(body.at, place),
        actor=f"token:{who.name}",
        reason=body.reason,
    )
    return ApprovalOut(
        contact_id=contact_id, channel=body.channel, changed=notice is not None, notice_id=notice
    )


@router.post(
    "/contacts/{contact_id}/approvals/{channel}/revoke",
    response_model=ApprovalOut,
    tags=["people"],
)
def revoke(
    contact_id: str, channel: str, body: RevocationIn, db: DbDep, place: FacilityDep, who: Staff
) -> ApprovalOut:
    notice = service.revoke_contact(
        db,
        place.id,
        contact_id,
        channel,
        reason=body.reason,
        at=moment(body.at, place),
        actor=f"token:{who.name}",
    )
    return ApprovalOut(contact_id=contact_id, channel=channel, changed=True, notice_id=notice)


@router.post("/rules", response_model=RuleOut, status_code=201, tags=["rules"])
def impose(body: ImposeIn, db: DbDep, place: FacilityDep, who: Staff) -> RuleOut:
    rule = service.impose_rule(
        db,
        place.id,
        body.rule,
        at=moment(body.at, place),
        actor=f"token:{who.name}",
        reason=body.reason,
    )
    return rule_out(rule, place)


@router.post("/rules/{rule_id}/lift", response_model=RuleOut, tags=["rules"])
def lift(rule_id: str, body: LiftIn, db: DbDep, place: FacilityDep, who: Staff) -> RuleOut:
    rule = service.lift_rule(
        db,
        place.id,
        rule_id,
        reason=body.reason,
        at=moment(body.at, place),
        actor=f"token:{who.name}",
    )
    return rule_out(rule, place)
