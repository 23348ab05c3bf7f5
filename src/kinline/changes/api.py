"""Routes that change what a person may do: approving and revoking a contact's
channel, imposing and lifting a rule, transferring and releasing a person,
editing a contact and removing a number. Each answers once the change, its
notices and its audit events have committed together."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter

from kinline import access
from kinline.access import Access, allowed
from kinline.changes import service
from kinline.http import moment
from kinline.identity.model import Action, Target
from kinline.people.api import contact_out, contact_target, person_out
from kinline.people.schemas import (
    ApprovalIn,
    ApprovalOut,
    ContactChangeOut,
    ContactPatch,
    CustodyOut,
    ReleaseIn,
    RevocationIn,
    TransferIn,
)
from kinline.people.service import KEEP, get_facility, get_person_record
from kinline.policy.api import rule_out, rule_target
from kinline.policy.schemas import ImposeIn, LiftIn, RuleOut

router = APIRouter(prefix="/v1")


@router.post("/contacts/{contact_id}/approvals", response_model=ApprovalOut, tags=["people"])
def approve(
    contact_id: str,
    body: ApprovalIn,
    grant: Annotated[Access, allowed(Action.APPROVAL_DECIDE, contact_target)],
) -> ApprovalOut:
    db, place = grant.db, grant.facility
    notice = service.approve_contact(
        db,
        place.id,
        contact_id,
        body.channel,
        at=moment(body.at, place),
        actor=grant.actor,
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
    contact_id: str,
    channel: str,
    body: RevocationIn,
    grant: Annotated[Access, allowed(Action.APPROVAL_DECIDE, contact_target)],
) -> ApprovalOut:
    db, place = grant.db, grant.facility
    notice = service.revoke_contact(
        db,
        place.id,
        contact_id,
        channel,
        reason=body.reason,
        at=moment(body.at, place),
        actor=grant.actor,
    )
    return ApprovalOut(contact_id=contact_id, channel=channel, changed=True, notice_id=notice)


@router.post("/rules", response_model=RuleOut, status_code=201, tags=["rules"])
def impose(body: ImposeIn, grant: Annotated[Access, allowed(Action.RULE_IMPOSE)]) -> RuleOut:
    db, place = grant.db, grant.facility
    rule = service.impose_rule(
        db,
        place.id,
        body.rule,
        at=moment(body.at, place),
        actor=grant.actor,
        reason=body.reason,
        authority_cited=body.authority_cited,
    )
    return rule_out(rule, place)


@router.post("/rules/{rule_id}/lift", response_model=RuleOut, tags=["rules"])
def lift(
    rule_id: str, body: LiftIn, grant: Annotated[Access, allowed(Action.RULE_LIFT, rule_target)]
) -> RuleOut:
    db, place = grant.db, grant.facility
    rule = service.lift_rule(
        db,
        place.id,
        rule_id,
        reason=body.reason,
        at=moment(body.at, place),
        actor=grant.actor,
    )
    return rule_out(rule, place)


@router.post(
    "/people/{person_id}/transfer",
    response_model=CustodyOut,
    tags=["people"],
    summary="Transfer a person to another facility (contacts move, approvals do not)",
)
def transfer(
    person_id: str,
    body: TransferIn,
    grant: Annotated[Access, allowed(Action.PERSON_MANAGE, access.person_record)],
) -> CustodyOut:
    db, place = grant.db, grant.facility
    grant.require(Target(body.to_facility_id))
    moved, notice = service.transfer_person(
        db,
        place.id,
        person_id,
        body.to_facility_id,
        reason=body.reason,
        at=moment(body.at, place),
        actor=grant.actor,
        housing_unit=body.housing_unit,
    )
    record = get_person_record(db, moved.target.id, person_id)
    return CustodyOut(
        person=person_out(record, get_facility(db, moved.target.id)),
        notice_id=notice,
        approvals_ended=moved.source.approvals_ended,
        contacts=moved.contacts,
    )


@router.post(
    "/people/{person_id}/release",
    response_model=CustodyOut,
    tags=["people"],
    summary="Release a person: their custody here ends, with a notice",
)
def release(
    person_id: str,
    body: ReleaseIn,
    grant: Annotated[Access, allowed(Action.PERSON_MANAGE, access.person_record)],
) -> CustodyOut:
    db, place = grant.db, grant.facility
    released, notice = service.release_person(
        db, place.id, person_id, reason=body.reason, at=moment(body.at, place), actor=grant.actor
    )
    return CustodyOut(
        person=person_out(get_person_record(db, place.id, person_id), place),
        notice_id=notice,
        approvals_ended=released.approvals_ended,
    )


@router.patch(
    "/contacts/{contact_id}",
    response_model=ContactChangeOut,
    tags=["people"],
    summary="Edit a contact (a new relationship is noticed to the person)",
)
def edit_contact(
    contact_id: str,
    body: ContactPatch,
    grant: Annotated[Access, allowed(Action.CONTACT_MANAGE, contact_target)],
) -> ContactChangeOut:
    db, place = grant.db, grant.facility
    given = body.model_fields_set
    edit, notice = service.edit_contact(
        db,
        place.id,
        contact_id,
        at=moment(body.at, place),
        actor=grant.actor,
        name=body.name,
        relationship=body.relationship,
        email=body.email if "email" in given else KEEP,
        notify_by_email=body.notify_by_email,
        language=body.language if "language" in given else KEEP,
        country=body.country if "country" in given else KEEP,
    )
    return ContactChangeOut(contact=contact_out(edit.view), notice_id=notice)


@router.delete(
    "/contacts/{contact_id}/phones/{e164}",
    response_model=ContactChangeOut,
    tags=["people"],
    summary="Remove a contact's phone number (the last one of an approved contact is noticed)",
)
def remove_phone(
    contact_id: str,
    e164: str,
    grant: Annotated[Access, allowed(Action.CONTACT_MANAGE, contact_target)],
) -> ContactChangeOut:
    db, place = grant.db, grant.facility
    removal, notice = service.remove_phone(
        db, place.id, contact_id, e164, at=datetime.now(UTC), actor=grant.actor
    )
    return ContactChangeOut(contact=contact_out(removal.view), notice_id=notice)
