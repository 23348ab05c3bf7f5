"""Every query about appeals, their steps, and what they are filed against."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kinline.db.tables import (
    AppealRow,
    AppealSettingsRow,
    AppealStepRow,
    ContactRow,
    FacilityRow,
    NoticeRow,
    RuleRow,
    SessionRow,
)

OPEN_STATUSES = tuple(s for s in ("pending", "denied", "partially_granted", "denied_by_silence"))


def stored_levels(session: Session, facility_id: str) -> list[dict[str, object]] | None:
    return session.scalars(
        select(FacilityRow.appeal_levels).where(FacilityRow.id == facility_id)
    ).one_or_none()


def store_levels(session: Session, facility_id: str, levels: list[dict[str, object]]) -> None:
    row = session.get(FacilityRow, facility_id)
    assert row is not None
    row.appeal_levels = levels
    session.flush()


def get_notice(session: Session, facility_id: str, notice_id: int) -> NoticeRow | None:
    return session.scalars(
        select(NoticeRow).where(NoticeRow.facility_id == facility_id, NoticeRow.id == notice_id)
    ).one_or_none()


def get_session(session: Session, facility_id: str, session_id: int) -> SessionRow | None:
    return session.scalars(
        select(SessionRow).where(SessionRow.facility_id == facility_id, SessionRow.id == session_id)
    ).one_or_none()


def rule_authorities(session: Session, facility_id: str, rule_ids: Sequence[str]) -> set[str]:
    if not rule_ids:
        return set()
    return set(
        session.scalars(
            select(RuleRow.authority).where(
                RuleRow.facility_id == facility_id, RuleRow.id.in_(list(rule_ids))
            )
        )
    )


def add_appeal(session: Session, row: AppealRow) -> AppealRow:
    session.add(row)
    session.flush()
    return row


def get_appeal(
    session: Session, facility_id: str, appeal_id: int, *, lock: bool = False
) -> AppealRow | None:
    query = select(AppealRow).where(AppealRow.facility_id == facility_id, AppealRow.id == appeal_id)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def open_appeal_against(
    session: Session,
    facility_id: str,
    person_id: str,
    *,
    notice_id: int | None,
    session_id: int | None,
) -> AppealRow | None:
    query = select(AppealRow).where(
        AppealRow.facility_id == facility_id,
        AppealRow.person_id == person_id,
        AppealRow.status.in_(OPEN_STATUSES),
    )
    if notice_id is not None:
        query = query.where(AppealRow.notice_id == notice_id)
    else:
        query = query.where(AppealRow.session_id == session_id)
    return session.scalars(query.order_by(AppealRow.id).limit(1)).one_or_none()


def list_appeals(
    session: Session,
    facility_id: str,
    *,
    person_id: str | None = None,
    overdue_at: datetime | None = None,
) -> list[AppealRow]:
    query = select(AppealRow).where(AppealRow.facility_id == facility_id)
    if person_id is not None:
        query = query.where(AppealRow.person_id == person_id)
    if overdue_at is not None:
        query = query.where(
            AppealRow.status.in_(("pending", "denied_by_silence")),
            AppealRow.answer_due <= overdue_at,
        )
    return list(session.scalars(query.order_by(AppealRow.id)))


def due_for_silence(
    session: Session, at: datetime, facility_id: str | None = None
) -> list[AppealRow]:
    """Pending appeals whose answer window has closed, locked for the sweep."""
    query = select(AppealRow).where(AppealRow.status == "pending", AppealRow.answer_due <= at)
    if facility_id is not None:
        query = query.where(AppealRow.facility_id == facility_id)
    return list(session.scalars(query.order_by(AppealRow.id).with_for_update(skip_locked=True)))


def add_step(session: Session, row: AppealStepRow) -> None:
    session.add(row)
    session.flush()


def steps(session: Session, facility_id: str, appeal_id: int) -> list[AppealStepRow]:
    return list(
        session.scalars(
            select(AppealStepRow)
            .where(AppealStepRow.facility_id == facility_id, AppealStepRow.appeal_id == appeal_id)
            .order_by(AppealStepRow.id)
        )
    )


def last_step_at(session: Session, facility_id: str, appeal_id: int) -> datetime | None:
    return session.scalars(
        select(func.max(AppealStepRow.at)).where(
            AppealStepRow.facility_id == facility_id, AppealStepRow.appeal_id == appeal_id
        )
    ).one()


def family_may_file(session: Session, facility_id: str) -> bool:
    """The facility's setting; True when it has none (what notices promise)."""
    stored = session.scalars(
        select(AppealSettingsRow.family_may_file).where(
            AppealSettingsRow.facility_id == facility_id
        )
    ).one_or_none()
    return True if stored is None else bool(stored)


def store_family_may_file(
    session: Session, facility_id: str, allowed: bool, *, at: datetime, actor: str
) -> None:
    row = session.get(AppealSettingsRow, facility_id)
    if row is None:
        row = AppealSettingsRow(facility_id=facility_id)
        session.add(row)
    row.family_may_file = allowed
    row.updated_at = at
    row.updated_by = actor
    session.flush()


def contact_person(session: Session, facility_id: str, contact_id: str) -> str | None:
    """Whose contact ``contact_id`` is, if it is one."""
    return session.scalars(
        select(ContactRow.person_id).where(
            ContactRow.facility_id == facility_id, ContactRow.id == contact_id
        )
    ).one_or_none()
