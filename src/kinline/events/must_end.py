"""A security measure imposed during a call: the call must end.

The telephone switch learns it from the domain event ``kinline.call.must_end``
(NATS or a webhook), which carries the hold id the switch knows the call by.
Written as an audit event (``calls:call:must_end``) on the person's chain, in
the transaction that imposes the rule, so the order to end a call is recorded
with the rule or not at all, and reaches the outbox like every other change.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kinline.audit.service import person_chain, record_event
from kinline.db.tables import ContactRow, SessionRow
from kinline.rules.model import Authority, Contact, Kind, Rule

CONNECTED = "connected"
TAG = "calls:call:must_end"


def ends_calls(rule: Rule, at: datetime) -> bool:
    """Whether imposing ``rule`` at ``at`` ends the calls it covers now: a
    security measure that denies, in force at once."""
    return (
        rule.authority is Authority.SECURITY_MEASURE
        and rule.kind is Kind.DENY
        and rule.is_active(at)
    )


def order_calls_ended(
    session: Session, facility_id: str, rule: Rule, *, at: datetime, actor: str
) -> list[str]:
    """Record ``calls:call:must_end`` for every connected call ``rule`` denies;
    the hold ids, in the caller's transaction."""
    if not ends_calls(rule, at):
        return []
    query = (
        select(SessionRow.id, SessionRow.hold_id, SessionRow.person_id, ContactRow)
        .join(
            ContactRow,
            (ContactRow.facility_id == SessionRow.facility_id)
            & (ContactRow.id == SessionRow.contact_id),
        )
        .where(
            SessionRow.facility_id == facility_id,
            SessionRow.status == CONNECTED,
            SessionRow.channel == str(rule.channel),
        )
        .order_by(SessionRow.person_id, SessionRow.id)
    )
    if rule.person is not None:
        query = query.where(SessionRow.person_id == rule.person)
    ended: list[str] = []
    for session_id, hold_id, person_id, contact in session.execute(query).all():
        known = Contact(contact.id, contact.person_id, contact.relationship, contact.privileged)
        if hold_id is None or not rule.contacts.matches(known):
            continue
        record_event(
            session,
            facility_id=facility_id,
            chain=person_chain(facility_id, person_id),
            actor=actor,
            tag=TAG,
            payload={
                "session_id": session_id,
                "hold_id": hold_id,
                "rule_id": rule.id,
                "authority": str(rule.authority),
            },
            at=at,
        )
        ended.append(hold_id)
    return ended
