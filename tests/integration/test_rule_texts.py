"""A rule's text per language: imposed through the API as ``{en, es}``, read back
as ``texts`` beside ``text`` (the English one), and shown on the staff console
in the reader's language, on SQLite and PostgreSQL."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

import pyotp
import pytest
from _databases import SUPERMAX, DbTemplate
from _identity import token_for

from kinline.api import create_app
from kinline.db.engine import Database
from kinline.identity.model import Binding, Kind, Role
from kinline.identity.service import add_subject
from kinline.identity.signin import enroll_totp, set_password, sign_in
from kinline.policy.service import get_rule

with warnings.catch_warnings():
    # starlette would rather use httpx2, which is not a dependency.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

F = "usp-red-mesa"
EN = "Calls with the brother suspended during the review."
ES = "Llamadas con el hermano suspendidas durante la revisión."
RULE = {
    "id": "no-brother",
    "authority": "sanction",
    "kind": "deny",
    "channel": "phone",
    "person": "salazar",
    "contacts": {"ids": ["brother"]},
    "text": {"en": EN, "es": ES},
}


@pytest.fixture
def db_template() -> DbTemplate:
    return SUPERMAX


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db), raise_server_exceptions=False) as made:
        yield made


def _staff_session(db: Database) -> tuple[str, str]:
    """A signed-in security officer's session (the console's pages) and its CSRF token."""
    now = datetime.now(UTC)
    subject = add_subject(
        db, "Officer", Kind.STAFF, at=now, actor="test",
        bindings=(Binding(F, role=Role.SECURITY),), login="officer",
    )  # fmt: skip
    set_password(db, subject.id, "a long pass phrase 42", at=now, actor="test")
    code = pyotp.TOTP(enroll_totp(db, subject.id, at=now, actor="test").secret).now()
    made = sign_in(db, "officer", "a long pass phrase 42", code, at=now)
    return made.secret, made.csrf_token


def test_a_rule_imposed_in_two_languages_reads_back_in_each(
    db: Database, client: TestClient
) -> None:
    token = token_for(db, "security", Kind.STAFF, Binding(F, role=Role.SECURITY))
    auth = {"Authorization": f"Bearer {token}"}
    made = client.post("/v1/rules", json={"rule": RULE, "reason": "Review."}, headers=auth)
    assert made.status_code == 201, made.text
    assert made.json()["text"] == EN
    assert made.json()["texts"] == {"en": EN, "es": ES}

    listed = client.get("/v1/rules", params={"person_id": "salazar"}, headers=auth)
    assert listed.status_code == 200
    rules = {rule["id"]: rule for rule in listed.json()}
    assert rules["no-brother"]["texts"] == {"en": EN, "es": ES}
    assert rules["no-brother"]["definition"]["text"] == {"en": EN, "es": ES}
    # A rule written in one text has no texts per language.
    assert rules["sam-children"]["texts"] == {}
    assert rules["sam-children"]["text"] == "Calls with children suspended pending review."

    session, _csrf = _staff_session(db)
    page = "/staff/usp-red-mesa/people/salazar"
    client.cookies.set("kinline_session", session)
    client.cookies.set("lang", "es")
    spanish = client.get(page)
    assert spanish.status_code == 200, spanish.text
    rules_in_force = _section(spanish.text, "rules")
    assert ES in rules_in_force and EN not in rules_in_force
    assert "Reglas en vigor" in spanish.text
    client.cookies.set("lang", "en")
    english = client.get(page)
    rules_in_force = _section(english.text, "rules")
    assert EN in rules_in_force and ES not in rules_in_force


def test_the_impose_form_writes_the_text_in_each_language(db: Database, client: TestClient) -> None:
    session, csrf = _staff_session(db)
    client.cookies.set("kinline_session", session)
    form = {
        "csrf_token": csrf, "person_id": "salazar", "rule_id": "no-brother",
        "authority": "sanction", "kind": "deny", "channel": "phone", "contacts": "brother",
        "text_en": EN, "text_es": ES, "reason": "Review.",
    }  # fmt: skip
    preview = client.post("/staff/usp-red-mesa/rules/preview", data=form)
    assert preview.status_code == 200, preview.text
    assert "J. Salazar" in _section(preview.text, "affected")
    saved = client.post("/staff/usp-red-mesa/rules", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == "/staff/usp-red-mesa/people/salazar"
    token = token_for(db, "reader", Kind.STAFF, Binding(F, role=Role.OBSERVER))
    rules = client.get(
        "/v1/rules", params={"person_id": "salazar"}, headers={"Authorization": f"Bearer {token}"}
    ).json()
    [rule] = [r for r in rules if r["id"] == "no-brother"]
    assert rule["texts"] == {"en": EN, "es": ES}
    assert rule["contacts"] == {"ids": ["brother"]}
    # English alone is one text.
    english = {**form, "rule_id": "no-brother-2", "text_es": ""}
    assert client.post("/staff/usp-red-mesa/rules", data=english).status_code == 200
    assert get_rule(db, F, "no-brother-2").texts == {}
    assert get_rule(db, F, "no-brother-2").text == EN


def _section(page: str, heading: str) -> str:
    """The page from the heading with that id to the next heading."""
    start = page.index(f'<h2 id="{heading}">')
    return page[start : page.index("<h2", start + 1)]


def test_a_text_in_a_language_that_is_not_a_code_is_refused(
    db: Database, client: TestClient
) -> None:
    token = token_for(db, "security", Kind.STAFF, Binding(F, role=Role.SECURITY))
    bad = {**RULE, "text": {"en": EN, "Spanish": ES}}
    answer = client.post(
        "/v1/rules",
        json={"rule": bad, "reason": "Review."},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 422
    assert answer.json()["field"] == "rule.text"
