"""Court orders as records: written with their rules in one transaction (or not
at all), their signed PDF kept by version with its sha256, read through the API
by staff, the order's court and the person's counsel only, and through
``kinline orders``."""

from __future__ import annotations

import hashlib
import json
import threading
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from _databases import DbTemplate, scenario_template
from _identity import token_for
from sqlalchemy import func, select
from typer.testing import CliRunner

import kinline.demo
from kinline.api import create_app
from kinline.changes.court_orders import record_order, upload_document
from kinline.cli import app
from kinline.courts.orders import MAX_DOCUMENT_BYTES, get_order, list_orders, order_document
from kinline.db.engine import Database
from kinline.db.tables import (
    AuditEventRow,
    CourtOrderRow,
    NoticeDeliveryRow,
    NoticeRow,
    RuleCitationRow,
    RuleRow,
)
from kinline.demo.orders import ORDER_17, load_order
from kinline.errors import AlreadyExists, BodyTooLarge, InvalidInput, NotFound
from kinline.identity import repository as identity_repository
from kinline.identity.model import Binding, Kind, Role
from kinline.policy.service import get_rule
from kinline.rules.model import Authority
from kinline.rules.model import Kind as RuleKind

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

F = "usp-red-mesa"
T = datetime(2024, 6, 3, 16, 0, tzinfo=UTC)  # 10:00 in Denver
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
runner = CliRunner()


# The demo's scenario: the shared one, its order with its case number.
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


def visit_order(**changes: Any) -> dict[str, Any]:
    """Order CV-23: video visits with the daughters, and no contact with the brother."""
    order: dict[str, Any] = {
        "id": "cv-23",
        "court": "United States District Court for the District of Colorado",
        "case_number": "CV-23",
        "judge": "Hon. R. Okafor",
        "signed_on": "2024-05-28",
        "person": "salazar",
        "text": "Two video visits a month with his daughters; no contact with J. Salazar.",
        "counsel": [{"name": "D. Ruiz", "email": "druiz@ruizlaw.example"}],
        "court_email": "cv23@cod.uscourts.example",
        "rules": [
            {
                "id": "order-23-video",
                "kind": "grant",
                "channel": "video",
                "contacts": {"ids": ["daughter-a", "daughter-b"]},
                "quota": {"count": 2, "per": "month"},
                "max_minutes": 45,
                "text": "Two video visits a month with his daughters.",
            },
            {
                "id": "order-23-no-contact",
                "kind": "deny",
                "channel": "phone",
                "contacts": {"ids": ["brother"]},
                "text": "No contact with J. Salazar.",
            },
        ],
    }
    order.update(changes)
    return order


def count(db: Database, table: Any, *where: Any) -> int:
    with db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


# --- the record and its rules, in one transaction ---------------------------------


def test_an_order_is_recorded_with_the_rules_it_creates(db: Database) -> None:
    notices = count(db, NoticeRow)
    order = record_order(db, F, visit_order(), at=T, actor="records:1")
    assert order.rules == ("order-23-video", "order-23-no-contact")
    assert order.judge == "Hon. R. Okafor"
    assert order.signed_on.isoformat() == "2024-05-28"
    assert [c.email for c in order.counsel] == ["druiz@ruizlaw.example"]
    assert order.recipients == ["cv23@cod.uscourts.example", "druiz@ruizlaw.example"]
    for rule_id in order.rules:
        rule = get_rule(db, F, rule_id)
        assert rule.authority is Authority.COURT_ORDER
        assert rule.case_number == "CV-23"
        assert rule.person == "salazar"
    assert get_rule(db, F, "order-23-no-contact").kind is RuleKind.DENY
    # Each rule is noticed to the person, as any rule; the order is audited.
    assert count(db, NoticeRow) == notices + 2
    assert count(db, AuditEventRow, AuditEventRow.tag == "courts:order:recorded") == 2
    assert [o.id for o in list_orders(db, F)] == ["cv-17", "cv-23"]


def test_the_demo_order_is_the_record_of_its_rule(db: Database) -> None:
    order = get_order(db, F, "cv-17")
    assert order.case_number == ORDER_17["case_number"] == "CV-17"
    assert order.rules == ("order-17",)
    assert order.judge == "Hon. M. Alvarez"
    assert order.document is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"judge": "  "}, "judge"),
        ({"signed_on": "28/05/2024"}, "signed_on"),
        ({"court_email": "chambers"}, "court_email"),
        ({"counsel": [{"name": "D. Ruiz", "email": "nope"}]}, "counsel[0].email"),
        ({"person": "nobody"}, "person"),
        ({"rules": [], "existing_rules": []}, "rules"),
        ({"bogus": 1}, "bogus"),
        ({"rules": [{"id": "x", "kind": "grant", "text": "a\x00b"}]}, "rules[0].text"),
    ],
)
def test_a_wrong_field_is_named_and_nothing_is_written(
    db: Database, changes: dict[str, Any], field: str
) -> None:
    rules, notices = count(db, RuleRow), count(db, NoticeRow)
    with pytest.raises(InvalidInput) as refused:
        record_order(db, F, visit_order(**changes), at=T, actor="records:1")
    assert refused.value.field == field
    assert count(db, RuleRow) == rules
    assert count(db, NoticeRow) == notices
    assert count(db, CourtOrderRow) == 1


def test_a_wrong_second_rule_leaves_no_half_written_order(db: Database) -> None:
    order = visit_order()
    order["rules"][1] = {**order["rules"][1], "kind": "forbid"}
    rules, notices = count(db, RuleRow), count(db, NoticeRow)
    with pytest.raises(InvalidInput) as refused:
        record_order(db, F, order, at=T, actor="records:1")
    assert refused.value.field == "rules[1].kind"
    with pytest.raises(NotFound):
        get_order(db, F, "cv-23")
    with pytest.raises(NotFound):
        get_rule(db, F, "order-23-video")  # the first rule went with it
    assert (count(db, RuleRow), count(db, NoticeRow)) == (rules, notices)


def test_an_order_rule_is_a_court_order_of_its_case(db: Database) -> None:
    order = visit_order()
    order["rules"][0] = {**order["rules"][0], "authority": "sanction"}
    with pytest.raises(InvalidInput) as refused:
        record_order(db, F, order, at=T, actor="records:1")
    assert refused.value.field == "rules[0].authority"
    order = visit_order()
    order["rules"][0] = {**order["rules"][0], "case_number": "CV-99"}
    with pytest.raises(InvalidInput) as refused:
        record_order(db, F, order, at=T, actor="records:1")
    assert refused.value.field == "rules[0].case_number"
    # An existing rule of another case, or another order's, is not this order's.
    with pytest.raises(InvalidInput) as refused:
        record_order(db, F, visit_order(rules=[], existing_rules=["order-17"]), at=T, actor="r")
    assert refused.value.field == "existing_rules[0]"
    with pytest.raises(AlreadyExists) as taken:
        record_order(
            db, F, visit_order(id="cv-17b", case_number="CV-17", rules=[],
                               existing_rules=["order-17"]), at=T, actor="r",
        )  # fmt: skip
    assert taken.value.field == "existing_rules[0]"
    with pytest.raises(AlreadyExists) as again:
        record_order(db, F, visit_order(id="cv-17"), at=T, actor="r")
    assert again.value.field == "id"


# --- the signed PDF ---------------------------------------------------------------


def test_the_pdf_is_kept_by_version_with_its_sha256(db: Database) -> None:
    first = upload_document(db, F, "cv-17", PDF, "application/pdf", at=T, actor="records:1")
    assert (first.version, first.sha256) == (1, hashlib.sha256(PDF).hexdigest())
    amended = PDF + b"% amended\n"
    second = upload_document(db, F, "cv-17", amended, "application/pdf", at=T, actor="r")
    assert second.version == 2
    document, content = order_document(db, F, "cv-17")
    assert content == amended
    assert document.sha256 == hashlib.sha256(amended).hexdigest() == second.sha256
    assert get_order(db, F, "cv-17").document == document


def test_what_is_not_a_pdf_is_refused(db: Database) -> None:
    with pytest.raises(InvalidInput) as refused:
        upload_document(db, F, "cv-17", b"<html>order</html>", "application/pdf", at=T, actor="r")
    assert refused.value.field == "document"
    with pytest.raises(InvalidInput) as refused:
        upload_document(db, F, "cv-17", PDF, "text/plain", at=T, actor="r")
    assert refused.value.field == "content-type"
    big = PDF + b"0" * MAX_DOCUMENT_BYTES
    with pytest.raises(BodyTooLarge):
        upload_document(db, F, "cv-17", big, "application/pdf", at=T, actor="r")
    with pytest.raises(NotFound):
        order_document(db, F, "cv-17")
    # A PDF given with an order that fails keeps nothing either.
    with pytest.raises(InvalidInput):
        record_order(db, F, visit_order(judge=""), at=T, actor="r", document=PDF)
    assert count(db, CourtOrderRow) == 1


# --- the API --------------------------------------------------------------------


@pytest.fixture
def client(db: Database) -> Any:
    with TestClient(create_app(db), raise_server_exceptions=False) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_api_records_reads_and_keeps_the_pdf(db: Database, client: Any) -> None:
    records = bearer(token_for(db, "records", Kind.STAFF, Binding(F, role=Role.RECORDS)))
    base = f"/v1/facilities/{F}/orders"
    made = client.post(base, json=visit_order(), headers=records)
    assert made.status_code == 201, made.text
    assert made.json()["rules"] == ["order-23-video", "order-23-no-contact"]
    wrong = client.post(base, json=visit_order(id="cv-24", judge=""), headers=records)
    assert wrong.status_code == 422
    assert "judge" in wrong.json()["field"]
    wrong_rule = visit_order(id="cv-24")
    wrong_rule["rules"][0] = {**wrong_rule["rules"][0], "channel": "telegraph"}
    refused = client.post(base, json=wrong_rule, headers=records)
    assert refused.status_code == 422
    assert refused.json()["field"] == "rules[0].channel"
    put = client.put(
        f"{base}/cv-23/document",
        content=PDF,
        headers={**records, "content-type": "application/pdf"},
    )
    assert put.status_code == 200, put.text
    assert put.json()["sha256"] == hashlib.sha256(PDF).hexdigest()
    not_pdf = client.put(
        f"{base}/cv-23/document",
        content=b"hello",
        headers={**records, "content-type": "text/plain"},
    )
    assert not_pdf.status_code == 422
    assert not_pdf.json()["field"] == "content-type"
    got = client.get(f"{base}/cv-23/document", headers=records)
    assert got.status_code == 200
    assert got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["etag"] == f'"{hashlib.sha256(PDF).hexdigest()}"'
    one = client.get(f"{base}/cv-23", headers=records).json()
    assert one["document"]["version"] == 1
    assert one["counsel"] == [{"name": "D. Ruiz", "email": "druiz@ruizlaw.example"}]
    assert [o["id"] for o in client.get(base, headers=records).json()] == ["cv-17", "cv-23"]


def test_who_may_read_and_record_orders(db: Database, client: Any) -> None:
    record_order(db, F, visit_order(), at=T, actor="records:1")
    base = f"/v1/facilities/{F}/orders"
    court = bearer(token_for(db, "court", Kind.COURT, Binding(F, case_number="CV-17")))
    counsel = bearer(token_for(db, "counsel", Kind.COUNSEL, Binding(F, person_id="salazar")))
    security = bearer(token_for(db, "security", Kind.STAFF, Binding(F, role=Role.SECURITY)))
    family = bearer(token_for(db, "family", Kind.FAMILY, Binding(F, contact_id="wife")))
    # A court reads its case's order only; another case's is not there.
    assert [o["id"] for o in client.get(base, headers=court).json()] == ["cv-17"]
    assert client.get(f"{base}/cv-17", headers=court).status_code == 200
    assert client.get(f"{base}/cv-23", headers=court).status_code == 404
    assert client.get(f"{base}/cv-23/conflicts", headers=court).status_code == 404
    # Counsel reads the orders about the person they represent.
    assert [o["id"] for o in client.get(base, headers=counsel).json()] == ["cv-17", "cv-23"]
    # Security staff read but do not record; a family member does neither.
    assert client.get(f"{base}/cv-23", headers=security).status_code == 200
    assert client.post(base, json=visit_order(id="x"), headers=security).status_code == 403
    assert client.get(base, headers=family).status_code == 403
    assert (
        client.put(
            f"{base}/cv-17/document",
            content=PDF,
            headers={**court, "content-type": "application/pdf"},
        ).status_code
        == 403
    )
    # Another facility's path is not there for anyone bound here.
    assert client.get("/v1/facilities/elsewhere/orders", headers=security).status_code == 404


# --- the command line -----------------------------------------------------------


def test_the_command_line_adds_lists_and_shows(db: Database, db_url: str, tmp_path: Path) -> None:
    order_file = tmp_path / "cv-23.yaml"
    order_file.write_text(yaml.safe_dump(visit_order()))
    pdf = tmp_path / "cv-23.pdf"
    pdf.write_bytes(PDF)
    common = ["--database-url", db_url]
    added = runner.invoke(app, ["orders", "add", str(order_file), "--pdf", str(pdf), *common])
    assert added.exit_code == 0, added.output
    assert "order cv-23 (case CV-23) recorded" in added.output
    listed = runner.invoke(app, ["orders", "list", "--json", *common])
    assert [o["id"] for o in json.loads(listed.output)] == ["cv-17", "cv-23"]
    shown = runner.invoke(app, ["orders", "show", "cv-23", "--json", *common])
    body = json.loads(shown.output)
    assert body["document"]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert body["rules"] == ["order-23-video", "order-23-no-contact"]
    text = runner.invoke(app, ["orders", "show", "cv-17", "--at", "2024-06-03T10:00", *common])
    assert text.exit_code == 0, text.output
    assert "sam-children" in text.output
    assert "overrides the order's order-17" in text.output


def test_the_command_line_names_the_wrong_field_and_writes_nothing(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    order_file = tmp_path / "bad.yaml"
    order_file.write_text(yaml.safe_dump(visit_order(signed_on="yesterday")))
    notices = count(db, NoticeRow)
    result = runner.invoke(app, ["orders", "add", str(order_file), "--database-url", db_url])
    assert result.exit_code != 0
    assert "signed_on" in result.output
    not_pdf = tmp_path / "order.pdf"
    not_pdf.write_bytes(b"scanned order")
    order_file.write_text(yaml.safe_dump(visit_order()))
    result = runner.invoke(
        app,
        ["orders", "add", str(order_file), "--pdf", str(not_pdf), "--database-url", db_url],
    )
    assert result.exit_code != 0
    assert "document" in result.output
    assert count(db, NoticeRow) == notices
    assert count(db, CourtOrderRow) == 1
    assert Counter(runner.invoke(app, ["orders", "--help"]).output.split())["add"] >= 1
    for content, said in (
        (b"case_number: caf\xe9\n", "not UTF-8 text: byte 0xe9"),
        (b"a: " + b"[" * 5_000 + b"]" * 5_000 + b"\n", "nested too deeply"),
    ):
        order_file.write_bytes(content)
        result = runner.invoke(app, ["orders", "add", str(order_file), "--database-url", db_url])
        assert result.exit_code == 2 and said in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
    assert count(db, CourtOrderRow) == 1


def test_two_uploads_at_once_get_one_version_each(db: Database) -> None:
    barrier = threading.Barrier(2)

    def upload(content: bytes) -> int:
        barrier.wait()
        return upload_document(db, F, "cv-17", content, "application/pdf", at=T, actor="r").version

    with ThreadPoolExecutor(2) as pool:
        versions = sorted(pool.map(upload, [PDF, PDF + b"% two\n"]))
    assert versions == [1, 2]


def test_an_order_overriding_another_cites_itself_and_tells_the_other_court(
    db: Database,
) -> None:
    # A no-contact order of another case reaches the daughter order-17 grants calls with.
    no_contact = visit_order(
        rules=[
            {
                "id": "order-23-no-contact",
                "kind": "deny",
                "channel": "phone",
                "contacts": {"ids": ["daughter-a"]},
                "text": "No contact with A. Salazar.",
            }
        ]
    )
    record_order(db, F, no_contact, at=T, actor="records:1")
    with db.transaction() as session:
        told = list(
            session.scalars(
                select(NoticeDeliveryRow.recipient)
                .where(NoticeDeliveryRow.notice_id.is_(None))
                .order_by(NoticeDeliveryRow.id)
            )
        )
        cited = session.get(RuleCitationRow, (F, "order-23-no-contact"))
    assert told == [ORDER_17["court_email"], "druiz@ruizlaw.example"]
    assert cited is not None
    assert "case CV-23" in cited.authority_cited
