"""Password resets by a one-time, expiring link sent through the notices outbox:
the request (service, HTTP, CLI), the email really sent over SMTP without a
PDF, completing it once before it expires, and a log that never holds the
token; on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import json
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from _databases import SUPERMAX, DbTemplate
from _server import free_port
from aiosmtpd.controller import Controller
from sqlalchemy import select
from typer.testing import CliRunner

from kinline.api import create_app
from kinline.audit.service import verify_log
from kinline.changes.password_reset import request_password_reset
from kinline.cli import app as cli_app
from kinline.db.engine import Database
from kinline.db.tables import AuditEventRow, DeliveryAttemptRow, NoticeDeliveryRow
from kinline.errors import InvalidInput, Unauthenticated
from kinline.identity import signin
from kinline.identity.model import Binding, Kind, Role
from kinline.identity.service import add_subject
from kinline.notices.delivery.service import deliver_due_emails, make_print_batches
from kinline.notices.delivery.smtp import Mailer, SmtpSettings, smtp_mailer

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

FACILITY = "usp-red-mesa"
PASSWORD = "a long enough passphrase"
NEW_PASSWORD = "another long passphrase"
BASE = "https://kinline.example/"
SENDER = "kinline@red-mesa.example"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LINK = re.compile(r"https://kinline\.example/reset\?token=([A-Za-z0-9_-]+)")
runner = CliRunner()


@pytest.fixture
def db_template() -> DbTemplate:
    return SUPERMAX


@dataclass(frozen=True)
class People:
    person: int
    staff: int


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
        language="es",
    )
    staff = add_subject(
        db,
        "Officer Reyes",
        Kind.STAFF,
        at=T0,
        actor="test",
        bindings=(Binding(FACILITY, role=Role.RECORDS),),
        login="reyes",
        email="reyes@red-mesa.example",
    )
    add_subject(db, "No Mail", Kind.STAFF, at=T0, actor="test", login="nomail")
    signin.set_password(db, person.id, PASSWORD, at=T0, actor="test")
    signin.set_password(db, staff.id, PASSWORD, at=T0, actor="test")
    return People(person.id, staff.id)


@pytest.fixture
def client(db: Database, people: People, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("KINLINE_INSECURE_COOKIES", "1")
    monkeypatch.setenv("KINLINE_PUBLIC_URL", BASE)
    with TestClient(create_app(db), raise_server_exceptions=False) as test_client:
        yield test_client


def outbox(db: Database) -> list[NoticeDeliveryRow]:
    with db.transaction() as session:
        rows = list(
            session.scalars(
                select(NoticeDeliveryRow)
                .where(NoticeDeliveryRow.notice_id.is_(None))
                .order_by(NoticeDeliveryRow.id)
            )
        )
        session.expunge_all()
        return rows


def token_in(body: str) -> str:
    found = LINK.search(body)
    assert found is not None, body
    return found.group(1)


def audit_text(db: Database) -> str:
    with db.transaction() as session:
        return "\n".join(
            f"{row.tag} {json.dumps(row.payload, default=str)}"
            for row in session.scalars(select(AuditEventRow).order_by(AuditEventRow.id))
        )


def tags(db: Database) -> list[str]:
    with db.transaction() as session:
        return list(session.scalars(select(AuditEventRow.tag).order_by(AuditEventRow.id)))


# --- the use case -----------------------------------------------------------------


def test_a_request_queues_a_link_that_resets_the_password_once(
    db: Database, people: People
) -> None:
    assert request_password_reset(db, "rsalazar", at=T0, base_url=BASE) is True
    [row] = outbox(db)
    assert (row.channel, row.recipient, row.status) == ("email", "rsalazar@example.org", "pending")
    assert row.facility_id == FACILITY  # the subject's first bound facility
    assert row.next_attempt_at == T0
    assert row.message_subject == "Restablezca su contraseña de kinline"  # in Spanish
    assert row.message_body is not None
    assert "30 minutos" in row.message_body
    assert "2 de marzo de 2026" in row.message_body  # when it expires
    token = token_in(row.message_body)

    before = signin.sign_in(db, "rsalazar", PASSWORD, None, at=T0)
    signin.reset_password(db, token, NEW_PASSWORD, at=T0 + timedelta(minutes=5))
    later = T0 + timedelta(minutes=6)
    assert signin.session_subject(db, before.secret, at=later) is None
    with pytest.raises(Unauthenticated):
        signin.sign_in(db, "rsalazar", PASSWORD, None, at=later)
    assert signin.sign_in(db, "rsalazar", NEW_PASSWORD, None, at=later).subject_id == people.person
    with pytest.raises(InvalidInput) as second:
        signin.reset_password(db, token, "yet another passphrase", at=later)
    assert second.value.field == "token"
    assert token not in audit_text(db)
    assert "delivery:message:queued" in tags(db)
    verify_log(db)


def test_an_expired_link_is_refused(db: Database, people: People) -> None:
    request_password_reset(db, "reyes@red-mesa.example", at=T0, base_url=BASE)
    request_password_reset(db, "rsalazar@example.org", at=T0, base_url=BASE)
    staff, person = outbox(db)
    assert staff.message_subject == "Reset your kinline password"  # English
    assert staff.message_body is not None
    assert "30 minutes" in staff.message_body
    assert person.message_body is not None
    token = token_in(person.message_body)
    with pytest.raises(InvalidInput, match="expired") as refused:
        signin.reset_password(db, token, NEW_PASSWORD, at=T0 + timedelta(minutes=30))
    assert refused.value.field == "token"
    # The old password still holds, and nothing was reset.
    signin.sign_in(db, "rsalazar", PASSWORD, None, at=T0 + timedelta(minutes=31))
    assert "identity:password:reset" not in tags(db)


def test_no_account_no_email_or_disabled_queues_nothing(db: Database, people: People) -> None:
    assert request_password_reset(db, "nobody", at=T0, base_url=BASE) is False
    assert request_password_reset(db, "nomail", at=T0, base_url=BASE) is False  # no email
    assert request_password_reset(db, "   ", at=T0, base_url=BASE) is False
    assert outbox(db) == []
    assert tags(db).count("identity:reset:requested") == 3


def test_a_subject_bound_nowhere_queues_on_the_star_facility(db: Database, people: People) -> None:
    add_subject(
        db, "Free Agent", Kind.STAFF, at=T0, actor="test", login="free", email="f@x.example"
    )
    request_password_reset(db, "free", at=T0, base_url=BASE)
    [row] = outbox(db)
    assert row.facility_id == "*"


# --- over HTTP ----------------------------------------------------------------------


def test_the_request_answers_202_alike_whether_or_not_the_account_exists(
    client: TestClient, db: Database
) -> None:
    known = client.post("/v1/auth/password-reset", data={"login": "rsalazar"})
    unknown = client.post("/v1/auth/password-reset", json={"login": "nobody"})
    assert known.status_code == unknown.status_code == 202, (known.text, unknown.text)
    assert known.json() == unknown.json()
    assert known.json()["status"] == "accepted"
    [row] = outbox(db)
    assert row.recipient == "rsalazar@example.org"
    assert row.message_body is not None
    assert "https://kinline.example/reset?token=" in row.message_body
    missing = client.post("/v1/auth/password-reset", json={})
    assert missing.status_code == 422
    assert missing.json()["field"] == "login"


def test_completing_over_http(client: TestClient, db: Database) -> None:
    client.post("/v1/auth/password-reset", json={"login": "rsalazar"})
    [row] = outbox(db)
    assert row.message_body is not None
    token = token_in(row.message_body)
    weak = client.post(
        "/v1/auth/password-reset/complete", json={"token": token, "password": "short"}
    )
    assert weak.status_code == 422
    assert weak.headers["content-type"] == "application/problem+json"
    assert weak.json()["field"] == "password"
    done = client.post(
        "/v1/auth/password-reset/complete", data={"token": token, "password": NEW_PASSWORD}
    )
    assert done.status_code == 204, done.text
    again = client.post(
        "/v1/auth/password-reset/complete", json={"token": token, "password": NEW_PASSWORD}
    )
    assert again.status_code == 422
    assert again.json()["field"] == "token"
    bogus = client.post(
        "/v1/auth/password-reset/complete", json={"token": "nope", "password": NEW_PASSWORD}
    )
    assert bogus.status_code == 422
    assert bogus.json()["field"] == "token"
    old = client.post("/v1/auth/sign-in", data={"login": "rsalazar", "password": PASSWORD})
    assert old.status_code == 401
    new = client.post("/v1/auth/sign-in", data={"login": "rsalazar", "password": NEW_PASSWORD})
    assert new.status_code == 200, new.text
    assert token not in audit_text(db)


# --- the CLI --------------------------------------------------------------------------


def test_staff_queue_a_reset_from_the_cli(db: Database, people: People) -> None:
    env = {"KINLINE_DATABASE_URL": db.url, "KINLINE_PUBLIC_URL": BASE}
    done = runner.invoke(cli_app, ["subject", "reset", "reyes"], env=env)
    assert done.exit_code == 0, done.output
    [row] = outbox(db)
    assert row.recipient == "reyes@red-mesa.example"
    assert row.message_body is not None
    token_in(row.message_body)
    with db.transaction() as session:
        queued = session.scalars(
            select(AuditEventRow).where(AuditEventRow.tag == "delivery:message:queued")
        ).one()
        assert queued.actor == "kinline:cli"
    unknown = runner.invoke(cli_app, ["subject", "reset", "nobody"], env=env)
    assert unknown.exit_code != 0
    assert "nobody" in unknown.output
    no_base = runner.invoke(
        cli_app, ["subject", "reset", "reyes"], env={"KINLINE_DATABASE_URL": db.url}
    )
    assert no_base.exit_code != 0
    assert len(outbox(db)) == 1


# --- the worker sends it ----------------------------------------------------------------


class Inbox:
    """aiosmtpd's handler: keeps every message it accepts, refuses some recipients."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: dict[str, str] = {}
        self._lock = threading.Lock()

    async def handle_RCPT(  # noqa: N802
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, Any]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings = SmtpSettings(host="127.0.0.1", port=port, sender=SENDER, timeout=5)

    @contextmanager
    def connect() -> Iterator[Mailer]:
        with smtp_mailer(settings) as mailer:
            yield mailer

    yield inbox, connect
    controller.stop()


def test_the_worker_emails_the_link_without_a_pdf(
    db: Database, people: People, smtp: tuple[Inbox, Any]
) -> None:
    inbox, mailer = smtp
    request_password_reset(db, "rsalazar", at=T0, base_url=BASE)
    run = deliver_due_emails(db, mailer, now=T0, sender=SENDER)
    assert (run.sent, run.failed) == (1, 0)
    [message] = inbox.messages
    assert message["To"] == "rsalazar@example.org"
    assert message["Subject"] == "Restablezca su contraseña de kinline"
    assert not message.is_multipart()
    assert list(message.iter_attachments()) == []
    assert message.get_content_type() == "text/plain"
    token = token_in(message.get_content())
    [row] = outbox(db)
    assert row.status == "sent"
    assert row.message_id == str(message["Message-ID"])
    assert row.message_id.startswith(f"<message.delivery-{row.id}@")
    with db.transaction() as session:
        attempts = list(
            session.scalars(
                select(DeliveryAttemptRow.outcome).where(DeliveryAttemptRow.delivery_id == row.id)
            )
        )
    assert attempts == ["sent"]
    assert "delivery:message:sent" in tags(db)
    audited = audit_text(db)
    assert token not in audited
    assert "reset?token" not in audited
    # Paper is for notices: a batch never takes the message in.
    make_print_batches(db, at=T0 + timedelta(days=1))
    [row] = outbox(db)
    assert (row.channel, row.batch_id, row.attempts) == ("email", None, 1)
    # The link in the email really resets the password.
    signin.reset_password(db, token, NEW_PASSWORD, at=T0 + timedelta(minutes=1))
    signin.sign_in(db, "rsalazar", NEW_PASSWORD, None, at=T0 + timedelta(minutes=2))
    assert deliver_due_emails(db, mailer, now=T0 + timedelta(hours=1), sender=SENDER).claimed == 0
    verify_log(db)


def test_a_reset_email_retries_and_fails_like_a_notice(
    db: Database, people: People, smtp: tuple[Inbox, Any]
) -> None:
    inbox, mailer = smtp
    inbox.refuse["rsalazar@example.org"] = "450 mailbox busy"
    request_password_reset(db, "rsalazar", at=T0, base_url=BASE)
    first = deliver_due_emails(db, mailer, now=T0, sender=SENDER, jitter=lambda: 0.0)
    assert (first.sent, first.retrying, first.failed) == (0, 1, 0)
    [row] = outbox(db)
    assert row.status == "pending"
    assert row.next_attempt_at == T0 + timedelta(seconds=15)  # half of 30 s, no jitter
    inbox.refuse["rsalazar@example.org"] = "550 no such user"
    later = T0 + timedelta(minutes=1)
    second = deliver_due_emails(db, mailer, now=later, sender=SENDER, jitter=lambda: 0.0)
    assert second.failed == 1
    [row] = outbox(db)
    assert (row.status, row.attempts) == ("failed", 2)
    with db.transaction() as session:
        outcomes = list(
            session.scalars(
                select(DeliveryAttemptRow.outcome)
                .where(DeliveryAttemptRow.delivery_id == row.id)
                .order_by(DeliveryAttemptRow.id)
            )
        )
    assert outcomes == ["error", "error"]
    assert inbox.messages == []
    assert "delivery:message:failed" in tags(db)
    assert row.message_body is not None
    assert token_in(row.message_body) not in audit_text(db)
    verify_log(db)
