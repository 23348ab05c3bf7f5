"""Bad input to the HTTP API: a problem+json that names the field, never a 500,
and never a partial write (DESIGN invariant 6).

Each test gets a fresh database (SQLite and PostgreSQL) holding the supermax
scenario after its whole timeline.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

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

PROBLEM = "application/problem+json"
OUT_OF_RANGE = "9999-12-31T23:59"  # a wall time whose instant overflows in UTC
RULE = {
    "id": "no-spouse-calls",
    "authority": "sanction",
    "kind": "deny",
    "channel": "phone",
    "person": "salazar",
    "contacts": {"ids": ["wife"]},
    "text": "No telephone calls with the spouse.",
}
LIMIT = {**RULE, "id": "late-calls", "kind": "limit", "text": "Late calls only."}


@dataclass
class Api:
    client: TestClient
    headers: dict[str, str]

    def get(self, url: str, **params: str) -> httpx.Response:
        return self.client.get(url, params=params or None, headers=self.headers)

    def post(self, url: str, body: object) -> httpx.Response:
        return self.client.post(url, json=body, headers=self.headers)

    def state(self) -> dict[str, Any]:
        """Everything a failed write must leave as it was, read through the API."""
        reads = {
            "notices": self.get("/v1/notices"),
            "contacts": self.get("/v1/contacts"),
            "rules now": self.get("/v1/rules"),
            "rules in 2024": self.get("/v1/rules", at="2024-07-02T10:00"),
        }
        for name, response in reads.items():
            assert response.status_code == 200, (name, response.text)
        return {name: response.json() for name, response in reads.items()}


@pytest.fixture
def db_template() -> DbTemplate:
    return SUPERMAX


@pytest.fixture
def api(db: Database) -> Iterator[Api]:
    _, secret = create_token(db, "records-office", "staff", at=datetime(2024, 1, 1, tzinfo=UTC))
    with TestClient(create_app(db), raise_server_exceptions=False) as client:
        yield Api(client, {"Authorization": f"Bearer {secret}"})


def assert_problem(response: httpx.Response, status: int, field: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for key in ("type", "title", "detail"):
        assert isinstance(body[key], str)
        assert body[key], key
    assert body.get("field") == field, body
    return body


# --- reasons --------------------------------------------------------------------

WRITES = {
    "impose": ("/v1/rules", {"rule": RULE, "at": "2024-07-01T09:00"}),
    "lift": ("/v1/rules/sam-children/lift", {"at": "2024-06-01T09:00"}),
    "approve": ("/v1/contacts/brother/approvals", {"channel": "video"}),
    "revoke": ("/v1/contacts/wife/approvals/phone/revoke", {}),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_a_write_needs_a_reason(api: Api, write: str) -> None:
    url, body = WRITES[write]
    before = api.state()
    for reason in (None, "", "   ", "\n\t"):
        sent = body if reason is None else {**body, "reason": reason}
        problem = assert_problem(api.post(url, sent), 422, "reason")
        assert problem["code"] == "invalid_input"
        assert "reason" in problem["detail"]
        assert api.state() == before, repr(reason)
    # The same write with a reason goes through: only the reason was missing.
    assert api.post(url, {**body, "reason": "Stated."}).status_code in (200, 201)
    assert len(api.state()["notices"]) == len(before["notices"]) + 1


# --- bad input names its field and writes nothing --------------------------------

BAD_WRITES: list[tuple[str, str, dict[str, Any], int, str]] = [
    # (label, url, body, status, field)
    (
        "unknown authority",
        "/v1/rules",
        {"rule": {**RULE, "authority": "warden_whim"}},
        422,
        "rule.authority",
    ),
    (
        "window across midnight",
        "/v1/rules",
        {"rule": {**LIMIT, "window": {"from": "22:00", "to": "02:00"}}},
        422,
        "rule.window",
    ),
    ("unknown person", "/v1/rules", {"rule": {**RULE, "person": "nobody"}}, 422, "rule.person"),
    ("unknown channel", "/v1/rules", {"rule": {**RULE, "channel": "fax"}}, 422, "rule.channel"),
    ("unknown kind", "/v1/rules", {"rule": {**RULE, "kind": "forbid"}}, 422, "rule.kind"),
    (
        "unknown contact",
        "/v1/rules",
        {"rule": {**RULE, "contacts": {"ids": ["wife", "cousin"]}}},
        422,
        "rule.contacts",
    ),
    (
        "a field of another kind",
        "/v1/rules",
        {"rule": {**RULE, "quota": {"count": 1, "per": "month"}}},
        422,
        "rule.quota",
    ),
    ("a bad id", "/v1/rules", {"rule": {**RULE, "id": "no spaces"}}, 422, "rule.id"),
    (
        "no person",
        "/v1/rules",
        {"rule": {k: v for k, v in RULE.items() if k != "person"}},
        422,
        "rule.person",
    ),
    (
        "until before from",
        "/v1/rules",
        {"rule": {**RULE, "from": "2024-08-01", "until": "2024-07-01"}},
        422,
        "rule.until",
    ),
    (
        "until before it is imposed",
        "/v1/rules",
        {"rule": {**RULE, "until": "2024-06-01"}},
        422,
        "rule.until",
    ),
    ("an existing id", "/v1/rules", {"rule": {**RULE, "id": "sam-children"}}, 409, "rule.id"),
    ("a rule that is text", "/v1/rules", {"rule": "deny all calls"}, 422, "rule"),
    ("malformed at", "/v1/rules", {"rule": RULE, "at": "next tuesday"}, 422, "at"),
    ("at with an offset", "/v1/rules", {"rule": RULE, "at": "2024-07-01T09:00+02:00"}, 422, "at"),
    ("at out of range", "/v1/rules", {"rule": RULE, "at": "9999-12-31T23:59"}, 422, "at"),
    ("malformed from", "/v1/rules", {"rule": {**RULE, "from": "soon"}}, 422, "rule.from"),
    ("lift an unknown rule", "/v1/rules/no-such-rule/lift", {}, 404, "rule_id"),
    ("lift at a malformed time", "/v1/rules/sam-children/lift", {"at": "2024-13-01"}, 422, "at"),
    (
        "approve for an unknown channel",
        "/v1/contacts/brother/approvals",
        {"channel": "fax"},
        422,
        "channel",
    ),
    (
        "approve an unknown contact",
        "/v1/contacts/cousin/approvals",
        {"channel": "video"},
        404,
        "contact_id",
    ),
    (
        "approve at a malformed time",
        "/v1/contacts/brother/approvals",
        {"channel": "video", "at": "yesterday"},
        422,
        "at",
    ),
    ("approve with no channel", "/v1/contacts/brother/approvals", {}, 422, "channel"),
    ("revoke an unknown channel", "/v1/contacts/wife/approvals/fax/revoke", {}, 422, "channel"),
    (
        "revoke an unknown contact",
        "/v1/contacts/cousin/approvals/phone/revoke",
        {},
        404,
        "contact_id",
    ),
    (
        "revoke what was never approved",
        "/v1/contacts/brother/approvals/video/revoke",
        {},
        409,
        "channel",
    ),
    (
        "revoke at a malformed time",
        "/v1/contacts/wife/approvals/phone/revoke",
        {"at": "2024-02-30T10:00"},
        422,
        "at",
    ),
]


@pytest.mark.parametrize(
    ("url", "body", "status", "field"),
    [case[1:] for case in BAD_WRITES],
    ids=[case[0] for case in BAD_WRITES],
)
def test_bad_input_names_its_field_and_writes_nothing(
    api: Api, url: str, body: dict[str, Any], status: int, field: str
) -> None:
    before = api.state()
    sent = {"reason": "Stated.", "at": "2024-07-01T09:00", **body}
    assert_problem(api.post(url, sent), status, field)
    assert api.state() == before


def test_lifting_a_lifted_rule_is_409(api: Api) -> None:
    lift = {"reason": "The review is complete.", "at": "2024-06-01T09:00"}
    assert api.post("/v1/rules/sam-children/lift", lift).status_code == 200
    before = api.state()
    for at in ("2024-06-01T09:00", "2024-06-02T09:00", None):
        again = {"reason": "Again.", "at": at}
        problem = assert_problem(api.post("/v1/rules/sam-children/lift", again), 409, "rule_id")
        assert problem["code"] == "conflict"
        assert "sam-children" in problem["detail"]
    assert api.state() == before


def test_revoking_twice_is_409(api: Api) -> None:
    url = "/v1/contacts/wife/approvals/phone/revoke"
    assert api.post(url, {"reason": "A three-way call."}).status_code == 200
    before = api.state()
    assert_problem(api.post(url, {"reason": "Again."}), 409, "channel")
    assert api.state() == before


def test_a_rule_lifted_before_it_starts_never_applies(api: Api) -> None:
    """Lifting a scheduled rule cancels it: one notice, and it is never in force."""
    future = {**RULE, "from": "2024-08-01", "until": "2024-09-01"}
    imposed = api.post("/v1/rules", {"rule": future, "reason": "Stated.", "at": "2024-07-01T09:00"})
    assert imposed.status_code == 201, imposed.text
    notices = len(api.state()["notices"])
    response = api.post(
        "/v1/rules/no-spouse-calls/lift", {"reason": "Withdrawn.", "at": "2024-07-15T09:00"}
    )
    assert response.status_code == 200, response.text
    assert len(api.state()["notices"]) == notices + 1
    in_force = api.get("/v1/rules", person_id="salazar", at="2024-08-15T09:00")
    assert in_force.status_code == 200, in_force.text
    assert "no-spouse-calls" not in [rule["id"] for rule in in_force.json()]


def test_a_rule_time_out_of_range_is_422(api: Api) -> None:
    before = api.state()
    rule = {**RULE, "from": OUT_OF_RANGE}
    assert_problem(api.post("/v1/rules", {"rule": rule, "reason": "Stated."}), 422, "rule.from")
    assert api.state() == before


def test_a_relationship_that_is_a_list_is_422(api: Api) -> None:
    before = api.state()
    rule = {**RULE, "contacts": {"relationships": [["child"]]}}
    response = api.post("/v1/rules", {"rule": rule, "reason": "Stated."})
    assert_problem(response, 422, "rule.contacts.relationships")
    assert api.state() == before


# --- reads ------------------------------------------------------------------------------

BAD_READS: list[tuple[str, dict[str, str], int, str | None]] = [
    ("/v1/people/nobody", {}, 404, "person_id"),
    ("/v1/contacts", {"person_id": "nobody"}, 404, "person_id"),
    ("/v1/rules", {"person_id": "nobody"}, 404, "person_id"),
    ("/v1/notices", {"person_id": "nobody"}, 404, "person_id"),
    ("/v1/people", {"facility_id": "nowhere"}, 404, "facility_id"),
    ("/v1/rules", {"at": "2024-05-02 noon"}, 422, "at"),
    ("/v1/rules", {"at": "9999-12-31T23:59"}, 422, "at"),
    ("/v1/rules", {"channel": "fax"}, 422, "channel"),
    ("/v1/decisions", {"person_id": "nobody", "contact_id": "wife"}, 404, "person_id"),
    ("/v1/decisions", {"person_id": "salazar", "contact_id": "cousin"}, 404, "contact_id"),
    (
        "/v1/decisions",
        {"person_id": "salazar", "contact_id": "wife", "channel": "fax"},
        422,
        "channel",
    ),
    ("/v1/decisions", {"person_id": "salazar", "contact_id": "wife", "at": "noon"}, 422, "at"),
    (
        "/v1/decisions",
        {"person_id": "salazar", "contact_id": "wife", "at": "2024-05-06T10:00Z"},
        422,
        "at",
    ),
    (
        "/v1/decisions",
        {"person_id": "salazar", "contact_id": "wife", "at": "9999-12-31T23:59"},
        422,
        "at",
    ),
    ("/v1/decisions", {"contact_id": "wife"}, 422, "person_id"),
    ("/v1/decisions", {"person_id": "salazar"}, 422, "contact_id"),
    ("/v1/people/salazar", {"facility_id": "x\x00"}, 422, "facility_id"),
    ("/v1/people/sala%00zar", {}, 422, "person_id"),
    ("/v1/no-such-endpoint", {}, 404, None),
]


def test_bad_reads_name_the_field(api: Api) -> None:
    # Reads change nothing, so one database serves every case.
    wrong = []
    for url, params, status, field in BAD_READS:
        response = api.get(url, **params)
        body = response.json()
        got = (response.status_code, response.headers["content-type"], body.get("field"))
        if got != (status, PROBLEM, field) or body.get("status") != status:
            wrong.append((url, params, got))
        else:
            assert_problem(response, status, field)
    assert wrong == []


def test_an_unknown_person_in_a_decision_is_404(api: Api) -> None:
    response = api.get(
        "/v1/decisions", person_id="nobody", contact_id="daughter-a", at="2024-05-06T10:00"
    )
    problem = assert_problem(response, 404, "person_id")
    assert problem["code"] == "not_found"
    assert "nobody" in problem["detail"]


def test_a_method_the_route_lacks_is_405(api: Api) -> None:
    response = api.client.delete("/v1/rules", headers=api.headers)
    assert_problem(response, 405, None)
    assert response.headers["allow"] == "GET, HEAD, POST"
    response = api.client.put("/v1/calls/h_1/end", headers=api.headers)
    assert_problem(response, 405, None)
    assert response.headers["allow"] == "POST"
    # The route by that name, not a hold called "authorize".
    response = api.client.delete("/v1/calls/authorize", headers=api.headers)
    assert_problem(response, 405, None)
    assert response.headers["allow"] == "POST"


def test_a_body_that_is_not_json_is_the_fault_of_the_body(api: Api) -> None:
    headers = {**api.headers, "content-type": "application/json"}
    response = api.client.post("/v1/rules", content=b'{"rule": ', headers=headers)
    problem = assert_problem(response, 422, "body")
    assert problem["detail"] == "body: the body is not valid JSON (at character 9)"


def test_the_openapi_document_says_how_errors_are_answered(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("400", "401", "403", "404", "409", "422"):
                content = _resolved(document, responses[status])["content"]
                assert list(content) == [PROBLEM], (method, path, status)
                schema = _resolved(document, content[PROBLEM]["schema"])
                assert {"title", "status", "detail"} <= set(schema["required"])
    # A call set-up names the contact one way: the number dialed or its id.
    authorize = document["components"]["schemas"]["AuthorizeIn"]
    assert [branch["required"][0] for branch in authorize["oneOf"]] == ["dialed", "contact_id"]


def _resolved(document: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """``item``, or what its ``$ref`` (``#/components/...``) names."""
    while "$ref" in item:
        found: Any = document
        for part in item["$ref"].removeprefix("#/").split("/"):
            found = found[part]
        item = found
    return item


# --- never a 500 ----------------------------------------------------------------------------

ODD_TEXT = [
    "",
    "x" * 5000,
    "Ünïcødé ☎ 电话 👨‍👧",
    "\u202eevil",
    "\x00",
    "a\x00b",
    "../../etc/passwd",
    "'; DROP TABLE rules; --",
    "a:b",
    "9" * 40,
    "2024-02-30T10:00",
    "2024-03-10T02:30",
    "0001-01-01",
    OUT_OF_RANGE,
    "2024-05-06T10:00:00.123456789",
]
ODD_JSON: list[object] = [None, 0, -1, 10**30, 1.5, 1e308, True, [], {}, ["x"], {"a": 1}, "☎"]


def odd_requests() -> Iterator[tuple[str, str, object]]:
    """(method, url, body) for every endpoint with odd values in each place."""
    serial = itertools.count()

    def rule(base: dict[str, Any], key: str, value: object) -> dict[str, Any]:
        # A fresh id each time, so an odd rule that is valid does not block the next.
        return {"rule": {**base, "id": f"odd-{next(serial)}", key: value}, "reason": "r"}

    for text in ODD_TEXT:
        quoted = quote(text, safe="")
        yield "get", f"/v1/people/{quoted}", None
        for name in ("person_id", "contact_id", "channel", "at", "facility_id"):
            params = {"person_id": "salazar", "contact_id": "wife", name: text}
            yield "get", str(httpx.URL("/v1/decisions", params=params)), None
        for url in ("/v1/contacts", "/v1/notices", "/v1/people", "/v1/facilities"):
            for name in ("person_id", "facility_id"):
                yield "get", str(httpx.URL(url, params={name: text})), None
        for name in ("person_id", "channel", "at"):
            yield "get", str(httpx.URL("/v1/rules", params={name: text})), None
        yield "post", f"/v1/rules/{quoted}/lift", {"reason": "r"}
        yield "post", f"/v1/contacts/{quoted}/approvals", {"channel": "video", "reason": "r"}
        yield "post", f"/v1/contacts/{quoted}/approvals/phone/revoke", {"reason": "r"}
        yield "post", f"/v1/contacts/wife/approvals/{quoted}/revoke", {"reason": "r"}
    for value in [*ODD_TEXT, *ODD_JSON]:
        for key in ("reason", "at"):
            yield "post", "/v1/rules", {**rule(RULE, "text", "Odd."), key: value}
            yield "post", "/v1/rules/sam-family-only/lift", {"reason": "r", key: value}
            yield "post", "/v1/contacts/wife/approvals/video/revoke", {"reason": "r", key: value}
        for key in ("channel", "reason", "at"):
            body = {"channel": "video", "reason": "r", key: value}
            yield "post", "/v1/contacts/daughter-a/approvals", body
        yield "post", "/v1/rules", {"rule": value, "reason": "r"}
        yield "post", "/v1/rules", value
        for key in [*RULE, "from", "until", "overrides", "case_number", "quota", "max_minutes"]:
            yield "post", "/v1/rules", rule(LIMIT, key, value)
        for key in ("window", "min_gap_minutes", "monitoring", "interpreter"):
            yield "post", "/v1/rules", rule(LIMIT, key, value)
        yield "post", "/v1/rules", rule(LIMIT, "quota", {"count": value, "per": "month"})
        yield "post", "/v1/rules", rule(LIMIT, "quota", {"count": 1, "per": value})
        yield "post", "/v1/rules", rule(LIMIT, "window", {"from": value, "to": "10:00"})
        yield "post", "/v1/rules", rule(RULE, "contacts", {"ids": [value]})
        yield "post", "/v1/rules", rule(RULE, "contacts", {"relationships": [value]})
        yield "post", "/v1/rules", rule(RULE, "contacts", {"exclude": value})


def test_odd_input_never_gets_a_500(api: Api) -> None:
    failures = []
    sent = 0
    for method, url, body in odd_requests():
        if method == "get":
            response = api.client.get(url, headers=api.headers)
        else:
            response = api.client.post(url, json=body, headers=api.headers)
        sent += 1
        if response.status_code >= 500:
            failures.append((method, url[:200], repr(body)[:400], response.status_code))
        elif response.status_code >= 400 and response.headers["content-type"] != PROBLEM:
            failures.append((method, url[:200], repr(body)[:400], "not problem+json"))
    assert sent > 1000
    assert failures == []


def test_bodies_that_are_not_json_are_4xx(api: Api) -> None:
    before = api.state()
    headers = {**api.headers, "content-type": "application/json"}
    for content in (
        b"",
        b"{",
        b"{'rule': 1}",
        b"\xff\xfe\x00",
        b"null",
        b"[]",
        b'"text"',
        b"1e999",
    ):
        response = api.client.post("/v1/rules", content=content, headers=headers)
        assert response.status_code in (400, 422), (content, response.text)
        assert_problem(response, response.status_code, response.json().get("field"))
    assert api.state() == before
