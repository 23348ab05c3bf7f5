"""Every query about held call set-ups (sessions with a hold id)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kinline.db.tables import PersonRow, SessionRow

OPEN = ("held", "connected")


def add(session: Session, row: SessionRow) -> SessionRow:
    session.add(row)
    session.flush()
    return row


def by_idempotency_key(session: Session, facility_id: str, key: str) -> SessionRow | None:
    return session.scalars(
        select(SessionRow).where(
            SessionRow.facility_id == facility_id, SessionRow.idempotency_key == key
        )
    ).one_or_none()


def by_hold_id(session: Session, facility_id: str, hold_id: str) -> SessionRow | None:
    return session.scalars(
        select(SessionRow).where(
            SessionRow.facility_id == facility_id, SessionRow.hold_id == hold_id
        )
    ).one_or_none()


def lock_by_hold_id(session: Session, facility_id: str, hold_id: str) -> SessionRow | None:
    """The call set-up, with its person's ledger and its own row locked until the
    transaction ends, in one statement.

    On PostgreSQL, a statement that waited for the locks returns the rows as
    the transaction that held them committed them (READ COMMITTED re-reads
    locked rows); SQLite's write lock is already held (BEGIN IMMEDIATE).
    """
    return session.scalars(
        select(SessionRow)
        .join(
            PersonRow,
            (PersonRow.facility_id == SessionRow.facility_id)
            & (PersonRow.id == SessionRow.person_id),
        )
        .where(SessionRow.facility_id == facility_id, SessionRow.hold_id == hold_id)
        .with_for_update(of=[PersonRow, SessionRow])
        .execution_options(populate_existing=True)
    ).one_or_none()


def due(session: Session, at: datetime, limit: int = 10_000) -> list[tuple[str, str]]:
    """(facility id, hold id) of holds and connected calls whose time is up."""
    rows = session.execute(
        select(SessionRow.facility_id, SessionRow.hold_id)
        .where(SessionRow.status.in_(OPEN), SessionRow.expires_at <= at)
        .order_by(SessionRow.expires_at)
        .limit(limit)
    )
    return [(facility_id, hold_id) for facility_id, hold_id in rows if hold_id is not None]
