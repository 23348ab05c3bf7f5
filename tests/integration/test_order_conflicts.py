"""Conflicts with a court order, made loud: every rule in force the order
outranks and every rule overriding one of its grants, with who, when, why and
on what authority; imposing an override needs the authority relied on, and
tells the court and counsel of record by email (outbox rows, then a real SMTP
server), besides the person's notice."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from _databases import DbTemplate, scenario_template
from _identity import token_for
from sqlalchemy import func, select
from test_delivery import SENDER, SmtpServer
from typer.testing import CliRunner

import kinline.demo
from kinline.api import create_app
from kinline.changes.service import impose_rule
from kinline.cli import app
from kinline.courts.orders import order_conflicts
from kinline.db.engine import Database
from kinline.db.tables import AuditEventRow, NoticeDeliveryRow, NoticeRow, RuleCitationRow, RuleRow
from kinline.demo.orders import load_order
from kinline.errors import InvalidInput
from kinline.identity import repository as identity_repository
from kinline.identity.model import Binding, Kind, Role
from kinline.notices.delivery.service import deliver_due_emails

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

F = "usp-red-mesa"
T = datetime(2024, 6, 3, 16, 0, tzinfo=UTC)  # 10:00 in Denver
CITED = "28 CFR 540.100(a)"
COURT, COUNSEL = "cv17-chambers@cod.uscourts.example", "druiz@ruizlaw.example"
runner = CliRunner()
DEMO = scenario_template(Path(kinline.demo.__file__).parent / "supermax-family-contact.yaml")


def build(db: Database) -> None:
    DEMO.build(db)
    load_order(db, F, at=datetime(2024, 6, 1, tzinfo=UTC))


ORDERED = DbTemplate("court_orders_supermax", build)


@pytest.fixture
def db_template() -> DbTemplate:
    return ORDERED


@pytest.fixture(autouse=True)
def forget_bindings() -> None:
    """Each test's database numbers its subjects from 1 again, and a token's
    bindings are remembered per process by (subject id, version): forget them,
    or a caller here would be read with another test's bindings."""
    identity_repository._BINDINGS.clear()


def suspend(rule_id: str = "sam-daughter-a", **changes: Any) -> dict[str, Any]:
    """A security measure over the order's calls with one daughter."""
    rule: dict[str, Any] = {
        "id": rule_id,
        "authority": "security_measure",
        "kind": "deny",
        "channel": "phone",
        "person": "salazar",
        "contacts": {"ids": ["daughter-a"]},
        "overrides": ["order-17"],
        "text": "Calls with A. Salazar suspended.",
    }
    rule.update(changes)
    return rule


def count(db: Database, table: Any, *where: Any) -> int:
    with db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def messages(db: Database) -> list[NoticeDeliveryRow]:
    """The outbox's emails of their own (not notices), in order."""
    with db.transaction() as session:
        return list(
            session.scalars(
                select(NoticeDeliveryRow)
                .where(NoticeDeliveryRow.notice_id.is_(None))
                .order_by(NoticeDeliveryRow.id)
            )
        )


# --- what conflicts with an order -----------------------------------------------


def test_the_order_lists_what_it_outranks_and_what_overrides_it(db: Database) -> None:
    found = order_conflicts(db, F, "cv-17", T)
    relations = {c.rule: c.relation for c in found}
    # The demo's security measures and policy limits rank below the order; the
    # measure that names it in ``overrides`` prevails over it. The deny that
    # spares the daughters and the monitoring requirement do not conflict.
    assert relations == {
        "policy-gap": "outranked",
        "policy-hours": "outranked",
        "sam-one-call": "outranked",
        "sam-children": "overrides",
    }
    children = next(c for c in found if c.rule == "sam-children")
    assert children.order_rule == "order-17"
    assert children.imposed_by == "scenario"
    assert children.imposed_at == datetime(2024, 5, 1, 14, 0, tzinfo=UTC)  # 08:00 in Denver
    assert children.authority_cited is None
    # Before the suspension, nothing overrode the order.
    earlier = order_conflicts(db, F, "cv-17", datetime(2024, 4, 1, tzinfo=UTC))
    assert "sam-children" not in {c.rule for c in earlier}


def test_an_override_without_the_authority_relied_on_is_refused_whole(db: Database) -> None:
    rules, notices = count(db, RuleRow), count(db, NoticeRow)
    for cited in (None, "   "):
        with pytest.raises(InvalidInput) as refused:
            impose_rule(
                db, F, suspend(), at=T, actor="warden:1", reason="Review.", authority_cited=cited
            )
        assert refused.value.field == "authority_cited"
        assert "order-17" in refused.value.message
    # Outranking the grant counts as overriding it: a deny of the same rank.
    no_names = suspend(authority="court_order", overrides=[], case_number="CV-99")
    with pytest.raises(InvalidInput) as refused:
        impose_rule(db, F, no_names, at=T, actor="warden:1", reason="Review.")
    assert refused.value.field == "authority_cited"
    assert (count(db, RuleRow), count(db, NoticeRow)) == (rules, notices)
    assert messages(db) == []


def test_an_override_is_cited_and_told_to_the_court_counsel_and_person(db: Database) -> None:
    notices = count(db, NoticeRow)
    impose_rule(
        db, F, suspend(), at=T, actor="staff:7:W. Warden", reason="Threat assessment.",
        authority_cited=CITED,
    )  # fmt: skip
    assert count(db, NoticeRow) == notices + 1  # the person's notice, as for every rule
    sent = messages(db)
    assert [m.recipient for m in sent] == [COURT, COUNSEL]
    for message in sent:
        assert message.channel == "email"
        assert message.status == "pending"
        assert message.message_subject is not None
        assert "CV-17" in message.message_subject
        body = message.message_body or ""
        for words in (
            "Case number: CV-17",
            "sam-daughter-a",
            "Calls with A. Salazar suspended.",
            "Imposed by: staff:7:W. Warden",
            "Reason: Threat assessment.",
            f"Authority cited: {CITED}",
            "order-17",
        ):
            assert words in body, (words, body)
    assert count(db, RuleCitationRow) == 1
    assert count(db, AuditEventRow, AuditEventRow.tag == "courts:order:overridden") == 1
    conflict = next(c for c in order_conflicts(db, F, "cv-17", T) if c.rule == "sam-daughter-a")
    assert conflict.relation == "overrides"
    assert (conflict.authority_cited, conflict.reason) == (CITED, "Threat assessment.")
    assert conflict.imposed_by == "staff:7:W. Warden"


def test_a_rule_that_does_not_reach_the_order_needs_no_citation(db: Database) -> None:
    # The brother is not among the order's contacts; video is not its channel; a
    # suspension that ended before the order's grant began never met it.
    impose_rule(db, F, suspend("sam-brother", contacts={"ids": ["brother"]}), at=T, actor="w")
    impose_rule(db, F, suspend("sam-video", channel="video"), at=T, actor="w")
    ended = suspend("sam-2022", **{"from": "2022-01-01", "until": "2022-02-01"})
    impose_rule(db, F, ended, at=datetime(2021, 12, 1, tzinfo=UTC), actor="w")
    assert messages(db) == []
    assert count(db, RuleCitationRow) == 0


# --- through the API, and on to a real SMTP server ---------------------------------


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


def test_the_api_asks_for_the_authority_and_the_mail_reaches_the_court(
    db: Database, smtp: SmtpServer
) -> None:
    warden = {
        "Authorization": "Bearer "
        + token_for(db, "warden", Kind.STAFF, Binding(F, role=Role.WARDEN))
    }
    body = {"rule": suspend(), "reason": "Threat assessment.", "at": "2024-06-03T10:00"}
    with TestClient(create_app(db), raise_server_exceptions=False) as client:
        refused = client.post("/v1/rules", json=body, headers=warden)
        assert refused.status_code == 422
        assert refused.json()["field"] == "authority_cited"
        made = client.post("/v1/rules", json={**body, "authority_cited": CITED}, headers=warden)
        assert made.status_code == 201, made.text
        listed = client.get(f"/v1/facilities/{F}/orders/cv-17/conflicts", headers=warden,
                            params={"at": "2024-06-03T10:00"}).json()  # fmt: skip
    cited = [c for c in listed if c["rule"] == "sam-daughter-a"]
    assert cited[0]["authority_cited"] == CITED
    assert cited[0]["relation"] == "overrides"
    run = deliver_due_emails(db, smtp.mailer(), now=T + timedelta(minutes=1), sender=SENDER)
    assert run.claimed >= 2
    received = {str(m["To"]): m for m in smtp.inbox.messages}
    assert {COURT, COUNSEL} <= set(received)
    court_mail = received[COURT]
    assert "CV-17" in str(court_mail["Subject"])
    text = court_mail.get_body(preferencelist=("plain",))
    assert text is not None
    assert f"Authority cited: {CITED}" in text.get_content()
    assert all(m.status == "sent" for m in messages(db))


def test_the_command_line_asks_for_the_authority_too(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    rule_file = tmp_path / "rule.yaml"
    rule_file.write_text(yaml.safe_dump(suspend()))
    args = ["orders", "impose", str(rule_file), "--reason", "Review.", "--at", "2024-06-03T10:00"]
    refused = runner.invoke(app, [*args, "--database-url", db_url])
    assert refused.exit_code != 0
    assert "authority_cited" in refused.output
    assert count(db, RuleRow, RuleRow.id == "sam-daughter-a") == 0
    made = runner.invoke(app, [*args, "--authority-cited", CITED, "--database-url", db_url])
    assert made.exit_code == 0, made.output
    assert [m.recipient for m in messages(db)] == [COURT, COUNSEL]
    shown = runner.invoke(app, ["orders", "show", "cv-17", "--json", "--database-url", db_url,
                                "--at", "2024-06-03T10:00"])  # fmt: skip
    cited = [c for c in json.loads(shown.output)["conflicts"] if c["rule"] == "sam-daughter-a"]
    assert cited[0]["authority_cited"] == CITED
