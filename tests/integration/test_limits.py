"""Limits that protect the service: request bodies capped, free text and numbers
bounded, ids past the integer range refused, and a database that hangs answered
503 within a bound. Each bad input is a 4xx (or 503) problem+json naming the
field, never a 500, and writes nothing.

Each test gets a fresh database (SQLite and PostgreSQL) holding the supermax
scenario after its whole timeline.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from _databases import SUPERMAX, DbTemplate
from _server import running_server
from sqlalchemy import create_engine, text

from kinline.api import create_app
from kinline.bounds import (
    COUNT_MAX,
    LONG_TEXT_CHARS,
    MINUTES_MAX,
    NAME_CHARS,
    REASON_CHARS,
    ROLLING_DAYS_MAX,
    RULE_TEXT_CHARS,
)
from kinline.db.engine import Database
from kinline.identity.service import create_token
from kinline.limits import BodyCaps, BodyLimit

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

PROBLEM = "application/problem+json"
RULE = {
    "id": "huge",
    "authority": "sanction",
    "kind": "limit",
    "channel": "phone",
    "person": "salazar",
    "contacts": "any",
    "text": "Calls limited.",
}
DECISION = {"person_id": "salazar", "contact_id": "daughter-a", "at": "2024-07-02T10:00"}


@pytest.fixture
def db_template() -> DbTemplate:
    return SUPERMAX


def staff_token(db: Database) -> str:
    _, secret = create_token(db, "records-office", "staff", at=datetime(2024, 1, 1, tzinfo=UTC))
    return secret


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    secret = staff_token(db)
    with TestClient(create_app(db), raise_server_exceptions=False) as test_client:
        test_client.headers["Authorization"] = f"Bearer {secret}"
        yield test_client


def problem(response: httpx.Response, status: int, field: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body.get("field") == field, body
    assert body["detail"]
    return body


def state(client: TestClient) -> list[object]:
    """What a refused write must leave as it was."""
    reads = [client.get(url) for url in ("/v1/notices", "/v1/rules", "/v1/contacts")]
    assert [r.status_code for r in reads] == [200, 200, 200]
    return [r.json() for r in reads]


# --- 3. numbers in rules ------------------------------------------------------------

ROLLING = "rule.quota.per.rolling_days"
HUGE_RULES: list[tuple[dict[str, Any], str]] = [
    ({"quota": {"count": 1, "per": {"rolling_days": 10**9}}}, "rule.quota.per.rolling_days"),
    ({"quota": {"count": 1, "per": {"rolling_days": ROLLING_DAYS_MAX + 1}}}, ROLLING),
    ({"quota": {"minutes": 10**30, "per": "month"}}, "rule.quota.minutes"),
    ({"quota": {"minutes": 1e30, "per": "month"}}, "rule.quota.minutes"),
    ({"quota": {"minutes": MINUTES_MAX + 1, "per": "week"}}, "rule.quota.minutes"),
    ({"quota": {"count": COUNT_MAX + 1, "per": "day"}}, "rule.quota.count"),
    ({"max_minutes": 10**20}, "rule.max_minutes"),
    ({"min_gap_minutes": 2**63}, "rule.min_gap_minutes"),
    ({"from": "9998-01-01"}, "rule.from"),
    ({"until": "0002-01-01"}, "rule.until"),
    ({"text": "x" * (RULE_TEXT_CHARS + 1)}, "rule.text"),
    ({"case_number": "c" * 101}, "rule.case_number"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "field"), HUGE_RULES, ids=[f for _, f in HUGE_RULES])
def test_a_rule_past_a_bound_is_422_and_decisions_still_answer(
    client: TestClient, extra: dict[str, Any], field: str
) -> None:
    before = state(client)
    sent = {"rule": {**RULE, **extra}, "reason": "Stated.", "at": "2024-07-01T09:00"}
    body = problem(client.post("/v1/rules", json=sent), 422, field)
    assert body["code"] == "invalid_input"
    assert state(client) == before
    decision = client.get("/v1/decisions", params=DECISION)
    assert decision.status_code == 200, decision.text


def test_a_rule_at_every_bound_is_imposed_and_decided_with(client: TestClient) -> None:
    rule = {
        **RULE,
        "quota": {
            "count": COUNT_MAX,
            "minutes": MINUTES_MAX,
            "per": {"rolling_days": ROLLING_DAYS_MAX},
        },
        "max_minutes": MINUTES_MAX,
        "min_gap_minutes": MINUTES_MAX,
    }
    sent = {"rule": rule, "reason": "Stated.", "at": "2024-07-01T09:00"}
    assert client.post("/v1/rules", json=sent).status_code == 201
    decision = client.get("/v1/decisions", params=DECISION)
    assert decision.status_code == 200, decision.text
    assert "huge" in decision.json()["rules"] or decision.json()["allowed"] is False


# --- 2. free text -------------------------------------------------------------------

LONG_REASON = "r" * (REASON_CHARS + 1)
APPEAL = {"person_id": "salazar", "notice_id": 1, "filed_by": "person", "filer": "f", "text": "t"}
LONG_TEXT: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/rules", {"rule": RULE, "reason": "r" * (REASON_CHARS + 1)}, "reason"),
    ("/v1/rules/sam-children/lift", {"reason": "r" * (REASON_CHARS + 1)}, "reason"),
    ("/v1/contacts/brother/approvals", {"channel": "video", "reason": LONG_REASON}, "reason"),
    ("/v1/contacts/brother/approvals", {"channel": "v" * 1000, "reason": "r"}, "channel"),
    ("/v1/contacts/wife/approvals/phone/revoke", {"reason": "r" * (REASON_CHARS + 1)}, "reason"),
    ("/v1/rules", {"rule": RULE, "reason": "r", "at": "2" * 1000}, "at"),
    ("/v1/notices/1/acknowledge", {"by": "b" * (NAME_CHARS + 1)}, "by"),
    ("/v1/appeals", {**APPEAL, "filer": "f" * (NAME_CHARS + 1)}, "filer"),
    ("/v1/appeals", {**APPEAL, "text": "t" * (LONG_TEXT_CHARS + 1)}, "text"),
    ("/v1/appeals", {**APPEAL, "filed_by": "p" * 1000}, "filed_by"),
    ("/v1/appeals", {**APPEAL, "route": "r" * 1000}, "route"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "body", "field"), LONG_TEXT, ids=[c[2] for c in LONG_TEXT])
def test_text_past_its_cap_is_422_naming_the_field(
    client: TestClient, url: str, body: dict[str, Any], field: str
) -> None:
    before = state(client)
    problem(client.post(url, json=body), 422, field)
    assert state(client) == before


def test_the_services_cap_a_reason_for_commands_and_scenarios(db: Database) -> None:
    from kinline.changes.service import lift_rule
    from kinline.errors import InvalidInput

    at = datetime(2024, 7, 1, 15, tzinfo=UTC)
    with pytest.raises(InvalidInput) as caught:
        lift_rule(db, "usp-red-mesa", "sam-children", reason="r" * 5000, at=at, actor="t")
    assert caught.value.field == "reason"
    assert str(REASON_CHARS) in caught.value.message


# --- 4. ids past the integer range --------------------------------------------------

ID_READS = [
    "/v1/appeals/99999999999999999999",
    f"/v1/appeals/{2**31}",
    "/v1/appeals/0",
    "/v1/notices/-1",
    f"/v1/notices/{2**63}",
    f"/v1/notices/{2**31}",
    f"/v1/notices/{2**63}/pdf",
    f"/v1/notices/{2**63}/html",
    f"/v1/notices/{2**63}/deliveries",
    f"/v1/print-batches/{2**63}/pdf",
    "/v1/print-batches/-1/pdf",
    "/v1/notices/overdue?days=99999999999999999999",
    "/v1/notices/overdue?days=-1",
]


def test_ids_past_the_integer_range_are_404_or_422(client: TestClient) -> None:
    wrong = []
    for url in ID_READS:
        response = client.get(url)
        if response.status_code not in (404, 422) or response.headers["content-type"] != PROBLEM:
            wrong.append((url, response.status_code))
    writes = [
        (f"/v1/notices/{2**63}/acknowledge", {"by": "R. Salazar"}),
        (f"/v1/appeals/{2**40}/withdraw", {}),
        (f"/v1/appeals/{2**63}/escalate", {"text": "t"}),
    ]
    for key in ("notice_id", "session_id"):
        for value in (2**63, 2**40, 2**31, 0, -1, 10**30):
            appeal = {"person_id": "salazar", "filed_by": "person", "filer": "f", "text": "t"}
            writes.append(("/v1/appeals", {**appeal, key: value}))
    for url, body in writes:
        response = client.post(url, json=body)
        if response.status_code not in (404, 422) or response.headers["content-type"] != PROBLEM:
            wrong.append((url, body, response.status_code))
    assert wrong == []


# --- 1. request bodies --------------------------------------------------------------


@pytest.fixture
def small_caps(db: Database) -> Iterator[TestClient]:
    """An app whose bodies are capped at 4096 bytes, 512 without credentials."""
    app = create_app(db)
    app.user_middleware.clear()
    app.add_middleware(BodyLimit, caps=BodyCaps(signed_in=4096, anonymous=512))
    secret = staff_token(db)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.headers["Authorization"] = f"Bearer {secret}"
        yield test_client


def padded_rule(size: int) -> dict[str, Any]:
    return {"rule": {**RULE, "kind": "deny", "text": "x" * size}, "reason": "Stated."}


def test_a_body_past_the_cap_is_413_and_writes_nothing(small_caps: TestClient) -> None:
    before = state(small_caps)
    body = problem(small_caps.post("/v1/rules", json=padded_rule(5000)), 413, "body")
    assert body["code"] == "body_too_large"
    assert "4096" in body["detail"]
    assert state(small_caps) == before
    # Counted as it streams too, with no Content-Length: cut off at the cap.
    chunks = (b'{"rule": {"text": "' + b"x" * 1000 for _ in range(6))
    json_type = {"content-type": "application/json"}
    streamed = small_caps.post("/v1/rules", content=chunks, headers=json_type)
    problem(streamed, 413, "body")
    assert state(small_caps) == before
    # Under the cap the same write goes through.
    assert small_caps.post("/v1/rules", json=padded_rule(1000)).status_code == 201


def test_without_credentials_the_cap_is_small(small_caps: TestClient) -> None:
    anonymous = {"Authorization": ""}
    refused = small_caps.post("/v1/rules", json=padded_rule(600), headers=anonymous)
    body = problem(refused, 413, "body")
    assert "without credentials" in body["detail"]
    # A small body without credentials reaches the route, which asks for them.
    small = small_caps.post("/v1/rules", json={"reason": "r"}, headers=anonymous)
    problem(small, 401, None)
    # A session cookie counts as credentials: the larger cap applies.
    cookie = {"Authorization": "", "Cookie": "kinline_session=abc"}
    assert small_caps.post("/v1/rules", json=padded_rule(600), headers=cookie).status_code == 401


def read_head(sock: socket.socket, seconds: float) -> bytes:
    sock.settimeout(seconds)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def test_a_real_server_refuses_before_reading_the_body(db_url: str, db: Database) -> None:
    """A declared length past the cap is answered at once, though not a byte of the
    body was sent; a chunked body is answered 413 once it passes the cap, though
    it never ends."""
    secret = staff_token(db)
    env = {"KINLINE_MAX_BODY_BYTES": "4096", "KINLINE_MAX_ANONYMOUS_BODY_BYTES": "1024"}
    with running_server(db_url, workers=1, **env) as server:
        for auth in (f"Authorization: Bearer {secret}\r\n", ""):
            with socket.create_connection(("127.0.0.1", server.port)) as sock:
                sock.sendall(
                    b"POST /v1/rules HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + auth.encode()
                    + b"Content-Length: 100000000\r\n\r\n"
                )
                head = read_head(sock, 10)
            assert head.startswith(b"HTTP/1.1 413"), head
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(
                b"POST /v1/rules HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {secret}\r\n".encode()
                + b"Transfer-Encoding: chunked\r\n\r\n"
            )
            for _ in range(5):
                sock.sendall(b"3e8\r\n" + b"x" * 1000 + b"\r\n")
            head = read_head(sock, 10)
        assert head.startswith(b"HTTP/1.1 413"), head
        with httpx.Client(base_url=server.base_url) as http:
            fine = http.get("/v1/rules", headers={"Authorization": f"Bearer {secret}"})
        assert fine.status_code == 200


# --- 5. a database that hangs ---------------------------------------------------------


def test_a_locked_database_answers_503_within_the_bound(
    db_backend: str, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KINLINE_DB_STATEMENT_TIMEOUT_MS", "500")
    monkeypatch.setenv("KINLINE_SWEEP_SECONDS", "0")
    db = Database(db_url)
    secret = staff_token(db)
    headers = {"Authorization": f"Bearer {secret}"}
    held = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        if db_backend == "sqlite":
            connection = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
            connection.execute("BEGIN EXCLUSIVE")
            held.set()
            release.wait(30)
            connection.execute("ROLLBACK")
            connection.close()
            return
        engine = create_engine(db_url)
        with engine.connect() as connection:
            connection.execute(text("LOCK TABLE rules IN ACCESS EXCLUSIVE MODE"))
            held.set()
            release.wait(30)
            connection.rollback()
        engine.dispose()

    try:
        with TestClient(create_app(db), raise_server_exceptions=False) as client:
            # Signed in before the lock: the token's check is not what waits.
            assert client.get("/v1/facilities", headers=headers).status_code == 200
            locker = threading.Thread(target=hold_lock)
            locker.start()
            assert held.wait(10)
            started = time.monotonic()
            response = client.get("/v1/rules", headers=headers)
            took = time.monotonic() - started
            body = problem(response, 503, None)
            assert body["code"] == "service_unavailable"
            assert int(response.headers["retry-after"]) > 0
            assert took < 10, took  # generous: the bound is 0.5 s
            write = client.post(
                "/v1/rules", json={"rule": {**RULE, "kind": "deny"}, "reason": "r"}, headers=headers
            )
            problem(write, 503, None)
            release.set()
            locker.join(30)
            # Once the lock is gone the same requests answer, and the refused write left nothing.
            rules = client.get("/v1/rules", headers=headers)
            assert rules.status_code == 200, rules.text
            assert "huge" not in [rule["id"] for rule in rules.json()]
    finally:
        release.set()
        db.dispose()


def test_no_free_connection_answers_503(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KINLINE_DB_POOL_TIMEOUT_SECONDS", "0.5")
    db = Database(db_url, pool_size=1, max_overflow=0)
    secret = staff_token(db)
    try:
        with TestClient(create_app(db), raise_server_exceptions=False) as client:
            with db.engine.connect():  # the only connection, taken
                response = client.get("/v1/rules", headers={"Authorization": f"Bearer {secret}"})
            problem(response, 503, None)
            assert "retry-after" in response.headers
            again = client.get("/v1/rules", headers={"Authorization": f"Bearer {secret}"})
            assert again.status_code == 200, again.text
    finally:
        db.dispose()
