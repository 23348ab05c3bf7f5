"""The lean route of authorize and end (``kinline.calls.api.LeanCallPath``), on
SQLite and PostgreSQL: what it answers itself is what the documented routes
answer, every refusal is theirs (it hands the request over with its body), the
set-up is audited in the person's chain, and a token's use is still recorded.
"""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _databases import DbTemplate, scenario_template
from sqlalchemy import select

from kinline.api import create_app
from kinline.audit.service import person_chain, verify_log
from kinline.calls import api as calls_api
from kinline.db.engine import Database
from kinline.db.tables import ApiTokenRow, AuditEventRow
from kinline.identity.service import LAST_USED_EVERY, create_token, revoke_token

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

FACILITY = "fci-lean"
LEAN = f"?facility_id={FACILITY}"
SCENARIO = textwrap.dedent(
    """\
    scenario: lean call path
    facility: {id: fci-lean, name: FCI Lean, timezone: America/Denver}
    people:
      - {id: ana, name: A. Ana, language: en}
      - {id: ben, name: B. Ben, language: es}
    contacts:
      - {id: mom, person: ana, relationship: parent, phones: ["+1 303 555 0100"],
         approved: [phone]}
      - {id: wife, person: ben, relationship: spouse, phones: ["+1 303 555 0100"],
         approved: [phone]}
    rules:
      - {id: g-phone, authority: facility_policy, kind: grant, channel: phone, person: all,
         contacts: any, quota: {count: 2, per: {rolling_days: 7}}, max_minutes: 15,
         text: Two calls of up to 15 minutes a week.}
    """
)


@dataclass
class Lean:
    """Counts the requests the lean route answered itself."""

    answered: list[str] = field(default_factory=list)


@pytest.fixture
def client(
    fresh_db: Callable[[DbTemplate], Database], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, dict[str, str], Database, Lean]]:
    db = fresh_db(scenario_template(SCENARIO))
    tokens = {
        role: create_token(db, f"{role}-client", role, at=datetime.now(UTC))[1]
        for role in ("read", "staff", "telephony")
    }
    lean = Lean()
    for name in ("_lean_authorize", "_lean_end"):
        real = getattr(calls_api, name)

        def counted(*args: Any, _real: Any = real, _name: str = name) -> Any:
            answer = _real(*args)  # Declined (handed over) is not counted
            lean.answered.append(_name)
            return answer

        monkeypatch.setattr(calls_api, name, counted)
    with TestClient(create_app(db), raise_server_exceptions=False) as test_client:
        # A token's first use is recorded by the full route; from then on for a
        # minute the lean route answers.
        for token in tokens.values():
            test_client.get("/v1/facilities", headers=bearer(token))
        yield test_client, tokens, db, lean


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def events_of(db: Database, person: str) -> list[str]:
    """The call path's events in the person's chain, in order."""
    with db.transaction() as session:
        tags = list(
            session.scalars(
                select(AuditEventRow.tag)
                .where(
                    AuditEventRow.facility_id == FACILITY,
                    AuditEventRow.chain == person_chain(FACILITY, person),
                )
                .order_by(AuditEventRow.seq)
            )
        )
    return [tag for tag in tags if tag.startswith("calls:")]


def test_the_lean_route_answers_as_the_documented_one(
    client: tuple[TestClient, dict[str, str], Database, Lean],
) -> None:
    http, tokens, db, lean = client
    h = bearer(tokens["telephony"])
    body = {"person_id": "ana", "dialed": "+1 (303) 555-0100", "idempotency_key": "pbx-1"}
    first = http.post(f"/v1/calls/authorize{LEAN}", json=body, headers=h)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/json"
    assert lean.answered == ["_lean_authorize"]
    got = first.json()
    assert (got["allowed"], got["contact_id"], got["max_minutes"], got["replayed"]) == (
        True,
        "mom",
        15,
        False,
    )
    # The same key through the documented route is the same answer, replayed.
    replay = http.post("/v1/calls/authorize", json=body, headers=h).json()
    assert replay == {**got, "replayed": True}
    assert lean.answered == ["_lean_authorize"]
    # And the other way round: a set-up made by the documented route, replayed lean.
    other = {**body, "person_id": "ben", "idempotency_key": "pbx-2"}
    full = http.post("/v1/calls/authorize", json=other, headers=h).json()
    again = http.post(f"/v1/calls/authorize{LEAN}", json=other, headers=h).json()
    assert again == {**full, "replayed": True}
    ended = http.post(f"/v1/calls/{got['hold_id']}/end{LEAN}", json={"seconds": 61}, headers=h)
    assert ended.status_code == 200, ended.text
    assert lean.answered == ["_lean_authorize", "_lean_authorize", "_lean_end"]
    assert (ended.json()["state"], ended.json()["minutes"]) == ("completed", 2)
    read = http.get(f"/v1/calls/{got['hold_id']}", headers=bearer(tokens["read"]))
    assert read.json() == ended.json()
    # Ending twice is the same answer, as on the documented route.
    twice = http.post(f"/v1/calls/{got['hold_id']}/end{LEAN}", json={"seconds": 61}, headers=h)
    assert twice.json() == ended.json()
    # Audited in the person's chain, with the subject as actor, and the log verifies.
    assert events_of(db, "ana") == ["calls:authorize:allowed", "calls:call:ended"]
    with db.transaction() as session:
        actors = set(
            session.scalars(
                select(AuditEventRow.actor).where(
                    AuditEventRow.facility_id == FACILITY,
                    AuditEventRow.chain == person_chain(FACILITY, "ana"),
                    AuditEventRow.tag.like("calls:%"),
                )
            )
        )
    assert actors == {"machine:3:telephony-client"}
    assert verify_log(db).problem is None


def test_the_lean_route_holds_the_quota_as_the_documented_one(
    client: tuple[TestClient, dict[str, str], Database, Lean],
) -> None:
    http, tokens, _db, lean = client
    h = bearer(tokens["telephony"])
    answers = [
        http.post(
            f"/v1/calls/authorize{LEAN}",
            json={"person_id": "ana", "dialed": "+13035550100", "idempotency_key": f"k{n}"},
            headers=h,
        ).json()
        for n in range(3)
    ]
    assert [a["allowed"] for a in answers] == [True, True, False]
    assert answers[2]["reason"] == "quota_exhausted" and answers[2]["hold_id"] is None
    assert lean.answered == ["_lean_authorize"] * 3


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/v1/calls/authorize", {"dialed": "+13035550100", "idempotency_key": "k"}, 422,
         "person_id"),
        ("/v1/calls/authorize", {"person_id": "ana", "dialed": 5, "idempotency_key": "k"}, 422,
         "dialed"),
        ("/v1/calls/authorize",
         {"person_id": "ana", "dialed": "+13035550100", "idempotency_key": "k", "x": 1}, 422, "x"),
        ("/v1/calls/authorize", {"person_id": "ana", "idempotency_key": "k"}, 422, "dialed"),
        ("/v1/calls/authorize",
         {"person_id": "ana", "dialed": "+13035550100", "idempotency_key": "k", "channel": "sms"},
         422, "channel"),
        ("/v1/calls/authorize",
         {"person_id": "nobody", "dialed": "+13035550100", "idempotency_key": "k"}, 404,
         "person_id"),
        ("/v1/calls/h_unknown/end", {"seconds": 5}, 404, "hold_id"),
        ("/v1/calls/h_unknown/end", {"seconds": 1.5}, 422, "seconds"),
        # The model takes true as 1: handed over, it is answered as the route does.
        ("/v1/calls/h_unknown/end", {"seconds": True}, 404, "hold_id"),
        ("/v1/calls/h_unknown/end", {"seconds": -1}, 422, "seconds"),
    ],
)  # fmt: skip
def test_a_refusal_is_the_documented_routes(
    client: tuple[TestClient, dict[str, str], Database, Lean],
    path: str,
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    http, tokens, _db, _lean = client
    h = bearer(tokens["telephony"])
    lean = http.post(f"{path}{LEAN}", json=body, headers=h)
    full = http.post(path, json=body, headers=h)
    assert lean.status_code == status, lean.text
    assert lean.headers["content-type"] == "application/problem+json"
    assert lean.json()["field"] == field
    assert lean.json() == full.json()


@pytest.mark.parametrize("path", ["/v1/calls/authorize", "/v1/calls/h_unknown/end"])
def test_a_body_nested_past_reading_is_refused_as_the_documented_route_refuses_it(
    client: tuple[TestClient, dict[str, str], Database, Lean], path: str
) -> None:
    """Small enough for the lean route (10 KB), too deep for Python's JSON
    reader: handed over, never a 500."""
    http, tokens, _db, lean = client
    h = {**bearer(tokens["telephony"]), "content-type": "application/json"}
    deep = "[" * 5_000 + "]" * 5_000
    answer = http.post(f"{path}{LEAN}", content=deep, headers=h)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json() == http.post(path, content=deep, headers=h).json()
    assert lean.answered == []


def test_a_caller_the_documented_route_refuses_is_refused_alike(
    client: tuple[TestClient, dict[str, str], Database, Lean],
) -> None:
    http, tokens, db, lean = client
    body = {"person_id": "ana", "dialed": "+13035550100", "idempotency_key": "k"}
    for headers, status in (
        ({}, 401),
        (bearer("not-a-token"), 401),
        (bearer(tokens["staff"]), 403),
        (bearer(tokens["read"]), 403),
    ):
        for path in ("/v1/calls/authorize", "/v1/calls/h_x/end"):
            payload = body if path.endswith("authorize") else {"seconds": 1}
            refused = http.post(f"{path}{LEAN}", json=payload, headers=headers)
            assert refused.status_code == status, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json() == http.post(path, json=payload, headers=headers).json()
    # Another facility than the token's is not found, as on the documented route.
    elsewhere = http.post(
        "/v1/calls/authorize?facility_id=fci-other", json=body, headers=bearer(tokens["telephony"])
    )
    assert elsewhere.status_code == 404 and elsewhere.json()["field"] == "facility_id"
    assert lean.answered == []
    assert events_of(db, "ana") == []  # nothing refused wrote anything


def test_a_revoked_token_is_refused_by_the_next_request(
    client: tuple[TestClient, dict[str, str], Database, Lean],
) -> None:
    http, _tokens, db, lean = client
    info, secret = create_token(db, "pbx", "telephony", at=datetime.now(UTC))
    http.get("/v1/facilities", headers=bearer(secret))
    body = {"person_id": "ana", "dialed": "+13035550100", "idempotency_key": "k"}
    allowed = http.post(f"/v1/calls/authorize{LEAN}", json=body, headers=bearer(secret))
    assert allowed.status_code == 200 and lean.answered == ["_lean_authorize"]
    revoke_token(db, info.id, at=datetime.now(UTC), actor="test")
    again = {**body, "idempotency_key": "k2"}
    refused = http.post(f"/v1/calls/authorize{LEAN}", json=again, headers=bearer(secret))
    assert refused.status_code == 401
    assert lean.answered == ["_lean_authorize"]


def test_a_tokens_use_is_recorded_when_due(
    client: tuple[TestClient, dict[str, str], Database, Lean],
) -> None:
    http, tokens, db, lean = client
    h = bearer(tokens["telephony"])
    long_ago = datetime.now(UTC) - LAST_USED_EVERY - timedelta(seconds=5)
    with db.transaction() as session:
        for row in session.scalars(select(ApiTokenRow)):
            row.last_used_at = long_ago
    body = {"person_id": "ana", "dialed": "+13035550100", "idempotency_key": "k"}
    answered = http.post(f"/v1/calls/authorize{LEAN}", json=body, headers=h)
    assert answered.status_code == 200 and answered.json()["allowed"] is True
    assert lean.answered == []  # the documented route answered, and recorded the use
    with db.transaction() as session:
        used = {row.name: row.last_used_at for row in session.scalars(select(ApiTokenRow))}
    assert used["telephony-client"] is not None and used["telephony-client"] > long_ago
    assert used["read-client"] == long_ago
    # From then on the lean route answers.
    answered = http.post(
        f"/v1/calls/authorize{LEAN}", json={**body, "idempotency_key": "k2"}, headers=h
    )
    assert answered.status_code == 200 and lean.answered == ["_lean_authorize"]
    assert events_of(db, "ana") == ["calls:authorize:allowed", "calls:authorize:allowed"]
