"""Protected activities, retaliation flags and court-order compliance (SPEC 7)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from kinline.audit.service import person_chain, record_event
from kinline.calls import repository as calls_repository
from kinline.courts import repository
from kinline.db.engine import Database
from kinline.errors import AlreadyExists, InvalidInput, NotFound
from kinline.people import repository as people_repository
from kinline.people.service import require_facility, require_person
from kinline.policy import repository as policy_repository
from kinline.rules.compliance import (
    Compliance,
    ComplianceError,
    DeliveredSession,
    compliance,
    order_period,
)
from kinline.rules.model import Contact
from kinline.rules.retaliation import (
    PROTECTED_KINDS,
    ProtectedActivity,
    RetaliationFlag,
    retaliation_flags,
)


def record_protected_activity(
    db: Database, facility_id: str, activity: ProtectedActivity, *, actor: str, at: datetime
) -> ProtectedActivity:
    """A filing, grievance, lawsuit or complaint: what later restrictions are weighed against."""
    if activity.kind not in PROTECTED_KINDS:
        raise InvalidInput(
            f"{activity.kind!r} is not one of {', '.join(sorted(PROTECTED_KINDS))}",
            field="kind",
        )
    with db.transaction() as session:
        require_facility(session, facility_id)
        require_person(session, facility_id, activity.person)
        if repository.activity_exists(session, facility_id, activity.id):
            raise AlreadyExists(f"activity {activity.id!r} already recorded", field="id")
        repository.add_activity(session, facility_id, activity, actor)
        record_event(
            session,
            facility_id=facility_id,
            chain=person_chain(facility_id, activity.person),
            actor=actor,
            tag="courts:activity:recorded",
            payload={"activity_id": activity.id, "kind": activity.kind, "at": activity.at},
            at=at,
        )
    return activity


def record_adverse_action(
    session: Session, facility_id: str, person_id: str, action: str, kind: str, at: datetime
) -> None:
    """Note, in the caller's transaction, a change against one person that the
    retaliation report weighs (an imposed deny or limit, a lifted grant, a revocation)."""
    repository.add_adverse_action(session, facility_id, person_id, action, kind, at)


def retaliation_report(db: Database, facility_id: str) -> list[RetaliationFlag]:
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        return retaliation_flags(
            repository.adverse_actions(session, facility_id),
            repository.activities(session, facility_id),
            facility.retaliation_window_days,
            facility.zone,
        )


def compliance_report(db: Database, facility_id: str, order_id: str, period: str) -> Compliance:
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        row = policy_repository.get_rule_row(session, facility_id, order_id)
        if row is None:
            raise NotFound(f"no order {order_id!r} in {facility_id!r}", field="order")
        order = policy_repository.rule_from_row(row)
        try:
            span = order_period(order, period, facility.zone)
        except ComplianceError as error:
            raise InvalidInput(str(error), field="period") from None
        rows = calls_repository.completed_sessions(
            session, facility_id, str(order.channel), span.start, span.end, order.person
        )
        contacts: dict[str, Contact] = {}
        delivered: list[DeliveredSession] = []
        for session_row in rows:
            contact = contacts.get(session_row.contact_id)
            if contact is None:
                contact = people_repository.get_contact(
                    session, facility_id, session_row.contact_id, session_row.started_at
                )
                if contact is None:
                    continue
                contacts[session_row.contact_id] = contact
            delivered.append(
                DeliveredSession(
                    session_row.person_id, contact, session_row.channel, session_row.started_at
                )
            )
        return compliance(order, span, delivered)
