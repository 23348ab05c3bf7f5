"""Booking visits on SQLite and PostgreSQL: every check and its reason, places by
setting, reservations that lapse, requests refused when left unanswered,
cancelling, rescheduling, blocks, completion as a session, and video visits
shown in each visitor's own time with an iCalendar invitation."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from _databases import DbTemplate, scenario_template
from sqlalchemy import select, update

from kinline.db.engine import Database
from kinline.db.tables import (
    ContactRow,
    NonAssociationRow,
    NoticeDeliveryRow,
    NoticeRow,
    SessionRow,
    UsageCounterRow,
    VisitorRestrictionRow,
    VisitorRow,
    VisitSlotRow,
)
from kinline.errors import InvalidInput, NotFound, WrongState
from kinline.visits import booking, sessions, upkeep
from kinline.visits.booking import Answer
from kinline.visits.slots import SessionKind
from kinline.visits.statuses import VisitStatus

F = "fci-test"
NOW = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # Monday 10:00 in Denver
SAT = date(2026, 3, 7)
MON = date(2026, 3, 9)

SCENARIO = textwrap.dedent(
    """\
    scenario: visits
    facility: {id: fci-test, name: FCI Test, timezone: America/Denver}
    people:
      - {id: ana, name: A. Ana, language: en}
      - {id: ben, name: B. Ben, language: es}
      - {id: cal, name: C. Cal, language: en}
    contacts:
      - {id: mom, person: ana, relationship: parent, phones: ["+1 303 555 0100"],
         approved: [visit], email: mom@example.org}
      - {id: sis, person: ana, relationship: sibling, phones: ["+1 303 555 0101"],
         approved: [visit]}
      - {id: kid, person: ana, relationship: child, phones: ["+1 303 555 0102"],
         approved: [visit]}
      - {id: friend, person: ana, relationship: friend, phones: ["+1 303 555 0103"],
         approved: [phone]}
      - {id: daughter, person: ana, relationship: child, phones: ["+52 667 555 0111"],
         approved: [video], email: hija@example.mx}
      - {id: wife, person: ben, relationship: spouse, phones: ["+1 303 555 0104"],
         approved: [visit]}
      - {id: bro, person: cal, relationship: sibling, phones: ["+1 303 555 0105"],
         approved: [visit]}
    rules:
      - {id: g-visit, authority: facility_policy, kind: grant, channel: visit, person: all,
         contacts: any, quota: {count: 2, per: month}, text: Two visits a month.}
      - {id: g-video, authority: facility_policy, kind: grant, channel: video, person: all,
         contacts: any, text: Video visits.}
    """
)


@pytest.fixture
def db(fresh_db: Callable[[DbTemplate], Database]) -> Database:
    database = fresh_db(scenario_template(SCENARIO))
    sessions.add_room(database, F, "main", "Main hall", actor="staff", at=NOW)
    sessions.add_room(database, F, "video", "Video booths", actor="staff", at=NOW)
    sessions.add_template(
        database, F, "sat-am", room_id="main", weekday=5, starts=time(9), ends=time(11),
        kind="contact", capacity_open=2, capacity_closed=1, valid_from=date(2026, 3, 1),
        actor="staff", at=NOW,
    )  # fmt: skip
    sessions.add_template(
        database, F, "mon-video", room_id="video", weekday=0, starts=time(9), ends=time(10),
        kind="video", capacity_open=1, capacity_closed=0, valid_from=date(2026, 3, 1),
        actor="staff", at=NOW,
    )  # fmt: skip
    with database.transaction() as session:
        for person, contact, born in [
            ("ana", "mom", date(1960, 1, 1)),
            ("ana", "sis", date(1990, 1, 1)),
            ("ana", "kid", date(2015, 1, 1)),
            ("ana", "friend", date(1985, 1, 1)),
            ("ana", "daughter", date(2008, 1, 1)),
            ("ben", "wife", date(1980, 1, 1)),
            ("cal", "bro", date(1982, 1, 1)),
        ]:
            session.add(
                VisitorRow(
                    facility_id=F, person_id=person, contact_id=contact, date_of_birth=born,
                    address="1 Main St", country="MX" if contact == "daughter" else "US",
                    criminal_record_declared=False, status="approved", applied_at=NOW,
                    applied_by="test",
                )
            )  # fmt: skip
        session.execute(update(ContactRow).where(ContactRow.id == "daughter").values(country="MX"))
    return database


def book(db: Database, *visitors: str, **kw: object) -> Answer:
    options: dict[str, object] = {"booker": "staff", "actor": "staff", "now": NOW}
    options.update(kw)
    person = str(options.pop("person", "ana"))
    template = str(options.pop("template", "sat-am"))
    day = options.pop("day", SAT)
    assert isinstance(day, date)
    return booking.book(db, F, person, template, day, list(visitors or ("mom",)), **options)  # type: ignore[arg-type]


def messages(db: Database, recipient: str) -> list[tuple[str, str]]:
    with db.transaction() as session:
        return [
            (row.message_subject or "", row.message_body or "")
            for row in session.scalars(
                select(NoticeDeliveryRow)
                .where(NoticeDeliveryRow.recipient == recipient)
                .order_by(NoticeDeliveryRow.id)
            )
        ]


def notices(db: Database, person: str) -> list[tuple[str, str | None, str]]:
    with db.transaction() as session:
        return [
            (row.change, row.reason, row.title)
            for row in session.scalars(
                select(NoticeRow).where(NoticeRow.person_id == person).order_by(NoticeRow.id)
            )
        ]


def test_staff_book_a_visit_that_takes_a_place_and_counts_at_once(db: Database) -> None:
    answer = book(db, "mom", "sis")
    assert answer.allowed and answer.booking is not None
    visit = answer.booking
    assert visit.status is VisitStatus.BOOKED and visit.setting == "open"
    assert visit.visitors == ("mom", "sis")
    assert visit.starts_at == datetime(2026, 3, 7, 16, 0, tzinfo=UTC)
    (slot,) = sessions.list_slots(db, F, SAT, SAT)
    assert (slot.free_open, slot.free_closed) == (1, 1)
    # The booked visit counts against the two a month before it happens.
    assert book(db, "mom", day=SAT + timedelta(days=7)).allowed
    third = book(db, "sis", day=SAT + timedelta(days=14))
    assert (third.allowed, third.reason, third.rules) == (False, "quota_exhausted", ("g-visit",))
    (subject, body), *_ = messages(db, "mom@example.org")
    assert "booked" in subject and "BEGIN:VCALENDAR" in body and "TZID:America/Denver" in body
    assert "STATUS:CONFIRMED" in body and "SEQUENCE:1" in body


def test_every_refusal_names_its_reason(db: Database) -> None:
    with db.transaction() as session:
        session.execute(
            update(VisitorRow).where(VisitorRow.contact_id == "sis").values(status="refused")
        )
        session.add(
            VisitorRestrictionRow(
                facility_id=F, visitor_id=1, contact_id="mom", kind="banned", reason="contraband",
                starts_on=date(2026, 3, 14), until=date(2026, 4, 1), imposed_at=NOW, imposed_by="s",
            )
        )  # fmt: skip
    assert book(db, "sis").reason == "visitor_not_approved"
    assert book(db, "sis").contact_id == "sis"
    banned = book(db, "mom", day=date(2026, 3, 14))
    assert (banned.reason, banned.contact_id) == ("visitor_restricted", "mom")
    assert "2026-04-01" in str(banned.detail)
    assert book(db, "mom", booker="public", now=NOW + timedelta(days=5)).reason == (
        "outside_booking_window"
    )
    assert book(db, "mom", day=date(2026, 5, 30)).reason == "outside_booking_window"
    alone = book(db, "kid")
    assert alone.reason == "group_limit" and "only with an adult" in str(alone.detail)
    # approved as a visitor, not for the visit channel: the engine's reason
    assert book(db, "friend").reason == "not_on_list"
    assert book(db, "daughter", template="mon-video", day=MON).allowed
    # the video session's one place is taken: full whatever else holds
    assert book(db, "daughter", template="mon-video", day=MON).reason == "no_capacity"
    with pytest.raises(InvalidInput):
        book(db, "mom", day=date(2026, 3, 8))  # a Sunday: not offered
    with pytest.raises(NotFound):
        book(db, "wife")  # not ana's contact


def test_non_associated_people_are_not_booked_into_one_session(db: Database) -> None:
    assert book(db, "wife", person="ben").allowed
    with db.transaction() as session:
        session.add(
            NonAssociationRow(
                facility_id=F, person_id="ben", other_person_id="ana", recorded_at=NOW,
                recorded_by="security",
            )
        )  # fmt: skip
    assert book(db, "mom").reason == "non_association"
    assert book(db, "mom", day=SAT + timedelta(days=7)).allowed


def test_the_last_place_of_a_setting_then_no_capacity(db: Database) -> None:
    assert book(db, "mom").allowed
    assert book(db, "wife", person="ben").allowed
    full = book(db, "bro", person="cal")
    assert (full.allowed, full.reason) == (False, "no_capacity")


def test_a_closed_visitor_takes_a_closed_place(db: Database) -> None:
    with db.transaction() as session:
        session.add(
            VisitorRestrictionRow(
                facility_id=F, visitor_id=1, contact_id="mom", kind="closed", reason="security",
                starts_on=date(2026, 3, 1), until=None, imposed_at=NOW, imposed_by="s",
            )
        )  # fmt: skip
    first = book(db, "mom")
    assert first.booking is not None and first.booking.setting == "closed"
    (slot,) = sessions.list_slots(db, F, SAT, SAT)
    assert (slot.free_open, slot.free_closed) == (2, 0)
    assert book(db, "mom", person="ana").reason == "already_booked"


def test_a_lapsed_reservation_frees_its_place(db: Database) -> None:
    held = book(db, "daughter", template="mon-video", day=MON, reserve_only=True)
    assert held.booking is not None and held.booking.status is VisitStatus.RESERVED
    assert held.booking.expires_at == NOW + timedelta(minutes=10)
    later = NOW + timedelta(minutes=11)
    with pytest.raises(WrongState):
        booking.confirm(db, F, held.booking.id, actor="staff", now=later)
    assert booking.get_booking(db, F, held.booking.id).status is VisitStatus.CANCELLED
    assert book(db, "daughter", template="mon-video", day=MON, now=later).allowed


def test_a_reservation_confirmed_in_time_is_booked(db: Database) -> None:
    held = book(db, "mom", reserve_only=True)
    assert held.booking is not None
    done = booking.confirm(db, F, held.booking.id, actor="staff", now=NOW + timedelta(minutes=9))
    assert done.status is VisitStatus.BOOKED and done.expires_at is None


def test_a_lapsed_reservation_is_freed_by_the_next_booking_or_the_sweep(db: Database) -> None:
    held = book(db, "mom", reserve_only=True)
    assert held.booking is not None
    assert book(db, "wife", person="ben").allowed  # the session's two open places are taken
    assert book(db, "sis", now=NOW + timedelta(minutes=5)).reason == "already_booked"
    # eleven minutes on, the next booking of the session frees the lapsed place first
    again = book(db, "sis", now=NOW + timedelta(minutes=11))
    assert again.allowed
    lapsed = booking.get_booking(db, F, held.booking.id)
    assert lapsed.status is VisitStatus.CANCELLED
    assert lapsed.cancel_reason == "the reservation lapsed"
    # the sweep frees one nobody else touched
    other = book(db, "mom", reserve_only=True, day=SAT + timedelta(days=7))
    assert other.booking is not None
    assert upkeep.sweep_visits(db, now=NOW + timedelta(minutes=9)).lapsed == 0
    assert upkeep.sweep_visits(db, now=NOW + timedelta(minutes=10)).lapsed == 1
    (slot,) = sessions.list_slots(db, F, SAT + timedelta(days=7), SAT + timedelta(days=7))
    assert slot.free_open == 2


def test_an_unanswered_request_is_refused_with_a_message(db: Database) -> None:
    asked = book(db, "mom", booker="public", actor="family:mom")
    assert asked.booking is not None and asked.booking.status is VisitStatus.REQUESTED
    assert upkeep.sweep_visits(db, now=NOW + timedelta(hours=71)).refused == 0
    assert upkeep.sweep_visits(db, now=NOW + timedelta(hours=72)).refused == 1
    refused = booking.get_booking(db, F, asked.booking.id)
    assert refused.status is VisitStatus.CANCELLED and "72 hours" in str(refused.cancel_reason)
    ((subject, body),) = messages(db, "mom@example.org")
    assert "cancelled" in subject and "METHOD:CANCEL" in body
    assert "STATUS:CANCELLED" in body and "SEQUENCE:2" in body
    ((change, reason, title),) = notices(db, "ana")
    assert (change, reason) == ("visit_cancelled", refused.cancel_reason)
    assert title.startswith("Visit of 2026-03-07 09:00 with ") and title.endswith(" cancelled")
    # its place and its quota are free again
    assert book(db, "mom").allowed and book(db, "mom", day=SAT + timedelta(days=7)).allowed


def test_staff_answer_a_request(db: Database) -> None:
    asked = book(db, "mom", booker="public", actor="family:mom")
    assert asked.booking is not None
    with pytest.raises(InvalidInput):
        booking.answer_request(
            db, F, asked.booking.id, accept=False, reason=None, actor="s", now=NOW
        )
    done = booking.answer_request(
        db, F, asked.booking.id, accept=True, reason=None, actor="s", now=NOW
    )
    assert done.status is VisitStatus.BOOKED
    with pytest.raises(WrongState):
        booking.answer_request(
            db, F, asked.booking.id, accept=True, reason=None, actor="s", now=NOW
        )


def test_cancel_and_reschedule(db: Database) -> None:
    first = book(db, "mom")
    assert first.booking is not None
    moved = booking.reschedule(
        db, F, first.booking.id, "sat-am", SAT + timedelta(days=7), reason="family asked",
        actor="staff", now=NOW,
    )  # fmt: skip
    assert moved.allowed and moved.booking is not None and moved.booking.day == date(2026, 3, 14)
    assert booking.get_booking(db, F, first.booking.id).status is VisitStatus.CANCELLED
    # a reschedule that is refused leaves the visit as it was
    refused = booking.reschedule(
        db, F, moved.booking.id, "sat-am", date(2026, 5, 30), reason="again", actor="staff",
        now=NOW,
    )  # fmt: skip
    assert refused.reason == "outside_booking_window"
    assert booking.get_booking(db, F, moved.booking.id).status is VisitStatus.BOOKED
    gone = booking.cancel(db, F, moved.booking.id, reason="ill", actor="staff", now=NOW)
    assert (gone.status, gone.cancel_reason, gone.cancelled_by) == (
        VisitStatus.CANCELLED, "ill", "staff",
    )  # fmt: skip
    with pytest.raises(WrongState):
        booking.cancel(db, F, moved.booking.id, reason="twice", actor="staff", now=NOW)
    # nothing of the quota is spent
    assert book(db, "mom").allowed and book(db, "mom", day=SAT + timedelta(days=7)).allowed


def test_a_completed_visit_is_a_session_and_a_no_show_counts_nothing(db: Database) -> None:
    first = book(db, "mom")
    second = book(db, "sis", day=SAT + timedelta(days=7))
    assert first.booking is not None and second.booking is not None
    with pytest.raises(WrongState):
        booking.complete(db, F, first.booking.id, actor="staff", now=NOW)
    booking.check_in(db, F, first.booking.id, actor="officer", now=NOW)
    done = booking.complete(db, F, first.booking.id, minutes=90, actor="officer", now=NOW)
    assert done.status is VisitStatus.COMPLETED
    booking.no_show(db, F, second.booking.id, actor="officer", now=NOW)
    with db.transaction() as session:
        rows = session.scalars(select(SessionRow).where(SessionRow.channel == "visit")).all()
        completed = [(r.contact_id, r.status, r.minutes) for r in rows if r.status == "completed"]
        counter = session.scalars(select(UsageCounterRow)).all()
    assert completed == [("mom", "completed", 90)]
    assert {(c.rule_id, c.period_key, c.sessions) for c in counter} == {("g-visit", "2026-03", 1)}


def test_a_block_cancels_the_visits_it_hits_and_tells_the_visitors(db: Database) -> None:
    visit = book(db, "mom")
    assert visit.booking is not None
    result = upkeep.block(db, F, SAT, room_id="main", reason="Lockdown", actor="warden", now=NOW)
    assert result.cancelled == (visit.booking.id,)
    gone = booking.get_booking(db, F, visit.booking.id)
    assert (gone.status, gone.cancel_reason) == (VisitStatus.CANCELLED, "Lockdown")
    assert sessions.list_slots(db, F, SAT, SAT) == []
    assert book(db, "mom").reason == "session_blocked"
    (_booked, (subject, body)) = messages(db, "mom@example.org")
    assert "cancelled" in subject and "Lockdown" in body
    assert [(change, reason) for change, reason, _title in notices(db, "ana")] == [
        ("visit_cancelled", "Lockdown")
    ]


def test_a_video_visit_shows_the_visitor_s_own_time(db: Database) -> None:
    answer = book(db, "daughter", template="mon-video", day=MON)
    assert answer.booking is not None
    visit = answer.booking
    assert visit.kind is SessionKind.VIDEO
    (own,) = visit.visitor_times
    assert own.local.timezone == "America/Mexico_City"
    # 09:00 in Denver on 9 March 2026 (MDT) is 09:00 in Mexico City (no DST since 2022)
    assert own.local.starts.hour == 9 and visit.facility_time.starts.hour == 9
    ((subject, body),) = messages(db, "hija@example.mx")
    assert "Your time: 2026-03-09 09:00-10:00 America/Mexico_City (-06:00)" in body
    assert "BEGIN:VTIMEZONE" in body and "Video visit" in subject


def test_a_visitor_is_written_to_in_their_own_language(db: Database) -> None:
    from kinline.changes.service import edit_contact

    edit_contact(db, F, "daughter", at=NOW, actor="records", language="es")
    answer = book(db, "daughter", template="mon-video", day=MON)
    assert answer.booking is not None
    ((subject, body),) = messages(db, "hija@example.mx")
    assert subject.startswith(f"Videovisita {answer.booking.id} reservada: ")
    assert "Hola, " in body
    assert "Su hora: 2026-03-09 09:00-10:00 America/Mexico_City (-06:00)" in body
    assert "Your time" not in body
    assert "BEGIN:VCALENDAR" in body


def test_the_cli_books_a_visit_through_to_completion(db: Database) -> None:
    from typer.testing import CliRunner

    from kinline.cli import app

    runner = CliRunner()
    url = ["--database-url", db.url]
    at = ["--at", "2026-03-02T10:00"]

    def run(*args: str) -> str:
        done = runner.invoke(app, ["visits", *args, *url])
        assert done.exit_code == 0, done.output
        return done.output

    run("rooms", "add", "annex", "--name", "Annex", *at)
    run(
        "templates", "add", "sun-pm", "--room", "annex", "--weekday", "6", "--starts", "14:00",
        "--ends", "15:30", "--from", "2026-03-08", "--open", "4", "--every-weeks", "2", *at,
    )  # fmt: skip
    assert "2026-03-08" in run("slots", "2026-03-08", "2026-03-15", "--json")
    assert "2026-03-15" not in run("slots", "2026-03-08", "2026-03-15", "--json")
    booked = run(
        "book", "--person", "ana", "--template", "sun-pm", "--date", "2026-03-08",
        "--visitor", "mom", "--json", *at,
    )  # fmt: skip
    visit_id = str(json.loads(booked)["id"])
    could = json.loads(
        run("available", "--person", "ana", "--visitor", "mom", "2026-03-08", "2026-03-08",
            "--json", *at)
    )  # fmt: skip
    assert [(a["template_id"], a["reason"]) for a in could] == [("sun-pm", "already_booked")]
    run("check-in", visit_id, *at)
    assert json.loads(run("complete", visit_id, "--json", *at))["status"] == "completed"
    (listed,) = json.loads(run("list", "--person", "ana", "--json"))
    assert listed["status"] == "completed" and listed["session_id"] is not None
    refused = runner.invoke(
        app,
        ["visits", "book", "--person", "ana", "--template", "sun-pm", "--date", "2026-03-22",
         "--visitor", "friend", *at, *url],
    )  # fmt: skip
    assert refused.exit_code == 1 and "not_on_list" in refused.output


def test_the_api_for_staff_and_a_daughter_abroad(db: Database) -> None:
    import warnings

    from _identity import token_for

    from kinline.api import create_app
    from kinline.identity.model import Binding, Kind
    from kinline.identity.service import create_token

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo("America/Denver")).date()
    day = today + timedelta(days=7)
    staff = {"Authorization": f"Bearer {create_token(db, 'desk', 'staff', at=now)[1]}"}
    family = {
        "Authorization": "Bearer "
        + token_for(db, "hija", Kind.FAMILY, Binding(F, contact_id="daughter"))
    }
    with TestClient(create_app(db)) as client:
        room = client.post("/v1/visits/rooms", json={"id": "v2", "name": "Video 2"}, headers=staff)
        assert room.status_code == 201, room.text
        template = {
            "id": "vid", "room_id": "v2", "weekday": day.weekday(), "starts": "09:00",
            "ends": "10:00", "kind": "video", "capacity_open": 1, "capacity_closed": 0,
            "valid_from": today.isoformat(),
        }  # fmt: skip
        bad = client.post("/v1/visits/templates", json={**template, "ends": "08:00"}, headers=staff)
        assert (bad.status_code, bad.json()["field"]) == (422, "ends")
        made = client.post("/v1/visits/templates", json=template, headers=staff)
        assert made.status_code == 201, made.text
        slots = client.get(
            "/v1/visits/slots",
            params={"first": day.isoformat(), "last": day.isoformat(), "kind": "video"},
            headers=staff,
        ).json()
        assert [(s["template_id"], s["free_open"]) for s in slots] == [("vid", 1)]
        could = client.get(
            "/v1/visits/availability",
            params={
                "person_id": "ana",
                "visitors": ["daughter"],
                "first": day.isoformat(),
                "last": day.isoformat(),
            },
            headers=family,
        )
        assert could.status_code == 200, could.text
        assert [(a["template_id"], a["allowed"]) for a in could.json()] == [("vid", True)]
        asked = client.post(
            "/v1/visits/bookings",
            json={
                "person_id": "ana",
                "template_id": "vid",
                "date": day.isoformat(),
                "visitors": ["daughter"],
            },
            headers=family,
        )
        assert asked.status_code == 200, asked.text
        answer = asked.json()
        assert answer["allowed"] and answer["booking"]["status"] == "requested"
        visit = answer["booking"]
        (own,) = visit["visitor_times"]
        assert own["local"]["timezone"] == "America/Mexico_City"
        assert visit["facility_time"]["timezone"] == "America/Denver"
        # the family sees their own booking, and may not answer it
        listed = client.get("/v1/visits/bookings", headers=family).json()
        assert [b["id"] for b in listed] == [visit["id"]]
        denied = client.post(
            f"/v1/visits/bookings/{visit['id']}/answer", json={"accept": True}, headers=family
        )
        assert denied.status_code == 403
        # a booking for someone else's person is not even known to them
        other = client.post(
            "/v1/visits/bookings",
            json={"person_id": "ben", "template_id": "vid", "date": day.isoformat(),
                  "visitors": ["wife"]},
            headers=family,
        )  # fmt: skip
        assert other.status_code == 404
        accepted = client.post(
            f"/v1/visits/bookings/{visit['id']}/answer", json={"accept": True}, headers=staff
        )
        assert accepted.json()["status"] == "booked"
        apart = {"person_id": "ana", "other_person_id": "ben", "reason": "gang conflict"}
        first = client.post("/v1/visits/non-associations", json=apart, headers=staff)
        assert first.status_code == 201, first.text
        again = client.post("/v1/visits/non-associations", json=apart, headers=staff)
        assert again.status_code == 409
        gone = client.post(
            f"/v1/visits/bookings/{visit['id']}/cancel", json={"reason": "ill"}, headers=staff
        )
        assert (gone.json()["status"], gone.json()["cancel_reason"]) == ("cancelled", "ill")


def test_available_slots_answer_as_a_booking_would_and_write_nothing(db: Database) -> None:
    def available() -> list[tuple[str, date, str | None]]:
        found = booking.available_slots(db, F, "ana", ["mom"], SAT, MON, booker="staff", now=NOW)
        return [(a.template_id, a.day, a.reason) for a in found]

    assert available() == [("sat-am", SAT, None), ("mon-video", MON, "not_on_list")]
    with db.transaction() as session:
        assert session.scalars(select(SessionRow)).all() == []
        assert session.scalars(select(VisitSlotRow)).all() == []
    assert book(db, "mom").allowed
    assert available() == [("sat-am", SAT, "already_booked"), ("mon-video", MON, "not_on_list")]
    with pytest.raises(InvalidInput):
        booking.available_slots(
            db, F, "ana", ["mom"], SAT, SAT + timedelta(days=90), booker="staff", now=NOW
        )
