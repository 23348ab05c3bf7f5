"""A court order's compliance report (courts.compliance.order_report and its
formats), on SQLite and PostgreSQL.

The numbers: on data generated as bench/report.py generates it (sessions of
every status, with the order's contacts and others, on its channel and
another, and other people's), the report's entitled and delivered per month
equal a hand-written SQL aggregate. The statuses: on four months delivering
4, 2, 1 and 3 of 4 calls, each period's status follows the facility's rule,
the default one and one set through the API (admin only). The formats: JSON,
CSV (a row per period and per piece of evidence), a standalone HTML page and
a PDF, unsigned or carrying a checkpoint that verifies against the log.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import sys
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from _databases import DbTemplate
from _identity import token_for
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kinline.api import create_app
from kinline.audit.checkpoint import verify_against
from kinline.courts.compliance import (
    compliance_settings,
    configure_compliance_settings,
    order_report,
)
from kinline.courts.report import Status, StatusRule
from kinline.courts.report_render import as_csv, as_html, as_json, as_pdf
from kinline.db.engine import Database
from kinline.errors import InvalidInput, NotFound
from kinline.identity import repository as identity_repository
from kinline.identity.model import Binding, Kind, Role

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


def _bench() -> ModuleType:
    """bench/report.py: the generator and the SQL aggregate the report is held to."""
    path = Path(__file__).resolve().parents[2] / "bench" / "report.py"
    spec = importlib.util.spec_from_file_location("bench_report", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_report"] = module
    spec.loader.exec_module(module)
    return module


BENCH = _bench()
F = BENCH.FACILITY
DENVER = ZoneInfo("America/Denver")
AT = datetime(2026, 1, 15, tzinfo=UTC)

GENERATED = DbTemplate(
    "compliance_report_generated",
    lambda db: BENCH.build(db, sessions=4_000, mine=1_500, people=40, seed=7),
)


def _handmade(db: Database) -> None:
    """The bench's order, and 4, 2, 1 and 3 completed calls with the children in
    January to April 2024; in February, a refusal, an expired hold and a call
    with the spouse (not the order's)."""
    BENCH.build(db, sessions=0, mine=0, people=0, seed=1)
    rows: list[dict[str, object]] = []
    for month, calls in ((1, 4), (2, 2), (3, 1), (4, 3)):
        for day in range(calls):
            rows.append(_row(datetime(2024, month, 3 + day, 10, tzinfo=DENVER), "completed"))
    rows.append(_row(datetime(2024, 2, 20, 10, tzinfo=DENVER), "denied"))
    rows.append(_row(datetime(2024, 2, 21, 10, tzinfo=DENVER), "expired"))
    rows.append(_row(datetime(2024, 2, 22, 10, tzinfo=DENVER), "completed", contact="wife"))
    BENCH.add_sessions(db, rows)


def _row(at: datetime, status: str, contact: str = "kid") -> dict[str, object]:
    moment = at.astimezone(UTC)
    refused = status == "denied"
    return {
        "facility_id": F,
        "person_id": "ana",
        "contact_id": contact,
        "channel": "phone",
        "started_at": moment,
        "minutes": 0 if refused else 12,
        "status": status,
        "reason": "denied" if refused else None,
        "charged_to": None if refused else "g-phone",
        "governed_by": [] if refused else ["g-phone"],
        "decision": {
            "allowed": not refused,
            "reason": "denied" if refused else None,
            "rules": ["lockdown"] if refused else ["g-phone"],
        },
        "recorded_at": moment,
        "source": "recorded",
    }


HANDMADE = DbTemplate("compliance_report_handmade", _handmade)


@pytest.fixture
def db_template() -> DbTemplate:
    return HANDMADE


@pytest.fixture(autouse=True)
def forget_bindings() -> None:
    """Each test's database numbers its subjects from 1 again, and a token's
    bindings are remembered per process by (subject id, version): forget them,
    or a caller here would be read with another test's bindings."""
    identity_repository._BINDINGS.clear()


# --- the numbers -----------------------------------------------------------------


def test_the_reports_numbers_equal_the_sql_aggregate(fresh_db: Any) -> None:
    db = fresh_db(GENERATED)
    report = order_report(db, F, BENCH.ORDER, BENCH.FIRST, BENCH.LAST, at=AT)
    (requirement,) = report.requirements
    ours = {p.key: (p.entitled, p.delivered) for p in requirement.periods}
    floor = BENCH.sql_figures(db)
    assert len(floor) == 24
    assert ours == floor
    assert sum(d for _, d in floor.values()) > 100  # the data is not empty
    # Refusals and lapsed holds are evidence, never delivered.
    refused = sum(1 for p in requirement.periods for e in p.evidence if e.kind == "refusal")
    lapsed = sum(1 for p in requirement.periods for e in p.evidence if e.kind == "lapsed")
    assert refused > 0 and lapsed > 0
    # The lockdown stood over the order from September to November 2024.
    over = {p.key for p in requirement.periods for e in p.evidence if e.kind == "override"}
    assert over == {"2024-09", "2024-10", "2024-11"}
    assert report.status is Status.COMPLIANT  # about 30 calls a month against 4


def test_without_a_timeline_the_report_counts_as_when_it_reads_every_call(
    fresh_db: Any,
) -> None:
    """JSON and CSV draw no timeline: the completed calls are then counted by the
    database, and only the evidence is read. Figures and evidence are those of
    the report that reads every call, calls imported outside policy included
    (delivered, and counted apart)."""
    db = fresh_db(GENERATED)
    imported = [
        {
            **_row(datetime(2024, 3, day, 9, tzinfo=DENVER), "completed", contact=contact),
            "source": "import",
            "charged_to": None,
            "reason": "denied",
        }
        for day, contact in ((5, "kid"), (6, "kid2"), (7, "wife"))
    ]
    BENCH.add_sessions(db, imported)
    read = order_report(db, F, BENCH.ORDER, BENCH.FIRST, BENCH.LAST, at=AT)
    counted = order_report(db, F, BENCH.ORDER, BENCH.FIRST, BENCH.LAST, at=AT, timeline=False)
    assert counted.requirements == read.requirements
    assert {p.key: (p.entitled, p.delivered) for p in counted.requirements[0].periods} == (
        BENCH.sql_figures(db)
    )
    assert read.timeline and not counted.timeline
    (march,) = [p for p in counted.requirements[0].periods if p.key == "2024-03"]
    assert march.outside_policy == 2  # the spouse's call is not the order's
    assert [e.who for e in march.evidence if e.kind == "outside_policy"] == ["K. Ana", "L. Ana"]


# --- statuses ----------------------------------------------------------------------


def _statuses(db: Database) -> dict[str, tuple[int, int, Status]]:
    report = order_report(db, F, BENCH.ORDER, "2024-01", "2024-04", at=AT)
    return {p.key: (p.delivered, p.shortfall, p.status) for p in report.requirements[0].periods}


def test_statuses_follow_the_default_rule(db: Database) -> None:
    assert compliance_settings(db, F) == StatusRule(100, 50)
    assert _statuses(db) == {
        "2024-01": (4, 0, Status.COMPLIANT),
        "2024-02": (2, 2, Status.PARTIAL),
        "2024-03": (1, 3, Status.NON_COMPLIANT),
        "2024-04": (3, 1, Status.PARTIAL),
    }
    report = order_report(db, F, BENCH.ORDER, "2024-01", "2024-04", at=AT)
    assert report.requirements[0].status is Status.NON_COMPLIANT  # its worst month


def test_statuses_follow_the_facilitys_rule(db: Database) -> None:
    configure_compliance_settings(db, F, StatusRule(75, 30), at=AT, actor="t")
    assert _statuses(db) == {
        "2024-01": (4, 0, Status.COMPLIANT),
        "2024-02": (2, 2, Status.PARTIAL),
        "2024-03": (1, 3, Status.NON_COMPLIANT),
        "2024-04": (3, 1, Status.COMPLIANT),
    }
    with pytest.raises(InvalidInput) as raised:
        configure_compliance_settings(db, F, StatusRule(50, 60), at=AT, actor="t")
    assert raised.value.field == "partial_percent"
    assert compliance_settings(db, F) == StatusRule(75, 30)


def test_the_evidence_of_a_month(db: Database) -> None:
    report = order_report(db, F, BENCH.ORDER, "2024-02", "2024-02", at=AT)
    (february,) = report.requirements[0].periods
    kinds = [(e.kind, e.who) for e in february.evidence]
    assert kinds == [("refusal", "K. Ana"), ("lapsed", "K. Ana")]
    refusal = february.evidence[0]
    assert refusal.rules == ("lockdown",)
    assert "denies" in refusal.detail
    assert february.delivered == 2  # the spouse's call is not the order's


def test_an_unknown_order_or_a_bad_range_names_its_field(db: Database) -> None:
    with pytest.raises(NotFound) as missing:
        order_report(db, F, "no-such-order", "2024-01", "2024-02", at=AT)
    assert missing.value.field == "order_id"
    with pytest.raises(NotFound):
        order_report(db, F, "g-phone", "2024-01", "2024-02", at=AT)  # not a court order
    with pytest.raises(InvalidInput) as backwards:
        order_report(db, F, BENCH.ORDER, "2024-03", "2024-01", at=AT)
    assert backwards.value.field == "to"


# --- formats ---------------------------------------------------------------------


def test_the_formats_say_the_same_thing(db: Database) -> None:
    report = order_report(db, F, BENCH.ORDER, "2024-01", "2024-04", at=AT)
    body = as_json(report)
    assert body["status"] == "non_compliant"
    assert body["signature"] is None
    rows = list(csv.DictReader(io.StringIO(as_csv(report))))
    periods = [r for r in rows if r["record"] == "period"]
    assert [(r["period"], r["delivered"], r["status"]) for r in periods] == [
        ("2024-01", "4", "compliant"),
        ("2024-02", "2", "partial"),
        ("2024-03", "1", "non_compliant"),
        ("2024-04", "3", "partial"),
    ]
    evidence = [r for r in rows if r["record"] == "evidence"]
    assert [(r["period"], r["evidence"]) for r in evidence] == [
        ("2024-02", "refusal"),
        ("2024-02", "lapsed"),
    ]
    page = as_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert "Unsigned" in page and "<svg" in page and "Non-compliant" in page
    assert "http://" not in page.replace("http://www.w3.org", "")  # nothing fetched
    pdf = as_pdf(report)
    assert pdf.startswith(b"%PDF-")
    assert b"checkpoint.json" not in pdf  # nothing attached when unsigned


def test_a_signed_report_carries_a_checkpoint_that_verifies(db: Database) -> None:
    key = Ed25519PrivateKey.generate()
    report = order_report(db, F, BENCH.ORDER, "2024-01", "2024-04", at=AT, key=key)
    assert report.signature is not None
    checked = verify_against(db, report.signature.checkpoint, key.public_key())
    assert checked.passed
    body = as_json(report)
    assert isinstance(body["signature"], dict)
    assert body["signature"]["digest"] == report.signature.digest
    pdf = as_pdf(report)
    assert b"checkpoint.json" in pdf
    html = as_html(report)
    assert report.signature.digest in html and "Unsigned" not in html


# --- the API ---------------------------------------------------------------------


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db), raise_server_exceptions=False) as test_client:
        yield test_client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


URL = f"/v1/facilities/{F}/orders/{BENCH.ORDER}/compliance"


def test_the_api_answers_each_format(client: TestClient, db: Database) -> None:
    court = _bearer(token_for(db, "court", Kind.COURT, Binding(F, case_number="CV-42")))
    asked = {"from": "2024-01", "to": "2024-04"}
    answer = client.get(URL, params=asked, headers=court)
    assert answer.status_code == 200, answer.text
    periods = answer.json()["requirements"][0]["periods"]
    assert [p["status"] for p in periods] == ["compliant", "partial", "non_compliant", "partial"]
    for fmt, media, start in (
        ("csv", "text/csv", b"record,"),
        ("pdf", "application/pdf", b"%PDF-"),
        ("html", "text/html", b"<!DOCTYPE html>"),
    ):
        answer = client.get(URL, params={**asked, "format": fmt}, headers=court)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith(media)
        assert answer.content.startswith(start)
    bad = client.get(URL, params={"from": "2024-13", "to": "2024-04"}, headers=court)
    assert bad.status_code == 422
    assert bad.json()["field"] == "from"
    # Another case's court does not learn the order exists.
    other = _bearer(token_for(db, "other", Kind.COURT, Binding(F, case_number="CV-1")))
    assert client.get(URL, params=asked, headers=other).status_code == 404


def test_the_api_signs_with_the_configured_key(
    client: TestClient, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "key.pem").write_bytes(pem)
    monkeypatch.setenv("KINLINE_CHECKPOINT_KEY", str(tmp_path / "key.pem"))
    staff = _bearer(token_for(db, "obs", Kind.STAFF, Binding(F, role=Role.OBSERVER)))
    answer = client.get(URL, params={"from": "2024-01", "to": "2024-02"}, headers=staff)
    assert answer.status_code == 200, answer.text
    signature = answer.json()["signature"]
    checked = verify_against(db, signature["checkpoint"].encode(), key.public_key())
    assert checked.passed


def test_only_an_admin_reads_or_sets_the_status_rule(client: TestClient, db: Database) -> None:
    url = f"/v1/facilities/{F}/compliance-settings"
    admin = _bearer(token_for(db, "admin", Kind.STAFF, Binding(F, role=Role.ADMIN)))
    warden = _bearer(token_for(db, "warden", Kind.STAFF, Binding(F, role=Role.WARDEN)))
    assert client.get(url, headers=admin).json() == {
        "compliant_percent": 100,
        "partial_percent": 50,
    }
    assert client.get(url, headers=warden).status_code == 403
    setting = {"compliant_percent": 75, "partial_percent": 30}
    assert client.put(url, json=setting, headers=warden).status_code == 403
    answer = client.put(url, json=setting, headers=admin)
    assert answer.status_code == 200, answer.text
    assert client.get(url, headers=admin).json() == setting
    wrong = client.put(url, json={"compliant_percent": 50, "partial_percent": 60}, headers=admin)
    assert wrong.status_code == 422
    assert wrong.json()["field"] == "partial_percent"
    report = order_report(db, F, BENCH.ORDER, "2024-04", "2024-04", at=AT)
    assert report.requirements[0].periods[0].status is Status.COMPLIANT  # 3 of 4 >= 75%


def test_the_command_writes_the_files(db: Database, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from kinline.cli import app

    key = Ed25519PrivateKey.generate()
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    base = ["report", "compliance", "--order", BENCH.ORDER, "--database-url", db.url]
    done = CliRunner().invoke(
        app,
        [
            *base,
            *("--from", "2024-01", "--to", "2024-04"),
            *("--pdf", str(tmp_path / "r.pdf"), "--csv", str(tmp_path / "r.csv")),
            *("--html", str(tmp_path / "r.html")),
        ],
    )
    assert done.exit_code == 0, done.output
    assert "unsigned" in done.output
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF-")
    assert (tmp_path / "r.csv").read_text().count("\nperiod,") == 4
    signed = CliRunner().invoke(
        app, [*base, "--from", "2024-02", "--key", str(tmp_path / "key.pem"), "--json"]
    )
    assert signed.exit_code == 0, signed.output
    assert '"digest"' in signed.output
    wrong = CliRunner().invoke(app, [*base, "--period", "2024-02", "--from", "2024-02"])
    assert wrong.exit_code == 2
    one = CliRunner().invoke(app, [*base, "--period", "2024-02"])
    assert "entitled 4, delivered 2, shortfall 2" in one.output


# --- an order recorded with its rules ------------------------------------------------

DEMO = Path(__file__).resolve().parents[2] / "src" / "kinline" / "demo"


def _demo_order(db: Database) -> None:
    from kinline.demo.orders import load_order
    from kinline.scenario import load_into

    load_into(str(DEMO / "supermax-family-contact.yaml"), db)
    load_order(db, "usp-red-mesa", at=datetime(2024, 6, 1, tzinfo=UTC))


DEMO_ORDER = DbTemplate("compliance_report_demo_order", _demo_order)


def test_a_recorded_order_reports_each_of_its_rules(fresh_db: Any) -> None:
    db = fresh_db(DEMO_ORDER)
    by_record = order_report(db, "usp-red-mesa", "cv-17", "2024-03", "2024-08", at=AT)
    by_rule = order_report(db, "usp-red-mesa", "order-17", "2024-03", "2024-08", at=AT)
    assert [r.rule_id for r in by_record.requirements] == ["order-17"]
    assert by_record.requirements == by_rule.requirements
    assert by_record.court == "United States District Court for the District of Colorado"
    assert by_record.case_number == "CV-17" and by_rule.judge is None
    (requirement,) = by_record.requirements
    assert [(p.key, p.delivered, p.status) for p in requirement.periods][:3] == [
        ("2024-03", 3, Status.COMPLIANT),
        ("2024-04", 0, Status.NON_COMPLIANT),
        ("2024-05", 0, Status.NON_COMPLIANT),
    ]
    # The security measure over the order, from May on, is evidence of each month.
    over = [p.key for p in requirement.periods if any(e.kind == "override" for e in p.evidence)]
    assert over == ["2024-05", "2024-06", "2024-07", "2024-08"]
    assert "Hon. M. Alvarez" in as_html(by_record)
