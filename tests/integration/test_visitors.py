"""Visitor approval as services and over the API, on the supermax scenario
(SQLite and PostgreSQL): applying, the ID check, the supervising officer's
consent as the first of two keys, the warden's decision for a former
co-defendant, minors with an approved adult, decisions with their notices and
the applicant's email, restrictions shown as "not until {date}", settings."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from _databases import SUPERMAX, DbTemplate
from sqlalchemy import select
from typer.testing import CliRunner, Result

from kinline.api import create_app
from kinline.audit.service import verify_log
from kinline.changes.visitors import decide_visitor, lift_visitor_restriction, restrict_visitor
from kinline.cli import app as cli
from kinline.db.engine import Database
from kinline.db.tables import AuditEventRow, NoticeDeliveryRow
from kinline.errors import AlreadyExists, Conflict, Forbidden, InvalidInput, KinlineError
from kinline.identity.model import Binding, Kind, Role
from kinline.identity.service import add_subject, create_token, issue_token
from kinline.notices.service import list_notices
from kinline.people.service import get_contact
from kinline.rules.model import Channel, Setting
from kinline.visits import visitors
from kinline.visits.model import RestrictionKind, Supervision, Verdict, VisitorStatus, VisitSettings
from kinline.visits.slots import Refusal

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

FAC = "usp-red-mesa"
DENVER = ZoneInfo("America/Denver")
WHEN = datetime(2024, 7, 1, 9, tzinfo=DENVER).astimezone(UTC)
runner = CliRunner()


@pytest.fixture
def db_template() -> DbTemplate:
    return SUPERMAX


def application(contact_id: str = "wife", **changes: Any) -> visitors.Application:
    fields: dict[str, Any] = {
        "contact_id": contact_id,
        "date_of_birth": date(1982, 4, 5),
        "address": "100 Spring St, Los Angeles, CA",
        "country": "US",
        "criminal_record_declared": True,
        "criminal_record": "Conspiracy, 2019 (released 2023)",
        "id_document_type": "driving_licence",
        "id_document_number": "D7654321",
        "timezone": "America/Los_Angeles",
        "supervision": Supervision.SUPERVISED_RELEASE,
        "supervising_officer": "P. Ortega",
        "supervising_office": "US Probation, Central District of California",
    }
    fields.update(changes)
    return visitors.Application(**fields)


def apply(db: Database, **changes: Any) -> visitors.Visitor:
    return visitors.apply(db, FAC, application(**changes), at=WHEN, actor="applicant")


def check(db: Database, visitor_id: int) -> None:
    visitors.check_id(
        db,
        FAC,
        visitor_id,
        document_type="driving_licence",
        document_number="D7654321",
        at=WHEN,
        actor="visiting",
    )


def decide(db: Database, visitor_id: int, verdict: Verdict = Verdict.APPROVE, **kw: Any) -> Any:
    return decide_visitor(
        db,
        FAC,
        visitor_id,
        verdict=verdict,
        reason=kw.pop("reason", "Identity and ties verified."),
        at=kw.pop("at", WHEN),
        actor="visiting",
        **kw,
    )


def tags(db: Database) -> list[str]:
    with db.transaction() as session:
        return list(
            session.scalars(
                select(AuditEventRow.tag)
                .where(AuditEventRow.tag.like("visits:%"))
                .order_by(AuditEventRow.id)
            )
        )


def raises(error: type[KinlineError], field: str, call: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(error) as raised:
        call(*args, **kw)
    assert raised.value.field == field, raised.value.message
    return raised.value.message


# --- services -----------------------------------------------------------------


def test_the_wife_needs_her_supervising_officers_consent_then_the_facilitys(
    db: Database,
) -> None:
    wife = apply(db)
    assert wife.status is VisitorStatus.APPLIED
    check(db, wife.id)
    message = raises(Conflict, "officer_consent", decide, db, wife.id)
    assert "supervising officer's recorded consent" in message
    view = visitors.get_visitor(db, FAC, wife.id, at=WHEN)
    assert [b.code for b in view.blockers] == ["officer_consent_missing"]
    assert view.visitor.status is VisitorStatus.APPLIED  # nothing half-written

    visitors.record_consent(
        db, FAC, wife.id, officer="P. Ortega", note="Visits approved.", at=WHEN, actor="visiting"
    )
    before = len(list_notices(db, FAC, "salazar"))
    decision = decide(db, wife.id)
    assert decision.visitor.status is VisitorStatus.APPROVED
    assert decision.visitor.decision_reason == "Identity and ties verified."
    notices = list_notices(db, FAC, "salazar")
    assert len(notices) == before + 1
    assert notices[-1].id == decision.notice_id
    assert notices[-1].change == "visitor_approved"
    assert "E. Salazar" in notices[-1].title  # in Spanish, the person's language
    assert notices[-1].language == "es"
    contact = get_contact(db, FAC, "wife", at=WHEN)
    assert Channel.VISIT in contact.contact.approved
    assert tags(db) == [
        "visits:visitor:applied",
        "visits:visitor:id_checked",
        "visits:visitor:consented",
        "visits:visitor:approved",
    ]
    assert verify_log(db).problem is None


def test_a_decision_needs_a_reason_and_a_decided_application_is_not_decided_again(
    db: Database,
) -> None:
    wife = apply(db, supervision=None, supervising_officer=None, supervising_office=None)
    check(db, wife.id)
    raises(InvalidInput, "reason", decide, db, wife.id, reason="  ")
    decide(db, wife.id, Verdict.REFUSE, reason="Ties not shown.")
    raises(Conflict, "visitor_id", decide, db, wife.id)
    # Refused: the contact may apply again.
    again = apply(db, supervision=None, supervising_officer=None, supervising_office=None)
    assert again.id != wife.id
    raises(
        AlreadyExists,
        "contact_id",
        apply,
        db,
        supervision=None,
        supervising_officer=None,
        supervising_office=None,
    )


def test_a_refusal_is_a_notice_to_the_person_and_an_email_to_the_applicant(
    db: Database,
) -> None:
    wife = apply(db)
    decision = decide(db, wife.id, Verdict.REFUSE, reason="Incomplete application.")
    assert decision.emailed == (get_contact(db, FAC, "wife", at=WHEN).details.email is not None)
    notice = list_notices(db, FAC, "salazar")[-1]
    assert notice.change == "visitor_refused"
    assert notice.reason == "Incomplete application."
    with db.transaction() as session:
        messages = session.scalars(
            select(NoticeDeliveryRow).where(NoticeDeliveryRow.notice_id.is_(None))
        ).all()
    if decision.emailed:
        assert any("Incomplete application." in (m.message_body or "") for m in messages)
    assert visitors.get_visitor(db, FAC, wife.id, at=WHEN).visitor.status is VisitorStatus.REFUSED


def test_a_former_co_defendant_is_decided_by_the_warden(db: Database) -> None:
    wife = apply(db, co_defendant=True)
    check(db, wife.id)
    visitors.record_consent(db, FAC, wife.id, officer="P. Ortega", note=None, at=WHEN, actor="x")
    assert visitors.get_visitor(db, FAC, wife.id, at=WHEN).flagged
    raises(Forbidden, "visitor_id", decide, db, wife.id)
    raises(
        InvalidInput, "channels[1]", decide, db, wife.id, channels=[Channel.VISIT, Channel.PHONE]
    )
    assert decide(db, wife.id, warden=True).visitor.status is VisitorStatus.APPROVED


def test_a_minor_visits_only_with_an_approved_adult(db: Database) -> None:
    child = visitors.apply(
        db,
        FAC,
        application(
            "daughter-a",
            date_of_birth=date(2014, 2, 3),
            criminal_record_declared=False,
            criminal_record=None,
            supervision=None,
            supervising_officer=None,
            supervising_office=None,
            country="MX",
            timezone="America/Mexico_City",
            accompanying_contact_id="brother",
        ),
        at=WHEN,
        actor="applicant",
    )
    check(db, child.id)
    message = raises(Conflict, "accompanying_contact_id", decide, db, child.id)
    assert "'brother' is not an approved visitor" in message
    uncle = visitors.apply(
        db,
        FAC,
        application(
            "brother",
            criminal_record_declared=False,
            criminal_record=None,
            supervision=None,
            supervising_officer=None,
            supervising_office=None,
        ),
        at=WHEN,
        actor="applicant",
    )
    check(db, uncle.id)
    decide(db, uncle.id)
    approved = decide(db, child.id, channels=[Channel.VISIT, Channel.VIDEO])
    assert approved.visitor.status is VisitorStatus.APPROVED
    contact = get_contact(db, FAC, "daughter-a", at=WHEN).contact
    assert {Channel.VISIT, Channel.VIDEO} <= contact.approved


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"date_of_birth": date(2030, 1, 1)}, "date_of_birth"),
        ({"country": "ZZ"}, "country"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"supervising_officer": None}, "supervising_officer"),
        ({"criminal_record": None}, "criminal_record"),
        ({"id_document_type": "library_card"}, "id_document_type"),
        ({"accompanying_contact_id": "wife"}, "accompanying_contact_id"),
        ({"contact_id": "nobody"}, "contact_id"),
        ({"accompanying_contact_id": "nobody"}, "accompanying_contact_id"),
    ],
)
def test_a_bad_application_names_its_field_and_writes_nothing(
    db: Database, changes: dict[str, Any], field: str
) -> None:
    raises(KinlineError, field, apply, db, **changes)
    assert visitors.list_visitors(db, FAC, at=WHEN) == []
    assert tags(db) == []


def test_a_restriction_is_shown_as_not_until_and_booking_sees_it(db: Database) -> None:
    wife = apply(db, supervision=None, supervising_officer=None, supervising_office=None)
    check(db, wife.id)
    decide(db, wife.id)
    before = len(list_notices(db, FAC, "salazar"))
    restricted = restrict_visitor(
        db,
        FAC,
        wife.id,
        kind=RestrictionKind.CLOSED,
        reason="Contraband passed at the last visit.",
        until=date(2024, 9, 1),
        at=WHEN,
        actor="security",
    )
    assert restricted.shown == "Closed visits only, not until 2024-09-01"
    notices = list_notices(db, FAC, "salazar")
    assert len(notices) == before + 1 and notices[-1].change == "visitor_limited"
    assert "not until 2024-09-01" in (notices[-1].reason or "")
    view = visitors.get_visitor(db, FAC, wife.id, at=WHEN)
    assert view.shown == ["Closed visits only, not until 2024-09-01"]
    with db.transaction() as session:
        [during] = visitors.standings(session, FAC, ["wife"], date(2024, 8, 1), at=WHEN)
        [after] = visitors.standings(session, FAC, ["wife"], date(2024, 9, 1), at=WHEN)
        [other] = visitors.standings(session, FAC, ["brother"], date(2024, 8, 1), at=WHEN)
    assert (during.refusal, during.setting) == (None, Setting.CLOSED)
    assert (after.refusal, after.setting) == (None, Setting.OPEN)
    assert other.refusal is Refusal.VISITOR_NOT_APPROVED

    banned = restrict_visitor(
        db,
        FAC,
        wife.id,
        kind=RestrictionKind.BANNED,
        reason="Assault in the visiting room.",
        until=date(2024, 8, 1),
        at=WHEN,
        actor="security",
    )
    with db.transaction() as session:
        [ban] = visitors.standings(session, FAC, ["wife"], date(2024, 7, 15), at=WHEN)
    assert ban.refusal is Refusal.VISITOR_RESTRICTED
    lifted = lift_visitor_restriction(
        db, FAC, banned.restriction.id, reason="Finding overturned.", at=WHEN, actor="warden"
    )
    assert lifted.restriction.lifted_at == WHEN
    with db.transaction() as session:
        [clear] = visitors.standings(session, FAC, ["wife"], date(2024, 7, 15), at=WHEN)
    assert clear.refusal is None
    raises(
        Conflict,
        "restriction_id",
        lift_visitor_restriction,
        db,
        FAC,
        banned.restriction.id,
        reason="Again.",
        at=WHEN,
        actor="warden",
    )
    raises(
        InvalidInput,
        "until",
        restrict_visitor,
        db,
        FAC,
        wife.id,
        kind=RestrictionKind.BANNED,
        reason="Past.",
        until=date(2024, 6, 1),
        at=WHEN,
        actor="security",
    )
    assert verify_log(db).problem is None


def test_settings_default_then_are_set_and_checked(db: Database) -> None:
    assert visitors.get_settings(db, FAC) == VisitSettings()
    chosen = VisitSettings(adult_age=16, public_min_notice_days=1, reservation_minutes=15)
    visitors.set_settings(db, FAC, chosen, at=WHEN, actor="admin")
    assert visitors.get_settings(db, FAC) == chosen
    raises(
        InvalidInput,
        "public_min_notice_days",
        visitors.set_settings,
        db,
        FAC,
        VisitSettings(public_min_notice_days=40),
        at=WHEN,
        actor="admin",
    )
    assert visitors.get_settings(db, FAC) == chosen


# --- the API --------------------------------------------------------------------


@pytest.fixture
def client(db: Database) -> Iterator[tuple[TestClient, dict[str, str]]]:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    tokens = {
        role: create_token(db, f"{role}-client", role, at=at)[1] for role in ("staff", "read")
    }
    with TestClient(create_app(db), raise_server_exceptions=False) as test_client:
        yield test_client, {r: f"Bearer {t}" for r, t in tokens.items()}


def test_the_api_applies_checks_consents_decides_and_restricts(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    http, auth = client
    staff = {"Authorization": auth["staff"]}
    body = {
        "contact_id": "wife",
        "date_of_birth": "1982-04-05",
        "address": "100 Spring St, Los Angeles, CA",
        "country": "US",
        "timezone": "America/Los_Angeles",
        "criminal_record_declared": False,
        "supervision": "supervised_release",
        "supervising_officer": "P. Ortega",
        "at": "2024-07-01T09:00",
    }
    response = http.post("/v1/visitors", json=body, headers=staff)
    assert response.status_code == 201, response.text
    visitor = response.json()
    assert visitor["status"] == "applied"
    assert [b["code"] for b in visitor["blockers"]] == ["id_not_checked", "officer_consent_missing"]
    vid = visitor["id"]
    refused = http.post(
        f"/v1/visitors/{vid}/decision",
        json={"verdict": "approve", "reason": "Verified.", "at": "2024-07-01T10:00"},
        headers=staff,
    )
    assert refused.status_code == 409
    assert refused.json()["field"] == "id_document"
    for path, payload in (
        ("id-check", {"document_type": "passport", "document_number": "X1"}),
        ("consent", {"officer": "P. Ortega", "note": "No objection."}),
    ):
        response = http.post(f"/v1/visitors/{vid}/{path}", json=payload, headers=staff)
        assert response.status_code == 200, response.text
    bad = http.post(
        f"/v1/visitors/{vid}/decision", json={"verdict": "maybe", "reason": "?"}, headers=staff
    )
    assert bad.status_code == 422 and bad.json()["field"] == "verdict"
    response = http.post(
        f"/v1/visitors/{vid}/decision",
        json={"verdict": "approve", "reason": "Verified.", "at": "2024-07-01T10:00"},
        headers=staff,
    )
    assert response.status_code == 200, response.text
    assert response.json()["visitor"]["status"] == "approved"
    notice = response.json()["notice_id"]
    letter = http.get(f"/v1/notices/{notice}/html", headers=staff).text
    assert "E. Salazar está aprobado/a para visitarle" in letter  # the person reads Spanish
    assert "Verified." in letter

    observer = {"Authorization": auth["read"]}
    forbidden = http.post(
        f"/v1/visitors/{vid}/restrictions",
        json={"kind": "banned", "reason": "No."},
        headers=observer,
    )
    assert forbidden.status_code == 403
    response = http.post(
        f"/v1/visitors/{vid}/restrictions",
        json={"kind": "non_contact", "reason": "Contraband.", "until": "2099-01-01"},
        headers=staff,
    )
    assert response.status_code == 201, response.text
    restriction = response.json()["restriction"]
    assert restriction["shown"] == "Non-contact visits only, not until 2099-01-01"
    shown = http.get(f"/v1/visitors/{vid}", headers=observer).json()["shown"]
    assert shown == ["Non-contact visits only, not until 2099-01-01"]
    listed = http.get("/v1/visitors", params={"person_id": "salazar"}, headers=observer)
    assert [v["id"] for v in listed.json()] == [vid]
    lift = http.post(
        f"/v1/visitors/{vid}/restrictions/{restriction['id']}/lift",
        json={"reason": "Reviewed."},
        headers=staff,
    )
    assert lift.status_code == 200, lift.text
    assert lift.json()["restriction"]["lifted_at"] is not None
    missing = http.post(
        f"/v1/visitors/{vid}/restrictions/999/lift", json={"reason": "x"}, headers=staff
    )
    assert missing.status_code == 404
    assert http.get("/v1/visitors/999", headers=staff).status_code == 404


def test_the_api_reads_and_sets_visit_settings(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    http, auth = client
    staff, observer = {"Authorization": auth["staff"]}, {"Authorization": auth["read"]}
    assert http.get("/v1/visit-settings", headers=observer).json()["adult_age"] == 18
    assert (
        http.put("/v1/visit-settings", json={"adult_age": 16}, headers=observer).status_code == 403
    )
    response = http.put("/v1/visit-settings", json={"adult_age": 16}, headers=staff)
    assert response.status_code == 200 and response.json()["adult_age"] == 16
    bad = http.put(
        "/v1/visit-settings",
        json={"staff_min_notice_days": 9, "staff_max_notice_days": 3},
        headers=staff,
    )
    assert bad.status_code == 422 and bad.json()["field"] == "staff_min_notice_days"
    assert http.get("/v1/visit-settings", headers=observer).json()["adult_age"] == 16


# --- the CLI --------------------------------------------------------------------


def kinline(db_url: str, *args: str) -> Result:
    return runner.invoke(cli, [*args, "--database-url", db_url])


def test_the_cli_takes_the_wife_through_both_keys_and_a_restriction(
    db: Database, db_url: str
) -> None:
    applied = kinline(
        db_url,
        "visitors",
        "apply",
        "--contact",
        "wife",
        "--born",
        "1982-04-05",
        "--address",
        "100 Spring St, Los Angeles, CA",
        "--country",
        "US",
        "--timezone",
        "America/Los_Angeles",
        "--supervision",
        "supervised_release",
        "--officer",
        "P. Ortega",
        "--at",
        "2024-07-01T09:00",
        "--json",
    )
    assert applied.exit_code == 0, applied.output
    visitor = json.loads(applied.output)
    vid = str(visitor["id"])
    assert [b["code"] for b in visitor["blockers"]] == ["id_not_checked", "officer_consent_missing"]
    early = kinline(db_url, "visitors", "decide", vid, "approve", "--reason", "Verified.")
    assert early.exit_code != 0
    assert "ID document has not been checked" in early.output
    for step in (
        ["check-id", vid, "--id-type", "passport", "--id-number", "P1"],
        ["consent", vid, "--officer", "P. Ortega", "--note", "No objection."],
    ):
        result = kinline(db_url, "visitors", *step)
        assert result.exit_code == 0, result.output
    decided = kinline(
        db_url, "visitors", "decide", vid, "approve", "--reason", "Verified.", "--channel", "visit"
    )
    assert decided.exit_code == 0, decided.output
    assert f"visitor {vid} (wife, E. Salazar) decided: approved" in decided.output
    restricted = kinline(
        db_url,
        "visitors",
        "restrict",
        vid,
        "closed",
        "--reason",
        "Contraband.",
        "--until",
        "2099-01-01",
    )
    assert restricted.exit_code == 0, restricted.output
    assert "Closed visits only, not until 2099-01-01" in restricted.output
    listed = kinline(db_url, "visitors", "list", "--person", "salazar")
    words = " ".join(listed.output.split())
    assert "wife E. Salazar approved Closed visits only, not until 2099-01-01" in words
    bad = kinline(db_url, "visitors", "restrict", vid, "sometimes", "--reason", "x")
    assert bad.exit_code == 2 and "kind" in bad.output
    changed = kinline(db_url, "visitors", "settings", "set", "adult_age=16", "--json")
    assert changed.exit_code == 0, changed.output
    assert json.loads(changed.output)["adult_age"] == 16
    wrong = kinline(db_url, "visitors", "settings", "set", "adult_age=old")
    assert wrong.exit_code == 2
    assert visitors.get_settings(db, FAC).adult_age == 16


def test_every_visitors_command_has_help() -> None:
    for command in (
        "apply",
        "list",
        "show",
        "check-id",
        "consent",
        "decide",
        "restrict",
        "lift",
        "withdraw",
    ):
        result = runner.invoke(cli, ["visitors", command, "--help"])
        assert result.exit_code == 0, result.output
        assert "--facility" in result.output
    for command in ("show", "set"):
        assert runner.invoke(cli, ["visitors", "settings", command, "--help"]).exit_code == 0


# --- who may do what --------------------------------------------------------------


def token(db: Database, name: str, kind: Kind, binding: Binding) -> dict[str, str]:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    subject = add_subject(db, name, kind, at=at, actor="test", bindings=(binding,))
    secret = issue_token(db, subject.id, facility_id=FAC, at=at, actor="test")[1]
    return {"Authorization": f"Bearer {secret}"}


def test_a_family_member_applies_for_themselves_only_and_decides_nothing(
    db: Database, client: tuple[TestClient, dict[str, str]]
) -> None:
    http, auth = client
    wife = token(db, "E. Salazar", Kind.FAMILY, Binding(FAC, contact_id="wife"))
    body = {
        "contact_id": "wife",
        "date_of_birth": "1982-04-05",
        "address": "100 Spring St, Los Angeles, CA",
        "country": "US",
        "criminal_record_declared": False,
    }
    dated = http.post("/v1/visitors", json={**body, "at": "2024-01-01T09:00"}, headers=wife)
    assert dated.status_code == 403 and dated.json()["field"] == "at"
    mine = http.post("/v1/visitors", json=body, headers=wife)
    assert mine.status_code == 201, mine.text
    other = http.post("/v1/visitors", json={**body, "contact_id": "brother"}, headers=wife)
    assert other.status_code == 404
    staff = {"Authorization": auth["staff"]}
    brother = http.post("/v1/visitors", json={**body, "contact_id": "brother"}, headers=staff)
    assert brother.status_code == 201, brother.text
    listed = http.get("/v1/visitors", headers=wife)
    assert [v["contact_id"] for v in listed.json()] == ["wife"]
    assert http.get(f"/v1/visitors/{brother.json()['id']}", headers=wife).status_code == 404
    decided = http.post(
        f"/v1/visitors/{mine.json()['id']}/decision",
        json={"verdict": "approve", "reason": "Self-approved."},
        headers=wife,
    )
    assert decided.status_code == 403
    withdrawn = http.post(f"/v1/visitors/{mine.json()['id']}/withdraw", json={}, headers=wife)
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"


def test_only_the_warden_decides_a_former_co_defendant(
    db: Database, client: tuple[TestClient, dict[str, str]]
) -> None:
    http, _auth = client
    wife = visitors.apply(
        db,
        FAC,
        application(
            supervision=None,
            supervising_officer=None,
            supervising_office=None,
            co_defendant=True,
        ),
        at=WHEN,
        actor="applicant",
    )
    check(db, wife.id)
    visiting = token(db, "Visiting room", Kind.STAFF, Binding(FAC, role=Role.VISITING))
    warden = token(db, "Warden", Kind.STAFF, Binding(FAC, role=Role.WARDEN))
    body = {"verdict": "approve", "reason": "Ties verified; risk assessed."}
    shown = http.get(f"/v1/visitors/{wife.id}", headers=visiting).json()
    assert shown["flagged_for_warden"] is True
    refused = http.post(f"/v1/visitors/{wife.id}/decision", json=body, headers=visiting)
    assert refused.status_code == 403
    assert "the warden decides" in refused.json()["detail"]
    approved = http.post(f"/v1/visitors/{wife.id}/decision", json=body, headers=warden)
    assert approved.status_code == 200, approved.text
    assert approved.json()["visitor"]["decided_by"] is not None
