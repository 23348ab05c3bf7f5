"""Notices as documents a person can read and appeal from: PDF and HTML in their
language (or English on request), acknowledged once at a kiosk, and listed for
staff when nobody has acknowledged them; through the services, the API and the CLI.

Each test gets a fresh database (SQLite and PostgreSQL) holding the supermax
scenario after its whole timeline: R. Salazar (Spanish) has two notices, the
security measure of 2024-05-01 08:00 and his wife's visit approval of
2024-06-10 09:00, both in Denver (MDT), with 20 days to appeal.
"""

from __future__ import annotations

import json
import threading
import unicodedata
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from _databases import SUPERMAX, DbTemplate
from _identity import person_token
from pypdf import PdfReader
from sqlalchemy import func, select
from typer.testing import CliRunner

from kinline.api import create_app
from kinline.audit.service import verify_log
from kinline.changes.service import impose_rule
from kinline.cli import app as cli_app
from kinline.db.engine import Database
from kinline.db.tables import AuditEventRow
from kinline.errors import InvalidInput, NotFound
from kinline.identity.service import create_token
from kinline.notices.render import render_html, render_pdf
from kinline.notices.service import (
    acknowledge_notice,
    get_notice_document,
    list_notices,
    overdue_notices,
)
from kinline.people.service import get_facility

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

FACILITY = "usp-red-mesa"
DENVER_OFFSET = timedelta(hours=6)  # MDT, all summer
runner = CliRunner()


def plain(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def pdf_text(data: bytes) -> list[str]:
    assert data.startswith(b"%PDF-")
    return [plain(page.extract_text()) for page in PdfReader(BytesIO(data)).pages]


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A Denver summer wall time, as the UTC instant the services take."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC) + DENVER_OFFSET


def acknowledgements(db: Database) -> int:
    with db.transaction() as session:
        count = session.scalar(
            select(func.count())
            .select_from(AuditEventRow)
            .where(AuditEventRow.tag == "notices:notice:acknowledged")
        )
    return int(count or 0)


@pytest.fixture
def db_template() -> DbTemplate:
    return SUPERMAX


@pytest.fixture
def loaded(db: Database) -> Database:
    """The supermax scenario after its whole timeline (``db_template``)."""
    return db


@pytest.fixture
def ids(loaded: Database) -> tuple[int, int]:
    imposed, approved = list_notices(loaded, FACILITY, "salazar")
    assert (imposed.subject, approved.subject) == ("sam-children", "wife:visit")
    return imposed.id, approved.id


# --- documents ----------------------------------------------------------------


def test_each_notice_renders_in_spanish_by_default(loaded: Database, ids: tuple[int, int]) -> None:
    imposed_id, approved_id = ids
    imposed = get_notice_document(loaded, FACILITY, imposed_id)
    approved = get_notice_document(loaded, FACILITY, approved_id)
    assert imposed.language == approved.language == "es"
    place = get_facility(loaded, FACILITY)
    for doc in (imposed, approved):
        assert doc.appeal_deadline == place.appeal_deadline(doc.effective_at)
        assert doc.facility_name == "USP Red Mesa (administrative maximum)"
        assert doc.person_name == "R. Salazar"
    assert imposed.appeal_deadline == date(2024, 5, 21)
    assert approved.appeal_deadline == date(2024, 6, 30)
    assert (imposed.channel, imposed.rule_kind) == ("phone", "deny")
    assert (approved.channel, approved.contact_name) == ("visit", "E. Salazar")

    first, second = pdf_text(render_pdf([imposed, approved]))
    for expected in (
        f"Aviso {imposed_id}",
        "Nueva regla sobre sus llamadas telefónicas: Calls with children suspended pending",
        "USP Red Mesa (administrative maximum)",
        "Calls with children suspended pending review.",
        "medida de seguridad",
        "1 de mayo de 2024, 8:00 MDT",
        "Plazo para apelar",
        "21 de mayo de 2024",
        "Cómo apelar",
    ):
        assert expected in first, expected
    for expected in (
        f"Aviso {approved_id}",
        "E. Salazar está aprobado/a para visitas",
        "10 de junio de 2024, 9:00 MDT",
        "30 de junio de 2024",
    ):
        assert expected in second, expected


def test_each_notice_renders_in_english_on_request(loaded: Database, ids: tuple[int, int]) -> None:
    imposed = get_notice_document(loaded, FACILITY, ids[0], language="en")
    approved = get_notice_document(loaded, FACILITY, ids[1], language="en")
    [first] = pdf_text(render_pdf([imposed]))
    assert "A new rule on your telephone calls: Calls with children suspended pending" in first
    assert "security measure" in first
    assert "May 1, 2024, 8:00 AM MDT" in first
    assert "You may appeal this change until May 21, 2024" in first
    html = plain(render_html(approved))
    assert "E. Salazar is approved for visits" in html
    assert "June 30, 2024" in html
    # A language with no catalog is written in English.
    klingon = get_notice_document(loaded, FACILITY, ids[0], language="tlh")
    assert "Appeal deadline" in pdf_text(render_pdf([klingon]))[0]


def test_a_court_order_shows_its_case_and_a_late_evening_deadline_counts_local_days(
    loaded: Database,
) -> None:
    # 23:30 in Denver is already the next day in UTC: the deadline counts from the local date.
    at = local(2024, 7, 1, 23, 30)
    impose_rule(
        loaded,
        FACILITY,
        {
            "id": "order-22",
            "authority": "court_order",
            "kind": "grant",
            "channel": "video",
            "person": "salazar",
            "contacts": {"ids": ["daughter-a", "daughter-b"]},
            "quota": {"count": 2, "per": "month"},
            "case_number": "1:24-cv-00871",
            "text": "Two video calls a month with his daughters.",
        },
        at=at,
        actor="test",
        reason="Ordered at the hearing.",
    )
    notice = list_notices(loaded, FACILITY, "salazar")[-1]
    assert notice.appeal_deadline == date(2024, 7, 21)
    doc = get_notice_document(loaded, FACILITY, notice.id)
    assert doc.case_number == "1:24-cv-00871"
    [page] = pdf_text(render_pdf([doc]))
    assert "Número de expediente" in page
    assert "1:24-cv-00871" in page
    assert "orden judicial" in page
    assert "1 de julio de 2024, 23:30 MDT" in page
    assert "21 de julio de 2024" in page


def test_a_rule_written_in_two_languages_reaches_each_reader_in_their_own(
    loaded: Database,
) -> None:
    """Salazar reads Spanish: his notice carries the rule's Spanish text, never the English."""
    impose_rule(
        loaded,
        FACILITY,
        {
            "id": "phones-after-lockdown",
            "authority": "security_measure",
            "kind": "deny",
            "channel": "phone",
            "person": "salazar",
            "contacts": "any",
            "text": {
                "en": "No telephone calls during the lockdown.",
                "es": "Sin llamadas telefónicas durante el cierre.",
            },
        },
        at=local(2024, 7, 2, 9),
        actor="test",
        reason="Lockdown of the unit.",
    )
    notice = list_notices(loaded, FACILITY, "salazar")[-1]
    doc = get_notice_document(loaded, FACILITY, notice.id)
    assert doc.rule_text == "Sin llamadas telefónicas durante el cierre."
    [page] = pdf_text(render_pdf([doc]))
    assert "Sin llamadas telefónicas durante el cierre." in page
    assert "No telephone calls" not in page


def test_an_unknown_notice_is_not_found_naming_the_field(
    loaded: Database, ids: tuple[int, int]
) -> None:
    with pytest.raises(NotFound) as error:
        get_notice_document(loaded, FACILITY, 999_999)
    assert error.value.field == "notice_id"
    with pytest.raises(NotFound) as error:
        get_notice_document(loaded, "elsewhere", ids[0])
    assert error.value.field == "notice_id"


# --- acknowledgement and overdue -----------------------------------------------


def test_acknowledging_is_recorded_once(loaded: Database, ids: tuple[int, int]) -> None:
    first_at = local(2024, 6, 11, 10, 0)
    first = acknowledge_notice(loaded, FACILITY, ids[0], by="R. Salazar", at=first_at)
    assert (first.acknowledged_at, first.acknowledged_by) == (first_at, "R. Salazar")
    assert acknowledgements(loaded) == 1
    again = acknowledge_notice(
        loaded, FACILITY, ids[0], by="Officer Diaz", at=first_at + timedelta(days=1)
    )
    assert again == first
    assert acknowledgements(loaded) == 1
    assert verify_log(loaded).problem is None
    doc = get_notice_document(loaded, FACILITY, ids[0])
    assert doc.acknowledged_by == "R. Salazar"
    assert "Acuse de recibo de R. Salazar" in pdf_text(render_pdf([doc]))[0]
    notices = {n.id: n for n in list_notices(loaded, FACILITY, "salazar")}
    assert notices[ids[0]].acknowledged_at == first_at
    assert notices[ids[1]].acknowledged_at is None


def test_kiosks_acknowledging_at_once_write_one_event(
    loaded: Database, ids: tuple[int, int]
) -> None:
    at = local(2024, 6, 11, 10, 0)
    start = threading.Barrier(6)

    def acknowledge(n: int) -> str | None:
        start.wait()
        return acknowledge_notice(loaded, FACILITY, ids[1], by=f"kiosk {n}", at=at).acknowledged_by

    with ThreadPoolExecutor(max_workers=6) as pool:
        winners = set(pool.map(acknowledge, range(6)))
    assert len(winners) == 1
    assert acknowledgements(loaded) == 1
    assert verify_log(loaded).problem is None


def test_acknowledging_needs_a_name_and_a_notice(loaded: Database, ids: tuple[int, int]) -> None:
    at = local(2024, 6, 11)
    for by in ("", "   ", "x" * 201, "a\x00b"):
        with pytest.raises(InvalidInput) as error:
            acknowledge_notice(loaded, FACILITY, ids[0], by=by, at=at)
        assert error.value.field == "by"
    with pytest.raises(NotFound) as missing:
        acknowledge_notice(loaded, FACILITY, 999_999, by="R. Salazar", at=at)
    assert missing.value.field == "notice_id"
    assert acknowledgements(loaded) == 0


def test_overdue_lists_unacknowledged_notices_older_than_the_days_given(
    loaded: Database, ids: tuple[int, int]
) -> None:
    imposed, approved = ids
    now = local(2024, 6, 20, 12, 0)

    def overdue(days: int) -> list[int]:
        return [n.id for n in overdue_notices(loaded, FACILITY, days=days, now=now)]

    assert overdue(7) == [imposed, approved]
    assert overdue(10) == [imposed, approved]  # the approval is 10 days and 3 hours old
    assert overdue(11) == [imposed]
    assert overdue(50) == [imposed]  # 50 days and 4 hours
    assert overdue(51) == []
    acknowledge_notice(loaded, FACILITY, imposed, by="R. Salazar", at=now)
    assert overdue(7) == [approved]
    with pytest.raises(InvalidInput) as error:
        overdue(-1)
    assert error.value.field == "days"
    with pytest.raises(NotFound):
        overdue_notices(loaded, "elsewhere", days=7, now=now)


# --- the API --------------------------------------------------------------------


class Api:
    def __init__(self, client: TestClient, tokens: dict[str, str]) -> None:
        self.client = client
        self.tokens = tokens

    def get(self, url: str, role: str = "staff", **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        return self.client.get(url, params=params or None, headers=headers)

    def post(self, url: str, body: object, role: str = "read") -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        return self.client.post(url, json=body, headers=headers)


@pytest.fixture
def api(loaded: Database) -> Iterator[Api]:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    roles = ("staff", "telephony")
    tokens = {role: create_token(loaded, f"{role}-client", role, at=at)[1] for role in roles}
    # The person at a kiosk: their own account.
    tokens["read"] = person_token(loaded, FACILITY, "salazar", "read-client")
    with TestClient(create_app(loaded), raise_server_exceptions=False) as client:
        yield Api(client, tokens)


def problem(response: httpx.Response, status: int, field: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body.get("field") == field
    return body


@pytest.mark.parametrize("role", ["read", "staff"])
def test_api_reads_a_notice_as_data_pdf_and_html(api: Api, ids: tuple[int, int], role: str) -> None:
    imposed, _approved = ids
    # The telephony platform reads no notices: to it they are not there.
    problem(api.get(f"/v1/notices/{imposed}", "telephony"), 404, "notice_id")
    data = api.get(f"/v1/notices/{imposed}", role)
    assert data.status_code == 200, data.text
    notice = data.json()
    assert notice["subject"] == "sam-children"
    assert notice["appeal_deadline"] == "2024-05-21"
    assert notice["acknowledged"] is False
    assert notice["acknowledged_at"] is None

    pdf = api.get(f"/v1/notices/{imposed}/pdf", role)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert "Plazo para apelar" in pdf_text(pdf.content)[0]
    english = api.get(f"/v1/notices/{imposed}/pdf", role, language="en")
    assert "May 21, 2024" in pdf_text(english.content)[0]

    html = api.get(f"/v1/notices/{imposed}/html", role)
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    assert "21 de mayo de 2024" in html.text
    assert '<html lang="en">' in api.get(f"/v1/notices/{imposed}/html", role, language="en").text


def test_api_reports_bad_notice_requests_as_problems(api: Api, ids: tuple[int, int]) -> None:
    problem(api.get("/v1/notices/999999"), 404, "notice_id")
    problem(api.get("/v1/notices/999999/pdf"), 404, "notice_id")
    problem(api.get("/v1/notices/999999/html"), 404, "notice_id")
    problem(api.get("/v1/notices/abc"), 422, "notice_id")
    problem(api.get(f"/v1/notices/{2**63}/pdf"), 422, "notice_id")
    problem(api.get(f"/v1/notices/{ids[0]}/pdf", language="not a language"), 422, "language")
    problem(api.post("/v1/notices/999999/acknowledge", {"by": "R. Salazar"}), 404, "notice_id")
    problem(api.post(f"/v1/notices/{ids[0]}/acknowledge", {"by": ""}), 422, "by")
    problem(api.post(f"/v1/notices/{ids[0]}/acknowledge", {}), 422, "by")
    problem(api.post(f"/v1/notices/{ids[0]}/acknowledge", {"by": "a\x00b"}), 422, "by")
    problem(api.get("/v1/notices/overdue", days="-1"), 422, "days")
    problem(api.get("/v1/notices/overdue", at="yesterday"), 422, "at")


def test_api_acknowledgement_at_the_kiosk_is_idempotent(
    api: Api, loaded: Database, ids: tuple[int, int]
) -> None:
    url = f"/v1/notices/{ids[0]}/acknowledge"
    first = api.post(url, {"by": "R. Salazar"}, role="read")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["acknowledged"] is True
    assert body["acknowledged_by"] == "R. Salazar"
    again = api.post(url, {"by": "someone else"}, role="staff")
    assert again.json() == body
    assert acknowledgements(loaded) == 1
    listed = {n["id"]: n for n in api.get("/v1/notices", person_id="salazar").json()}
    assert listed[ids[0]]["acknowledged"] is True
    assert listed[ids[1]]["acknowledged"] is False


def test_api_overdue_is_for_staff(api: Api, ids: tuple[int, int]) -> None:
    overdue = api.get("/v1/notices/overdue", days="7", at="2024-06-20T12:00")
    assert overdue.status_code == 200, overdue.text
    assert [n["id"] for n in overdue.json()] == list(ids)
    fewer = api.get("/v1/notices/overdue", days="11", at="2024-06-20T12:00")
    assert [n["id"] for n in fewer.json()] == [ids[0]]
    # Without `at`: counted from now, when both are long overdue.
    assert [n["id"] for n in api.get("/v1/notices/overdue").json()] == list(ids)
    for role in ("read", "telephony"):
        body = problem(api.get("/v1/notices/overdue", role), 403, None)
        assert body["code"] == "forbidden"


# --- the CLI --------------------------------------------------------------------


def test_cli_writes_pdf_and_html_in_either_language(
    loaded: Database, ids: tuple[int, int], tmp_path: Path
) -> None:
    url = loaded.url
    spanish = tmp_path / "aviso.pdf"
    result = runner.invoke(
        cli_app, ["notices", "pdf", str(ids[0]), "-o", str(spanish), "--database-url", url]
    )
    assert result.exit_code == 0, result.output
    assert "21 de mayo de 2024" in pdf_text(spanish.read_bytes())[0]

    english = tmp_path / "notice.pdf"
    result = runner.invoke(
        cli_app,
        [
            "notices",
            "pdf",
            str(ids[0]),
            "--output",
            str(english),
            "--language",
            "en",
            "--facility",
            FACILITY,
            "--database-url",
            url,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "May 21, 2024" in pdf_text(english.read_bytes())[0]

    page = tmp_path / "aviso.html"
    result = runner.invoke(
        cli_app, ["notices", "html", str(ids[1]), "-o", str(page), "--database-url", url]
    )
    assert result.exit_code == 0, result.output
    assert "E. Salazar está aprobado/a para visitas" in page.read_text(encoding="utf-8")

    missing = runner.invoke(
        cli_app, ["notices", "pdf", "999999", "-o", str(spanish), "--database-url", url]
    )
    assert missing.exit_code == 1
    assert "notice_id" in missing.output


def test_cli_acknowledges_and_lists_overdue(loaded: Database, ids: tuple[int, int]) -> None:
    url = loaded.url
    result = runner.invoke(cli_app, ["notices", "overdue", "--json", "--database-url", url])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [(n["id"], n["subject"]) for n in listed] == [
        (ids[0], "sam-children"),
        (ids[1], "wife:visit"),
    ]
    assert all(n["acknowledged_at"] is None for n in listed)

    result = runner.invoke(
        cli_app,
        ["notices", "acknowledge", str(ids[0]), "--by", "R. Salazar", "--database-url", url],
    )
    assert result.exit_code == 0, result.output
    assert f"notice {ids[0]} acknowledged by R. Salazar" in result.output

    result = runner.invoke(cli_app, ["notices", "overdue", "--days", "3", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert "1 notices unacknowledged after 3 days" in result.output
    result = runner.invoke(
        cli_app, ["notices", "overdue", "--days", "3", "--json", "--database-url", url]
    )
    assert [n["id"] for n in json.loads(result.output)] == [ids[1]]
    assert acknowledgements(loaded) == 1


def test_cli_help_describes_every_option() -> None:
    for command in ("pdf", "html", "overdue", "acknowledge"):
        result = runner.invoke(cli_app, ["notices", command, "--help"])
        assert result.exit_code == 0, result.output
        assert "--database-url" in result.output
        assert "--facility" in result.output
    assert "Language to render in" in runner.invoke(cli_app, ["notices", "pdf", "--help"]).output
    assert "Only notices" in runner.invoke(cli_app, ["notices", "overdue", "--help"]).output
