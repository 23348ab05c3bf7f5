"""Staff keep people and contacts through the API and the CLI, with no scenario
file: admit, add a contact, approve, call; transfer and release with their
notices; edits audited, reads of a record audited, privileged numbers withheld.
Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from kinline.api import create_app
from kinline.calls.path import authorize
from kinline.changes import service as changes
from kinline.cli import app as cli_app
from kinline.db.engine import Database
from kinline.db.tables import AuditEventRow
from kinline.errors import WrongState
from kinline.identity.service import create_token
from kinline.notices.service import list_notices
from kinline.people import service as people
from kinline.people.model import Facility, Person
from kinline.rules.model import Contact

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

T0 = datetime(2024, 6, 3, 15, 0, tzinfo=UTC)  # 09:00 in Denver
GRANT = {
    "id": "g-phone",
    "authority": "facility_policy",
    "kind": "grant",
    "channel": "phone",
    "person": "all",
    "contacts": "any",
    "text": "Telephone calls with approved contacts.",
}
PROBLEM = "application/problem+json"


def facilities(db: Database) -> None:
    for facility_id, name in (("fci-a", "FCI Alpha"), ("fci-b", "FCI Bravo")):
        people.register_facility(
            db, Facility(facility_id, name, "America/Denver"), at=T0, actor="setup"
        )
        changes.impose_rule(db, facility_id, GRANT, at=T0, actor="setup", in_force_at_start=True)


def events(db: Database, facility_id: str, person_id: str) -> list[tuple[str, str, Any]]:
    with db.transaction() as session:
        rows = session.execute(
            select(AuditEventRow.tag, AuditEventRow.actor, AuditEventRow.payload)
            .where(AuditEventRow.chain.like(f"%{facility_id}%{person_id}%"))
            .order_by(AuditEventRow.id)
        ).all()
    return [(tag, actor, json.loads(payload)) for tag, actor, payload in rows]


def tags(db: Database, facility_id: str, person_id: str) -> list[str]:
    return [tag for tag, _, _ in events(db, facility_id, person_id)]


def call(db: Database, facility_id: str, person_id: str, key: str, at: datetime) -> bool:
    placed = authorize(
        db,
        facility_id,
        person_id,
        dialed="+52 667 555 0101",
        idempotency_key=key,
        actor="pbx",
        at=at,
    )
    return placed.allowed


@dataclass
class Api:
    client: TestClient
    token: str
    reader: str

    def send(
        self, method: str, url: str, body: object = None, *, token: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        sep = "&" if "?" in url else "?"
        return self.client.request(
            method, f"{url}{sep}facility_id=fci-a", json=body, headers=headers
        )

    def ok(self, method: str, url: str, body: object = None, status: int = 200) -> Any:
        response = self.send(method, url, body)
        assert response.status_code == status, response.text
        return response.json()

    def problem(self, method: str, url: str, body: object, status: int) -> dict[str, Any]:
        response = self.send(method, url, body)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == PROBLEM
        found: dict[str, Any] = response.json()
        return found


@pytest.fixture
def api(db: Database) -> Iterator[Api]:
    facilities(db)
    _, token = create_token(db, "records-office", "staff", at=T0)
    _, reader = create_token(db, "observer", "read", at=T0)
    with TestClient(create_app(db), raise_server_exceptions=False) as client:
        yield Api(client, token, reader)


def admit_rivera(api: Api) -> None:
    api.ok(
        "POST",
        "/v1/people",
        {"id": "rivera", "name": "M. Rivera", "language": "es", "housing_unit": "B-2"},
        201,
    )
    api.ok(
        "POST",
        "/v1/contacts",
        {
            "id": "daughter",
            "person_id": "rivera",
            "name": "A. Rivera",
            "relationship": "child",
            "phones": ["+52 667 555 0101"],
            "country": "MX",
        },
        201,
    )


# --- services and API ---------------------------------------------------------


def test_admit_add_approve_then_a_call_is_authorized(api: Api, db: Database) -> None:
    admit_rivera(api)
    now = datetime.now(UTC)
    # Not approved yet: refused.
    assert not call(db, "fci-a", "rivera", "k-0", now)
    api.ok("POST", "/v1/contacts/daughter/approvals", {"channel": "phone", "reason": "Verified."})
    # The approval takes effect when the server records it, which a loaded machine
    # may reach more than a second after ``now``: call after it, by the clock.
    assert call(db, "fci-a", "rivera", "k-1", datetime.now(UTC) + timedelta(seconds=1))
    person = api.ok("GET", "/v1/people/rivera")
    assert person["custody"] == "in_custody"
    assert person["housing_unit"] == "B-2"
    assert person["language"] == "es"
    assert tags(db, "fci-a", "rivera")[:2] == ["people:person:admitted", "people:contact:added"]


def test_release_writes_notice_and_audit_and_refuses_later_calls(api: Api, db: Database) -> None:
    admit_rivera(api)
    api.ok("POST", "/v1/contacts/daughter/approvals", {"channel": "phone", "reason": "Verified."})
    before = len(list_notices(db, "fci-a", "rivera"))
    out = api.ok("POST", "/v1/people/rivera/release", {"reason": "Sentence served."})
    assert out["person"]["custody"] == "released"
    assert out["approvals_ended"] == ["daughter:phone"]
    notices = list_notices(db, "fci-a", "rivera")
    assert len(notices) == before + 1
    assert notices[-1].id == out["notice_id"]
    assert notices[-1].language == "es"
    assert "Liberación de FCI Alpha" in notices[-1].title
    released = [e for e in events(db, "fci-a", "rivera") if e[0] == "people:person:released"]
    assert released and released[0][1] == "staff:1:records-office"
    with pytest.raises(WrongState, match="released from 'fci-a'"):
        call(db, "fci-a", "rivera", "k-after", datetime.now(UTC) + timedelta(seconds=1))
    # A closed record is not released twice, nor edited.
    assert api.problem("POST", "/v1/people/rivera/release", {"reason": "Again."}, 409)["field"] == (
        "person_id"
    )
    assert api.problem("PATCH", "/v1/people/rivera", {"housing_unit": "C-1"}, 409)["code"] == (
        "wrong_state"
    )


def test_transfer_moves_the_person_and_approvals_must_be_redone(api: Api, db: Database) -> None:
    admit_rivera(api)
    api.ok("POST", "/v1/contacts/daughter/approvals", {"channel": "phone", "reason": "Verified."})
    out = api.ok(
        "POST",
        "/v1/people/rivera/transfer",
        {"to_facility_id": "fci-b", "reason": "Nearer the family.", "housing_unit": "A-1"},
    )
    assert out["person"]["transferred_from"] == "fci-a"
    assert out["person"]["housing_unit"] == "A-1"
    assert out["contacts"] == {"daughter": "daughter"}
    assert out["approvals_ended"] == ["daughter:phone"]
    old = people.get_person_record(db, "fci-a", "rivera")
    assert (str(old.custody), old.transferred_to) == ("transferred", "fci-b")
    # The notice is at the new facility, where the person reads it.
    [notice] = list_notices(db, "fci-b", "rivera")
    assert notice.id == out["notice_id"]
    assert "Traslado a FCI Bravo" in notice.title
    now = datetime.now(UTC) + timedelta(seconds=1)
    with pytest.raises(WrongState, match="transferred from 'fci-a' to 'fci-b'"):
        call(db, "fci-a", "rivera", "k-old", now)
    # The contact moved with its number but not its approval.
    [moved] = people.list_contacts(db, "fci-b", "rivera", at=now)
    assert moved.phones == ["+526675550101"]
    assert moved.details.country == "MX"
    assert moved.contact.approved == frozenset()
    assert not call(db, "fci-b", "rivera", "k-new-1", now)
    changes.approve_contact(db, "fci-b", "daughter", "phone", at=now, actor="staff-b")
    assert call(db, "fci-b", "rivera", "k-new-2", now + timedelta(seconds=1))
    assert "people:person:transferred" in tags(db, "fci-a", "rivera")
    admitted = [e for e in events(db, "fci-b", "rivera") if e[0] == "people:person:admitted"]
    assert admitted[0][2]["transferred_from"] == "fci-a"


def test_transfer_gives_a_taken_contact_id_a_new_one(db: Database) -> None:
    facilities(db)
    for facility_id in ("fci-a", "fci-b"):
        people.admit_person(
            db, Person(facility_id, f"p-{facility_id}", "X", "en"), at=T0, actor="s"
        )
        people.add_contact(
            db,
            facility_id,
            Contact("mother", f"p-{facility_id}", "parent", False, frozenset()),
            name="Mother",
            phones=["+1 213 555 0147"],
            at=T0,
            actor="s",
        )
    moved, _ = changes.transfer_person(
        db, "fci-a", "p-fci-a", "fci-b", reason="Transfer.", at=T0 + timedelta(hours=1), actor="s"
    )
    assert moved.contacts == {"mother": "p-fci-a:mother"}
    theirs = people.list_contacts(db, "fci-b", "p-fci-b", at=T0 + timedelta(hours=2))
    assert [view.contact.id for view in theirs] == ["mother"]


def test_bad_input_is_422_naming_the_field(api: Api, db: Database) -> None:
    admit_rivera(api)
    body = {"id": "x1", "name": "X", "language": "English!"}
    assert api.problem("POST", "/v1/people", body, 422)["field"] == "person.language"
    assert api.problem("POST", "/v1/people", {"id": "x1", "language": "en"}, 422)["field"] == (
        "name"
    )
    contact = {
        "id": "c9",
        "person_id": "rivera",
        "name": "C",
        "relationship": "child",
        "phones": ["12"],
    }
    assert api.problem("POST", "/v1/contacts", contact, 422)["field"] == "contact.phones[0]"
    assert api.problem("POST", "/v1/contacts/daughter/phones", {"number": "abc"}, 422)["field"] == (
        "number"
    )
    assert api.problem("PATCH", "/v1/contacts/daughter", {"relationship": "cousin"}, 422)[
        "field"
    ] == ("relationship")
    transfer = {"to_facility_id": "fci-b", "reason": "   "}
    assert api.problem("POST", "/v1/people/rivera/transfer", transfer, 422)["field"] == "reason"
    # Nothing was written by any of them.
    assert [view.contact.id for view in people.list_contacts(db, "fci-a", "rivera", at=T0)] == [
        "daughter"
    ]
    assert people.get_person_record(db, "fci-a", "rivera").custody == "in_custody"


def test_unknown_ids_are_404(api: Api) -> None:
    admit_rivera(api)
    assert api.problem("GET", "/v1/people/nobody", None, 404)["field"] == "person_id"
    assert api.problem("PATCH", "/v1/people/nobody", {"name": "N"}, 404)["code"] == "not_found"
    assert api.problem("PATCH", "/v1/contacts/nobody", {"name": "N"}, 404)["field"] == (
        "contact_id"
    )
    assert api.problem("DELETE", "/v1/contacts/daughter/phones/+12135550000", None, 404)[
        "field"
    ] == ("e164")
    body = {"to_facility_id": "nowhere", "reason": "R."}
    assert api.problem("POST", "/v1/people/rivera/transfer", body, 404)["field"] == "facility_id"


def test_duplicates_are_409(api: Api) -> None:
    admit_rivera(api)
    again = {"id": "rivera", "name": "M. Rivera", "language": "es"}
    assert api.problem("POST", "/v1/people", again, 409)["field"] == "person.id"
    phone = {"number": "+52 667 555 0101"}
    assert api.problem("POST", "/v1/contacts/daughter/phones", phone, 409)["code"] == (
        "already_exists"
    )


def test_viewing_a_person_is_audited_with_who_looked(api: Api, db: Database) -> None:
    admit_rivera(api)
    api.ok("GET", "/v1/people/rivera")
    api.ok("GET", "/v1/contacts?person_id=rivera")
    viewed = [e for e in events(db, "fci-a", "rivera") if e[0] == "people:person:viewed"]
    assert [(actor, payload["read"]) for _, actor, payload in viewed] == [
        ("staff:1:records-office", "record"),
        ("staff:1:records-office", "contacts"),
    ]
    assert viewed[1][2]["contact_ids"] == ["daughter"]


def test_edits_that_change_what_a_person_may_do_write_a_notice(api: Api, db: Database) -> None:
    admit_rivera(api)
    api.ok("POST", "/v1/contacts/daughter/approvals", {"channel": "phone", "reason": "Verified."})
    count = len(list_notices(db, "fci-a", "rivera"))
    # A name, an email, a language: audited, no notice.
    renamed = api.ok("PATCH", "/v1/contacts/daughter", {"name": "Ana Rivera", "language": "es"})
    assert renamed["notice_id"] is None
    assert renamed["contact"]["name"] == "Ana Rivera"
    person = api.ok("PATCH", "/v1/people/rivera", {"housing_unit": None})
    assert person["housing_unit"] is None
    assert len(list_notices(db, "fci-a", "rivera")) == count
    # A relationship: rules select contacts by it, so the person is told.
    related = api.ok("PATCH", "/v1/contacts/daughter", {"relationship": "other_family"})
    assert related["notice_id"] is not None
    # A second number, then removing one: no notice; removing the last: a notice.
    added = api.ok("POST", "/v1/contacts/daughter/phones", {"number": "+1 213 555 0147"}, 201)
    assert added["phones"] == ["+12135550147", "+526675550101"]
    first = api.ok("DELETE", "/v1/contacts/daughter/phones/+12135550147")
    assert first["notice_id"] is None
    last = api.ok("DELETE", "/v1/contacts/daughter/phones/+526675550101")
    assert last["notice_id"] is not None
    assert last["contact"]["phones"] == []
    assert len(list_notices(db, "fci-a", "rivera")) == count + 2
    logged = tags(db, "fci-a", "rivera")
    for tag in (
        "people:contact:changed",
        "people:person:changed",
        "people:phone:added",
        "people:phone:removed",
    ):
        assert tag in logged


def test_privileged_contacts_numbers_are_withheld_without_need(db: Database) -> None:
    facilities(db)
    people.admit_person(db, Person("fci-a", "p1", "P", "en"), at=T0, actor="s")
    people.add_contact(
        db,
        "fci-a",
        Contact("counsel", "p1", "attorney", True, frozenset()),
        name="Counsel",
        phones=["+1 212 555 0199"],
        email="counsel@example.org",
        at=T0,
        actor="s",
    )
    [hidden] = people.list_contacts(db, "fci-a", "p1", at=T0, include_privileged=False)
    assert (hidden.withheld, hidden.phones, hidden.details.email) == (True, [], None)
    [shown] = people.list_contacts(db, "fci-a", "p1", at=T0, include_privileged=True)
    assert (shown.withheld, shown.phones) == (False, ["+12125550199"])
    one = people.get_contact(db, "fci-a", "counsel", at=T0, include_privileged=False)
    assert one.phones == []


# --- the CLI --------------------------------------------------------------------


def test_cli_admit_add_approve_then_a_call_is_authorized(db: Database) -> None:
    facilities(db)
    runner = CliRunner()
    common = ["--facility", "fci-a", "--database-url", db.url]

    def run(*args: str) -> str:
        result = runner.invoke(cli_app, [*args, *common])
        assert result.exit_code == 0, result.output
        return result.output

    run("people", "admit", "okafor", "--name", "D. Okafor", "--language", "en")
    run(
        "contacts",
        "add",
        "sister",
        "--person",
        "okafor",
        "--name",
        "B. Okafor",
        "--relationship",
        "sibling",
        "--phone",
        "+52 667 555 0101",
    )
    assert "notice" in run("contacts", "approve", "sister", "phone", "--reason", "Verified.")
    assert call(db, "fci-a", "okafor", "k-cli", datetime.now(UTC))
    shown = json.loads(run("people", "show", "okafor", "--json"))
    assert shown["custody"] == "in_custody"
    assert shown["contacts"][0]["approved"] == ["phone"]
    assert "people:person:viewed" in tags(db, "fci-a", "okafor")
    run("people", "release", "okafor", "--reason", "Sentence served.")
    assert list_notices(db, "fci-a", "okafor")[-1].change == "released"
    bad = runner.invoke(cli_app, ["people", "admit", "okafor", "--name", "X", *common])
    assert bad.exit_code != 0
    assert "already exists" in bad.output
