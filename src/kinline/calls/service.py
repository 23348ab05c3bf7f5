"""Deciding a session and recording what happened; one transaction each.

``decide_contact`` only reads. ``attempt_session`` decides and records in
one transaction, so the counters the next decision reads always include the
session this one allowed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from kinline.audit.service import person_chain, record_event
from kinline.calls import ledger, model, repository
from kinline.calls.model import Status
from kinline.db.engine import Database
from kinline.db.tables import SessionRow
from kinline.errors import InvalidInput
from kinline.people.model import Facility, parse_channel
from kinline.people.service import require_contact, require_facility, require_person
from kinline.policy import repository as policy_repository
from kinline.rules.decide import Decision, Request, decide
from kinline.rules.model import Channel, Contact, Rule
from kinline.rules.usage import UsageSnapshot


@dataclass(frozen=True, slots=True)
class ExplainedDecision:
    """A decision with the rules it names, so it can be explained in their words."""

    facility_id: str
    person_id: str
    contact_id: str
    channel: Channel
    at: datetime
    decision: Decision
    rules: Mapping[str, Rule]
    usage: UsageSnapshot  # what it was decided against
    # The contact as decided (relationship, privilege, approvals): what an
    # explanation's ``Request`` needs, so a page need not load it again.
    contact: Contact

    def explained(self) -> list[Rule]:
        named = dict.fromkeys((*self.decision.rules, *self.decision.conflicts))
        return [self.rules[rule_id] for rule_id in named if rule_id in self.rules]


@dataclass(frozen=True, slots=True)
class RecordedSession:
    id: int
    status: str
    minutes: int
    decision: ExplainedDecision


def decide_contact(
    db: Database,
    facility_id: str,
    person_id: str,
    contact_id: str,
    channel: Channel | str = Channel.PHONE,
    *,
    at: datetime,
) -> ExplainedDecision:
    channel = parse_channel(channel)
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        return decide_in(session, facility, person_id, contact_id, channel, at)


def attempt_session(
    db: Database,
    facility_id: str,
    person_id: str,
    contact_id: str,
    channel: Channel | str = Channel.PHONE,
    *,
    at: datetime,
    minutes: int,
    actor: str,
) -> RecordedSession:
    """Decide a session at ``at``; record it as completed with at most its allowed
    minutes, or as a denied attempt with the reason."""
    channel = parse_channel(channel)
    if minutes < 0:
        raise InvalidInput("must be zero or more", field="minutes")
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        require_person(session, facility_id, person_id, lock=True)
        explained = decide_in(
            session,
            facility,
            person_id,
            contact_id,
            channel,
            at,
            person_checked=True,
            recording=True,
        )
        decision = explained.decision
        used = min(minutes, decision.max_minutes or 0) if decision.allowed else 0
        row = repository.add_session(
            session,
            SessionRow(
                facility_id=facility_id,
                person_id=person_id,
                contact_id=contact_id,
                channel=str(channel),
                started_at=at,
                minutes=used,
                status=Status.COMPLETED if decision.allowed else Status.DENIED,
                reason=None if decision.reason is None else str(decision.reason),
                charged_to=decision.charged_to,
                governed_by=list(decision.governed_by),
                decision=model.decision_json(decision),
                recorded_at=at,
            ),
        )
        change = model.charged_usage(decision, explained.rules, at, used, facility.zone)
        if change is not None:
            ledger.write_usage(session, facility_id, model.usage_added([(person_id, change)]))
        record_event(
            session,
            facility_id=facility_id,
            chain=person_chain(facility_id, person_id),
            actor=actor,
            tag=f"calls:session:{row.status}",
            payload={
                "session_id": row.id,
                "contact_id": contact_id,
                "channel": str(channel),
                "started_at": at,
                "ended_at": at + timedelta(minutes=used),
                "minutes": used,
                "decision": decision.as_dict(),
            },
            at=at,
        )
        return RecordedSession(row.id, row.status, used, explained)


def hold_visit(
    session: Session,
    facility: Facility,
    person_id: str,
    contact_id: str,
    channel: Channel,
    at: datetime,
    minutes: int,
    *,
    actor: str,
) -> tuple[ExplainedDecision, int | None]:
    """Decide a booked visit at its start, inside the caller's transaction (which
    has locked the person's ledger), and when allowed hold it in the usage ledger
    at ``minutes`` (at most its ``max_minutes``) until it happens: a visit booked
    counts against the quotas from the moment it is booked, so a second booking
    cannot spend what the first will. Returns the decision and the held
    session's id (None when refused; nothing is written then).

    The hold has no expiry: the call path's sweep leaves it alone; the visit's
    completion settles it (``settle_visit``), its cancellation takes it back."""
    explained = decide_in(
        session, facility, person_id, contact_id, channel, at, person_checked=True, recording=True
    )
    decision = explained.decision
    if not decision.allowed:
        return explained, None
    held = min(minutes, decision.max_minutes or 0)
    reserved = None
    change = model.charged_usage(decision, explained.rules, at, held, facility.zone)
    if change is not None:
        added = model.usage_added([(person_id, change)])
        ids = ledger.write_usage(session, facility.id, added, entry_ids=True)
        reserved = model.reservation(change, explained.usage.gaps, ids).as_json()
    row = repository.add_session(
        session,
        SessionRow(
            facility_id=facility.id,
            person_id=person_id,
            contact_id=contact_id,
            channel=str(channel),
            started_at=at,
            minutes=held,
            status=Status.HELD,
            reason=None,
            charged_to=decision.charged_to,
            governed_by=list(decision.governed_by),
            decision=model.decision_json(decision),
            recorded_at=at,
            source="visit",
            hold_id=f"v_{uuid.uuid4().hex}",
            max_minutes=held,
            expires_at=None,
            reserved=reserved,
        ),
    )
    record_event(
        session,
        facility_id=facility.id,
        chain=person_chain(facility.id, person_id),
        actor=actor,
        tag="calls:session:held",
        payload={
            "session_id": row.id,
            "contact_id": contact_id,
            "channel": str(channel),
            "started_at": at,
            "minutes": held,
            "decision": decision.as_dict(),
        },
        at=at,
    )
    return explained, row.id


def settle_visit(
    session: Session,
    facility_id: str,
    session_id: int,
    minutes: int | None,
    *,
    actor: str,
    at: datetime,
) -> None:
    """Settle a visit's hold (``hold_visit``) inside the caller's transaction, which
    has locked the person's ledger: completed at ``minutes`` (at most those held),
    or taken back entirely when ``minutes`` is None (the visit did not happen).
    A session already settled is left as it is."""
    row = repository.session_by_id(session, facility_id, session_id)
    if row is None or row.status != Status.HELD:
        return
    used = None if minutes is None else max(0, min(minutes, row.minutes))
    settled = model.settlement(
        model.Reservation.from_json(row.reserved),
        started_at=row.started_at,
        held_minutes=row.minutes,
        minutes=used,
    )
    row.reserved = ledger.settle_usage(session, facility_id, row.person_id, settled).as_json()
    row.status = Status.RELEASED if used is None else Status.COMPLETED
    row.minutes = used or 0
    row.ended_at = None if used is None else row.started_at + timedelta(minutes=used)
    record_event(
        session,
        facility_id=facility_id,
        chain=person_chain(facility_id, row.person_id),
        actor=actor,
        tag=f"calls:session:{row.status}",
        payload={"session_id": row.id, "minutes": row.minutes},
        at=at,
    )


def decide_in(
    session: Session,
    facility: Facility,
    person_id: str,
    contact_id: str,
    channel: Channel,
    at: datetime,
    *,
    person_checked: bool = False,
    recording: bool = False,
) -> ExplainedDecision:
    """Decide inside the caller's transaction (which has locked the person's ledger
    if it will record what it decides; then ``person_checked`` saves a query).

    ``recording``: the session decided is about to be recorded, so it is decided
    against the whole ledger (``ledger.load_usage``), not only what had started
    by ``at``."""
    if not person_checked:
        require_person(session, facility.id, person_id)
    contact = require_contact(session, facility.id, contact_id, at, person_id)
    rules = policy_repository.rules_for(
        session, facility.id, person_id=person_id, channel=channel, active_at=at
    )
    usage = ledger.load_usage(
        session, facility.id, person_id, rules, at, facility.zone, recording=recording
    )
    decision = decide(Request(person_id, contact, channel, at), rules, usage, facility.zone)
    return ExplainedDecision(
        facility_id=facility.id,
        person_id=person_id,
        contact_id=contact_id,
        channel=channel,
        at=at,
        decision=decision,
        rules={rule.id: rule for rule in rules},
        usage=usage,
        contact=contact,
    )
