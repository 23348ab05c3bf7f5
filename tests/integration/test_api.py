"""The HTTP API as its clients use it: tokens and scopes, every read once per role,
staff writes and the notices they leave, and the OpenAPI document.

Each test gets a fresh database (SQLite and PostgreSQL) holding the supermax
scenario after its whole timeline, calls included.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from _databases import SUPERMAX, DbTemplate

from kinline.api import create_app
from kinline.db.engine import Database
from kinline.identity.service import create_token

with warnings.catch_warnings():
    # starlette warns that it would rather use httpx2, which is not a dependency.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

# Tokens made for one purpose each (identity.service.create_token): an observer
# (staff who read and change nothing), an admin, and the telephony platform.
ROLES = ("read", "staff", "telephony")
READERS = ("read", "staff")
PROBLEM = "application/problem+json"

# Every route of the API, by the method and path template OpenAPI lists it under,
# with a request that would succeed for a caller of the right scope.
READS: dict[tuple[str, str], str] = {
    ("get", "/v1/facilities"): "/v1/facilities",
    ("get", "/v1/people"): "/v1/people",
    ("get", "/v1/people/{person_id}"): "/v1/people/salazar",
    ("get", "/v1/contacts"): "/v1/contacts?person_id=salazar",
    ("get", "/v1/rules"): "/v1/rules?person_id=salazar",
    ("get", "/v1/decisions"): "/v1/decisions?person_id=salazar&contact_id=wife",
    ("get", "/v1/notices"): "/v1/notices?person_id=salazar",
    ("get", "/v1/notices/{notice_id}"): "/v1/notices/1",
    ("get", "/v1/notices/{notice_id}/pdf"): "/v1/notices/1/pdf",
    ("get", "/v1/notices/{notice_id}/html"): "/v1/notices/1/html",
    ("get", "/v1/calls/{hold_id}"): "/v1/calls/h_unknown",
    ("get", "/v1/appeals"): "/v1/appeals?person_id=salazar",
    ("get", "/v1/appeals/{appeal_id}"): "/v1/appeals/1",
}
NEW_RULE = {
    "id": "no-spouse-calls",
    "authority": "sanction",
    "kind": "deny",
    "channel": "phone",
    "person": "salazar",
    "contacts": {"ids": ["wife"]},
    "until": "2024-07-31T00:00",
    "text": "No telephone calls with the spouse until the end of July.",
}
WRITES: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("post", "/v1/rules"): (
        "/v1/rules",
        {"rule": NEW_RULE, "reason": "A three-way call.", "at": "2024-07-01T09:00"},
    ),
    ("post", "/v1/rules/{rule_id}/lift"): (
        "/v1/rules/sam-children/lift",
        {"reason": "The review is complete."},
    ),
    ("post", "/v1/contacts/{contact_id}/approvals"): (
        "/v1/contacts/brother/approvals",
        {"channel": "video", "reason": "Family ties verified."},
    ),
    ("post", "/v1/contacts/{contact_id}/approvals/{channel}/revoke"): (
        "/v1/contacts/wife/approvals/phone/revoke",
        {"reason": "A three-way call."},
    ),
}
# The call path, for the telephony platform; tests/integration/test_calls.py tries
# it in depth.
CALLS: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {
    ("post", "/v1/calls/authorize"): (
        "/v1/calls/authorize",
        {"person_id": "salazar", "dialed": "+1 212 555 0199", "idempotency_key": "k-1"},
    ),
    ("post", "/v1/calls/{hold_id}/connect"): ("/v1/calls/h_unknown/connect", None),
    ("post", "/v1/calls/{hold_id}/end"): ("/v1/calls/h_unknown/end", {"seconds": 60}),
    ("post", "/v1/calls/{hold_id}/release"): ("/v1/calls/h_unknown/release", None),
}
# Reads for staff only, and what a person does at a kiosk with the read scope;
# tests/integration/test_notice_documents.py tries them in depth.
STAFF_READS: dict[tuple[str, str], str] = {
    ("get", "/v1/notices/overdue"): "/v1/notices/overdue?days=7",
    ("get", "/v1/notices/{notice_id}/deliveries"): "/v1/notices/1/deliveries",
    ("get", "/v1/print-batches"): "/v1/print-batches",
    ("get", "/v1/print-batches/{batch_id}/pdf"): "/v1/print-batches/1/pdf",
}
KIOSK: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {
    ("post", "/v1/notices/{notice_id}/acknowledge"): (
        "/v1/notices/1/acknowledge",
        {"by": "R. Salazar"},
    ),
}
# Appeals: filed and escalated with the read scope, answered and extended by staff;
# tests/integration/test_appeals.py tries them in depth.
APPEALS: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {
    ("post", "/v1/appeals"): (
        "/v1/appeals",
        {
            "person_id": "salazar",
            "notice_id": 1,
            "filed_by": "person",
            "filer": "R. Salazar",
            "text": "The suspension was never explained.",
        },
    ),
    ("post", "/v1/appeals/{appeal_id}/answer"): (
        "/v1/appeals/1/answer",
        {"outcome": "denied", "text": "The measure stands."},
    ),
    ("post", "/v1/appeals/{appeal_id}/extend"): (
        "/v1/appeals/1/extend",
        {"reason": "The security office is reviewing the file."},
    ),
    ("post", "/v1/appeals/{appeal_id}/escalate"): (
        "/v1/appeals/1/escalate",
        {"text": "No answer came."},
    ),
    ("post", "/v1/appeals/{appeal_id}/withdraw"): ("/v1/appeals/1/withdraw", {}),
}
# Staff keeping people and contacts; tests/integration/test_people_admin.py tries
# them in depth. Only some change what the person may do, so not all leave a notice;
# the supermax has no second facility, so its transfer is refused once authenticated.
PEOPLE_ADMIN: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {
    ("post", "/v1/people"): ("/v1/people", {"id": "okafor", "name": "D. Okafor", "language": "en"}),
    ("patch", "/v1/people/{person_id}"): ("/v1/people/salazar", {"housing_unit": "D-4"}),
    ("post", "/v1/people/{person_id}/transfer"): (
        "/v1/people/salazar/transfer",
        {"to_facility_id": "usp-red-mesa", "reason": "Redesignated."},
    ),
    ("post", "/v1/people/{person_id}/release"): (
        "/v1/people/salazar/release",
        {"reason": "Sentence served."},
    ),
    ("post", "/v1/contacts"): (
        "/v1/contacts",
        {"id": "aunt", "person_id": "salazar", "name": "L. Ruiz", "relationship": "other_family"},
    ),
    ("patch", "/v1/contacts/{contact_id}"): ("/v1/contacts/brother", {"name": "J. A. Salazar"}),
    ("post", "/v1/contacts/{contact_id}/phones"): (
        "/v1/contacts/brother/phones",
        {"number": "+1 303 555 0177"},
    ),
    ("delete", "/v1/contacts/{contact_id}/phones/{e164}"): (
        "/v1/contacts/wife/phones/+12135550147",
        None,
    ),
}
# Visitors and visit settings; tests/integration/test_visitors.py tries them in depth.
VISITORS: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {
    ("get", "/v1/visitors"): ("/v1/visitors?person_id=salazar", None),
    ("post", "/v1/visitors"): (
        "/v1/visitors",
        {
            "contact_id": "brother",
            "date_of_birth": "1975-01-02",
            "address": "2 Elm St, Denver",
            "country": "US",
            "criminal_record_declared": False,
        },
    ),
    ("get", "/v1/visitors/{visitor_id}"): ("/v1/visitors/1", None),
    ("post", "/v1/visitors/{visitor_id}/id-check"): (
        "/v1/visitors/1/id-check",
        {"document_type": "passport", "document_number": "P1"},
    ),
    ("post", "/v1/visitors/{visitor_id}/consent"): (
        "/v1/visitors/1/consent",
        {"officer": "P. Officer"},
    ),
    ("post", "/v1/visitors/{visitor_id}/decision"): (
        "/v1/visitors/1/decision",
        {"verdict": "refuse", "reason": "Not known to the person."},
    ),
    ("post", "/v1/visitors/{visitor_id}/withdraw"): ("/v1/visitors/1/withdraw", {}),
    ("post", "/v1/visitors/{visitor_id}/restrictions"): (
        "/v1/visitors/1/restrictions",
        {"kind": "closed", "reason": "Contraband."},
    ),
    ("post", "/v1/visitors/{visitor_id}/restrictions/{restriction_id}/lift"): (
        "/v1/visitors/1/restrictions/1/lift",
        {"reason": "Reviewed."},
    ),
    ("get", "/v1/visit-settings"): ("/v1/visit-settings", None),
    ("put", "/v1/visit-settings"): ("/v1/visit-settings", {"adult_age": 18}),
}
ENDPOINTS = [
    *READS,
    *STAFF_READS,
    *WRITES,
    *CALLS,
    *KIOSK,
    *APPEALS,
    *PEOPLE_ADMIN,
    *VISITORS,
]


@dataclass
class Api:
    client: TestClient
    tokens: dict[str, str]

    def headers(self, role: str | None) -> dict[str, str]:
        return {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}

    def get(self, url: str, role: str | None = "staff", **params: str) -> httpx.Response:
        return self.client.get(url, params=params or None, headers=self.headers(role))

    def post(self, url: str, body: object, role: str | None = "staff") -> httpx.Response:
        return self.client.post(url, json=body, headers=self.headers(role))

    def call(
        self, endpoint: tuple[str, str], headers: dict[str, str], query: str = ""
    ) -> httpx.Response:
        if endpoint in READS or endpoint in STAFF_READS:
            url = {**READS, **STAFF_READS}[endpoint]
            return self.client.get(url + ("&" if "?" in url else "?") + query, headers=headers)
        url, body = {**WRITES, **CALLS, **KIOSK, **APPEALS, **PEOPLE_ADMIN, **VISITORS}[endpoint]
        method = endpoint[0].upper()
        return self.client.request(method, f"{url}?{query}", json=body, headers=headers)

    def ok(self, url: str, role: str = "staff", **params: str) -> Any:
        response = self.get(url, role, **params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        return response.json()

    def notices(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.ok("/v1/notices", person_id="salazar")
        return result


@pytest.fixture
def db_template() -> DbTemplate:
    return SUPERMAX


@pytest.fixture
def api(db: Database) -> Iterator[Api]:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    tokens = {role: create_token(db, f"{role}-client", role, at=at)[1] for role in ROLES}
    with TestClient(create_app(db), raise_server_exceptions=False) as client:
        yield Api(client, tokens)


@pytest.fixture(params=READERS)
def role(request: pytest.FixtureRequest) -> str:
    """Each read runs once per reader: an observer and an admin (the telephony
    platform reads nothing but its own call set-ups)."""
    return str(request.param)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["type"], str)
    assert body["type"]
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


# --- authentication and scopes ------------------------------------------------


def test_the_endpoint_tables_name_routes_the_api_has(api: Api) -> None:
    listed = {
        (method, path)
        for path, operations in api.client.get("/openapi.json").json()["paths"].items()
        for method in operations
    }
    assert set(ENDPOINTS) <= listed


def test_every_route_refuses_a_stranger(api: Api) -> None:
    """Every route the API documents, tabled here or not: no token, no answer
    but 401 (signing in and resetting a password excepted), and nothing written."""
    before = api.notices()
    document = api.client.get("/openapi.json").json()
    answered: list[tuple[str, str, int]] = []
    for path, operations in document["paths"].items():
        if path.startswith("/v1/auth/"):
            continue
        url = re.sub(r"{[^}]+}", "1", path)
        for method in operations:
            body = None if method in ("get", "delete") else {}
            response = api.client.request(method.upper(), url, json=body)
            if response.status_code != 401:
                answered.append((method, path, response.status_code))
    assert answered == []
    assert len(document["paths"]) >= 40
    assert api.notices() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e[0]} {e[1]}")
def test_no_token_or_a_bad_token_is_401(api: Api, endpoint: tuple[str, str]) -> None:
    before = api.notices()
    body = assert_problem(api.call(endpoint, {}), 401)
    assert body["detail"] == "a bearer token is required"
    staff = api.tokens["staff"]
    for headers in (
        {},
        {"Authorization": "Bearer kl_not-a-token-anyone-was-given"},
        {"Authorization": f"Bearer {staff[:-1]}"},
        {"Authorization": f"Bearer {staff}x"},
        {"Authorization": f"Basic {staff}"},
        {"Authorization": staff},
        {"Authorization": "Bearer "},
    ):
        response = api.call(endpoint, headers)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        # Nothing is looked up for a stranger, not even whether a facility exists.
        assert_problem(api.call(endpoint, headers, "facility_id=nowhere"), 401)
    assert api.notices() == before


@pytest.mark.parametrize("endpoint", list(WRITES), ids=lambda e: f"{e[0]} {e[1]}")
def test_staff_endpoints_refuse_other_scopes(api: Api, endpoint: tuple[str, str]) -> None:
    before = api.notices()
    rules_before = api.ok("/v1/rules", at="2024-07-02T00:00")
    # An observer sees the record but may not change it: 403. The telephony
    # platform may not even see a rule or a contact: 404, as if it were not there.
    body = assert_problem(api.call(endpoint, api.headers("read")), 403)
    assert body["code"] == "forbidden"
    assert body["detail"].startswith("a staff subject here may not ")
    hidden = "{" in endpoint[1]
    body = assert_problem(api.call(endpoint, api.headers("telephony")), 404 if hidden else 403)
    assert body["code"] == ("not_found" if hidden else "forbidden")
    assert api.notices() == before
    assert api.ok("/v1/rules", at="2024-07-02T00:00") == rules_before
    # The same request with a staff token goes through: the 403 was the scope's.
    assert api.call(endpoint, api.headers("staff")).status_code in (200, 201)
    assert len(api.notices()) == len(before) + 1


# --- reads, once per role -----------------------------------------------------


def test_facilities(api: Api, role: str) -> None:
    assert api.ok("/v1/facilities", role) == [
        {
            "id": "usp-red-mesa",
            "name": "USP Red Mesa (administrative maximum)",
            "timezone": "America/Denver",
            "country": "US",
            "appeal_days": 20,
            "retaliation_window_days": 90,
        }
    ]


def test_people(api: Api, role: str) -> None:
    salazar = {
        "id": "salazar",
        "name": "R. Salazar",
        "language": "es",
        "housing_unit": None,
        "custody": "in_custody",
        "admitted_at": "2024-03-03T10:00:00",
        "custody_changed_at": None,
        "transferred_to": None,
        "transferred_from": None,
    }
    assert api.ok("/v1/people", role) == [salazar]
    assert api.ok("/v1/people/salazar", role) == salazar
    assert api.ok("/v1/people", role, facility_id="usp-red-mesa") == [salazar]


def test_contacts_with_e164_numbers(api: Api, role: str) -> None:
    contacts = {c["id"]: c for c in api.ok("/v1/contacts", role, person_id="salazar")}
    family = {"wife", "daughter-a", "daughter-b", "brother"}
    # Counsel is listed only to staff with need of it (an admin, not an observer).
    assert set(contacts) == (family | {"counsel"} if role == "staff" else family)
    assert contacts["daughter-a"] == {
        "id": "daughter-a",
        "person_id": "salazar",
        "name": "A. Salazar",
        "relationship": "child",
        "privileged": False,
        "phones": ["+526675550101"],
        "approved": ["phone", "video"],
        "email": None,
        "notify_by_email": False,
        "language": None,
        "country": None,
        "withheld": False,
    }
    assert contacts["wife"]["phones"] == ["+12135550147"]
    # Approved for visits by the timeline on 2024-06-10.
    assert contacts["wife"]["approved"] == ["phone", "visit"]
    if role == "staff":
        assert contacts["counsel"]["privileged"] is True
        assert contacts["counsel"]["phones"] == ["+12125550199"]
        assert contacts["counsel"]["withheld"] is False
    assert all(c["privileged"] is False for k, c in contacts.items() if k != "counsel")
    assert api.ok("/v1/contacts", role) == list(contacts.values())


def test_rules_in_force_follow_time(api: Api, role: str) -> None:
    after = {
        r["id"]: r for r in api.ok("/v1/rules", role, person_id="salazar", at="2024-05-02T00:00")
    }
    before = {
        r["id"] for r in api.ok("/v1/rules", role, person_id="salazar", at="2024-04-01T00:00")
    }
    loaded = {
        "policy-phone",
        "policy-gap",
        "policy-hours",
        "legal-calls",
        "policy-visit",
        "sam-family-only",
        "sam-one-call",
        "sam-monitor",
        "order-17",
    }
    assert before == loaded
    assert set(after) == loaded | {"sam-children"}
    assert after["sam-children"] == {
        "id": "sam-children",
        "authority": "security_measure",
        "kind": "deny",
        "channel": "phone",
        "person": "salazar",
        "contacts": {"relationships": ["child"]},
        "text": "Calls with children suspended pending review.",
        "texts": {},
        "starts_at": "2024-05-01T08:00:00",
        "ends_at": None,
        "definition": {
            "id": "sam-children",
            "authority": "security_measure",
            "kind": "deny",
            "channel": "phone",
            "person": "salazar",
            "contacts": {"relationships": ["child"]},
            "text": "Calls with children suspended pending review.",
            "overrides": ["order-17"],
        },
    }
    assert after["order-17"]["starts_at"] == "2023-07-01T00:00:00"
    assert after["policy-phone"]["person"] == "all"
    assert after["policy-phone"]["definition"]["quota"] == {"per": "month", "minutes": 300}
    # A minute before it was imposed, and the channel filter.
    assert "sam-children" not in {
        r["id"] for r in api.ok("/v1/rules", role, person_id="salazar", at="2024-05-01T07:59")
    }
    visit = api.ok("/v1/rules", role, person_id="salazar", channel="visit", at="2024-05-02T00:00")
    assert [r["id"] for r in visit] == ["policy-visit"]


def test_notices_in_spanish_with_appeal_deadlines(api: Api, role: str) -> None:
    notices = api.ok("/v1/notices", role, person_id="salazar")
    assert [(n["change"], n["subject"]) for n in notices] == [
        ("imposed", "sam-children"),
        ("approved", "wife:visit"),
    ]
    imposed, approved = notices
    assert imposed["language"] == "es"
    assert imposed["authority"] == "security_measure"
    assert imposed["rule_text"] == "Calls with children suspended pending review."
    assert imposed["effective_at"] == "2024-05-01T08:00:00"
    assert imposed["appeal_deadline"] == "2024-05-21"
    assert imposed["title"] == (
        "Nueva regla sobre sus llamadas telefónicas: Calls with children suspended pending review"
    )
    assert "Puede apelar este cambio hasta el 2024-05-21." in imposed["body"]
    assert "medida de seguridad" in imposed["body"]
    assert approved["effective_at"] == "2024-06-10T09:00:00"
    assert approved["appeal_deadline"] == "2024-06-30"
    assert approved["title"] == "E. Salazar aprobado/a para visitas"
    assert api.ok("/v1/notices", role) == notices


def test_a_decision_explains_a_denial(api: Api, role: str) -> None:
    decision = api.ok(
        "/v1/decisions",
        role,
        person_id="salazar",
        contact_id="daughter-a",
        channel="phone",
        at="2024-05-06T10:00",
    )
    assert decision == {
        "person_id": "salazar",
        "contact_id": "daughter-a",
        "channel": "phone",
        "at": "2024-05-06T10:00:00",
        "allowed": False,
        "reason": "denied",
        "rules": ["sam-children"],
        "charged_to": None,
        "max_minutes": None,
        "monitoring": None,
        "interpreter": None,
        "setting": None,
        "conflicts": [],
        "explanation": [
            {
                "id": "sam-children",
                "authority": "security_measure",
                "kind": "deny",
                "text": "Calls with children suspended pending review.",
                "role": "responsible",
            }
        ],
    }


def test_a_legal_call_is_unmonitored_at_any_hour(api: Api, role: str) -> None:
    if role == "read":
        # An observer has no need of privileged contacts: counsel is not there.
        response = api.get(
            "/v1/decisions", role, person_id="salazar", contact_id="counsel", channel="phone"
        )
        assert assert_problem(response, 404)["field"] == "contact_id"
        return
    decision = api.ok(
        "/v1/decisions",
        role,
        person_id="salazar",
        contact_id="counsel",
        channel="phone",
        at="2024-03-26T22:00",
    )
    assert decision["allowed"] is True
    assert decision["reason"] is None
    assert decision["charged_to"] == "legal-calls"
    assert decision["max_minutes"] == 60
    assert decision["monitoring"] == "none"
    assert decision["interpreter"] is None
    assert [e["text"] for e in decision["explanation"]] == ["Unmonitored legal calls."]


def test_decisions_count_the_calls_the_timeline_recorded(api: Api, role: str) -> None:
    # The spouse's one call of May was made on 2024-05-06; June is a new month.
    may = api.ok(
        "/v1/decisions", role, person_id="salazar", contact_id="wife", at="2024-05-20T10:00"
    )
    assert (may["allowed"], may["reason"], may["rules"]) == (
        False,
        "quota_exhausted",
        ["sam-one-call"],
    )
    assert may["explanation"][0]["text"] == "One call a month."
    june = api.ok(
        "/v1/decisions", role, person_id="salazar", contact_id="wife", at="2024-06-20T10:00"
    )
    assert june["allowed"] is True
    assert june["charged_to"] == "policy-phone"
    assert (june["max_minutes"], june["monitoring"], june["interpreter"]) == (15, "live", "es")
    assert {e["id"] for e in june["explanation"]} == set(june["rules"])
    visit = api.ok(
        "/v1/decisions",
        role,
        person_id="salazar",
        contact_id="wife",
        channel="visit",
        at="2024-06-12T09:00",
    )
    assert (visit["allowed"], visit["charged_to"], visit["monitoring"]) == (
        True,
        "policy-visit",
        "recorded",
    )


def test_a_later_call_does_not_make_an_earlier_one_too_soon(api: Api) -> None:
    # The last call before 2024-03-27 ended on 2024-03-25; one was recorded on 2024-05-06.
    decision = api.ok(
        "/v1/decisions", person_id="salazar", contact_id="wife", at="2024-03-27T10:00"
    )
    assert (decision["allowed"], decision["reason"], decision["rules"]) == (
        False,
        "quota_exhausted",
        ["sam-one-call"],
    )


# --- staff writes ---------------------------------------------------------------


def test_imposing_a_rule_writes_its_notice_and_governs_decisions(api: Api) -> None:
    before = api.notices()
    response = api.post(
        "/v1/rules",
        {"rule": NEW_RULE, "reason": "A three-way call on 2024-06-28.", "at": "2024-07-01T09:00"},
    )
    assert response.status_code == 201, response.text
    rule = response.json()
    assert rule["id"] == "no-spouse-calls"
    assert (rule["authority"], rule["kind"], rule["channel"]) == ("sanction", "deny", "phone")
    assert rule["person"] == "salazar"
    assert rule["contacts"] == {"ids": ["wife"]}
    assert rule["starts_at"] == "2024-07-01T09:00:00"
    assert rule["ends_at"] == "2024-07-31T00:00:00"
    assert rule["text"] == NEW_RULE["text"]

    notices = api.notices()
    assert notices[: len(before)] == before
    [notice] = notices[len(before) :]
    assert notice["change"] == "imposed"
    assert notice["subject"] == "no-spouse-calls"
    assert notice["authority"] == "sanction"
    assert notice["reason"] == "A three-way call on 2024-06-28."
    assert notice["rule_text"] == NEW_RULE["text"]
    assert notice["effective_at"] == "2024-07-01T09:00:00"
    assert notice["appeal_deadline"] == "2024-07-21"
    assert notice["language"] == "es"
    assert notice["title"] == (
        "Nueva regla sobre sus llamadas telefónicas: "
        "No telephone calls with the spouse until the end of July"
    )
    assert "Motivo: A three-way call on 2024-06-28." in notice["body"]

    def ids_at(at: str) -> set[str]:
        return {r["id"] for r in api.ok("/v1/rules", person_id="salazar", at=at)}

    assert "no-spouse-calls" not in ids_at("2024-07-01T08:59")
    assert "no-spouse-calls" in ids_at("2024-07-15T00:00")
    assert "no-spouse-calls" not in ids_at("2024-07-31T00:00")

    def spouse_call(at: str) -> dict[str, Any]:
        result: dict[str, Any] = api.ok(
            "/v1/decisions", person_id="salazar", contact_id="wife", at=at
        )
        return result

    during = spouse_call("2024-07-02T10:00")
    assert (during["allowed"], during["reason"], during["rules"]) == (
        False,
        "denied",
        ["no-spouse-calls"],
    )
    assert during["explanation"][0]["text"] == NEW_RULE["text"]
    assert spouse_call("2024-06-20T10:00")["allowed"] is True
    assert spouse_call("2024-08-02T10:00")["allowed"] is True


def test_a_rule_for_everyone_tells_everyone(api: Api) -> None:
    rule = {
        "id": "lockdown",
        "authority": "security_measure",
        "kind": "deny",
        "channel": "visit",
        "person": "all",
        "contacts": "any",
        "text": "Visiting suspended during the lockdown.",
    }
    response = api.post(
        "/v1/rules", {"rule": rule, "reason": "A lockdown.", "at": "2024-07-05T09:00"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["person"] == "all"
    assert api.notices()[-1]["subject"] == "lockdown"
    assert api.notices()[-1]["title"] == (
        "Nueva regla sobre sus visitas: Visiting suspended during the lockdown"
    )
    visit = api.ok(
        "/v1/decisions",
        person_id="salazar",
        contact_id="wife",
        channel="visit",
        at="2024-07-06T09:00",
    )
    assert (visit["allowed"], visit["rules"]) == (False, ["lockdown"])


def test_lifting_a_rule_ends_it_and_restores_the_court_order(api: Api) -> None:
    before = api.notices()
    response = api.post(
        "/v1/rules/sam-children/lift",
        {"reason": "The review found no threat.", "at": "2024-06-01T09:00"},
    )
    assert response.status_code == 200, response.text
    lifted = response.json()
    assert lifted["id"] == "sam-children"
    assert lifted["starts_at"] == "2024-05-01T08:00:00"
    assert lifted["ends_at"] == "2024-06-01T09:00:00"

    [notice] = api.notices()[len(before) :]
    assert (notice["change"], notice["subject"]) == ("lifted", "sam-children")
    assert notice["reason"] == "The review found no threat."
    assert notice["effective_at"] == "2024-06-01T09:00:00"
    assert notice["appeal_deadline"] == "2024-06-21"
    assert notice["title"] == (
        "Regla levantada sobre sus llamadas telefónicas: "
        "Calls with children suspended pending review"
    )

    # History is exact: the rule still governed May, and no longer governs June.
    may = {r["id"] for r in api.ok("/v1/rules", person_id="salazar", at="2024-05-15T00:00")}
    june = {r["id"] for r in api.ok("/v1/rules", person_id="salazar", at="2024-06-02T00:00")}
    assert "sam-children" in may
    assert "sam-children" not in june
    decision = api.ok(
        "/v1/decisions", person_id="salazar", contact_id="daughter-a", at="2024-06-03T10:00"
    )
    assert decision["allowed"] is True
    assert decision["charged_to"] == "order-17"
    roles = {e["id"]: e["role"] for e in decision["explanation"]}
    assert roles["order-17"] == "responsible"
    assert roles["sam-one-call"] == "conflict"
    assert set(decision["conflicts"]) == {"policy-gap", "policy-hours", "sam-one-call"}


def test_approving_a_contact_writes_a_notice_once(api: Api) -> None:
    before = api.notices()
    response = api.post(
        "/v1/contacts/brother/approvals",
        {"channel": "video", "reason": "Family ties verified.", "at": "2024-07-01T09:00"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["contact_id"], body["channel"], body["changed"]) == ("brother", "video", True)
    [notice] = api.notices()[len(before) :]
    assert body["notice_id"] == notice["id"]
    assert (notice["change"], notice["subject"]) == ("approved", "brother:video")
    assert notice["reason"] == "Family ties verified."
    assert notice["title"] == "J. Salazar aprobado/a para videollamadas"
    assert notice["appeal_deadline"] == "2024-07-21"
    contacts = {c["id"]: c for c in api.ok("/v1/contacts", person_id="salazar")}
    assert contacts["brother"]["approved"] == ["phone", "video"]

    # Approving again changes nothing, so nothing is written.
    again = api.post("/v1/contacts/brother/approvals", {"channel": "video", "reason": "Again."})
    assert again.status_code == 200, again.text
    assert again.json() == {
        "contact_id": "brother",
        "channel": "video",
        "changed": False,
        "notice_id": None,
    }
    assert len(api.notices()) == len(before) + 1


def test_revoking_an_approval_takes_the_contact_off_the_list(api: Api) -> None:
    before = api.notices()
    response = api.post(
        "/v1/contacts/wife/approvals/phone/revoke",
        {"reason": "A three-way call on 2024-06-28.", "at": "2024-07-01T09:00"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["contact_id"], body["channel"], body["changed"]) == ("wife", "phone", True)
    [notice] = api.notices()[len(before) :]
    assert body["notice_id"] == notice["id"]
    assert (notice["change"], notice["subject"]) == ("revoked", "wife:phone")
    assert notice["reason"] == "A three-way call on 2024-06-28."
    assert notice["title"] == "E. Salazar ya no está aprobado/a para llamadas telefónicas"
    contacts = {c["id"]: c for c in api.ok("/v1/contacts", person_id="salazar")}
    assert contacts["wife"]["approved"] == ["visit"]
    decision = api.ok(
        "/v1/decisions", person_id="salazar", contact_id="wife", at="2024-07-02T10:00"
    )
    assert (decision["allowed"], decision["reason"]) == (False, "not_on_list")
    # Before the revocation the same call was allowed.
    earlier = api.ok("/v1/decisions", person_id="salazar", contact_id="wife", at="2024-06-20T10:00")
    assert earlier["allowed"] is True


def test_writes_are_recorded_under_the_time_they_were_made_by_default(api: Api) -> None:
    rule = {**NEW_RULE, "id": "from-now"}
    del rule["until"]
    response = api.post("/v1/rules", {"rule": rule, "reason": "Imposed now."})
    assert response.status_code == 201, response.text
    starts = datetime.fromisoformat(response.json()["starts_at"])
    assert starts.year >= 2025
    assert api.notices()[-1]["effective_at"] == response.json()["starts_at"]
    assert "from-now" in {r["id"] for r in api.ok("/v1/rules", person_id="salazar")}


# --- the OpenAPI document and its pages -------------------------------------------


def test_openapi_lists_every_path(api: Api) -> None:
    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "kinline"
    assert {path for _, path in ENDPOINTS} <= set(document["paths"])
    assert document["paths"]["/v1/rules"]["post"]["responses"]["201"]
    assert "HTTPBearer" in document["components"]["securitySchemes"]


def test_docs_page_responds(api: Api) -> None:
    response = api.client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text
