"""Callers for API tests: a subject of each kind, bound as the test needs, and a
token for it."""

from __future__ import annotations

from datetime import UTC, datetime

from kinline.db.engine import Database
from kinline.identity.model import Binding, Kind
from kinline.identity.service import add_subject, issue_token

MADE = datetime(2024, 1, 1, tzinfo=UTC)


def token_for(db: Database, name: str, kind: Kind, *bindings: Binding) -> str:
    """A new subject of ``kind`` bound to ``bindings``, and a token for it."""
    subject = add_subject(db, name, kind, at=MADE, actor="test", bindings=bindings)
    return issue_token(db, subject.id, facility_id=None, at=MADE, actor="test")[1]


def person_token(db: Database, facility_id: str, person_id: str, name: str = "kiosk") -> str:
    """The person's own account, as a kiosk or tablet signs in with."""
    return token_for(db, name, Kind.PERSON, Binding(facility_id, person_id=person_id))
