"""Every query about protected activities, adverse actions and order deliveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kinline.db.tables import AdverseActionRow, ProtectedActivityRow
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
