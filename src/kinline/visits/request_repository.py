"""Every query of the weekly allocation's requests; nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kinline.db.tables import NonAssociationRow, VisitBookingRow, VisitRequestRow, VisitSlotRow


def add(session: Session, row: VisitRequestRow) -> VisitRequestRow:
    session.add(row)
    session.flush()
    return row


def get(session: Session, facility_id: str, request_id: int) -> VisitRequestRow | None:
    return session.get(VisitRequestRow, (facility_id, request_id))


def lock(session: Session, facility_id: str, request_id: int) -> VisitRequestRow | None:
    return session.scalars(
        select(VisitRequestRow)
        .where(VisitRequestRow.facility_id == facility_id, VisitRequestRow.id == request_id)
        .with_for_update()
    ).first()


def listed(
    session: Session,
    facility_id: str,
    *,
    person_id: str | None = None,
    status: str | None = None,
) -> list[VisitRequestRow]:
    query = select(VisitRequestRow).where(VisitRequestRow.facility_id == facility_id)
    if person_id is not None:
        query = query.where(VisitRequestRow.person_id == person_id)
    if status is not None:
        query = query.where(VisitRequestRow.status == status)
    return list(session.scalars(query.order_by(VisitRequestRow.id)))


def closed_pending(session: Session, facility_id: str, now: datetime) -> list[VisitRequestRow]:
    """Pending requests whose window has closed, in order of arrival."""
    return list(
        session.scalars(
            select(VisitRequestRow)
            .where(
                VisitRequestRow.facility_id == facility_id,
                VisitRequestRow.status == "pending",
                VisitRequestRow.window_closes_at <= now,
            )
            .order_by(VisitRequestRow.created_at, VisitRequestRow.id)
        )
    )


def pending_for(
    session: Session, facility_id: str, person_id: str, window_closes_at: datetime
) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(VisitRequestRow)
            .where(
                VisitRequestRow.facility_id == facility_id,
                VisitRequestRow.person_id == person_id,
                VisitRequestRow.status == "pending",
                VisitRequestRow.window_closes_at == window_closes_at,
            )
        )
        or 0
    )


def completed_since(
    session: Session, facility_id: str, person_ids: Sequence[str], since: datetime
) -> dict[str, int]:
    """Each person's visits completed since ``since``."""
    if not person_ids:
        return {}
    rows = session.execute(
        select(VisitBookingRow.person_id, func.count())
        .where(
            VisitBookingRow.facility_id == facility_id,
            VisitBookingRow.person_id.in_(person_ids),
            VisitBookingRow.status == "completed",
            VisitBookingRow.completed_at >= since,
        )
        .group_by(VisitBookingRow.person_id)
    )
    return {person: int(count) for person, count in rows}


def non_association_pairs(
    session: Session, facility_id: str, person_ids: Sequence[str]
) -> list[tuple[str, str]]:
    if not person_ids:
        return []
    rows = session.execute(
        select(NonAssociationRow.person_id, NonAssociationRow.other_person_id).where(
            NonAssociationRow.facility_id == facility_id,
            NonAssociationRow.person_id.in_(person_ids),
            NonAssociationRow.ended_at.is_(None),
        )
    )
    return [(one, other) for one, other in rows]


def slot_of(
    session: Session, facility_id: str, template_id: str, on_date: date
) -> VisitSlotRow | None:
    return session.scalars(
        select(VisitSlotRow).where(
            VisitSlotRow.facility_id == facility_id,
            VisitSlotRow.template_id == template_id,
            VisitSlotRow.on_date == on_date,
        )
    ).first()
