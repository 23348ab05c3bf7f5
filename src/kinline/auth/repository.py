"""Every query about API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kinline.db.tables import ApiTokenRow


def add_token(session: Session, name: str, scope: str, digest: str, at: datetime) -> ApiTokenRow:
    row = ApiTokenRow(name=name, scope=scope, token_hash=digest, created_at=at)
    session.add(row)
    session.flush()
    return row


def find_token(session: Session, digest: str) -> ApiTokenRow | None:
    return session.scalars(
        select(ApiTokenRow).where(
            ApiTokenRow.token_hash == digest, ApiTokenRow.revoked_at.is_(None)
        )
    ).one_or_none()
