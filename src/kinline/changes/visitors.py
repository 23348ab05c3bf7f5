"""Decisions about visitors that change what a person may do, each in one
transaction with its notices: the person's (in their language, delivered as
every notice is) and the applicant's own email, in the applicant's language.
A notice's subject is ``{contact}:visit``, as for an approval, so its letter
names the visitor.

Approving a visitor also approves their contact for visits (and, when asked,
video visits) through ``people``, so the engine sees it; a restriction is an
adverse action the retaliation report weighs, as a revocation is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from kinline.courts.service import record_adverse_action
from kinline.db.engine import Database
from kinline.errors import InvalidInput
from kinline.notices.delivery.outbox import enqueue_message
from kinline.notices.model import Addressee, Change, ChangeFacts, compose_notice
from kinline.notices.service import write_notices
from kinline.people import service as people
from kinline.rules.model import Channel
from kinline.rules.periods import local
from kinline.visits import visitors
from kinline.visits.model import Restriction, RestrictionKind, Verdict, Visitor

VISIT_CHANNELS = frozenset({Channel.VISIT, Channel.VIDEO})


@dataclass(frozen=True, slots=True)
class VisitorDecision:
    visitor: Visitor
    notice_id: int
    emailed: bool


@dataclass(frozen=True, slots=True)
class RestrictionDecision:
    restriction: Restriction
    shown: str
    notice_id: int
    emailed: bool


def decide_visitor(
    db: Database,
    facility_id: str,
    visitor_id: int,
    *,
    verdict: Verdict,
    reason: str | None,
    at: datetime,
    actor: str,
    warden: bool = False,
    channels: Sequence[Channel] = (Channel.VISIT,),
) -> VisitorDecision:
    """Approve or refuse an application with a required reason; approval also
    approves the contact for ``channels`` (visits; video visits when asked)."""
    for index, channel in enumerate(channels):
        if channel not in VISIT_CHANNELS:
            raise InvalidInput(
                f"a visitor is approved for visit or video, not {channel}",
                field=f"channels[{index}]",
            )
    with db.transaction() as session:
        addressed = visitors.record_decision(
            session,
            facility_id,
            visitor_id,
            verdict=verdict,
            reason=reason,
            warden=warden,
            at=at,
            actor=actor,
        )
        visitor = addressed.visitor
        if verdict is Verdict.APPROVE:
            for channel in dict.fromkeys(channels):
                people.approve(
                    session,
                    facility_id,
                    visitor.contact_id,
                    channel,
                    at=at,
                    actor=actor,
                    reason=visitor.decision_reason,
                )
        change = Change.VISITOR_APPROVED if verdict is Verdict.APPROVE else Change.VISITOR_REFUSED
        facts = ChangeFacts(
            change=change,
            subject=f"{visitor.contact_id}:{Channel.VISIT}",
            channel=str(Channel.VISIT),
            effective_at=at,
            contact_name=visitor.name,
            reason=visitor.decision_reason,
        )
        notice_id, emailed = _tell(session, addressed, facts, at=at, actor=actor)
        return VisitorDecision(visitor, notice_id, emailed)


def restrict_visitor(
    db: Database,
    facility_id: str,
    visitor_id: int,
    *,
    kind: RestrictionKind,
    reason: str | None,
    at: datetime,
    actor: str,
    starts_on: date | None = None,
    until: date | None = None,
) -> RestrictionDecision:
    """Ban a visitor or hold them to closed or non-contact visits, with dates and
    a reason; the person and the visitor are told, as "not until {date}"."""
    with db.transaction() as session:
        change = visitors.impose_restriction(
            session,
            facility_id,
            visitor_id,
            kind=kind,
            reason=reason,
            starts_on=starts_on,
            until=until,
            at=at,
            actor=actor,
        )
        addressed = change.addressed
        record_adverse_action(
            session,
            facility_id,
            addressed.person.id,
            f"visitor_restriction:{change.restriction.id}",
            "restrict",
            at,
        )
        facts = ChangeFacts(
            change=Change.VISITOR_RESTRICTED,
            subject=f"{addressed.visitor.contact_id}:{Channel.VISIT}",
            channel=str(Channel.VISIT),
            effective_at=at,
            contact_name=addressed.visitor.name,
            reason=f"{change.shown}. {change.restriction.reason}",
        )
        notice_id, emailed = _tell(session, addressed, facts, at=at, actor=actor)
        return RestrictionDecision(change.restriction, change.shown, notice_id, emailed)


def lift_visitor_restriction(
    db: Database,
    facility_id: str,
    restriction_id: int,
    *,
    reason: str | None,
    at: datetime,
    actor: str,
) -> RestrictionDecision:
    with db.transaction() as session:
        change = visitors.lift_restriction(
            session, facility_id, restriction_id, reason=reason, at=at, actor=actor
        )
        addressed = change.addressed
        facts = ChangeFacts(
            change=Change.VISITOR_UNRESTRICTED,
            subject=f"{addressed.visitor.contact_id}:{Channel.VISIT}",
            channel=str(Channel.VISIT),
            effective_at=at,
            contact_name=addressed.visitor.name,
            reason=change.restriction.lift_reason,
        )
        notice_id, emailed = _tell(session, addressed, facts, at=at, actor=actor)
        return RestrictionDecision(change.restriction, change.shown, notice_id, emailed)


def _tell(
    session: Session,
    addressed: visitors.Addressed,
    facts: ChangeFacts,
    *,
    at: datetime,
    actor: str,
) -> tuple[int, bool]:
    """The person's notice, and the applicant's email (when they gave an address)
    in their own language: returns the notice id and whether an email was queued."""
    [notice_id] = write_notices(
        session, addressed.facility, [addressed.person], facts, at=at, actor=actor
    )
    if addressed.email is None:
        return notice_id, False
    facility = addressed.facility
    content = compose_notice(
        facts,
        Addressee(
            facility_name=facility.name,
            person_name=addressed.visitor.name,
            effective_local=local(facts.effective_at, facility.zone),
            appeal_deadline=facility.appeal_deadline(facts.effective_at),
        ),
        addressed.language,
    )
    enqueue_message(
        session,
        facility_id=facility.id,
        recipient=addressed.email,
        subject=content.title,
        body=content.body,
        at=at,
    )
    return notice_id, True
