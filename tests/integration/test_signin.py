"""Signing people in: passwords, sessions, CSRF, lockout, TOTP for staff, and
password resets, through the services and over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from _databases import SUPERMAX, DbTemplate
from sqlalchemy import func, select

from kinline.api import create_app
from kinline.db.engine import Database
from kinline.db.tables import AuditEventRow
from kinline.errors import InvalidInput, Unauthenticated
from kinline.identity import signin
from kinline.identity.model import Binding, Kind, Role
from kinline.identity.service import add_subject

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

FACILITY = "usp-red-mesa"
PASSWORD = "a long enough passphrase"
NEW_PASSWORD = "another long passphrase"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def db_template() -> DbTemplate:
    return SUPERMAX


@dataclass(frozen=True)
class People:
    person: int
    staff: int
    staff_totp: str


@pytest.fixture
def people(db: Database) -> People:
    person = add_subject(
        db,
        "R. Salazar",
        Kind.PERSON,
        at=T0,
        actor="test",
        bindings=(Binding(FACILITY, person_id="salazar"),),
        login="rsalazar",
        email="rsalazar@example.org",
    )
    staff = add_subject(
        db,
        "Officer Reyes",
        Kind.STAFF,
        at=T0,
        actor="test",
        bindings=(Binding(FACILITY, role=Role.RECORDS),),
        login="reyes",
    )
    signin.set_password(db, person.id, PASSWORD, at=T0, actor="test")
    signin.set_password(db, staff.id, PASSWORD, at=T0, actor="test")
    enrolled = signin.enroll_totp(db, staff.id, at=T0, actor="test")
    return People(person.id, staff.id, enrolled.secret)


@pytest.fixture
def client(db: Database, people: People, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("KINLINE_INSECURE_COOKIES", "1")
    with TestClient(create_app(db), raise_server_exceptions=False) as test_client:
        yield test_client


def events(db: Database, tag: str) -> int:
    with db.transaction() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(AuditEventRow).where(AuditEventRow.tag == tag)
            )
            or 0
        )


# --- over HTTP ------------------------------------------------------------------


def test_sign_in_with_a_form_reads_me_and_notices(client: TestClient, people: People) -> None:
    response = client.post("/v1/auth/sign-in", data={"login": "rsalazar", "password": PASSWORD})
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"]
    assert "kinline_session=" in cookie
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    csrf = response.json()["csrf_token"]
    me = client.get("/v1/auth/me")
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["id"] == people.person
    assert body["kind"] == "person"
    assert body["bindings"] == [
        {
            "facility_id": FACILITY,
            "person_id": "salazar",
            "role": None,
            "contact_id": None,
            "case_number": None,
            "job": None,
        }
    ]
    assert body["csrf_token"] == csrf
    notices = client.get("/v1/notices", params={"person_id": "salazar"})
    assert notices.status_code == 200, notices.text
    assert notices.json(), "the scenario leaves the person notices"


def test_secure_cookie_unless_told_otherwise(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KINLINE_INSECURE_COOKIES")
    response = client.post("/v1/auth/sign-in", json={"login": "rsalazar", "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert "Secure" in response.headers["set-cookie"]


def test_wrong_password_is_401_and_audited(client: TestClient, db: Database) -> None:
    before = events(db, "identity:signin:failed")
    response = client.post(
        "/v1/auth/sign-in", json={"login": "rsalazar", "password": "wrong password!"}
    )
    assert response.status_code == 401
    assert "kinline_session" not in response.headers.get("set-cookie", "")
    assert events(db, "identity:signin:failed") == before + 1
    assert client.get("/v1/auth/me").status_code == 401


def test_a_body_that_is_no_form_is_refused_naming_the_body(client: TestClient) -> None:
    json_kind = {"content-type": "application/json"}
    for content in ("[" * 5_000 + "]" * 5_000, "{not json", "[1, 2]"):
        refused = client.post("/v1/auth/sign-in", content=content, headers=json_kind)
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "body"


def test_unknown_login_is_the_same_401(client: TestClient, db: Database) -> None:
    wrong = client.post("/v1/auth/sign-in", json={"login": "nobody", "password": PASSWORD})
    assert wrong.status_code == 401
    known = client.post("/v1/auth/sign-in", json={"login": "rsalazar", "password": "x" * 13})
    assert wrong.json()["detail"] == known.json()["detail"]


def test_csrf_is_required_for_a_post_with_the_session(client: TestClient) -> None:
    signed = client.post("/v1/auth/sign-in", json={"login": "rsalazar", "password": PASSWORD})
    csrf = signed.json()["csrf_token"]
    body = {"by": "R. Salazar"}
    refused = client.post("/v1/notices/1/acknowledge", json=body)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "forbidden"
    wrong = client.post("/v1/notices/1/acknowledge", json=body, headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    passed = client.post("/v1/notices/1/acknowledge", json=body, headers={"X-CSRF-Token": csrf})
    assert passed.status_code == 200, passed.text
    # A plain form may carry the token as a field instead.
    out = client.post("/v1/auth/sign-out", data={"csrf_token": csrf})
    assert out.status_code == 204, out.text
    assert client.get("/v1/auth/me").status_code == 401


def test_staff_need_a_totp_code(client: TestClient, people: People, db: Database) -> None:
    without = client.post("/v1/auth/sign-in", json={"login": "reyes", "password": PASSWORD})
    assert without.status_code == 401
    assert events(db, "identity:signin:failed") >= 1
    code = pyotp.TOTP(people.staff_totp).now()
    response = client.post(
        "/v1/auth/sign-in", json={"login": "reyes", "password": PASSWORD, "totp": code}
    )
    assert response.status_code == 200, response.text
    me = client.get("/v1/auth/me").json()
    assert me["kind"] == "staff"
    assert me["second_factor"] is True


def test_totp_enrolment_over_http(client: TestClient, db: Database) -> None:
    csrf = client.post("/v1/auth/sign-in", json={"login": "rsalazar", "password": PASSWORD}).json()[
        "csrf_token"
    ]
    assert client.post("/v1/auth/totp").status_code == 403
    response = client.post("/v1/auth/totp", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200, response.text
    assert response.json()["uri"].startswith("otpauth://totp/")
    assert events(db, "identity:totp:enrolled") == 2  # the staff member's and this


def test_a_bearer_token_needs_no_csrf(client: TestClient, db: Database, people: People) -> None:
    token = signin_token(db, people.person)
    response = client.post(
        "/v1/notices/1/acknowledge",
        json={"by": "R. Salazar"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text


def signin_token(db: Database, subject_id: int) -> str:
    from kinline.identity.service import issue_token

    return issue_token(db, subject_id, facility_id=FACILITY, at=datetime.now(UTC), actor="test")[1]


# --- the services, with the time passed in ---------------------------------------


def test_lockout_refuses_the_right_password_and_grows(db: Database, people: People) -> None:
    for n in range(4):
        with pytest.raises(Unauthenticated) as failed:
            signin.sign_in(db, "rsalazar", "not the password", None, at=T0 + timedelta(seconds=n))
        assert not isinstance(failed.value, signin.SignInLocked)
    with pytest.raises(signin.SignInLocked) as locked:
        signin.sign_in(db, "rsalazar", "not the password", None, at=T0 + timedelta(seconds=4))
    assert locked.value.retry_after == 60
    assert events(db, "identity:signin:locked") == 1
    with pytest.raises(signin.SignInLocked) as still:
        signin.sign_in(db, "rsalazar", PASSWORD, None, at=T0 + timedelta(seconds=30))
    assert 0 < still.value.retry_after <= 34
    # After the lock, one more failure locks for twice as long.
    after = T0 + timedelta(minutes=2)
    with pytest.raises(signin.SignInLocked) as longer:
        signin.sign_in(db, "rsalazar", "not the password", None, at=after)
    assert longer.value.retry_after == 120
    made = signin.sign_in(db, "rsalazar", PASSWORD, None, at=after + timedelta(minutes=3))
    assert signin.session_subject(db, made.secret, at=after + timedelta(minutes=3)) is not None


def test_session_idle_and_absolute_expiry(db: Database, people: People) -> None:
    made = signin.sign_in(db, "rsalazar", PASSWORD, None, at=T0)
    seen = T0 + timedelta(minutes=29)
    subject = signin.session_subject(db, made.secret, at=seen)
    assert subject is not None
    assert subject.id == people.person
    # Kept alive by use; idle 30 minutes after the last use, it is over.
    assert signin.session_subject(db, made.secret, at=seen + timedelta(minutes=29)) is not None
    later = seen + timedelta(minutes=29) + timedelta(minutes=30)
    assert signin.session_subject(db, made.secret, at=later) is None
    busy = signin.sign_in(db, "rsalazar", PASSWORD, None, at=T0)
    at = T0
    while at < T0 + timedelta(hours=12) - timedelta(minutes=20):
        at += timedelta(minutes=20)
        assert signin.session_subject(db, busy.secret, at=at) is not None
    assert signin.session_subject(db, busy.secret, at=T0 + timedelta(hours=12)) is None


def test_idle_limit_from_the_environment(
    db: Database, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KINLINE_SESSION_IDLE_MINUTES", "5")
    made = signin.sign_in(db, "rsalazar", PASSWORD, None, at=T0)
    assert signin.session_subject(db, made.secret, at=T0 + timedelta(minutes=4)) is not None
    assert signin.session_subject(db, made.secret, at=T0 + timedelta(minutes=10)) is None


def test_every_sign_in_is_a_new_session_and_sign_out_ends_it(db: Database, people: People) -> None:
    first = signin.sign_in(db, "rsalazar", PASSWORD, None, at=T0)
    second = signin.sign_in(db, "rsalazar", PASSWORD, None, at=T0 + timedelta(minutes=1))
    assert first.secret != second.secret
    assert first.csrf_token != second.csrf_token
    assert signin.sign_out(db, first.secret, at=T0 + timedelta(minutes=2))
    assert not signin.sign_out(db, first.secret, at=T0 + timedelta(minutes=2))
    assert signin.session_subject(db, first.secret, at=T0 + timedelta(minutes=2)) is None
    assert signin.session_subject(db, second.secret, at=T0 + timedelta(minutes=2)) is not None
    assert events(db, "identity:session:ended") == 1
    assert events(db, "identity:signin:succeeded") == 2


def test_staff_with_a_wrong_code_are_refused(db: Database, people: People) -> None:
    with pytest.raises(Unauthenticated, match="authenticator"):
        signin.sign_in(db, "reyes", PASSWORD, "000000", at=T0)
    code = pyotp.TOTP(people.staff_totp).at(T0)
    made = signin.sign_in(db, "reyes", PASSWORD, code, at=T0)
    subject = signin.session_subject(db, made.secret, at=T0)
    assert subject is not None
    assert subject.second_factor


def test_password_policy_is_enforced(db: Database, people: People) -> None:
    with pytest.raises(InvalidInput, match="at least 12"):
        signin.set_password(db, people.person, "short", at=T0, actor="test")
    signin.sign_in(db, "rsalazar", PASSWORD, None, at=T0)  # the old one still holds


def test_a_reset_token_works_once_before_it_expires(db: Database, people: People) -> None:
    # The token as the reset email would carry it (the email itself: not yet queued).
    session_before = signin.sign_in(db, "rsalazar", PASSWORD, None, at=T0)
    with db.transaction() as session:
        issued = signin.issue_password_reset(session, "rsalazar@example.org", at=T0)
        stale = signin.issue_password_reset(session, "rsalazar", at=T0 - timedelta(hours=1))
        assert signin.issue_password_reset(session, "nobody", at=T0) is None
    assert issued is not None
    assert stale is not None
    with pytest.raises(InvalidInput, match="expired"):
        signin.reset_password(db, stale.token, NEW_PASSWORD, at=T0)
    signin.reset_password(db, issued.token, NEW_PASSWORD, at=T0 + timedelta(minutes=1))
    with pytest.raises(InvalidInput, match="was used"):
        signin.reset_password(db, issued.token, "yet another passphrase", at=T0)
    assert signin.session_subject(db, session_before.secret, at=T0 + timedelta(minutes=2)) is None
    with pytest.raises(Unauthenticated):
        signin.sign_in(db, "rsalazar", PASSWORD, None, at=T0 + timedelta(minutes=2))
    signin.sign_in(db, "rsalazar", NEW_PASSWORD, None, at=T0 + timedelta(minutes=2))
    assert events(db, "identity:password:reset") == 1
    assert events(db, "identity:reset:requested") == 3
