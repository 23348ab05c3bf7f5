"""The motivating case's visits, on the demo facility as ``kinline demo`` loads it
(the supermax scenario, then ``kinline.demo.visits``), on SQLite and PostgreSQL.

The wife in Los Angeles, a released former co-defendant on supervised release,
needs her supervising officer's consent and the warden's decision before she
may visit; the daughters in Mexico, who have no visas, get video visits shown in
Mexico City's time beside the facility's."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from _databases import SUPERMAX, DbTemplate
from sqlalchemy import update

from kinline.api import create_app
from kinline.changes.visitors import decide_visitor
from kinline.db.engine import Database
from kinline.db.tables import VisitRequestRow
from kinline.demo.visits import load_visits
from kinline.errors import Conflict, Forbidden
from kinline.identity.model import Binding, Kind, Role
from kinline.identity.service import add_subject, issue_token
from kinline.visits import booking, requests, visitors
from kinline.visits.allocation import RequestStatus, week_of
from kinline.visits.model import Verdict, VisitorStatus
from kinline.visits.requests import Preferred
from kinline.visits.slots import SessionKind

with warnings.catch_warnings():
    # starlette would rather use httpx2, which is not a dependency.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

F = "usp-red-mesa"
NOW = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # Tuesday 10:00 in Denver
THURSDAY = date(2026, 12, 10)
SATURDAY = date(2026, 12, 12)


@pytest.fixture
def db(fresh_db: Callable[[DbTemplate], Database]) -> Database:
    database = fresh_db(SUPERMAX)
    load_visits(database, F, at=NOW)
    return database


def visitor_id(db: Database, contact_id: str) -> int:
    (found,) = visitors.list_visitors(db, F, at=NOW, contact_id=contact_id)
    return found.visitor.id


def test_the_wife_needs_her_officers_consent_and_the_wardens_decision(db: Database) -> None:
    wife = visitor_id(db, "wife")
    (view,) = visitors.list_visitors(db, F, at=NOW, contact_id="wife")
    assert view.visitor.status is VisitorStatus.APPLIED
    assert view.flagged  # a former co-defendant: the warden decides
    assert [b.code for b in view.blockers] == ["officer_consent_missing"]
    # Until she is approved she cannot book.
    refused = booking.book(
        db, F, "salazar", "booths-sat", SATURDAY, ["wife"], booker="staff", actor="staff", now=NOW
    )
    assert (refused.allowed, refused.reason) == (False, "visitor_not_approved")
    # Staff below the warden may not decide; the warden may not approve without
    # the officer's consent: the two keys.
    with pytest.raises(Forbidden):
        decide_visitor(
            db, F, wife, verdict=Verdict.APPROVE, reason="ok", at=NOW, actor="officer:lee"
        )
    with pytest.raises(Conflict) as missing:
        decide_visitor(
            db, F, wife, verdict=Verdict.APPROVE, reason="ok", at=NOW, actor="warden",
            warden=True,
        )  # fmt: skip
    assert missing.value.field == "officer_consent"
    visitors.record_consent(
        db, F, wife, officer="K. Marsh", note="Consents to visits.", at=NOW, actor="staff"
    )
    decided = decide_visitor(
        db, F, wife, verdict=Verdict.APPROVE, reason="Consent recorded; warden approves.",
        at=NOW + timedelta(minutes=5), actor="warden", warden=True,
    )  # fmt: skip
    assert decided.visitor.status is VisitorStatus.APPROVED
    assert decided.notice_id > 0
    booked = booking.book(
        db, F, "salazar", "booths-sat", SATURDAY, ["wife"], booker="staff", actor="staff",
        now=NOW + timedelta(minutes=10),
    )  # fmt: skip
    assert booked.allowed and booked.booking is not None
    # The room is behind glass: the visit is non-contact.
    assert booked.booking.kind is SessionKind.NON_CONTACT
    assert booked.booking.setting == "non_contact"


def test_a_daughter_gets_a_video_visit_shown_in_mexico_citys_time(db: Database) -> None:
    answer = booking.book(
        db, F, "salazar", "video-thu", THURSDAY, ["daughter-a", "daughter-b"], booker="staff",
        actor="staff", now=NOW,
    )  # fmt: skip
    assert answer.allowed and answer.booking is not None
    visit = answer.booking
    assert visit.kind is SessionKind.VIDEO
    # 17:00 in Denver (MST, UTC-7) is 18:00 in Mexico City (UTC-6, no DST).
    assert visit.starts_at == datetime(2026, 12, 11, 0, 0, tzinfo=UTC)
    assert visit.facility_time.timezone == "America/Denver"
    assert visit.facility_time.starts.hour == 17
    shown = {t.contact_id: t.local for t in visit.visitor_times}
    assert set(shown) == {"daughter-a", "daughter-b"}
    for local in shown.values():
        assert local.timezone == "America/Mexico_City"
        assert (local.starts.hour, local.starts.minute) == (18, 0)
        assert local.utc_offset == "-06:00"


def test_the_daughters_may_not_visit_in_person(db: Database) -> None:
    # No visas, and approved for video only: the engine refuses an in-person visit.
    refused = booking.book(
        db, F, "salazar", "booths-sat", SATURDAY, ["daughter-a"], booker="staff",
        actor="staff", now=NOW,
    )  # fmt: skip
    assert refused.allowed is False
    assert refused.reason == "not_on_list"
    assert refused.contact_id == "daughter-a"


def test_the_daughters_request_a_video_visit_in_the_weekly_window(db: Database) -> None:
    asked = requests.submit_request(
        db, F, "salazar", ["daughter-a"],
        [Preferred("video-tue", date(2026, 12, 15)), Preferred("video-thu", date(2026, 12, 17))],
        actor="family:daughter-a", now=NOW,
    )  # fmt: skip
    # The week of Monday 14 December closes on Friday 11 December, 00:00 in Denver.
    assert asked.window_closes_at == datetime(2026, 12, 11, 7, 0, tzinfo=UTC)
    run = requests.allocate_closed(
        db, F, actor="staff", now=datetime(2026, 12, 11, 8, 0, tzinfo=UTC), seconds=5
    )
    (done,) = run.requests
    assert done.status is RequestStatus.MET
    visit = booking.get_booking(db, F, done.booking_id or 0)
    assert (visit.template_id, visit.day) == ("video-tue", date(2026, 12, 15))
    assert [t.local.timezone for t in visit.visitor_times] == ["America/Mexico_City"]


def _token(db: Database, name: str, kind: Kind, binding: Binding) -> dict[str, str]:
    subject = add_subject(db, name, kind, at=NOW, actor="test", bindings=(binding,))
    secret = issue_token(db, subject.id, facility_id=F, at=NOW, actor="test")[1]
    return {"Authorization": f"Bearer {secret}"}


def test_a_daughter_asks_over_http_and_staff_allocate_at_the_close(db: Database) -> None:
    daughter = _token(db, "A. Salazar", Kind.FAMILY, Binding(F, contact_id="daughter-a"))
    wife = _token(db, "E. Salazar", Kind.FAMILY, Binding(F, contact_id="wife"))
    visiting = _token(db, "Visiting room", Kind.STAFF, Binding(F, role=Role.VISITING))
    monday = week_of(datetime.now(UTC).date()) + timedelta(days=14)
    body = {
        "person_id": "salazar",
        "visitors": ["daughter-a"],
        "preferences": [
            {"template_id": "video-tue", "date": (monday + timedelta(days=1)).isoformat()},
            {"template_id": "video-thu", "date": (monday + timedelta(days=3)).isoformat()},
        ],
    }
    with TestClient(create_app(db), raise_server_exceptions=False) as http:
        asked = http.post("/v1/visits/requests", json=body, headers=daughter)
        assert asked.status_code == 201, asked.text
        assert asked.json()["status"] == "pending"
        request_id = asked.json()["id"]
        # The wife may not ask in her daughter's name, nor see her request.
        assert http.post("/v1/visits/requests", json=body, headers=wife).status_code == 404
        assert http.get("/v1/visits/requests", headers=wife).json() == []
        assert http.get(f"/v1/visits/requests/{request_id}", headers=wife).status_code == 404
        mine = http.get("/v1/visits/requests", headers=daughter).json()
        assert [r["id"] for r in mine] == [request_id]
        bad = http.post("/v1/visits/requests", json={**body, "preferences": []}, headers=daughter)
        assert bad.status_code == 422
        # Families do not allocate.
        assert http.post("/v1/visits/allocations", json={}, headers=daughter).status_code == 403
        # Before the close staff find nothing to allocate.
        early = http.post("/v1/visits/allocations", json={"seconds": 5}, headers=visiting)
        assert early.status_code == 200, early.text
        assert early.json()["requests"] == []
        with db.transaction() as session:
            session.execute(
                update(VisitRequestRow).values(window_closes_at=datetime.now(UTC) - timedelta(1))
            )
        run = http.post("/v1/visits/allocations", json={"seconds": 5}, headers=visiting)
        assert run.status_code == 200, run.text
        assert (run.json()["met"], run.json()["unmet"]) == (1, 0)
        (done,) = run.json()["requests"]
        assert done["status"] == "met" and done["booking_id"] is not None
        shown = http.get(f"/v1/visits/requests/{request_id}", headers=daughter).json()
        assert shown["booking_id"] == done["booking_id"]
