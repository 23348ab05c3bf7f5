"""Every query about protected activities, adverse actions and order deliveries."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, defer

from kinline.db.tables import (
    AdverseActionRow,
    AuditEventRow,
    CourtOrderDocumentRow,
    CourtOrderRow,
    CourtOrderRuleRow,
    ProtectedActivityRow,
    RuleCitationRow,
    RuleRow,
    SessionRow,
    VisitBookingRow,
    VisitBookingVisitorRow,
    VisitSlotRow,
)
from kinline.rules.retaliation import AdverseAction, ProtectedActivity


def activity_exists(session: Session, facility_id: str, activity_id: str) -> bool:
    return session.get(ProtectedActivityRow, (facility_id, activity_id)) is not None


def add_activity(
    session: Session, facility_id: str, activity: ProtectedActivity, actor: str
) -> None:
    last = session.scalar(
        select(func.max(ProtectedActivityRow.seq)).where(
            ProtectedActivityRow.facility_id == facility_id
        )
    )
    session.add(
        ProtectedActivityRow(
            facility_id=facility_id,
            id=activity.id,
            person_id=activity.person,
            kind=activity.kind,
            occurred_at=activity.at,
            recorded_by=actor,
            seq=(last or 0) + 1,
        )
    )
    session.flush()


def add_adverse_action(
    session: Session, facility_id: str, person_id: str, action: str, kind: str, at: datetime
) -> None:
    session.add(
        AdverseActionRow(
            facility_id=facility_id, person_id=person_id, action=action, kind=kind, occurred_at=at
        )
    )
    session.flush()


def activities(session: Session, facility_id: str) -> list[ProtectedActivity]:
    rows = session.scalars(
        select(ProtectedActivityRow)
        .where(ProtectedActivityRow.facility_id == facility_id)
        .order_by(ProtectedActivityRow.occurred_at, ProtectedActivityRow.seq)
    )
    return [ProtectedActivity(row.id, row.person_id, row.kind, row.occurred_at) for row in rows]


def adverse_actions(session: Session, facility_id: str) -> list[AdverseAction]:
    rows = session.scalars(
        select(AdverseActionRow)
        .where(AdverseActionRow.facility_id == facility_id)
        .order_by(AdverseActionRow.id)
    )
    return [AdverseAction(row.action, row.person_id, row.kind, row.occurred_at) for row in rows]


# --- what an order delivered, and what stood in its way (courts.compliance) ---


def sessions_between(
    session: Session,
    facility_id: str,
    person_id: str | None,
    channel: str,
    start: datetime,
    end: datetime,
) -> list[SessionRow]:
    """Every session (completed, refused, held, released, expired) of the person,
    or of everyone, on ``channel``, started in ``[start, end)``, in time order."""
    query = select(SessionRow).where(
        SessionRow.facility_id == facility_id,
        SessionRow.channel == channel,
        SessionRow.started_at >= start,
        SessionRow.started_at < end,
    )
    if person_id is not None:
        query = query.where(SessionRow.person_id == person_id)
    return list(session.scalars(query.order_by(SessionRow.started_at, SessionRow.id)))


def rule_rows_between(
    session: Session, facility_id: str, channel: str, start: datetime, end: datetime
) -> list[RuleRow]:
    """The rules on ``channel`` in force at some moment of ``[start, end)``, with
    who imposed and lifted each, in listing order."""
    query = select(RuleRow).where(
        RuleRow.facility_id == facility_id,
        RuleRow.channel == channel,
        or_(RuleRow.starts_at.is_(None), RuleRow.starts_at < end),
        or_(RuleRow.ends_at.is_(None), RuleRow.ends_at > start),
        or_(RuleRow.lifted_at.is_(None), RuleRow.lifted_at > start),
    )
    return list(session.scalars(query.order_by(RuleRow.seq)))


def court_order_rows(session: Session, facility_id: str) -> list[RuleRow]:
    """Every court-order grant of the facility, lifted or not, in listing order."""
    query = select(RuleRow).where(
        RuleRow.facility_id == facility_id,
        RuleRow.authority == "court_order",
        RuleRow.kind == "grant",
    )
    return list(session.scalars(query.order_by(RuleRow.seq)))


def cancelled_visits(
    session: Session,
    facility_id: str,
    person_id: str | None,
    slot_kinds: tuple[str, ...],
    start: datetime,
    end: datetime,
) -> list[tuple[VisitBookingRow, VisitSlotRow]]:
    """Cancelled bookings whose session, of one of ``slot_kinds``, began in
    ``[start, end)``, with their session, in time order."""
    query = (
        select(VisitBookingRow, VisitSlotRow)
        .join(
            VisitSlotRow,
            (VisitSlotRow.facility_id == VisitBookingRow.facility_id)
            & (VisitSlotRow.id == VisitBookingRow.slot_id),
        )
        .where(
            VisitBookingRow.facility_id == facility_id,
            VisitBookingRow.status == "cancelled",
            VisitSlotRow.kind.in_(slot_kinds),
            VisitSlotRow.starts_at >= start,
            VisitSlotRow.starts_at < end,
        )
    )
    if person_id is not None:
        query = query.where(VisitBookingRow.person_id == person_id)
    rows = session.execute(query.order_by(VisitSlotRow.starts_at, VisitBookingRow.id)).all()
    return [(booking, slot) for booking, slot in rows]


def visitors_of(session: Session, facility_id: str, booking_ids: list[int]) -> dict[int, list[str]]:
    """The contact ids of each booking's visitors."""
    if not booking_ids:
        return {}
    found: dict[int, list[str]] = {}
    for booking_id, contact_id in session.execute(
        select(VisitBookingVisitorRow.booking_id, VisitBookingVisitorRow.contact_id)
        .where(
            VisitBookingVisitorRow.facility_id == facility_id,
            VisitBookingVisitorRow.booking_id.in_(booking_ids),
        )
        .order_by(VisitBookingVisitorRow.contact_id)
    ).all():
        found.setdefault(booking_id, []).append(contact_id)
    return found


# --- court orders as records (courts.orders) ---


def get_order(session: Session, facility_id: str, order_id: str) -> CourtOrderRow | None:
    return session.get(CourtOrderRow, (facility_id, order_id))


def add_order(session: Session, row: CourtOrderRow) -> None:
    session.add(row)
    session.flush()


def list_orders(session: Session, facility_id: str) -> list[CourtOrderRow]:
    """Every order of the facility, by date signed then id."""
    return list(
        session.scalars(
            select(CourtOrderRow)
            .where(CourtOrderRow.facility_id == facility_id)
            .order_by(CourtOrderRow.signed_on, CourtOrderRow.id)
        )
    )


def link_rule(session: Session, facility_id: str, order_id: str, rule_id: str) -> None:
    session.add(CourtOrderRuleRow(facility_id=facility_id, order_id=order_id, rule_id=rule_id))
    session.flush()


def order_of_rule(session: Session, facility_id: str, rule_id: str) -> str | None:
    """The order a rule was created by (or recorded as), if any."""
    return session.scalar(
        select(CourtOrderRuleRow.order_id).where(
            CourtOrderRuleRow.facility_id == facility_id, CourtOrderRuleRow.rule_id == rule_id
        )
    )


def order_rule_rows(session: Session, facility_id: str, order_id: str) -> list[RuleRow]:
    """The rules an order created, in listing order."""
    query = (
        select(RuleRow)
        .join(
            CourtOrderRuleRow,
            (CourtOrderRuleRow.facility_id == RuleRow.facility_id)
            & (CourtOrderRuleRow.rule_id == RuleRow.id),
        )
        .where(CourtOrderRuleRow.facility_id == facility_id, CourtOrderRuleRow.order_id == order_id)
    )
    return list(session.scalars(query.order_by(RuleRow.seq)))


def ordered_grant_rows(session: Session, facility_id: str, channel: str) -> list[RuleRow]:
    """Every grant on ``channel`` that an order record created, lifted or not."""
    query = (
        select(RuleRow)
        .join(
            CourtOrderRuleRow,
            (CourtOrderRuleRow.facility_id == RuleRow.facility_id)
            & (CourtOrderRuleRow.rule_id == RuleRow.id),
        )
        .where(
            RuleRow.facility_id == facility_id,
            RuleRow.channel == channel,
            RuleRow.kind == "grant",
        )
    )
    return list(session.scalars(query.order_by(RuleRow.seq)))


def latest_document(
    session: Session, facility_id: str, order_id: str, *, with_content: bool = False
) -> CourtOrderDocumentRow | None:
    """The order's newest upload (its bytes are loaded only when asked for)."""
    query = (
        select(CourtOrderDocumentRow)
        .where(
            CourtOrderDocumentRow.facility_id == facility_id,
            CourtOrderDocumentRow.order_id == order_id,
        )
        .order_by(CourtOrderDocumentRow.version.desc())
        .limit(1)
    )
    if not with_content:
        query = query.options(defer(CourtOrderDocumentRow.content))
    return session.scalars(query).first()


def add_document(session: Session, row: CourtOrderDocumentRow) -> None:
    session.add(row)
    session.flush()


def add_citation(session: Session, row: RuleCitationRow) -> None:
    session.add(row)
    session.flush()


def citation(session: Session, facility_id: str, rule_id: str) -> RuleCitationRow | None:
    return session.get(RuleCitationRow, (facility_id, rule_id))


def imposed_reason(session: Session, facility_id: str, rule_id: str) -> str | None:
    """The reason given when the rule was imposed, from its audit event."""
    rows = session.scalars(
        select(AuditEventRow.payload).where(
            AuditEventRow.facility_id == facility_id,
            AuditEventRow.tag == "policy:rule:imposed",
            AuditEventRow.payload.contains(rule_id),
        )
    )
    for payload in rows:
        data = json.loads(payload)
        rule = data.get("rule") or {}
        if isinstance(rule, dict) and rule.get("id") == rule_id:
            reason = data.get("reason")
            return reason if isinstance(reason, str) else None
    return None
