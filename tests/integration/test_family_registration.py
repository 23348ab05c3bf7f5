"""A family member registers themselves (changes.registration), on SQLite and
PostgreSQL: their contact record with nothing approved and their account bound
to it, in one transaction; the person named by number and name; nothing written
when any part is refused; and the new account signs in and applies to visit."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from _databases import DbTemplate, scenario_template

from kinline.changes.registration import Registered, register_family
from kinline.db.engine import Database
from kinline.errors import AlreadyExists, InvalidInput, NotFound
from kinline.identity.model import Action, Binding, Kind, Record, Target, allows
from kinline.identity.registration import FamilySignUp
from kinline.identity.service import list_subjects
from kinline.identity.signin import sign_in
from kinline.people.service import list_contacts
from kinline.visits.visitors import Application, apply

FACILITY = "fci-test"
T0 = datetime(2025, 3, 4, 17, 0, tzinfo=UTC)
PASSWORD = "a long pass phrase 42"

SCENARIO = scenario_template(
    textwrap.dedent(
        """\
        scenario: registration
        facility: {id: fci-test, name: FCI Test, timezone: America/Denver}
        people:
          - {id: ana, name: Ana María López, language: es}
          - {id: ben, name: B. Ben, language: en}
        contacts:
          - {id: mom, person: ana, relationship: parent, phones: ["+1 303 555 0100"],
             approved: [phone]}
        rules: []
        """
    )
)


@pytest.fixture
def db(fresh_db: Callable[[DbTemplate], Database]) -> Database:
    return fresh_db(SCENARIO)


def sign_up(email: str = "Hija@Example.org", password: str = PASSWORD) -> FamilySignUp:
    return FamilySignUp(name="Lucía López", email=email, password=password, language="es")


def register(db: Database, **changes: object) -> Registered:
    values: dict[str, object] = {
        "person_id": "ana",
        "person_name": "ana maría  LÓPEZ",
        "relationship": "child",
        "phone": "+52 55 5555 0101",
        "sign_up": sign_up(),
        "at": T0,
    }
    values.update(changes)
    return register_family(db, FACILITY, **values)  # type: ignore[arg-type]


def count(db: Database) -> tuple[int, int]:
    contacts = list_contacts(db, FACILITY, None, at=T0)
    return len(contacts), len(list_subjects(db))


def test_a_registration_adds_an_unapproved_contact_and_an_account_bound_to_it(
    db: Database,
) -> None:
    done = register(db)
    subject, contact_id = done.subject, done.contact_id
    assert subject.kind is Kind.FAMILY and subject.name == "Lucía López"
    assert subject.bindings == (Binding(FACILITY, person_id="ana", contact_id=contact_id),)
    (mine,) = [c for c in list_contacts(db, FACILITY, "ana", at=T0) if c.contact.id == contact_id]
    assert mine.contact.approved == frozenset()  # staff approve it, as any contact
    assert mine.contact.relationship == "child" and not mine.contact.privileged
    assert mine.phones == ["+525555550101"]
    assert mine.details.email == "hija@example.org" and mine.details.language == "es"
    # The login is the email in lower case; the password signs in.
    made = sign_in(db, "hija@example.org", PASSWORD, None, at=T0)
    assert made.subject_id == subject.id
    # The family member may apply to visit the person, and sees only their own record.
    own = Target(FACILITY, Record.VISITOR, person_id="ana", contact_id=contact_id)
    other = Target(FACILITY, Record.VISITOR, person_id="ana", contact_id="mom")
    assert allows(subject, Action.VISITOR_APPLY, own)
    assert not allows(subject, Action.VISITOR_READ, other)
    visitor = apply(
        db,
        FACILITY,
        Application(
            contact_id=contact_id,
            date_of_birth=date(2001, 5, 3),
            address="Calle 5, Puebla",
            country="MX",
            criminal_record_declared=False,
            timezone="America/Mexico_City",
        ),
        at=T0,
        actor=subject.actor,
    )
    assert visitor.status == "applied"


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"person_id": "nobody"}, NotFound, "person_id"),
        ({"person_name": "B. Ben"}, NotFound, "person_id"),  # a real person, the wrong name
        ({"relationship": "attorney"}, InvalidInput, "relationship"),
        ({"phone": "12"}, InvalidInput, "contact.phones[0]"),
        ({"sign_up": sign_up(password="short")}, InvalidInput, "password"),
        ({"sign_up": sign_up(email="not an address")}, InvalidInput, "email"),
    ],
)
def test_a_refused_registration_writes_nothing(
    db: Database, changes: dict[str, object], error: type[Exception], field: str
) -> None:
    before = count(db)
    with pytest.raises(error) as raised:
        register(db, **changes)
    assert getattr(raised.value, "field", None) == field
    assert count(db) == before


def test_an_email_registers_once(db: Database) -> None:
    register(db)
    before = count(db)
    with pytest.raises(AlreadyExists) as raised:
        register(db, sign_up=sign_up(email="hija@EXAMPLE.org "))
    assert raised.value.field == "email"
    assert count(db) == before  # the second contact record was not kept either
