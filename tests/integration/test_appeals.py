"""Appeals as services, the API and the CLI run them, on the supermax scenario
(SQLite and PostgreSQL): filing, answering, extending, escalating through every
level, denial by silence, late filings, routing, and filing as a protected activity."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from _databases import SUPERMAX, DbTemplate
from _identity import person_token
from sqlalchemy import select
from typer.testing import CliRunner

from kinline.api import create_app
from kinline.appeals.model import FEDERAL_LEVELS, LevelConfig
from kinline.appeals.service import (
    Appeal,
    answer_appeal,
    appeal_levels,
    configure_appeal_levels,
    escalate_appeal,
    extend_appeal,
    file_appeal,
    get_appeal,
    list_appeals,
    sweep_appeals,
    withdraw_appeal,
)
from kinline.audit.service import verify_log
from kinline.calls.service import attempt_session
from kinline.changes.service import impose_rule
from kinline.cli import app as cli
from kinline.courts.service import retaliation_report
from kinline.db.engine import Database
from kinline.db.tables import AuditEventRow, ProtectedActivityRow
from kinline.errors import Conflict, InvalidInput, KinlineError, NotFound
from kinline.identity.service import create_token
from kinline.notices.service import list_notices

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

FAC = "usp-red-mesa"
DENVER = ZoneInfo("America/Denver")
ACTOR = "test"
runner = CliRunner()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=DENVER).astimezone(UTC)


def day(instant: datetime | None) -> str | None:
    """The last local day of a window that closes at ``instant``."""
    if instant is None:
        return None
    return (instant.astimezone(DENVER) - timedelta(microseconds=1)).date().isoformat()


def notice_id(db: Database, subject: str) -> int:
    return next(n.id for n in list_notices(db, FAC, "salazar") if n.subject == subject)


@pytest.fixture
def db_template() -> DbTemplate:
    return SUPERMAX


@pytest.fixture
def loaded(db: Database) -> Database:
    """The supermax scenario after its whole timeline (``db_template``)."""
    return db


def file(db: Database, when: str, **overrides: Any) -> Appeal:
    arguments: dict[str, Any] = {
        "person_id": "salazar",
        "notice_id": notice_id(db, "sam-children"),
        "filed_by": "person",
        "filer": "R. Salazar",
        "text": "Nobody told me why calls with my daughters stopped.",
        "at": at(when),
        "actor": "kiosk",
    }
    arguments.update(overrides)
    return file_appeal(db, FAC, **arguments)


def tags(db: Database) -> list[str]:
    with db.transaction() as session:
        return list(
            session.scalars(
                select(AuditEventRow.tag)
                .where(AuditEventRow.tag.like("appeals:%"))
                .order_by(AuditEventRow.id)
            )
        )


def raises(kind: type[KinlineError], field: str, call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(kind) as raised:
        call(*args, **kwargs)
    assert raised.value.field == field, raised.value.message
    return raised.value.message


# --- services ---------------------------------------------------------------------


def test_an_appeal_goes_through_every_level(loaded: Database) -> None:
    db = loaded
    appeal = file(db, "2024-05-10T09:00")
    assert (appeal.level, appeal.level_name, appeal.status) == (0, "informal resolution", "pending")
    assert appeal.event_at == at("2024-05-01T08:00")
    assert day(appeal.answer_due) == "2024-05-30"
    assert [s.kind for s in appeal.steps] == ["filed"]

    appeal = answer_appeal(
        db,
        FAC,
        appeal.id,
        outcome="denied",
        text="Security measure.",
        at=at("2024-05-20T10:00"),
        actor="unit",
    )
    assert appeal.status == "denied"
    assert day(appeal.file_next_by) == "2024-06-09"

    appeal = escalate_appeal(
        db, FAC, appeal.id, text="To the warden.", at=at("2024-06-01T09:00"), actor="kiosk"
    )
    assert (appeal.level, appeal.level_name, appeal.status) == (1, "warden", "pending")
    assert day(appeal.answer_due) == "2024-06-21"
    assert appeal.file_next_by is None

    appeal = extend_appeal(
        db, FAC, appeal.id, reason="Reviewing.", at=at("2024-06-15T09:00"), actor="warden"
    )
    assert appeal.extended
    assert day(appeal.answer_due) == "2024-07-11"
    raises(
        Conflict,
        "appeal_id",
        extend_appeal,
        db,
        FAC,
        appeal.id,
        reason="Again.",
        at=at("2024-06-16T09:00"),
        actor="warden",
    )

    appeal = answer_appeal(
        db,
        FAC,
        appeal.id,
        outcome="denied",
        text="Upheld.",
        at=at("2024-07-01T10:00"),
        actor="warden",
    )
    assert day(appeal.file_next_by) == "2024-07-21"
    appeal = escalate_appeal(
        db, FAC, appeal.id, text="To the region.", at=at("2024-07-10T09:00"), actor="counsel:ruiz"
    )
    assert (appeal.level_name, day(appeal.answer_due), appeal.extended) == (
        "regional director",
        "2024-08-09",
        False,
    )
    appeal = extend_appeal(
        db, FAC, appeal.id, reason="Records requested.", at=at("2024-08-01T09:00"), actor="region"
    )
    assert day(appeal.answer_due) == "2024-09-08"
    appeal = answer_appeal(
        db,
        FAC,
        appeal.id,
        outcome="partially_granted",
        text="One call with each daughter.",
        at=at("2024-08-20T10:00"),
        actor="region",
    )
    assert appeal.status == "partially_granted"
    assert day(appeal.file_next_by) == "2024-09-19"  # the central office's 30 days

    appeal = escalate_appeal(
        db,
        FAC,
        appeal.id,
        text="The order says two.",
        at=at("2024-09-01T09:00"),
        actor="counsel:ruiz",
    )
    assert (appeal.level, appeal.level_name) == (3, "central office")
    assert day(appeal.answer_due) == "2024-10-11"  # 40 days
    appeal = answer_appeal(
        db,
        FAC,
        appeal.id,
        outcome="denied",
        text="Final.",
        at=at("2024-10-01T10:00"),
        actor="central",
    )
    assert (appeal.status, appeal.file_next_by) == ("denied", None)
    message = raises(
        Conflict,
        "appeal_id",
        escalate_appeal,
        db,
        FAC,
        appeal.id,
        text="More.",
        at=at("2024-10-02T09:00"),
        actor="kiosk",
    )
    assert "last one" in message

    shown = get_appeal(db, FAC, appeal.id, at=at("2024-10-02T09:00"))
    assert [(s.level, s.kind, s.outcome) for s in shown.steps] == [
        (0, "filed", None),
        (0, "answered", "denied"),
        (1, "escalated", None),
        (1, "extended", None),
        (1, "answered", "denied"),
        (2, "escalated", None),
        (2, "extended", None),
        (2, "answered", "partially_granted"),
        (3, "escalated", None),
        (3, "answered", "denied"),
    ]
    assert shown.steps[3].text == "Reviewing."
    assert tags(db) == [
        "appeals:appeal:filed",
        "appeals:appeal:answered",
        "appeals:appeal:escalated",
        "appeals:appeal:extended",
        "appeals:appeal:answered",
        "appeals:appeal:escalated",
        "appeals:appeal:extended",
        "appeals:appeal:answered",
        "appeals:appeal:escalated",
        "appeals:appeal:answered",
    ]
    report = verify_log(db)
    assert report.problem is None
    with db.transaction() as session:
        activities = list(
            session.scalars(
                select(ProtectedActivityRow.id)
                .where(ProtectedActivityRow.kind == "appeal")
                .order_by(ProtectedActivityRow.occurred_at)
            )
        )
    assert activities == [f"appeal-{appeal.id}-{level}" for level in range(4)]


def test_silence_is_a_denial_that_opens_the_next_level(loaded: Database) -> None:
    db = loaded
    appeal = file(db, "2024-05-10T09:00")
    assert sweep_appeals(db, at=at("2024-05-30T23:59"), actor="sweep") == []
    assert list_appeals(db, FAC, at=at("2024-05-30T23:59"), overdue=True) == []
    overdue = list_appeals(db, FAC, at=at("2024-05-31T00:00"), overdue=True)
    assert [a.id for a in overdue] == [appeal.id]
    assert overdue[0].overdue

    assert sweep_appeals(db, at=at("2024-06-02T03:00"), actor="sweep") == [appeal.id]
    assert sweep_appeals(db, at=at("2024-06-02T03:00"), actor="sweep") == []
    silent = get_appeal(db, FAC, appeal.id, at=at("2024-06-02T03:00"))
    assert silent.status == "denied_by_silence"
    assert silent.steps[-1].kind == "denied_by_silence"
    assert silent.steps[-1].at == at("2024-05-31T00:00")  # when the answer window closed
    assert day(silent.file_next_by) == "2024-06-20"
    # Still overdue: staff never answered.
    assert [a.id for a in list_appeals(db, FAC, at=at("2024-06-02T03:00"), overdue=True)] == [
        appeal.id
    ]

    warden = escalate_appeal(
        db, FAC, appeal.id, text="No answer.", at=at("2024-06-20T23:00"), actor="kiosk"
    )
    assert (warden.level_name, warden.status) == ("warden", "pending")
    assert list_appeals(db, FAC, at=at("2024-06-21T00:00"), overdue=True) == []
    assert "appeals:appeal:denied_by_silence" in tags(db)


def test_escalating_after_silence_without_a_sweep(loaded: Database) -> None:
    db = loaded
    appeal = file(db, "2024-05-10T09:00")
    raises(
        Conflict,
        "appeal_id",
        escalate_appeal,
        db,
        FAC,
        appeal.id,
        text="Early.",
        at=at("2024-05-30T12:00"),
        actor="kiosk",
    )
    warden = escalate_appeal(
        db, FAC, appeal.id, text="No answer.", at=at("2024-06-05T09:00"), actor="kiosk"
    )
    assert warden.level == 1
    assert [s.kind for s in warden.steps] == ["filed", "denied_by_silence", "escalated"]
    # Past the warden's window, counted from the deemed denial on 31 May: late.
    other = file(db, "2024-05-10T09:00", notice_id=notice_id(db, "wife:visit"))
    late = at("2024-06-21T00:00")
    message = raises(
        InvalidInput, "at", escalate_appeal, db, FAC, other.id, text="Late.", at=late, actor="kiosk"
    )
    assert "2024-06-20" in message
    accepted = escalate_appeal(
        db,
        FAC,
        other.id,
        text="Late.",
        at=late,
        actor="warden",
        late_reason="The unit was locked down.",
    )
    assert accepted.level == 1


def test_a_late_filing_is_refused_naming_the_field(loaded: Database) -> None:
    db = loaded
    before = tags(db)
    message = raises(InvalidInput, "at", file, db, "2024-05-22T00:00")
    assert "2024-05-21" in message
    assert list_appeals(db, FAC, at=at("2024-05-22T00:00")) == []
    assert tags(db) == before
    assert retaliation_report(db, FAC)[0].activity == "motion-1"
    # The last minute of the last day is in time.
    assert file(db, "2024-05-21T23:59").status == "pending"


def test_staff_accept_a_late_filing_with_a_reason(loaded: Database) -> None:
    db = loaded
    appeal = file(db, "2024-06-15T09:00", late_reason="Notice delivered late to the unit.")
    assert appeal.status == "pending"
    with db.transaction() as session:
        payload = session.scalars(
            select(AuditEventRow.payload).where(AuditEventRow.tag == "appeals:appeal:filed")
        ).one()
    assert "Notice delivered late to the unit." in str(payload)


def test_filing_is_a_protected_activity_the_retaliation_report_weighs(loaded: Database) -> None:
    db = loaded
    assert [(f.action, f.activity) for f in retaliation_report(db, FAC)] == [
        ("sam-children", "motion-1")
    ]
    appeal = file(db, "2024-06-12T09:00", notice_id=notice_id(db, "wife:visit"))
    impose_rule(
        db,
        FAC,
        {
            "id": "no-visits",
            "authority": "sanction",
            "kind": "deny",
            "channel": "visit",
            "person": "salazar",
            "contacts": "any",
            "text": "No visits.",
        },
        at=at("2024-06-20T10:00"),
        actor="lieutenant",
        reason="An incident report.",
    )
    flags = {f.action: f for f in retaliation_report(db, FAC)}
    assert flags["no-visits"].activity == f"appeal-{appeal.id}-0"
    assert flags["no-visits"].days == 8
    assert flags["sam-children"].activity == "motion-1"


def test_a_security_measure_may_go_to_the_issuing_office(loaded: Database) -> None:
    db = loaded
    appeal = file(db, "2024-05-10T09:00", route="issuing_office")
    assert (appeal.route, appeal.level_name) == ("issuing_office", "issuing office")
    assert day(appeal.answer_due) == "2024-05-30"
    denied = answer_appeal(
        db, FAC, appeal.id, outcome="denied", text="Stands.", at=at("2024-05-12T09:00"), actor="sis"
    )
    assert denied.file_next_by is None
    raises(
        Conflict,
        "appeal_id",
        escalate_appeal,
        db,
        FAC,
        appeal.id,
        text="More.",
        at=at("2024-05-13T09:00"),
        actor="kiosk",
    )
    # An approval is no security measure.
    message = raises(
        InvalidInput,
        "route",
        file,
        db,
        "2024-06-12T09:00",
        notice_id=notice_id(db, "wife:visit"),
        route="issuing_office",
    )
    assert "security measure" in message
    # A refused call: the decision names sam-children, a security measure.
    refused = attempt_session(
        db, FAC, "salazar", "daughter-b", at=at("2024-05-07T10:00"), minutes=15, actor=ACTOR
    )
    assert refused.status == "denied"
    against_call = file(
        db,
        "2024-05-08T09:00",
        notice_id=None,
        session_id=refused.id,
        route="issuing_office",
        filed_by="counsel",
        filer="D. Ruiz",
    )
    assert (against_call.session_id, against_call.event_at) == (refused.id, at("2024-05-07T10:00"))
    assert against_call.filed_by == "counsel"
    allowed = attempt_session(
        db, FAC, "salazar", "wife", at=at("2024-06-20T10:00"), minutes=15, actor=ACTOR
    )
    assert allowed.status == "completed"
    standard = file(db, "2024-06-21T09:00", notice_id=None, session_id=allowed.id)
    assert standard.level_name == "informal resolution"


def test_bad_requests_name_the_field_and_write_nothing(loaded: Database) -> None:
    db = loaded
    sam = notice_id(db, "sam-children")
    raises(NotFound, "person_id", file, db, "2024-05-10T09:00", person_id="nobody")
    raises(NotFound, "notice_id", file, db, "2024-05-10T09:00", notice_id=9999)
    raises(InvalidInput, "notice_id", file, db, "2024-05-10T09:00", notice_id=None)
    raises(InvalidInput, "notice_id", file, db, "2024-05-10T09:00", session_id=1)
    raises(NotFound, "session_id", file, db, "2024-05-10T09:00", notice_id=None, session_id=9999)
    raises(InvalidInput, "filed_by", file, db, "2024-05-10T09:00", filed_by="cousin")
    raises(InvalidInput, "route", file, db, "2024-05-10T09:00", route="pope")
    raises(InvalidInput, "text", file, db, "2024-05-10T09:00", text="   ")
    raises(InvalidInput, "text", file, db, "2024-05-10T09:00", text="a\x00b")
    raises(InvalidInput, "filer", file, db, "2024-05-10T09:00", filer="")
    assert list_appeals(db, FAC, at=at("2024-05-10T09:00")) == []
    assert tags(db) == []

    appeal = file(db, "2024-05-10T09:00", notice_id=sam)
    raises(Conflict, "notice_id", file, db, "2024-05-11T09:00", notice_id=sam)
    raises(
        InvalidInput,
        "outcome",
        answer_appeal,
        db,
        FAC,
        appeal.id,
        outcome="maybe",
        text="x",
        at=at("2024-05-11T09:00"),
        actor="unit",
    )
    raises(
        InvalidInput,
        "at",
        answer_appeal,
        db,
        FAC,
        appeal.id,
        outcome="denied",
        text="x",
        at=at("2024-05-09T09:00"),
        actor="unit",
    )
    message = raises(
        Conflict,
        "appeal_id",
        extend_appeal,
        db,
        FAC,
        appeal.id,
        reason="x",
        at=at("2024-05-11T09:00"),
        actor="unit",
    )
    assert "no extension" in message
    raises(
        NotFound,
        "appeal_id",
        answer_appeal,
        db,
        FAC,
        9999,
        outcome="denied",
        text="x",
        at=at("2024-05-11T09:00"),
        actor="unit",
    )
    raises(NotFound, "appeal_id", get_appeal, db, FAC, 9999, at=at("2024-05-11T09:00"))
    raises(
        NotFound, "person_id", list_appeals, db, FAC, at=at("2024-05-11T09:00"), person_id="nobody"
    )
    assert [s.kind for s in get_appeal(db, FAC, appeal.id, at=at("2024-05-11T09:00")).steps] == [
        "filed"
    ]

    gone = withdraw_appeal(
        db, FAC, appeal.id, at=at("2024-05-12T09:00"), actor="kiosk", reason="Resolved informally."
    )
    assert gone.status == "withdrawn"
    raises(
        Conflict,
        "appeal_id",
        withdraw_appeal,
        db,
        FAC,
        appeal.id,
        at=at("2024-05-12T10:00"),
        actor="kiosk",
    )
    raises(
        Conflict,
        "appeal_id",
        answer_appeal,
        db,
        FAC,
        appeal.id,
        outcome="granted",
        text="x",
        at=at("2024-05-12T10:00"),
        actor="unit",
    )
    # Withdrawn, it may be filed again while the window is open.
    assert file(db, "2024-05-13T09:00", notice_id=sam).id != appeal.id


def test_levels_are_configured_per_facility(loaded: Database) -> None:
    db = loaded
    assert appeal_levels(db, FAC) == LevelConfig()
    bad = [
        {"name": "unit manager", "file_days": 5, "answer_days": 3},
        {"name": "warden", "file_days": 10, "answer_days": "soon"},
    ]
    message = raises(
        InvalidInput,
        "levels[1].answer_days",
        configure_appeal_levels,
        db,
        FAC,
        bad,
        actor="warden",
        at=at("2024-05-01T00:00"),
    )
    assert "whole number" in message
    raises(
        NotFound,
        "facility_id",
        configure_appeal_levels,
        db,
        "nowhere",
        [{"name": "warden", "file_days": 20, "answer_days": 20}],
        actor="x",
        at=at("2024-05-01T00:00"),
    )
    config = configure_appeal_levels(
        db,
        FAC,
        [
            {"name": "unit manager", "file_days": 5, "answer_days": 3},
            {"name": "warden", "file_days": 10, "answer_days": 15, "extension_days": 5},
        ],
        actor="warden",
        at=at("2024-05-01T00:00"),
    )
    assert appeal_levels(db, FAC) == config
    assert config.issuing_office == LevelConfig().issuing_office
    assert [lv.name for lv in config.standard] == ["unit manager", "warden"]
    assert "appeals:levels:configured" in tags(db)
    # The notice printed 2024-05-21 (appeal_days): five days to file do not cut it short.
    raises(InvalidInput, "at", file, db, "2024-05-22T00:00")
    # A refused call has no printed date: its five days hold.
    refused = attempt_session(
        db, FAC, "salazar", "daughter-b", at=at("2024-05-07T10:00"), minutes=15, actor=ACTOR
    )
    against = {"notice_id": None, "session_id": refused.id}
    raises(InvalidInput, "at", file, db, "2024-05-13T00:00", **against)
    assert file(db, "2024-05-12T23:59", **against).level_name == "unit manager"
    appeal = file(db, "2024-05-06T23:00")
    assert (appeal.level_name, day(appeal.answer_due)) == ("unit manager", "2024-05-09")
    warden = escalate_appeal(
        db, FAC, appeal.id, text="No answer.", at=at("2024-05-15T09:00"), actor="kiosk"
    )
    assert (warden.level_name, day(warden.answer_due)) == ("warden", "2024-05-30")
    assert FEDERAL_LEVELS[0].name == "informal resolution"


# --- the API ----------------------------------------------------------------------


class Api:
    def __init__(self, client: TestClient, tokens: dict[str, str]) -> None:
        self.client = client
        self.tokens = tokens

    def post(self, url: str, body: object, role: str = "staff") -> httpx.Response:
        return self.client.post(
            url, json=body, headers={"Authorization": f"Bearer {self.tokens[role]}"}
        )

    def get(self, url: str, role: str = "staff", **params: str) -> httpx.Response:
        return self.client.get(
            url, params=params, headers={"Authorization": f"Bearer {self.tokens[role]}"}
        )


@pytest.fixture
def api(loaded: Database) -> Iterator[Api]:
    tokens = {
        role: create_token(loaded, f"{role}-client", role, at=at("2024-01-01T00:00"))[1]
        for role in ("staff", "telephony")
    }
    # The person at a kiosk: their own account.
    tokens["read"] = person_token(loaded, FAC, "salazar", "read-client")
    with TestClient(create_app(loaded), raise_server_exceptions=False) as client:
        yield Api(client, tokens)


def problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if field is not None:
        assert body["field"] == field, body
    return body


FILING = {
    "person_id": "salazar",
    "notice_id": 1,
    "filed_by": "person",
    "filer": "R. Salazar",
    "text": "Nobody told me why.",
}


def test_api_staff_file_answer_extend_escalate(api: Api) -> None:
    created = api.post("/v1/appeals", {**FILING, "at": "2024-05-10T09:00"})
    assert created.status_code == 201, created.text
    appeal = created.json()
    assert appeal["status"] == "pending"
    assert appeal["level_name"] == "informal resolution"
    assert appeal["event_at"] == "2024-05-01T08:00:00"
    assert appeal["filed_at"] == "2024-05-10T09:00:00"
    assert appeal["answer_due"] == "2024-05-31T00:00:00"
    assert appeal["answer_by"] == "2024-05-30"
    assert [s["kind"] for s in appeal["steps"]] == ["filed"]
    url = f"/v1/appeals/{appeal['id']}"

    denied = api.post(
        f"{url}/answer", {"outcome": "denied", "text": "No.", "at": "2024-05-11T09:00"}
    )
    assert denied.status_code == 200, denied.text
    assert denied.json()["escalate_by"] == "2024-05-31"
    up = api.post(f"{url}/escalate", {"text": "To the warden.", "at": "2024-05-12T09:00"})
    assert up.status_code == 200, up.text
    assert (up.json()["level"], up.json()["answer_by"]) == (1, "2024-06-01")
    more = api.post(f"{url}/extend", {"reason": "Reviewing.", "at": "2024-05-20T09:00"})
    assert more.status_code == 200, more.text
    assert more.json()["answer_by"] == "2024-06-21"
    assert more.json()["extended"] is True
    problem(
        api.post(f"{url}/extend", {"reason": "Again.", "at": "2024-05-21T09:00"}), 409, "appeal_id"
    )

    listed = api.get("/v1/appeals", "read", person_id="salazar", at="2024-06-22T00:00")
    assert listed.status_code == 200
    assert [(a["id"], a["overdue"]) for a in listed.json()] == [(appeal["id"], True)]
    assert "steps" not in listed.json()[0]
    overdue = api.get("/v1/appeals", "read", overdue="true", at="2024-06-21T23:00")
    assert overdue.json() == []
    assert api.get(url, "telephony").status_code == 404  # not the call path's to see
    shown = api.get(url, "read")
    assert [s["kind"] for s in shown.json()["steps"]] == [
        "filed",
        "answered",
        "escalated",
        "extended",
    ]
    assert shown.json()["steps"][1]["actor"].endswith(":staff-client")


def test_api_scopes(api: Api) -> None:
    # A person at a kiosk (read) files now: they may neither date it nor excuse lateness.
    problem(api.post("/v1/appeals", {**FILING, "at": "2024-05-10T09:00"}, "read"), 403, "at")
    problem(api.post("/v1/appeals", {**FILING, "late_reason": "x"}, "read"), 403, "late_reason")
    # Now is long after the notice's window.
    body = problem(api.post("/v1/appeals", FILING, "read"), 422, "at")
    assert "2024-05-21" in body["detail"]
    created = api.post("/v1/appeals", {**FILING, "at": "2024-05-10T09:00"})
    url = f"/v1/appeals/{created.json()['id']}"
    # The person sees their appeal but may not answer it; the telephony platform
    # does not see it at all.
    for role, status in (("read", 403), ("telephony", 404)):
        problem(api.post(f"{url}/answer", {"outcome": "denied", "text": "No."}, role), status)
        problem(api.post(f"{url}/extend", {"reason": "More time."}, role), status)
    # Deemed denied long ago, and the warden's window has closed too.
    problem(api.post(f"{url}/escalate", {"text": "No answer."}, "read"), 422, "at")
    withdrawn = api.post(f"{url}/withdraw", {"reason": "Moot."}, "read")
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"


def test_api_a_kiosk_files_against_a_fresh_notice(api: Api, loaded: Database) -> None:
    now = datetime.now(UTC)
    impose_rule(
        loaded,
        FAC,
        {
            "id": "no-video",
            "authority": "security_measure",
            "kind": "deny",
            "channel": "video",
            "person": "salazar",
            "contacts": "any",
            "text": "No video calls.",
        },
        at=now - timedelta(hours=1),
        actor="sis",
        reason="Review.",
    )
    fresh = notice_id(loaded, "no-video")
    created = api.post(
        "/v1/appeals", {**FILING, "notice_id": fresh, "route": "issuing_office"}, "read"
    )
    assert created.status_code == 201, created.text
    assert created.json()["level_name"] == "issuing office"
    actor = created.json()["steps"][0]["actor"]
    assert actor.startswith("person:")
    assert actor.endswith(":read-client")


def test_api_bad_input_is_problem_json(api: Api) -> None:
    problem(
        api.post("/v1/appeals", {**FILING, "filed_by": "cousin", "at": "2024-05-10T09:00"}),
        422,
        "filed_by",
    )
    problem(api.post("/v1/appeals", {**FILING, "text": " ", "at": "2024-05-10T09:00"}), 422, "text")
    problem(
        api.post("/v1/appeals", {**FILING, "notice_id": 999, "at": "2024-05-10T09:00"}),
        404,
        "notice_id",
    )
    problem(api.post("/v1/appeals", {**FILING, "at": "2024-13-10T09:00"}), 422, "at")
    no_text = {k: v for k, v in FILING.items() if k != "text"}
    problem(api.post("/v1/appeals", no_text), 422, "text")
    problem(api.get("/v1/appeals/abc"), 422, "appeal_id")
    problem(api.get("/v1/appeals/999"), 404, "appeal_id")
    problem(
        api.post("/v1/appeals/999/answer", {"outcome": "denied", "text": "x"}), 404, "appeal_id"
    )
    filed = api.post("/v1/appeals", {**FILING, "at": "2024-05-10T09:00"}).json()
    answer = {"outcome": "nope", "text": "x"}
    problem(api.post(f"/v1/appeals/{filed['id']}/answer", answer), 422, "outcome")
    problem(api.get("/v1/appeals", person_id="nobody"), 404, "person_id")
    assert [appeal["id"] for appeal in api.get("/v1/appeals").json()] == [filed["id"]]


# --- the CLI ----------------------------------------------------------------------


def invoke(db_url: str, *args: str) -> Any:
    return runner.invoke(cli, [*args, "--database-url", db_url])


def test_cli_appeals(loaded: Database, db_url: str, tmp_path: Path) -> None:
    sam = str(notice_id(loaded, "sam-children"))
    filed = invoke(
        db_url,
        "appeals",
        "file",
        "--person",
        "salazar",
        "--notice",
        sam,
        "--filer",
        "R. Salazar",
        "--text",
        "Why?",
        "--at",
        "2024-05-10T09:00",
        "--json",
    )
    assert filed.exit_code == 0, filed.output
    appeal = json.loads(filed.output)
    assert (appeal["status"], appeal["answer_by"]) == ("pending", "2024-05-30")
    ident = str(appeal["id"])

    late = invoke(
        db_url,
        "appeals",
        "file",
        "--person",
        "salazar",
        "--notice",
        str(notice_id(loaded, "wife:visit")),
        "--filer",
        "R. Salazar",
        "--text",
        "Why?",
        "--at",
        "2024-07-01T00:00",
    )
    assert late.exit_code == 2
    assert "(at)" in late.output
    assert "2024-06-30" in late.output

    listed = invoke(db_url, "appeals", "list", "--at", "2024-05-31T00:00")
    assert listed.exit_code == 0, listed.output
    assert "informal" in listed.output
    assert "(overdue)" in listed.output
    assert "2024-05-30" in listed.output
    assert "1 appeals" in listed.output
    overdue = invoke(
        db_url,
        "appeals",
        "list",
        "--overdue",
        "--person",
        "salazar",
        "--json",
        "--at",
        "2024-05-30T23:00",
    )
    assert json.loads(overdue.output) == []

    swept = invoke(db_url, "appeals", "sweep", "--at", "2024-06-01T00:00")
    assert swept.exit_code == 0, swept.output
    assert "1 appeals denied by silence" in swept.output
    up = invoke(
        db_url, "appeals", "escalate", ident, "--text", "No answer.", "--at", "2024-06-02T09:00"
    )
    assert up.exit_code == 0, up.output
    assert "warden" in up.output
    extended = invoke(
        db_url,
        "appeals",
        "extend",
        ident,
        "--reason",
        "Reviewing.",
        "--at",
        "2024-06-03T09:00",
        "--json",
    )
    assert json.loads(extended.output)["answer_by"] == "2024-07-12"
    answered = invoke(
        db_url,
        "appeals",
        "answer",
        ident,
        "--outcome",
        "granted",
        "--text",
        "Calls resume.",
        "--at",
        "2024-06-04T09:00",
    )
    assert answered.exit_code == 0, answered.output
    assert "granted" in answered.output
    shown = invoke(db_url, "appeals", "show", ident)
    assert shown.exit_code == 0, shown.output
    assert "resume." in shown.output
    steps = json.loads(invoke(db_url, "appeals", "show", ident, "--json").output)["steps"]
    assert [(s["kind"], s["due"]) for s in steps] == [
        ("filed", "2024-05-30"),
        ("denied_by_silence", "2024-06-20"),
        ("escalated", "2024-06-22"),
        ("extended", "2024-07-12"),
        ("answered", None),
    ]
    again = invoke(db_url, "appeals", "withdraw", ident)
    assert again.exit_code == 1
    assert "(appeal_id)" in again.output

    shown_levels = invoke(db_url, "appeals", "levels", "show", "--json")
    assert json.loads(shown_levels.output)["standard"][3] == {
        "name": "central office",
        "file_days": 30,
        "answer_days": 40,
        "extension_days": 20,
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {name: warden, file_days: 20, answer_days: 20}\n- {name: region}\n")
    refused = invoke(db_url, "appeals", "levels", "set", "--file", str(bad))
    assert refused.exit_code == 2
    assert "levels[1].file_days" in refused.output
    good = tmp_path / "levels.yaml"
    good.write_text(
        "standard:\n  - {name: warden, file_days: 20, answer_days: 20, extension_days: 20}\n"
        "issuing_office:\n  - {name: security chief, file_days: 10, answer_days: 10}\n"
    )
    set_ = invoke(db_url, "appeals", "levels", "set", "--file", str(good))
    assert set_.exit_code == 0, set_.output
    table = invoke(db_url, "appeals", "levels", "show")
    assert "security chief" in table.output
    assert "informal resolution" not in table.output
    missing = invoke(db_url, "appeals", "levels", "set", "--file", str(tmp_path / "none.yaml"))
    assert missing.exit_code == 2
    assert "(--file)" in missing.output


def test_cli_help_on_every_command() -> None:
    for command in ("list", "show", "file", "answer", "extend", "escalate", "withdraw", "sweep"):
        result = runner.invoke(cli, ["appeals", command, "--help"])
        assert result.exit_code == 0, result.output
        assert "--facility" in result.output
    for command in ("show", "set"):
        assert runner.invoke(cli, ["appeals", "levels", command, "--help"]).exit_code == 0
