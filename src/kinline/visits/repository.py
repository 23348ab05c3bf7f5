"""Every query about visits, in sections: visitors and their restrictions, and
a facility's visit settings (further sections: sessions, bookings, requests)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kinline.db.tables import (
    ContactRow,
    VisitorRestrictionRow,
    VisitorRow,
    VisitSettingsRow,
)
from kinline.visits.model import (
    Restriction,
    RestrictionKind,
    Supervision,
    Visitor,
    VisitorStatus,
    VisitSettings,
)

# -- visitors ------------------------------------------------------------------


def _visitor(row: VisitorRow, contact: ContactRow) -> Visitor:
    return Visitor(
        id=row.id,
        facility_id=row.facility_id,
        person_id=row.person_id,
        contact_id=row.contact_id,
        name=contact.name,
        relationship=contact.relationship,
        date_of_birth=row.date_of_birth,
        address=row.address,
        country=row.country,
        timezone=row.timezone,
        id_document_type=row.id_document_type,
        id_document_number=row.id_document_number,
        id_checked_by=row.id_checked_by,
        id_checked_at=row.id_checked_at,
        criminal_record_declared=row.criminal_record_declared,
        criminal_record=row.criminal_record,
        supervision=None if row.supervision_kind is None else Supervision(row.supervision_kind),
        supervising_officer=row.supervising_officer,
        supervising_office=row.supervising_office,
        officer_consent_at=row.officer_consent_at,
        officer_consent_by=row.officer_consent_by,
        officer_consent_note=row.officer_consent_note,
        co_defendant=row.co_defendant,
        accompanying_contact_id=row.accompanying_contact_id,
        status=VisitorStatus(row.status),
        applied_at=row.applied_at,
        applied_by=row.applied_by,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        decision_reason=row.decision_reason,
    )


def add_visitor(session: Session, row: VisitorRow) -> Visitor:
    session.add(row)
    session.flush()
    found = get_visitor(session, row.facility_id, row.id)
    assert found is not None
    return found


def visitor_row(
    session: Session, facility_id: str, visitor_id: int, *, lock: bool = False
) -> VisitorRow | None:
    query = select(VisitorRow).where(
        VisitorRow.facility_id == facility_id, VisitorRow.id == visitor_id
    )
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def get_visitor(session: Session, facility_id: str, visitor_id: int) -> Visitor | None:
    found = session.execute(
        select(VisitorRow, ContactRow)
        .join(
            ContactRow,
            (ContactRow.facility_id == VisitorRow.facility_id)
            & (ContactRow.id == VisitorRow.contact_id),
        )
        .where(VisitorRow.facility_id == facility_id, VisitorRow.id == visitor_id)
    ).one_or_none()
    return None if found is None else _visitor(found[0], found[1])


def list_visitors(
    session: Session,
    facility_id: str,
    *,
    person_id: str | None = None,
    contact_ids: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
) -> list[Visitor]:
    query = (
        select(VisitorRow, ContactRow)
        .join(
            ContactRow,
            (ContactRow.facility_id == VisitorRow.facility_id)
            & (ContactRow.id == VisitorRow.contact_id),
        )
        .where(VisitorRow.facility_id == facility_id)
    )
    if person_id is not None:
        query = query.where(VisitorRow.person_id == person_id)
    if contact_ids is not None:
        query = query.where(VisitorRow.contact_id.in_(list(contact_ids)))
    if statuses is not None:
        query = query.where(VisitorRow.status.in_(list(statuses)))
    return [_visitor(v, c) for v, c in session.execute(query.order_by(VisitorRow.id))]


def open_visitor_id(session: Session, facility_id: str, contact_id: str) -> int | None:
    """The contact's standing application (applied or approved), if any."""
    return session.scalars(
        select(VisitorRow.id)
        .where(
            VisitorRow.facility_id == facility_id,
            VisitorRow.contact_id == contact_id,
            VisitorRow.status.in_([VisitorStatus.APPLIED, VisitorStatus.APPROVED]),
        )
        .order_by(VisitorRow.id.desc())
        .limit(1)
    ).one_or_none()


def contact_row(session: Session, facility_id: str, contact_id: str) -> ContactRow | None:
    return session.scalars(
        select(ContactRow).where(ContactRow.facility_id == facility_id, ContactRow.id == contact_id)
    ).one_or_none()


# -- restrictions --------------------------------------------------------------


def _restriction(row: VisitorRestrictionRow) -> Restriction:
    return Restriction(
        id=row.id,
        visitor_id=row.visitor_id,
        contact_id=row.contact_id,
        kind=RestrictionKind(row.kind),
        reason=row.reason,
        starts_on=row.starts_on,
        until=row.until,
        imposed_at=row.imposed_at,
        imposed_by=row.imposed_by,
        lifted_at=row.lifted_at,
        lifted_by=row.lifted_by,
        lift_reason=row.lift_reason,
    )


def add_restriction(session: Session, row: VisitorRestrictionRow) -> Restriction:
    session.add(row)
    session.flush()
    return _restriction(row)


def restriction_row(
    session: Session, facility_id: str, restriction_id: int
) -> VisitorRestrictionRow | None:
    return session.scalars(
        select(VisitorRestrictionRow)
        .where(
            VisitorRestrictionRow.facility_id == facility_id,
            VisitorRestrictionRow.id == restriction_id,
        )
        .with_for_update()
    ).one_or_none()


def restrictions_by_id(
    session: Session, facility_id: str, restriction_id: int
) -> Restriction | None:
    row = session.scalars(
        select(VisitorRestrictionRow).where(
            VisitorRestrictionRow.facility_id == facility_id,
            VisitorRestrictionRow.id == restriction_id,
        )
    ).one_or_none()
    return None if row is None else _restriction(row)


def lift_restriction(
    row: VisitorRestrictionRow, *, at: datetime, by: str, reason: str
) -> Restriction:
    row.lifted_at, row.lifted_by, row.lift_reason = at, by, reason
    return _restriction(row)


def restrictions_of(
    session: Session, facility_id: str, contact_ids: Sequence[str]
) -> list[Restriction]:
    if not contact_ids:
        return []
    rows = session.scalars(
        select(VisitorRestrictionRow)
        .where(
            VisitorRestrictionRow.facility_id == facility_id,
            VisitorRestrictionRow.contact_id.in_(list(contact_ids)),
        )
        .order_by(VisitorRestrictionRow.id)
    )
    return [_restriction(row) for row in rows]


# -- settings ------------------------------------------------------------------


def get_settings(session: Session, facility_id: str) -> VisitSettings | None:
    row = session.get(VisitSettingsRow, facility_id)
    if row is None:
        return None
    return VisitSettings(
        adult_age=row.adult_age,
        max_visitors=row.max_visitors,
        max_adults=row.max_adults,
        max_children=row.max_children,
        staff_min_notice_days=row.staff_min_notice_days,
        staff_max_notice_days=row.staff_max_notice_days,
        public_min_notice_days=row.public_min_notice_days,
        public_max_notice_days=row.public_max_notice_days,
        reservation_minutes=row.reservation_minutes,
        auto_refuse_hours=row.auto_refuse_hours,
        officer_consent_required=row.officer_consent_required,
        co_defendants_to_warden=row.co_defendants_to_warden,
        minors_need_adult=row.minors_need_adult,
    )


def store_settings(
    session: Session, facility_id: str, settings: VisitSettings, *, at: datetime, by: str
) -> None:
    row = session.get(VisitSettingsRow, facility_id, with_for_update=True)
    if row is None:
        row = VisitSettingsRow(facility_id=facility_id, updated_at=at, updated_by=by)
        session.add(row)
    for name in VisitSettings.__dataclass_fields__:
        setattr(row, name, getattr(settings, name))
    row.updated_at, row.updated_by = at, by
    session.flush()
