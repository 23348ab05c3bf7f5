"""The retaliation review: each flag (SPEC 7) with what it is about, and a
reviewer's finding on it.

A flag says only that an adverse action closely followed a protected
activity; it accuses no one. Someone must look at it and say what they found:
``unfounded`` (the action had another cause, stated), ``substantiated`` (it
was retaliation) or ``referred`` (sent to someone with the power to decide:
internal affairs, the inspector general). The finding and its reasoning are
recorded on the person's audit chain and shown beside the flag wherever it is
listed, and in the report counsel receive. Findings are never edited: a later
finding on the same flag supersedes the earlier, which stays in its history.

Flags are recomputed from the activities and actions each time (as the
report always was), so a finding names its flag by the adverse action and the
activity, and is accepted only for a flag that exists.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from kinline.audit.service import person_chain, record_event
from kinline.courts import repository
from kinline.db.engine import Database
from kinline.db.tables import RetaliationFindingRow
from kinline.errors import InvalidInput, NotFound
from kinline.notices import repository as notices_repository
from kinline.people import repository as people_repository
from kinline.people.model import Facility
from kinline.people.service import require_facility, require_person
from kinline.policy import repository as policy_repository
from kinline.rules.retaliation import AdverseAction, ProtectedActivity, retaliation_flags

REASONING_MAX = 4000
ACTION_MAX = 200


class FindingKind(StrEnum):
    UNFOUNDED = "unfounded"
    SUBSTANTIATED = "substantiated"
    REFERRED = "referred"


@dataclass(frozen=True, slots=True)
class Finding:
    id: str
    person_id: str
    action: str
    activity_id: str
    finding: FindingKind
    reasoning: str
    reviewer: str  # the audit actor who recorded it
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class ReviewedFlag:
    """One flag with what a reader needs to judge it, and its findings (the
    current one last). ``action_text`` says what the action was in words: the
    rule's text, or which approval was revoked; ``action_by`` who took it."""

    person_id: str
    action: str
    action_kind: str
    action_at: datetime
    action_text: str
    action_by: str | None
    activity_id: str
    activity_kind: str
    activity_at: datetime
    days: int
    findings: tuple[Finding, ...] = ()

    @property
    def finding(self) -> Finding | None:
        return self.findings[-1] if self.findings else None


@dataclass(frozen=True, slots=True)
class PersonReview:
    """Everything the report for counsel shows about one person."""

    facility: Facility
    person_id: str
    person_name: str
    flags: tuple[ReviewedFlag, ...]
    activities: tuple[ProtectedActivity, ...]
    actions: tuple[AdverseAction, ...]
    address: str | None = None


def reviewed_flags(
    db: Database, facility_id: str, person_id: str | None = None
) -> list[ReviewedFlag]:
    """The facility's flags (one person's, with ``person_id``), each with its findings."""
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        if person_id is not None:
            require_person(session, facility_id, person_id)
        return _flags(session, facility, person_id)


def person_review(db: Database, facility_id: str, person_id: str) -> PersonReview:
    """One person's flags, findings, and every protected activity and adverse
    action of theirs (the chart shows those not flagged too)."""
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        person = require_person(session, facility_id, person_id)
        flags = _flags(session, facility, person_id)
        activities = [
            a for a in repository.activities(session, facility_id) if a.person == person_id
        ]
        actions = [
            a for a in repository.adverse_actions(session, facility_id) if a.person == person_id
        ]
        letterhead = notices_repository.get_letterhead(session, facility_id)
        return PersonReview(
            facility=facility,
            person_id=person_id,
            person_name=person.name,
            flags=tuple(flags),
            activities=tuple(activities),
            actions=tuple(actions),
            address=None if letterhead is None else letterhead.address,
        )


def record_finding(
    db: Database,
    facility_id: str,
    person_id: str,
    *,
    action: str,
    activity: str,
    finding: str,
    reasoning: str,
    at: datetime,
    actor: str,
) -> Finding:
    """Record a reviewer's finding on the flag of ``action`` after ``activity``:
    audited on the person's chain, in one transaction with the finding."""
    kind = _finding_kind(finding)
    why = _reasoning(reasoning)
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        require_person(session, facility_id, person_id)
        flags = _flags(session, facility, person_id)
        if not any(flag.action == action for flag in flags):
            raise NotFound(
                f"no retaliation flag on action {action[:ACTION_MAX]!r} of {person_id!r}",
                field="action",
            )
        if not any(flag.action == action and flag.activity_id == activity for flag in flags):
            raise NotFound(
                f"the flag on {action[:ACTION_MAX]!r} names another activity than {activity!r}",
                field="activity",
            )
        row = RetaliationFindingRow(
            facility_id=facility_id,
            id=secrets.token_hex(16),
            person_id=person_id,
            action=action,
            activity_id=activity,
            finding=str(kind),
            reasoning=why,
            reviewer=actor[:200],
            recorded_at=at,
        )
        session.add(row)
        session.flush()
        record_event(
            session,
            facility_id=facility_id,
            chain=person_chain(facility_id, person_id),
            actor=actor,
            tag="courts:retaliation_finding:recorded",
            payload={
                "finding_id": row.id,
                "person_id": person_id,
                "action": action,
                "activity_id": activity,
                "finding": str(kind),
                "reasoning": why,
            },
            at=at,
        )
        return _finding(row)


def _finding_kind(value: str) -> FindingKind:
    try:
        return FindingKind(value.strip().lower())
    except ValueError:
        raise InvalidInput(
            f"must be one of {', '.join(k.value for k in FindingKind)}; got {value[:40]!r}",
            field="finding",
        ) from None


def _reasoning(value: str) -> str:
    text = value.strip()
    if not text:
        raise InvalidInput("say why: the reasoning is what the finding rests on", field="reasoning")
    if len(text) > REASONING_MAX:
        raise InvalidInput(f"at most {REASONING_MAX} characters", field="reasoning")
    if "\x00" in text:
        raise InvalidInput("must not contain a NUL character", field="reasoning")
    return text


def _flags(session: Session, facility: Facility, person_id: str | None) -> list[ReviewedFlag]:
    activities = repository.activities(session, facility.id)
    actions = repository.adverse_actions(session, facility.id)
    if person_id is not None:
        activities = [a for a in activities if a.person == person_id]
        actions = [a for a in actions if a.person == person_id]
    flags = retaliation_flags(actions, activities, facility.retaliation_window_days, facility.zone)
    kinds = {a.id: a.kind for a in activities}
    action_kinds = {(a.action, a.at): a.kind for a in actions}
    findings = _findings(session, facility.id, person_id)
    reviewed: list[ReviewedFlag] = []
    for flag in flags:
        text, by = _describe(session, facility.id, flag.action)
        reviewed.append(
            ReviewedFlag(
                person_id=flag.person,
                action=flag.action,
                action_kind=action_kinds.get((flag.action, flag.action_at), ""),
                action_at=flag.action_at,
                action_text=text,
                action_by=by,
                activity_id=flag.activity,
                activity_kind=kinds.get(flag.activity, ""),
                activity_at=flag.activity_at,
                days=flag.days,
                findings=tuple(
                    f
                    for f in findings
                    if (f.person_id, f.action, f.activity_id)
                    == (flag.person, flag.action, flag.activity)
                ),
            )
        )
    return reviewed


def _describe(session: Session, facility_id: str, action: str) -> tuple[str, str | None]:
    """The action in words, and who took it (a name, when the store knows)."""
    kind, _, rest = action.partition(":")
    if kind == "revoke":
        contact_id, _, channel = rest.rpartition(":")
        name = people_repository.contact_name(session, facility_id, contact_id) or contact_id
        return f"Approval of {name} for {channel} revoked", None
    if kind == "transfer":
        return f"Transferred to {rest}", None
    row = policy_repository.get_rule_row(session, facility_id, action)
    if row is None:
        return action, None
    rule = policy_repository.rule_from_row(row)
    return rule.text or action, _name_of(row.imposed_by)


def _name_of(actor: str) -> str:
    """``staff:3:Maria Lopez`` reads ``Maria Lopez``; any other actor as it is."""
    parts = actor.split(":", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return parts[2]
    return actor


def _findings(session: Session, facility_id: str, person_id: str | None) -> list[Finding]:
    query = select(RetaliationFindingRow).where(RetaliationFindingRow.facility_id == facility_id)
    if person_id is not None:
        query = query.where(RetaliationFindingRow.person_id == person_id)
    rows = session.scalars(
        query.order_by(RetaliationFindingRow.recorded_at, RetaliationFindingRow.id)
    )
    return [_finding(row) for row in rows]


def _finding(row: RetaliationFindingRow) -> Finding:
    return Finding(
        id=row.id,
        person_id=row.person_id,
        action=row.action,
        activity_id=row.activity_id,
        finding=FindingKind(row.finding),
        reasoning=row.reasoning,
        reviewer=row.reviewer,
        recorded_at=row.recorded_at,
    )
