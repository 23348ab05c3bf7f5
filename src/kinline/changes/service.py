"""Changes to what a person may do; one transaction each, with everything that
must commit beside them.

Approving or revoking a contact's channel and imposing or lifting a rule are
owned by ``people`` and ``policy``, which write the change and its audit event
inside a transaction they are given. Its consequences belong to other
features: the notice to each person concerned, in their language, queued for
delivery (``notices``), and, for a change adverse to one person, the record the
retaliation report weighs (``courts``). This layer above them runs all of it in
one transaction, so a change commits with its notices or not at all
(invariant 1) while no feature imports another that stands above it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from kinline.bounds import REASON_CHARS
from kinline.changes.conflicts import override_orders
from kinline.courts.service import record_adverse_action
from kinline.db.engine import Database
from kinline.errors import InvalidInput
from kinline.events.must_end import order_calls_ended
from kinline.notices.model import Change, ChangeFacts
from kinline.notices.service import write_notices
from kinline.people import custody
from kinline.people import service as people
from kinline.people.custody import CustodyChange, Transfer
from kinline.people.service import KEEP, ApprovalChange, ContactEdit, Keep, PhoneRemoval
from kinline.policy import service as policy
from kinline.rules.model import Channel, Kind, Rule


def approve_contact(
    db: Database,
    facility_id: str,
    contact_id: str,
    channel: Channel | str,
    *,
    at: datetime,
    actor: str,
    reason: str | None = None,
) -> int | None:
    """Approve a contact for a channel; returns the notice id, or None when it
    already was approved (nothing changes, so nothing is written)."""
    _bounded(reason)
    with db.transaction() as session:
        approval = people.approve(
            session, facility_id, contact_id, channel, at=at, actor=actor, reason=reason
        )
        if approval is None:
            return None
        [notice_id] = write_notices(
            session,
            approval.facility,
            [approval.person],
            _approval_facts(approval, Change.APPROVED, reason, at),
            at=at,
            actor=actor,
        )
        return notice_id


def revoke_contact(
    db: Database,
    facility_id: str,
    contact_id: str,
    channel: Channel | str,
    *,
    reason: str,
    at: datetime,
    actor: str,
) -> int:
    """End a contact's approval for a channel; the person is told why, and the
    revocation is an adverse action the retaliation report weighs."""
    _bounded(reason)
    with db.transaction() as session:
        approval = people.revoke(
            session, facility_id, contact_id, channel, reason=reason, at=at, actor=actor
        )
        record_adverse_action(
            session,
            facility_id,
            approval.person.id,
            f"revoke:{approval.contact.id}:{approval.channel}",
            "revoke",
            at,
        )
        [notice_id] = write_notices(
            session,
            approval.facility,
            [approval.person],
            _approval_facts(approval, Change.REVOKED, reason, at),
            at=at,
            actor=actor,
        )
        return notice_id


def impose_rule(
    db: Database,
    facility_id: str,
    data: Mapping[str, Any],
    *,
    at: datetime,
    actor: str,
    reason: str | None = None,
    in_force_at_start: bool = False,
    authority_cited: str | None = None,
) -> Rule:
    """Impose a rule given as plain data (SPEC 3). Without ``from`` it starts at
    ``at``. Every person it concerns is told; a deny or limit on one person is an
    adverse action. ``in_force_at_start`` loads a rule that was already in force:
    no notice, no adverse action. A rule overriding a recorded court order's
    grant needs ``authority_cited``; its court and counsel are emailed
    (``changes.conflicts``)."""
    with db.transaction() as session:
        return impose_in(
            session,
            facility_id,
            data,
            at=at,
            actor=actor,
            reason=reason,
            in_force_at_start=in_force_at_start,
            authority_cited=authority_cited,
        )


def impose_in(
    session: Session,
    facility_id: str,
    data: Mapping[str, Any],
    *,
    at: datetime,
    actor: str,
    reason: str | None = None,
    in_force_at_start: bool = False,
    authority_cited: str | None = None,
) -> Rule:
    """``impose_rule`` inside the caller's transaction (a court order imposes
    its rules in the transaction that records it)."""
    _bounded(reason)
    imposed = policy.impose(
        session,
        facility_id,
        data,
        at=at,
        actor=actor,
        reason=reason,
        in_force_at_start=in_force_at_start,
    )
    rule = imposed.rule
    if in_force_at_start:
        return rule
    override_orders(
        session,
        imposed.facility,
        rule,
        reason=reason,
        authority_cited=authority_cited,
        at=at,
        actor=actor,
    )
    # A security measure denying a call under way: the switch must end it.
    order_calls_ended(session, facility_id, rule, at=at, actor=actor)
    if rule.person is not None and rule.kind in (Kind.DENY, Kind.LIMIT):
        record_adverse_action(session, facility_id, rule.person, rule.id, f"impose_{rule.kind}", at)
    write_notices(
        session,
        imposed.facility,
        policy.concerned(session, facility_id, rule),
        _rule_facts(rule, Change.IMPOSED, rule.starts_at or at, reason),
        at=at,
        actor=actor,
    )
    return rule


def lift_rule(
    db: Database, facility_id: str, rule_id: str, *, reason: str, at: datetime, actor: str
) -> Rule:
    """End a rule at ``at``; the people it concerned are told, with the reason.
    Lifting a grant to one person is an adverse action."""
    _bounded(reason)
    with db.transaction() as session:
        lifted = policy.lift(session, facility_id, rule_id, reason=reason, at=at, actor=actor)
        rule = lifted.rule
        if rule.person is not None and rule.kind is Kind.GRANT:
            record_adverse_action(session, facility_id, rule.person, rule.id, "lift_grant", at)
        write_notices(
            session,
            lifted.facility,
            policy.concerned(session, facility_id, rule),
            _rule_facts(rule, Change.LIFTED, at, reason),
            at=at,
            actor=actor,
        )
        return rule


def release_person(
    db: Database, facility_id: str, person_id: str, *, reason: str, at: datetime, actor: str
) -> tuple[CustodyChange, int]:
    """Release the person (``kinline.people.custody``): their record here closes,
    every open approval ends, and they are told; returns the notice id."""
    _bounded(reason)
    with db.transaction() as session:
        released = custody.release(
            session, facility_id, person_id, reason=reason, at=at, actor=actor
        )
        facts = ChangeFacts(
            change=Change.RELEASED,
            subject=released.facility.name,
            channel="all",
            effective_at=at,
            reason=reason,
        )
        [notice_id] = write_notices(
            session, released.facility, [released.person], facts, at=at, actor=actor
        )
        return released, notice_id


def transfer_person(
    db: Database,
    facility_id: str,
    person_id: str,
    to_facility_id: str,
    *,
    reason: str,
    at: datetime,
    actor: str,
    housing_unit: str | None = None,
) -> tuple[Transfer, int]:
    """Transfer the person to another facility (``kinline.people.custody`` says
    what moves and what does not). The notice is written at the new facility,
    where the person now reads their notices and files appeals; the transfer is
    an adverse action at the old one, where the retaliation report weighs it.
    Returns the notice id."""
    _bounded(reason)
    with db.transaction() as session:
        moved = custody.transfer(
            session,
            facility_id,
            person_id,
            to_facility_id,
            reason=reason,
            at=at,
            actor=actor,
            housing_unit=housing_unit,
        )
        record_adverse_action(
            session, facility_id, person_id, f"transfer:{to_facility_id}", "transfer", at
        )
        facts = ChangeFacts(
            change=Change.TRANSFERRED,
            subject=moved.target.name,
            channel="all",
            effective_at=at,
            reason=reason,
        )
        [notice_id] = write_notices(
            session, moved.target, [moved.person], facts, at=at, actor=actor
        )
        return moved, notice_id


def edit_contact(
    db: Database,
    facility_id: str,
    contact_id: str,
    *,
    at: datetime,
    actor: str,
    name: str | None = None,
    relationship: str | None = None,
    email: str | Keep | None = KEEP,
    notify_by_email: bool | None = None,
    language: str | Keep | None = KEEP,
    country: str | Keep | None = KEEP,
) -> tuple[ContactEdit, int | None]:
    """Edit a contact. A new relationship can change which rules reach the
    contact, so the person is told (the notice id is returned); other edits
    are audited only (None)."""
    with db.transaction() as session:
        edit = people.change_contact(
            session,
            facility_id,
            contact_id,
            at=at,
            actor=actor,
            name=name,
            relationship=relationship,
            email=email,
            notify_by_email=notify_by_email,
            language=language,
            country=country,
        )
        if not edit.relationship_changed:
            return edit, None
        facts = ChangeFacts(
            change=Change.CONTACT_CHANGED,
            subject=edit.view.contact.relationship,
            channel="all",
            effective_at=at,
            contact_name=edit.view.name,
        )
        [notice_id] = write_notices(
            session, edit.facility, [edit.person], facts, at=at, actor=actor
        )
        return edit, notice_id


def remove_phone(
    db: Database, facility_id: str, contact_id: str, number: str, *, at: datetime, actor: str
) -> tuple[PhoneRemoval, int | None]:
    """Remove a contact's number. Removing the last number of a contact approved
    for telephone calls means the person can no longer call them: they are told
    (the notice id is returned); otherwise it is audited only (None)."""
    with db.transaction() as session:
        removal = people.remove_phone(session, facility_id, contact_id, number, at=at, actor=actor)
        if not removal.cuts_off:
            return removal, None
        facts = ChangeFacts(
            change=Change.PHONE_REMOVED,
            subject=f"{contact_id}:{removal.e164}",
            channel="phone",
            effective_at=at,
            contact_name=removal.view.name,
        )
        [notice_id] = write_notices(
            session, removal.facility, [removal.person], facts, at=at, actor=actor
        )
        return removal, notice_id


def _approval_facts(
    approval: ApprovalChange, change: Change, reason: str | None, at: datetime
) -> ChangeFacts:
    return ChangeFacts(
        change=change,
        subject=f"{approval.contact.id}:{approval.channel}",
        channel=str(approval.channel),
        effective_at=at,
        contact_name=approval.contact_name,
        reason=reason,
    )


def _rule_facts(
    rule: Rule, change: Change, effective_at: datetime, reason: str | None
) -> ChangeFacts:
    return ChangeFacts(
        change=change,
        subject=rule.id,
        channel=str(rule.channel),
        effective_at=effective_at,
        authority=str(rule.authority),
        rule_kind=str(rule.kind),
        rule_text=rule.text,
        rule_texts=dict(rule.texts),
        case_number=rule.case_number,
        reason=reason,
    )


def _bounded(reason: str | None) -> None:
    """A reason is a paragraph a person reads in a notice: at most ``REASON_CHARS``
    (the API's schemas say so too; this holds for the commands and scenario files)."""
    if reason is not None and len(reason) > REASON_CHARS:
        raise InvalidInput(f"must be at most {REASON_CHARS} characters", field="reason")
