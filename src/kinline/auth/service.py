"""Creating API tokens and checking them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kinline.audit.service import facility_chain, record_event
from kinline.auth import repository
from kinline.auth.model import Scope, new_secret, token_hash
from kinline.db.engine import Database
from kinline.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Caller:
    token_id: int
    name: str
    scope: Scope


def create_token(db: Database, name: str, scope: str, *, at: datetime) -> tuple[Caller, str]:
    """A new token; the secret is returned once and only its hash is kept."""
    if not name.strip():
        raise InvalidInput("a token needs a name", field="name")
    try:
        checked = Scope(scope)
    except ValueError:
        choices = ", ".join(s.value for s in Scope)
        raise InvalidInput(f"{scope!r} is not one of {choices}", field="scope") from None
    secret = new_secret()
    with db.transaction() as session:
        row = repository.add_token(session, name, str(checked), token_hash(secret), at)
        record_event(
            session,
            facility_id="*",
            chain=facility_chain("*"),
            actor="cli",
            tag="auth:token:created",
            payload={"token_id": row.id, "name": name, "scope": str(checked)},
            at=at,
        )
        return Caller(row.id, name, checked), secret


def authenticate(db: Database, secret: str) -> Caller | None:
    with db.transaction() as session:
        row = repository.find_token(session, token_hash(secret))
        return None if row is None else Caller(row.id, row.name, Scope(row.scope))
