"""A family member's own account: signing up with an email address and a
password, bound to the contact record they asked for.

Registration is not approval. The account is bound to a contact record with no
channel approved, so the family member can sign in, see where their request
stands and apply to visit, but calls and visits wait for staff to approve the
contact (``changes.registration`` adds the record and the account in one
transaction; this module is the account's half, inside the caller's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from kinline.errors import AlreadyExists, InvalidInput
from kinline.identity import repository
from kinline.identity.model import Binding, Kind, Subject

# The account's steps are the ones ``add_subject``, ``bind`` and
# ``set_password`` take, here inside the caller's transaction.
from kinline.identity.service import MAX_NAME, _audit, _bind
from kinline.identity.signin import _checked_password, _hasher, _store_password

MAX_EMAIL = 254


@dataclass(frozen=True, slots=True)
class FamilySignUp:
    """What a family member gives to open an account: their login is their email."""

    name: str
    email: str
    password: str
    language: str = "en"


def login_of(email: str) -> str:
    """The login an email address signs in with: trimmed, lower case."""
    return email.strip().lower()


def check_sign_up(sign_up: FamilySignUp) -> FamilySignUp:
    """The sign-up with its name and email trimmed, or ``InvalidInput`` naming the
    first bad field (the password's rules are the sign-in's own)."""
    name = sign_up.name.strip()
    if not name:
        raise InvalidInput("enter your name", field="name")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"at most {MAX_NAME} characters", field="name")
    email = login_of(sign_up.email)
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > MAX_EMAIL or " " in email:
        raise InvalidInput("enter an email address such as name@example.org", field="email")
    return FamilySignUp(name, email, sign_up.password, sign_up.language)


def register_in(
    session: Session,
    sign_up: FamilySignUp,
    binding: Binding,
    *,
    at: datetime,
    actor: str,
) -> Subject:
    """A family subject signing in with ``sign_up``'s email and password, bound to
    ``binding`` (a contact record, which the caller's transaction has just
    added). A taken email is refused on ``email``; nothing is written then."""
    sign_up = check_sign_up(sign_up)
    hashed = _hasher().hash(_checked_password(sign_up.password))
    if repository.subject_by_login(session, sign_up.email) is not None:
        raise AlreadyExists("an account with this email address exists", field="email")
    row = repository.add_subject(
        session,
        name=sign_up.name,
        kind=Kind.FAMILY,
        at=at,
        login=sign_up.email,
        email=sign_up.email,
        language=sign_up.language,
    )
    _audit(
        session,
        actor,
        "identity:subject:added",
        {"subject_id": row.id, "name": sign_up.name, "kind": str(Kind.FAMILY), "registered": True},
        at,
    )
    _store_password(row, hashed)
    _audit(session, actor, "identity:password:set", {"subject_id": row.id}, at)
    _bind(session, row, binding, at=at, actor=actor)
    return repository.subject_from_row(row, repository.bindings_of(session, [row.id])[row.id])
