"""The retaliation review: flags listed with their findings; a warden records a
finding (unfounded, substantiated or referred) with its reasoning, audited on
the person's chain; a later finding supersedes and the earlier stays listed;
counsel read their client's flags and the PDF report; through the service, the
API and the CLI.

Each test gets a fresh copy of the supermax scenario after its timeline
(SQLite and PostgreSQL): R. Salazar filed motion-1 on 2024-04-15 and the
security measure sam-children followed 16 days later, the one flag.
"""

from __future__ import annotations

import json
import unicodedata
import warnings
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from _databases import SUPERMAX, DbTemplate
from _identity import token_for
from pypdf import PdfReader
from sqlalchemy import select
from typer.testing import CliRunner

from kinline.api import create_app
from kinline.audit.service import verify_log
from kinline.cli import app as cli_app
from kinline.courts.retaliation import (
    FindingKind,
    person_review,
    record_finding,
    reviewed_flags,
)
from kinline.courts.retaliation_report import render_review_pdf
from kinline.db.engine import Database
from kinline.db.tables import AuditEventRow, RetaliationFindingRow
from kinline.errors import InvalidInput, NotFound
from kinline.identity.model import Binding, Kind, Role

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

FACILITY = "usp-red-mesa"
AT = datetime(2024, 7, 1, 15, 0, tzinfo=UTC)
WHY = "The measure followed a threat report received on April 29; the motion played no part."
runner = CliRunner()


@pytest.fixture
def db_template() -> DbTemplate:
    return SUPERMAX


def plain(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    return "\n".join(plain(page.extract_text()) for page in PdfReader(BytesIO(data)).pages)


def find(db: Database, finding: str = "unfounded", **changes: object) -> object:
    values: dict[str, object] = {
        "action": "sam-children",
        "activity": "motion-1",
        "finding": finding,
        "reasoning": WHY,
        "at": AT,
        "actor": "staff:9:Maria Lopez",
    }
    values.update(changes)
    return record_finding(db, FACILITY, "salazar", **values)  # type: ignore[arg-type]


def test_the_flag_is_listed_with_what_it_is_about_and_no_finding_yet(db: Database) -> None:
    [flag] = reviewed_flags(db, FACILITY, "salazar")
    assert (flag.action, flag.activity_id, flag.days) == ("sam-children", "motion-1", 16)
    assert flag.activity_kind == "pro_se_motion"
    assert flag.action_kind == "impose_deny"
    assert flag.action_text == "Calls with children suspended pending review."
    assert flag.finding is None and flag.findings == ()
    assert reviewed_flags(db, FACILITY) == [flag]


def test_a_finding_is_recorded_audited_and_a_later_one_supersedes(db: Database) -> None:
    first = find(db, "referred", reasoning="  Sent to the regional office.  ")
    second = find(db, "Substantiated", at=AT + timedelta(days=3))
    [flag] = reviewed_flags(db, FACILITY, "salazar")
    assert [f.finding for f in flag.findings] == [FindingKind.REFERRED, FindingKind.SUBSTANTIATED]
    assert flag.finding == second
    assert flag.findings[0] == first
    assert flag.findings[0].reasoning == "Sent to the regional office."
    with db.transaction() as session:
        events = list(
            session.scalars(
                select(AuditEventRow)
                .where(AuditEventRow.tag == "courts:retaliation_finding:recorded")
                .order_by(AuditEventRow.id)
            )
        )
    assert len(events) == 2
    payloads = [json.loads(e.payload) if isinstance(e.payload, str) else e.payload for e in events]
    assert [p["finding"] for p in payloads] == ["referred", "substantiated"]
    assert payloads[1]["reasoning"] == WHY
    assert verify_log(db).problem is None


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"finding": "maybe"}, InvalidInput, "finding"),
        ({"reasoning": "   "}, InvalidInput, "reasoning"),
        ({"reasoning": "x" * 4001}, InvalidInput, "reasoning"),
        ({"action": "sam-monitor"}, NotFound, "action"),
        ({"activity": "motion-9"}, NotFound, "activity"),
    ],
)
def test_a_finding_that_is_not_one_names_its_field_and_writes_nothing(
    db: Database, changes: dict[str, object], error: type[Exception], field: str
) -> None:
    with pytest.raises(error) as refused:
        find(db, **changes)  # type: ignore[arg-type]
    assert getattr(refused.value, "field", None) == field
    with db.transaction() as session:
        assert session.scalars(select(RetaliationFindingRow)).first() is None


def test_the_report_for_counsel_shows_each_flag_its_finding_and_the_reasoning(
    db: Database,
) -> None:
    find(db, "referred")
    review = person_review(db, FACILITY, "salazar")
    assert [a.id for a in review.activities] == ["motion-1"]
    assert "sam-children" in [a.action for a in review.actions]
    text = pdf_text(render_review_pdf(review, prepared=AT))
    for expected in (
        "USP Red Mesa (administrative maximum)",
        "Retaliation review: R. Salazar (salazar)",
        "within 90 days",
        "Timeline",
        "motion-1",
        "16 days",
        "1 flag",
        "pro se motion motion-1, April 15, 2024, 08:00 MDT",
        "Calls with children suspended pending review.",
        "May 1, 2024, 08:00 MDT",
        "Days between",
        "Referred, by Maria Lopez",
        "threat report received on April 29",
    ):
        assert expected in text, expected


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_warden_records_findings_through_the_api_and_counsel_read_them(db: Database) -> None:
    warden = token_for(db, "Maria Lopez", Kind.STAFF, Binding(FACILITY, role=Role.WARDEN))
    records = token_for(db, "records", Kind.STAFF, Binding(FACILITY, role=Role.RECORDS))
    counsel = token_for(db, "counsel", Kind.COUNSEL, Binding(FACILITY, person_id="salazar"))
    body = {"action": "sam-children", "activity": "motion-1", "finding": "unfounded"}
    path = "/v1/people/salazar/retaliation/findings"
    params = {"facility_id": FACILITY}
    with TestClient(create_app(db), raise_server_exceptions=False) as client:
        for who in (records, counsel):
            denied = client.post(
                path, params=params, json={**body, "reasoning": WHY}, headers=_headers(who)
            )
            assert denied.status_code == 403, denied.text
        bad = client.post(
            path,
            params=params,
            json={**body, "finding": "perhaps", "reasoning": WHY},
            headers=_headers(warden),
        )
        assert bad.status_code == 422
        assert "finding" in json.dumps(bad.json())
        blank = client.post(
            path, params=params, json={**body, "reasoning": "  "}, headers=_headers(warden)
        )
        assert blank.status_code == 422 and blank.json()["field"] == "reasoning"
        other = client.post(
            path,
            params=params,
            json={**body, "action": "sam-monitor", "reasoning": WHY},
            headers=_headers(warden),
        )
        assert other.status_code == 404 and other.json()["field"] == "action"
        done = client.post(
            path, params=params, json={**body, "reasoning": WHY}, headers=_headers(warden)
        )
        assert done.status_code == 201, done.text
        assert done.json()["finding"] == "unfounded"
        assert done.json()["reviewer"].endswith(":Maria Lopez")

        listed = client.get("/v1/retaliation", params=params, headers=_headers(counsel))
        assert listed.status_code == 200, listed.text
        [flag] = listed.json()
        assert (flag["action"], flag["activity"], flag["days"]) == ("sam-children", "motion-1", 16)
        assert flag["finding"]["reasoning"] == WHY
        assert flag["activity_at"] == "2024-04-15T08:00:00"
        assert (
            client.get("/v1/retaliation", params=params, headers=_headers(records)).status_code
            == 403
        )

        pdf = client.get(
            "/v1/people/salazar/retaliation/pdf", params=params, headers=_headers(counsel)
        )
        assert pdf.status_code == 200
        assert pdf.headers["content-type"] == "application/pdf"
        assert "Unfounded, by Maria Lopez" in pdf_text(pdf.content)
        # Another person's report is not counsel's to read.
        hidden = client.get(
            "/v1/people/okafor/retaliation/pdf", params=params, headers=_headers(counsel)
        )
        assert hidden.status_code in (403, 404)


def test_the_cli_lists_finds_and_writes_the_report(db: Database, tmp_path: Path) -> None:
    base = ["--facility", FACILITY, "--database-url", db.url]
    listed = runner.invoke(cli_app, ["retaliation", "flags", "--json", *base])
    assert listed.exit_code == 0, listed.output
    [flag] = json.loads(listed.output)
    assert flag["finding"] is None
    wrong = runner.invoke(
        cli_app,
        [
            *("retaliation", "find", "salazar", "--action", "sam-children"),
            *("--activity", "motion-1", "--finding", "nope", "--reasoning", WHY, *base),
        ],
    )
    assert wrong.exit_code != 0
    assert "finding" in wrong.output
    found = runner.invoke(
        cli_app,
        [
            *("retaliation", "find", "salazar", "--action", "sam-children"),
            *("--activity", "motion-1", "--finding", "referred", "--reasoning", WHY),
            *("--actor", "staff:4:Ana Ruiz", *base),
        ],
    )
    assert found.exit_code == 0, found.output
    assert "finding referred recorded on sam-children after motion-1" in found.output
    listed = runner.invoke(cli_app, ["retaliation", "flags", "--person", "salazar", *base])
    assert "referred" in listed.output
    out = tmp_path / "salazar.pdf"
    wrote = runner.invoke(cli_app, ["retaliation", "report", "salazar", "--pdf", str(out), *base])
    assert wrote.exit_code == 0, wrote.output
    assert "Referred, by Ana Ruiz" in pdf_text(out.read_bytes())
    helped = runner.invoke(cli_app, ["retaliation", "--help"])
    assert "finding" in helped.output
