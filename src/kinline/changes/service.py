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

from kinline.courts.service import record_adverse_action
from kinline.db.engine import Database
from kinline.notices.model import Change, ChangeFacts
from kinline.notices.service import write_notices
from kinline.people import service as people
from kinline.people.service import ApprovalChange
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
) -> Rule:
    """Impose a rule given as plain data (SPEC 3). Without ``from`` it starts at
    ``at``. Every person it concerns is told; a deny or limit on one person is an
    adverse action. ``in_force_at_start`` loads a rule that was already in force:
    no notice, no adverse action."""
    with db.transaction() as session:
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
        if rule.person is not None and rule.kind in (Kind.DENY, Kind.LIMIT):
            record_adverse_action(
                session, facility_id, rule.person, rule.id, f"impose_{rule.kind}", at
            )
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
        case_number=rule.case_number,
        reason=reason,
    )
