"""Every query about sign-in: passwords, web sessions and password resets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kinline.db.tables import PasswordResetRow, SubjectRow, WebSessionRow


def subject_by_login_or_email(session: Session, value: str) -> SubjectRow | None:
    """The subject whose login is ``value``, else the only one with that email."""
    row = session.scalars(
        select(SubjectRow).where(SubjectRow.login == value).with_for_update()
    ).one_or_none()
    if row is not None:
        return row
    rows = list(session.scalars(select(SubjectRow).where(SubjectRow.email == value).limit(2)))
    return rows[0] if len(rows) == 1 else None


def lock_subject_by_login(session: Session, login: str) -> SubjectRow | None:
    return session.scalars(
        select(SubjectRow).where(SubjectRow.login == login).with_for_update()
    ).one_or_none()


def add_web_session(
    session: Session,
    *,
    digest: str,
    subject_id: int,
    csrf_token: str,
    second_factor: bool,
    at: datetime,
    expires_at: datetime,
) -> WebSessionRow:
    row = WebSessionRow(
        id=digest,
        subject_id=subject_id,
        csrf_token=csrf_token,
        second_factor=second_factor,
        created_at=at,
        last_seen_at=at,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return row


def web_session_with_subject(
    session: Session, digest: str
) -> tuple[WebSessionRow, SubjectRow] | None:
    found = session.execute(
        select(WebSessionRow, SubjectRow)
        .join(SubjectRow, SubjectRow.id == WebSessionRow.subject_id)
        .where(WebSessionRow.id == digest)
    ).one_or_none()
    return None if found is None else (found[0], found[1])


def touch_web_session(session: Session, digest: str, at: datetime) -> None:
    session.execute(
        update(WebSessionRow)
        .where(WebSessionRow.id == digest, WebSessionRow.last_seen_at < at)
        .values(last_seen_at=at)
    )


def end_web_session(session: Session, digest: str, at: datetime) -> int | None:
    """End the session; the subject it was of, or None when it was not live."""
    row = session.get(WebSessionRow, digest, with_for_update=True)
    if row is None or row.ended_at is not None:
        return None
    row.ended_at = at
    session.flush()
    return row.subject_id


def end_sessions_of(session: Session, subject_id: int, at: datetime) -> int:
    result = session.execute(
        update(WebSessionRow)
        .where(WebSessionRow.subject_id == subject_id, WebSessionRow.ended_at.is_(None))
        .values(ended_at=at)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def add_password_reset(
    session: Session, *, subject_id: int, digest: str, at: datetime, expires_at: datetime
) -> PasswordResetRow:
    row = PasswordResetRow(
        subject_id=subject_id, token_hash=digest, created_at=at, expires_at=expires_at
    )
    session.add(row)
    session.flush()
    return row


def lock_password_reset(session: Session, digest: str) -> PasswordResetRow | None:
    return session.scalars(
        select(PasswordResetRow).where(PasswordResetRow.token_hash == digest).with_for_update()
    ).one_or_none()
