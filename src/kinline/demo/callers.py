"""Who can use the demo facility at once: a staff member (admin, with a second
factor), the person held there (a kiosk account), his daughter (family, bound
to her contact record), his lawyer (counsel), a court (case CV-17) and an API
token for staff.

Each call gives the accounts new passwords, a new TOTP secret and a new token,
so the README's first minutes work however often ``kinline demo`` runs; the
earlier demo tokens are revoked.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp

from kinline.db.engine import Database
from kinline.identity.model import Binding, Kind, Role, Subject
from kinline.identity.service import (
    add_subject,
    issue_token,
    list_subjects,
    list_tokens,
    revoke_token,
)
from kinline.identity.signin import enroll_totp, set_password

FACILITY = "usp-red-mesa"
ACTOR = "kinline:demo"
STAFF = ("Demo staff", Kind.STAFF, Binding(FACILITY, role=Role.ADMIN), "staff")
PERSON = ("R. Salazar (kiosk)", Kind.PERSON, Binding(FACILITY, person_id="salazar"), "salazar")
FAMILY = ("A. Salazar", Kind.FAMILY, Binding(FACILITY, contact_id="daughter-a"), "daughter")
COUNSEL = ("D. Ruiz (counsel)", Kind.COUNSEL, Binding(FACILITY, person_id="salazar"), "counsel")
COURT = ("Clerk, case CV-17", Kind.COURT, Binding(FACILITY, case_number="CV-17"), "court")


@dataclass(frozen=True, slots=True)
class DemoAccess:
    staff_password: str
    totp_secret: str
    person_password: str
    token: str
    family_password: str = ""
    counsel_password: str = ""
    court_password: str = ""

    def totp_now(self) -> str:
        return pyotp.TOTP(self.totp_secret).now()


def demo_access(db: Database) -> DemoAccess:
    """Make (or refresh) the demo's accounts and a staff API token valid 30 days."""
    now = datetime.now(UTC)
    staff = _subject(db, *STAFF, now)
    person = _subject(db, *PERSON, now)
    staff_password, person_password = _password(), _password()
    set_password(db, staff.id, staff_password, at=now, actor=ACTOR)
    set_password(db, person.id, person_password, at=now, actor=ACTOR)
    others = []
    for account in (FAMILY, COUNSEL, COURT):
        others.append(_password())
        set_password(db, _subject(db, *account, now).id, others[-1], at=now, actor=ACTOR)
    totp = enroll_totp(db, staff.id, at=now, actor=ACTOR)
    for token in list_tokens(db, staff.id):
        if token.revoked_at is None:
            revoke_token(db, token.id, at=now, actor=ACTOR)
    _info, secret = issue_token(
        db,
        staff.id,
        facility_id=FACILITY,
        at=now,
        actor=ACTOR,
        name="demo staff token",
        expires_at=now + timedelta(days=30),
    )
    return DemoAccess(staff_password, totp.secret, person_password, secret, *others)


def _subject(
    db: Database, name: str, kind: Kind, binding: Binding, login: str, at: datetime
) -> Subject:
    for subject in list_subjects(db):
        if subject.name == name and subject.kind is kind:
            return subject
    return add_subject(db, name, kind, at=at, actor=ACTOR, bindings=(binding,), login=login)


def _password() -> str:
    return secrets.token_urlsafe(12)
