"""A family member registers: their contact record for the person they name and
their own account, in one transaction.

The family member names the person by number (the person's id here) and name;
both must match someone held at the facility, and the answer is the same
whichever does not, so the form cannot be used to learn who is held. The
contact record is added with no channel approved: staff approve it as any
other contact (``changes.service.approve``), which writes the person's
notice. Until then the family member may sign in, see where their request
stands and apply to visit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from kinline.db.engine import Database
from kinline.errors import InvalidInput, NotFound, WrongState
from kinline.identity.model import Binding, Subject
from kinline.identity.registration import FamilySignUp, check_sign_up, register_in
from kinline.people.service import add_contact_in, require_facility, require_person
from kinline.rules.model import Contact

ACTOR = "kinline:registration"
# Who may register themselves: family and friends. Counsel and clergy are added
# by staff, who check who they are (a privileged line is never self-declared).
FAMILY_RELATIONSHIPS = (
    "spouse",
    "partner",
    "child",
    "parent",
    "sibling",
    "grandparent",
    "other_family",
    "friend",
)


@dataclass(frozen=True, slots=True)
class Registered:
    subject: Subject
    contact_id: str


def same_name(known: str, given: str) -> bool:
    """Names compared as people type them: case and spacing do not matter."""
    return " ".join(known.casefold().split()) == " ".join(given.casefold().split())


def register_family(
    db: Database,
    facility_id: str,
    *,
    person_id: str,
    person_name: str,
    relationship: str,
    phone: str | None,
    sign_up: FamilySignUp,
    at: datetime,
) -> Registered:
    """Add the family member's contact record (no channel approved) and their
    account bound to it; nothing is written when any part is refused."""
    sign_up = check_sign_up(sign_up)
    if relationship not in FAMILY_RELATIONSHIPS:
        raise InvalidInput("choose how you are related", field="relationship")
    unknown = NotFound("no person held here has that number and name", field="person_id")
    with db.transaction() as session:
        require_facility(session, facility_id)
        try:
            person = require_person(session, facility_id, person_id.strip())
        except NotFound:
            raise unknown from None
        if not same_name(person.name, person_name):
            raise unknown
        contact_id = f"family-{uuid.uuid4().hex[:12]}"
        try:
            add_contact_in(
                session,
                facility_id,
                Contact(contact_id, person.id, relationship),
                name=sign_up.name,
                phones=[phone] if phone else [],
                at=at,
                actor=ACTOR,
                email=sign_up.email,
                language=sign_up.language,
            )
        except WrongState:  # released or transferred: not held here
            raise unknown from None
        subject = register_in(
            session, sign_up, Binding(facility_id, contact_id=contact_id), at=at, actor=ACTOR
        )
        return Registered(subject, contact_id)
