"""Every query about notices."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kinline.db.tables import FacilityLetterheadRow, NoticeIssueRow, NoticeRow


def add_notice(
    session: Session,
    *,
    facility_id: str,
    person_id: str,
    language: str,
    change: str,
    subject: str,
    authority: str | None,
    rule_text: str | None,
    reason: str | None,
    effective_at: datetime,
    appeal_deadline: date,
    title: str,
    body: str,
    at: datetime,
) -> NoticeRow:
    row = NoticeRow(
        facility_id=facility_id,
        person_id=person_id,
        language=language,
        change=change,
        subject=subject,
        authority=authority,
        rule_text=rule_text,
        reason=reason,
        effective_at=effective_at,
        appeal_deadline=appeal_deadline,
        title=title,
        body=body,
        created_at=at,
    )
    session.add(row)
    session.flush()
    return row


def list_notices(session: Session, facility_id: str, person_id: str | None) -> list[NoticeRow]:
    query = select(NoticeRow).where(NoticeRow.facility_id == facility_id)
    if person_id is not None:
        query = query.where(NoticeRow.person_id == person_id)
    return list(session.scalars(query.order_by(NoticeRow.id)))


def count_by_person(session: Session, facility_id: str) -> dict[str, int]:
    rows = session.execute(
        select(NoticeRow.person_id, func.count())
        .where(NoticeRow.facility_id == facility_id)
        .group_by(NoticeRow.person_id)
    )
    return {person_id: int(count) for person_id, count in rows}


def get_notice(
    session: Session, facility_id: str, notice_id: int, *, lock: bool = False
) -> NoticeRow | None:
    """One notice; with ``lock``, its row is locked until the transaction ends."""
    query = select(NoticeRow).where(NoticeRow.facility_id == facility_id, NoticeRow.id == notice_id)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def list_unacknowledged(
    session: Session, facility_id: str, *, created_before: datetime
) -> list[NoticeRow]:
    """Notices written before ``created_before`` that nobody has acknowledged, oldest first."""
    query = (
        select(NoticeRow)
        .where(
            NoticeRow.facility_id == facility_id,
            NoticeRow.acknowledged_at.is_(None),
            NoticeRow.created_at < created_before,
        )
        .order_by(NoticeRow.created_at, NoticeRow.id)
    )
    return list(session.scalars(query))


def add_issue(
    session: Session,
    *,
    facility_id: str,
    notice_id: int,
    reference: str,
    issued_by: str,
    issuer_role: str | None,
) -> None:
    session.add(
        NoticeIssueRow(
            facility_id=facility_id,
            notice_id=notice_id,
            reference=reference,
            issued_by=issued_by,
            issuer_role=issuer_role,
        )
    )
    session.flush()


def get_issue(session: Session, facility_id: str, notice_id: int) -> NoticeIssueRow | None:
    return session.get(NoticeIssueRow, (facility_id, notice_id))


def get_letterhead(session: Session, facility_id: str) -> FacilityLetterheadRow | None:
    return session.get(FacilityLetterheadRow, facility_id)


def set_letterhead(
    session: Session, facility_id: str, address: str, *, at: datetime, by: str
) -> None:
    row = session.get(FacilityLetterheadRow, facility_id, with_for_update=True)
    if row is None:
        session.add(
            FacilityLetterheadRow(
                facility_id=facility_id, address=address, updated_at=at, updated_by=by
            )
        )
    else:
        row.address, row.updated_at, row.updated_by = address, at, by
    session.flush()


def issues_of(
    session: Session, facility_id: str, notice_ids: list[int]
) -> dict[int, NoticeIssueRow]:
    if not notice_ids:
        return {}
    rows = session.scalars(
        select(NoticeIssueRow).where(
            NoticeIssueRow.facility_id == facility_id, NoticeIssueRow.notice_id.in_(notice_ids)
        )
    )
    return {row.notice_id: row for row in rows}
