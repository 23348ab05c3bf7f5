"""Notices fit for a court: the facility's letterhead, a reference number fixed
when the notice is written, the date of issue, the issuing official by name and
role (kinline itself for a sweep), the court order a rule overrides, and titles
that name a rule by its text, never its internal id; in Spanish and English,
through the services, the API and the CLI.

Each test gets a fresh copy of the supermax scenario after its timeline
(SQLite and PostgreSQL): R. Salazar (Spanish) holds court order ``order-17``
(two calls a month with his daughters) and two notices.
"""

from __future__ import annotations

import json
import unicodedata
import warnings
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

import pytest
from _databases import SUPERMAX, DbTemplate
from _identity import token_for
from pypdf import PdfReader
from sqlalchemy import select
from typer.testing import CliRunner

from kinline.api import create_app
from kinline.audit.service import verify_log
from kinline.changes.service import impose_rule
from kinline.cli import app as cli_app
from kinline.db.engine import Database
from kinline.db.tables import AuditEventRow
from kinline.errors import InvalidInput
from kinline.identity.model import Binding, Kind, Role
from kinline.identity.service import add_subject
from kinline.notices.render import render_html, render_pdf
from kinline.notices.service import (
    get_notice_document,
    list_notices,
    notice_reference,
    set_letterhead,
)

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

FACILITY = "usp-red-mesa"
AT = datetime(2024, 7, 1, 15, 0, tzinfo=UTC)  # 09:00 MDT
ADDRESS = "1 Federal Way\nRed Mesa, AZ 86514"
runner = CliRunner()


def plain(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    return "\n".join(plain(page.extract_text()) for page in PdfReader(BytesIO(data)).pages)


@pytest.fixture
def db_template() -> DbTemplate:
    return SUPERMAX


def warden_actor(db: Database, name: str = "Maria Lopez") -> str:
    subject = add_subject(
        db, name, Kind.STAFF, at=AT, actor="test", bindings=(Binding(FACILITY, role=Role.WARDEN),)
    )
    return subject.actor


def impose_over_the_order(db: Database, actor: str, rule_id: str = "sam-daughters") -> int:
    impose_rule(
        db,
        FACILITY,
        {
            "id": rule_id,
            "authority": "security_measure",
            "kind": "deny",
            "channel": "phone",
            "person": "salazar",
            "contacts": {"ids": ["daughter-a"]},
            "overrides": ["order-17"],
            "text": {
                "en": "No calls with A. Salazar while the threat report is investigated.",
                "es": "Sin llamadas con A. Salazar mientras se investiga el informe de amenaza.",
            },
        },
        at=AT,
        actor=actor,
        reason="Threat report 24-117",
        authority_cited="28 CFR 501.3",
    )
    return max(n.id for n in list_notices(db, FACILITY, "salazar"))


def test_a_notice_carries_its_reference_issuer_letterhead_and_the_order_it_overrides(
    db: Database,
) -> None:
    set_letterhead(db, FACILITY, ADDRESS, at=AT, actor="test")
    notice_id = impose_over_the_order(db, warden_actor(db))
    doc = get_notice_document(db, FACILITY, notice_id)
    assert doc.reference == f"USP-RED-MESA-2024-{notice_id:06d}"
    assert (doc.issued_by, doc.issuer_role) == ("Maria Lopez", "warden")
    assert doc.facility_address == ADDRESS
    assert [(o.case_number, o.text) for o in doc.overridden_orders] == [
        (None, "Two 15-minute calls a month with his daughters.")
    ]

    spanish = pdf_text(render_pdf([doc]))
    for expected in (
        "USP Red Mesa (administrative maximum)",
        "1 Federal Way",
        "Red Mesa, AZ 86514",
        f"Referencia: USP-RED-MESA-2024-{notice_id:06d}",
        "Fecha de emisión: 1 de julio de 2024",
        "Emitido por: Maria Lopez, Director/a del centro",
        "Orden judicial que deja",
        "Two 15-minute calls a month with his daughters.",
        "Motivo",
        "Threat report 24-117",
        "Sin llamadas con A. Salazar mientras se investiga",
    ):
        assert expected in spanish, expected
    assert "No calls with A. Salazar" not in spanish

    english = plain(render_html(get_notice_document(db, FACILITY, notice_id, language="en")))
    for expected in (
        f"USP-RED-MESA-2024-{notice_id:06d}",
        "July 1, 2024",
        "Maria Lopez, Warden",
        "Court order it overrides",
        "A new rule on your telephone calls: No calls with A. Salazar while the threat "
        "report is investigated",
    ):
        assert expected in english, expected


def test_titles_name_the_rule_by_its_text_never_its_id(db: Database) -> None:
    notice_id = impose_over_the_order(db, warden_actor(db))
    for notice in list_notices(db, FACILITY, "salazar"):
        assert "sam-" not in notice.title, notice.title
    [written] = [n for n in list_notices(db, FACILITY, "salazar") if n.id == notice_id]
    assert written.title == (
        "Nueva regla sobre sus llamadas telefónicas: "
        "Sin llamadas con A. Salazar mientras se investiga el informe de amenaza"
    )
    html = plain(render_html(get_notice_document(db, FACILITY, notice_id)))
    assert "Nueva regla sobre sus llamadas telefónicas: Sin llamadas con A. Salazar" in html


def test_references_are_fixed_when_written_and_unique(db: Database) -> None:
    impose_over_the_order(db, warden_actor(db), "sam-one")
    impose_over_the_order(db, warden_actor(db, "Ana Ruiz"), "sam-two")
    notices = list_notices(db, FACILITY, "salazar")
    references = [n.reference for n in notices]
    assert len(set(references)) == len(references) == 4
    for notice in notices:
        assert notice.reference is not None
        # The year is the year it was written, on the facility's calendar.
        year = notice.created_at.year
        assert notice.reference == notice_reference(FACILITY, year, notice.id)
    # Read again, they have not moved.
    assert [n.reference for n in list_notices(db, FACILITY, "salazar")] == references
    with db.transaction() as session:
        payloads = [
            json.loads(row.payload) if isinstance(row.payload, str) else row.payload
            for row in session.scalars(
                select(AuditEventRow).where(AuditEventRow.tag == "notices:notice:written")
            )
        ]
    assert sorted(p["reference"] for p in payloads if "reference" in p) == sorted(references)


def test_a_sweep_issues_as_kinline_itself_in_the_readers_language(db: Database) -> None:
    notice_id = impose_over_the_order(db, "kinline:sweep")
    doc = get_notice_document(db, FACILITY, notice_id)
    assert (doc.issued_by, doc.issuer_role) == ("kinline (automatic)", None)
    assert "Emitido por: kinline (automático)" in pdf_text(render_pdf([doc]))
    english = get_notice_document(db, FACILITY, notice_id, language="en")
    assert "Issued by: kinline (automatic)" in pdf_text(render_pdf([english]))


def test_the_letterhead_refuses_an_empty_or_oversized_address(db: Database) -> None:
    for address, message in (("  \n ", "give the facility"), ("x" * 501, "at most 500")):
        with pytest.raises(InvalidInput) as refused:
            set_letterhead(db, FACILITY, address, at=AT, actor="test")
        assert refused.value.field == "address"
        assert message in str(refused.value)
    with pytest.raises(InvalidInput) as refused:
        set_letterhead(db, FACILITY, "1 Way\x07", at=AT, actor="test")
    assert refused.value.field == "address"


def _client(db: Database) -> TestClient:
    return TestClient(create_app(db), raise_server_exceptions=False)


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_admin_sets_the_letterhead_through_the_api_and_it_is_audited(db: Database) -> None:
    admin = token_for(db, "admin", Kind.STAFF, Binding(FACILITY, role=Role.ADMIN))
    warden = token_for(db, "warden", Kind.STAFF, Binding(FACILITY, role=Role.WARDEN))
    params = {"facility_id": FACILITY}
    with _client(db) as client:
        refused = client.put(
            "/v1/letterhead", params=params, json={"address": ADDRESS}, headers=_headers(warden)
        )
        assert refused.status_code == 403
        blank = client.put(
            "/v1/letterhead", params=params, json={"address": "   "}, headers=_headers(admin)
        )
        assert blank.status_code == 422
        assert blank.json()["field"] == "address"
        done = client.put(
            "/v1/letterhead",
            params=params,
            json={"address": " 1 Federal Way \n\n Red Mesa, AZ 86514 "},
            headers=_headers(admin),
        )
        assert done.status_code == 200, done.text
        assert done.json() == {
            "facility_id": FACILITY,
            "name": "USP Red Mesa (administrative maximum)",
            "address": ADDRESS,
        }
        shown = client.get("/v1/letterhead", params=params, headers=_headers(warden))
        assert shown.json()["address"] == ADDRESS
        notices = client.get(
            "/v1/notices", params={**params, "person_id": "salazar"}, headers=_headers(warden)
        ).json()
        assert [n["reference"] for n in notices] == [
            f"USP-RED-MESA-2024-{n['id']:06d}" for n in notices
        ]
        pdf = client.get(
            f"/v1/notices/{notices[0]['id']}/pdf", params=params, headers=_headers(warden)
        )
        assert pdf.status_code == 200
        assert "Red Mesa, AZ 86514" in pdf_text(pdf.content)
    with db.transaction() as session:
        events = list(
            session.scalars(
                select(AuditEventRow).where(AuditEventRow.tag == "notices:letterhead:set")
            )
        )
    assert len(events) == 1
    assert verify_log(db).problem is None


def test_the_cli_sets_and_shows_the_letterhead(db: Database) -> None:
    url = db.url
    wrote = runner.invoke(
        cli_app,
        [
            *("notices", "letterhead", "--address", "1 Federal Way\\nRed Mesa, AZ 86514"),
            *("--facility", FACILITY, "--database-url", url, "--json"),
        ],
    )
    assert wrote.exit_code == 0, wrote.output
    shown: dict[str, Any] = json.loads(wrote.output)
    assert shown["address"] == ADDRESS
    empty = runner.invoke(
        cli_app,
        ["notices", "letterhead", "--address", " ", "--facility", FACILITY, "--database-url", url],
    )
    assert empty.exit_code != 0
    assert "address" in empty.output
