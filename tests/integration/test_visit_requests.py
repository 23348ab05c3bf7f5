"""The weekly request window on SQLite and PostgreSQL: families ask while it is
open; at its close the allocation books the met through the booking service and
tells the unmet why (places, non-associations, quotas, approval)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import pytest
from _databases import DbTemplate, scenario_template
from sqlalchemy import select
from typer.testing import CliRunner, Result

from kinline.cli import app
from kinline.db.engine import Database
from kinline.db.tables import AuditEventRow, NonAssociationRow, VisitorRow
from kinline.errors import InvalidInput, WrongState
from kinline.visits import booking, requests, sessions
from kinline.visits.allocation import RequestStatus
from kinline.visits.requests import Preferred, VisitRequest
from kinline.visits.statuses import VisitStatus

F = "fci-test"
NOW = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # Monday 10:00 in Denver
SAT = date(2026, 3, 14)
SUN = date(2026, 3, 15)
# The window for the week of Monday 9 March closes on Friday 6 March, 00:00 in Denver.
CLOSES = datetime(2026, 3, 6, 7, 0, tzinfo=UTC)
AFTER = CLOSES + timedelta(hours=1)

SCENARIO = textwrap.dedent(
    """\
    scenario: visit-requests
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
      - {id: aunt, person: ana, relationship: other_family, phones: ["+1 303 555 0106"],
         approved: [visit]}
      - {id: wife, person: ben, relationship: spouse, phones: ["+1 303 555 0104"],
         approved: [visit]}
      - {id: bro, person: cal, relationship: sibling, phones: ["+1 303 555 0105"],
         approved: [visit]}
      - {id: pal, person: cal, relationship: friend, phones: ["+1 303 555 0107"],
         approved: [visit]}
    rules:
      - {id: g-visit, authority: facility_policy, kind: grant, channel: visit, person: all,
         contacts: any, quota: {count: 2, per: month}, text: Two visits a month.}
    """
)


@pytest.fixture
def db(fresh_db: Callable[[DbTemplate], Database]) -> Database:
    database = fresh_db(scenario_template(SCENARIO))
    sessions.add_room(database, F, "main", "Main hall", actor="staff", at=NOW)
    for template_id, weekday in (("sat-am", 5), ("sun-am", 6)):
        sessions.add_template(
            database, F, template_id, room_id="main", weekday=weekday, starts=time(9),
            ends=time(11), kind="contact", capacity_open=1, capacity_closed=0,
            valid_from=date(2026, 3, 1), actor="staff", at=NOW,
        )  # fmt: skip
    with database.transaction() as session:
        for person, contact, status in [
            ("ana", "mom", "approved"),
            ("ana", "sis", "approved"),
            ("ana", "aunt", "approved"),
            ("ben", "wife", "approved"),
            ("cal", "bro", "approved"),
            ("cal", "pal", "applied"),
        ]:
            session.add(
                VisitorRow(
                    facility_id=F, person_id=person, contact_id=contact,
                    date_of_birth=date(1970, 1, 1), address="1 Main St", country="US",
                    criminal_record_declared=False, status=status, applied_at=NOW,
                    applied_by="test",
                )
            )  # fmt: skip
    return database


def ask(
    db: Database, person: str, visitors: list[str], *days: tuple[str, date], minute: int = 0
) -> VisitRequest:
    return requests.submit_request(
        db,
        F,
        person,
        visitors,
        [Preferred(template, day) for template, day in days],
        actor=f"family:{person}",
        now=NOW + timedelta(minutes=minute),
    )


def allocate(db: Database) -> requests.AllocationRun:
    return requests.allocate_closed(db, F, actor="staff", now=AFTER, seconds=5)


def by_id(run: requests.AllocationRun) -> dict[int, VisitRequest]:
    return {r.id: r for r in run.requests}


def test_a_request_waits_for_its_window_to_close(db: Database) -> None:
    asked = ask(db, "ana", ["mom"], ("sat-am", SAT), ("sun-am", SUN))
    assert asked.status is RequestStatus.PENDING
    assert asked.window_closes_at == CLOSES
    assert asked.preferences == (Preferred("sat-am", SAT), Preferred("sun-am", SUN))
    # Before the close there is nothing to allocate.
    early = requests.allocate_closed(db, F, actor="staff", now=CLOSES - timedelta(seconds=1))
    assert early.requests == ()
    assert requests.get_request(db, F, asked.id).status is RequestStatus.PENDING


def test_no_request_once_the_window_has_closed(db: Database) -> None:
    with pytest.raises(WrongState) as raised:
        requests.submit_request(
            db, F, "ana", ["mom"], [Preferred("sat-am", SAT)], actor="family", now=CLOSES
        )
    assert raised.value.field == "preferences"


@pytest.mark.parametrize(
    ("visitors", "days", "field"),
    [
        (["mom"], [("sat-am", SAT), ("sat-am", SAT + timedelta(days=7))], "preferences"),
        (["mom"], [("sat-am", SUN)], "preferences"),
        (["wife"], [("sat-am", SAT)], "visitors"),
        ([], [("sat-am", SAT)], "visitors"),
        (["mom"], [], "preferences"),
    ],
    ids=["two-weeks", "not-offered", "not-their-contact", "no-visitor", "no-session"],
)
def test_a_bad_request_names_its_field(
    db: Database, visitors: list[str], days: list[tuple[str, date]], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        ask(db, "ana", visitors, *days)
    assert raised.value.field == field


def test_the_allocation_meets_more_than_first_come_first_served(db: Database) -> None:
    # Ben asks first and could take either day; Ana can only come on Saturday.
    ben = ask(db, "ben", ["wife"], ("sat-am", SAT), ("sun-am", SUN), minute=0)
    ana = ask(db, "ana", ["mom", "sis"], ("sat-am", SAT), minute=5)
    run = allocate(db)
    assert (run.met, run.unmet, run.fcfs_met) == (2, 0, 1)
    assert run.solver_status == "OPTIMAL"
    done = by_id(run)
    assert done[ben.id].status is RequestStatus.MET
    assert done[ana.id].status is RequestStatus.MET
    ben_visit = booking.get_booking(db, F, done[ben.id].booking_id or 0)
    ana_visit = booking.get_booking(db, F, done[ana.id].booking_id or 0)
    assert (ben_visit.template_id, ben_visit.day) == ("sun-am", SUN)
    assert (ana_visit.template_id, ana_visit.day, ana_visit.visitors) == (
        "sat-am",
        SAT,
        ("mom", "sis"),
    )
    assert ana_visit.status is VisitStatus.BOOKED
    # Closing again finds nothing left to allocate.
    assert allocate(db).requests == ()


def test_each_unmet_request_names_its_reason(db: Database) -> None:
    ana = ask(db, "ana", ["mom"], ("sat-am", SAT), minute=0)
    cal = ask(db, "cal", ["bro"], ("sat-am", SAT), minute=1)
    pal = ask(db, "cal", ["pal"], ("sun-am", SUN), minute=2)
    ben = ask(db, "ben", ["wife"], ("sat-am", SAT), minute=3)
    run = allocate(db)
    done = by_id(run)
    assert done[pal.id].status is RequestStatus.UNMET
    assert done[pal.id].reason == "visitor_not_approved"
    met = [r for r in (ana, cal, ben) if done[r.id].status is RequestStatus.MET]
    assert len(met) == 1  # one place on Saturday
    for request in (ana, cal, ben):
        if done[request.id].status is RequestStatus.UNMET:
            assert done[request.id].reason == "no_capacity"
    with db.transaction() as session:
        tags = list(
            session.scalars(
                select(AuditEventRow.tag).where(AuditEventRow.tag.like("visits:request:%"))
            )
        )
    assert tags.count("visits:request:unmet") == 3
    assert tags.count("visits:request:met") == 1


def test_non_associated_people_are_not_put_in_one_session(db: Database) -> None:
    sessions.add_template(
        db, F, "sat-pm", room_id="main", weekday=5, starts=time(13), ends=time(15),
        kind="contact", capacity_open=2, capacity_closed=0, valid_from=date(2026, 3, 1),
        actor="staff", at=NOW,
    )  # fmt: skip
    with db.transaction() as session:
        for one, other in (("ana", "cal"), ("cal", "ana")):
            session.add(
                NonAssociationRow(
                    facility_id=F, person_id=one, other_person_id=other, recorded_at=NOW,
                    recorded_by="security",
                )
            )  # fmt: skip
    ana = ask(db, "ana", ["mom"], ("sat-pm", SAT), minute=0)
    cal = ask(db, "cal", ["bro"], ("sat-pm", SAT), minute=1)
    done = by_id(allocate(db))
    # Two places, but only one of the two: the other is told why.
    outcomes = sorted((str(done[r.id].status), done[r.id].reason or "") for r in (ana, cal))
    assert outcomes == [("met", ""), ("unmet", "non_association")]


def test_a_person_is_given_no_more_visits_than_the_quota_leaves(db: Database) -> None:
    # Two visits a month: the third request of the same week cannot be met.
    sessions.add_template(
        db, F, "fri-pm", room_id="main", weekday=4, starts=time(13), ends=time(15),
        kind="contact", capacity_open=5, capacity_closed=0, valid_from=date(2026, 3, 1),
        actor="staff", at=NOW,
    )  # fmt: skip
    first = ask(db, "ana", ["mom"], ("sat-am", SAT), minute=0)
    second = ask(db, "ana", ["sis"], ("sun-am", SUN), minute=1)
    third = ask(db, "ana", ["aunt"], ("fri-pm", SAT - timedelta(days=1)), minute=2)
    run = allocate(db)
    done = by_id(run)
    assert run.met == 2
    statuses = sorted(str(done[r.id].status) for r in (first, second, third))
    assert statuses == ["met", "met", "unmet"]
    unmet = next(done[r.id] for r in (first, second, third) if done[r.id].status == "unmet")
    assert unmet.reason == "quota_exhausted"


def test_a_withdrawn_request_is_left_out(db: Database) -> None:
    asked = ask(db, "ana", ["mom"], ("sat-am", SAT))
    withdrawn = requests.withdraw_request(db, F, asked.id, actor="family:ana", now=NOW)
    assert withdrawn.status is RequestStatus.WITHDRAWN
    assert allocate(db).requests == ()
    with pytest.raises(WrongState):
        requests.withdraw_request(db, F, asked.id, actor="family:ana", now=NOW)


def test_a_place_booked_directly_meanwhile_is_respected(db: Database) -> None:
    ana = ask(db, "ana", ["mom"], ("sat-am", SAT))
    direct = booking.book(
        db, F, "ben", "sat-am", SAT, ["wife"], booker="staff", actor="staff", now=NOW
    )
    assert direct.allowed
    done = by_id(allocate(db))
    assert done[ana.id].status is RequestStatus.UNMET
    assert done[ana.id].reason == "no_capacity"


def test_the_command_line_asks_lists_allocates_and_withdraws(db: Database) -> None:
    runner = CliRunner()
    common = ["--facility", F, "--database-url", db.url]

    def kinline(*args: str) -> Result:
        return runner.invoke(app, ["visits", *args, *common])

    asked = kinline(
        "request", "--person", "ben", "--visitor", "wife", "--prefer", f"sat-am@{SAT}",
        "--prefer", f"sun-am@{SUN}", "--at", "2026-03-02T10:00", "--json",
    )  # fmt: skip
    assert asked.exit_code == 0, asked.output
    ben = json.loads(asked.output)
    assert (ben["status"], ben["window_closes"]) == ("pending", "2026-03-06T00:00")
    other = kinline(
        "request", "--person", "ana", "--visitor", "mom", "--prefer", f"sat-am@{SAT}",
        "--at", "2026-03-02T10:05", "--json",
    )  # fmt: skip
    ana = json.loads(other.output)
    gone = kinline(
        "request", "--person", "cal", "--visitor", "bro", "--prefer", f"sun-am@{SUN}",
        "--at", "2026-03-02T10:10", "--json",
    )  # fmt: skip
    cal = json.loads(gone.output)
    assert kinline("withdraw-request", str(cal["id"]), "--at", "2026-03-02T11:00").exit_code == 0
    bad = kinline("request", "--person", "ana", "--visitor", "mom", "--prefer", "sat-am")
    assert bad.exit_code != 0
    assert "TEMPLATE@YYYY-MM-DD" in bad.output
    listed = json.loads(kinline("requests", "--status", "pending", "--json").output)
    assert [r["id"] for r in listed] == [ben["id"], ana["id"]]
    run = kinline("allocate", "--at", "2026-03-06T00:30", "--seconds", "5", "--json")
    assert run.exit_code == 0, run.output
    result = json.loads(run.output)
    assert (result["met"], result["unmet"], result["fcfs_met"]) == (2, 0, 1)
    table = kinline("requests", "--person", "cal")
    assert "withdrawn" in table.output
