"""An order's compliance with its causes (courts.compliance), on SQLite and
PostgreSQL, over a record made through the services: calls through the call
path (completed, released, expired, refused), a security measure imposed over
the order and lifted, and a vendor's export imported (one call the engine
would have refused: delivered, but outside policy)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from _databases import SUPERMAX, DbTemplate, scenario_template

from kinline.calls.importer import import_calls
from kinline.calls.path import authorize, connect, end, release, sweep
from kinline.changes.service import impose_rule, lift_rule
from kinline.courts.compliance import court_orders, order_compliance
from kinline.courts.service import compliance_report
from kinline.db.engine import Database
from kinline.demo.visits import load_visits
from kinline.errors import InvalidInput, NotFound
from kinline.explain import explain
from kinline.rules.decide import Request
from kinline.rules.model import Reason
from kinline.visits import booking

FACILITY = "fci-test"
DENVER = ZoneInfo("America/Denver")
NOW = datetime(2025, 4, 1, 12, tzinfo=UTC)
KID, KID2, WIFE = "+1 303 555 0100", "+1 303 555 0101", "+1 303 555 0102"

SCENARIO = scenario_template(
    textwrap.dedent(
        """\
        scenario: order-compliance
        facility: {id: fci-test, name: FCI Test, timezone: America/Denver}
        people:
          - {id: ana, name: A. Ana, language: es}
        contacts:
          - {id: kid, person: ana, name: K. Ana, relationship: child,
             phones: ["+1 303 555 0100"], approved: [phone, video]}
          - {id: kid2, person: ana, name: L. Ana, relationship: child,
             phones: ["+1 303 555 0101"], approved: [phone]}
          - {id: wife, person: ana, name: W. Ana, relationship: spouse,
             phones: ["+1 303 555 0102"], approved: [phone]}
        rules:
          - {id: g-phone, authority: facility_policy, kind: grant, channel: phone, person: all,
             contacts: any, quota: {minutes: 600, per: month}, max_minutes: 20,
             text: Standard telephone allowance.}
          - {id: order-9, authority: court_order, kind: grant, channel: phone, person: ana,
             contacts: {ids: [kid, kid2]}, quota: {count: 4, per: month}, max_minutes: 15,
             from: 2025-02-01, case_number: CV-9,
             text: Four calls a month with the children.}
          - {id: order-w, authority: court_order, kind: grant, channel: video, person: ana,
             contacts: {ids: [kid]}, quota: {count: 1, per: week}, max_minutes: 30,
             from: 2025-02-01, case_number: CV-9, text: A video call a week with K.}
        """
    )
)


def wall(day: int, hour: int, month: int = 2) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=DENVER).astimezone(UTC)


def completed(db: Database, key: str, dialed: str, at: datetime, minutes: int) -> None:
    held = authorize(db, FACILITY, "ana", dialed=dialed, idempotency_key=key, actor="t", at=at)
    assert held.allowed and held.hold_id is not None
    connect(db, FACILITY, held.hold_id, actor="t", at=at)
    end(db, FACILITY, held.hold_id, minutes * 60, actor="t", at=at + timedelta(minutes=minutes))


@pytest.fixture
def db(fresh_db: Callable[[DbTemplate], Database], tmp_path: Path) -> Database:
    db = fresh_db(SCENARIO)
    completed(db, "feb-3", KID, wall(3, 10), 10)
    held = authorize(
        db, FACILITY, "ana", dialed=KID2, idempotency_key="feb-5", actor="t", at=wall(5, 10)
    )
    assert held.hold_id is not None
    release(db, FACILITY, held.hold_id, actor="t", at=wall(5, 10) + timedelta(minutes=1))
    lapsing = authorize(
        db, FACILITY, "ana", dialed=KID, idempotency_key="feb-7", actor="t", at=wall(7, 10)
    )
    assert lapsing.allowed
    assert sweep(db, at=wall(7, 12)).expired == 1
    impose_rule(
        db,
        FACILITY,
        {
            "id": "sec-kids",
            "authority": "security_measure",
            "kind": "deny",
            "channel": "phone",
            "person": "ana",
            "contacts": {"relationships": ["child"]},
            "overrides": ["order-9"],
            "text": "Calls with children suspended pending review.",
        },
        at=wall(10, 8),
        actor="staff:7:J. Ortiz",
    )
    refused = authorize(
        db, FACILITY, "ana", dialed=KID, idempotency_key="feb-12", actor="t", at=wall(12, 10)
    )
    assert not refused.allowed
    completed(db, "feb-12-wife", WIFE, wall(12, 11), 10)  # not a call the order is about
    lift_rule(
        db,
        FACILITY,
        "sec-kids",
        reason="Review found no risk.",
        at=wall(20, 8),
        actor="staff:8:W. Chen",
    )
    export = tmp_path / "vendor.csv"
    export.write_text(
        "person,dialed,start,seconds,record_id\n"
        f"ana,{KID},2025-02-15T10:00,300,v-1\n"  # during the suspension: outside policy
        f"ana,{KID2},2025-02-25T10:00,600,v-2\n"
    )
    summary = import_calls(db, FACILITY, export, at=NOW, actor="t")
    assert (summary.imported, summary.outside_policy) == (2, 1)
    return db


def test_each_period_entitled_delivered_and_its_shortfall(db: Database) -> None:
    report = order_compliance(db, FACILITY, "order-9", "2025-01", "2025-03", at=NOW)
    assert [
        (p.key, p.entitled, p.delivered, p.outside_policy, p.shortfall) for p in report.periods
    ] == [
        ("2025-01", 0, 0, 0, 0),  # before the order
        ("2025-02", 4, 3, 1, 1),
        ("2025-03", 4, 0, 0, 4),
    ]
    assert (report.entitled, report.delivered, report.shortfall) == (8, 3, 5)
    # The same figures as the SPEC's compliance report, period by period.
    for period in report.periods:
        spec = compliance_report(db, FACILITY, "order-9", period.key)
        assert (spec.entitled, spec.delivered, spec.shortfall) == (
            period.entitled,
            period.delivered,
            period.shortfall,
        )
    february = report.periods[1]
    assert [(s.contact_name, s.minutes, s.outside_policy) for s in february.sessions] == [
        ("K. Ana", 10, False),
        ("K. Ana", 5, True),
        ("L. Ana", 10, False),
    ]
    assert february.within_policy == 2
    outside = february.sessions[1]
    assert outside.reason == "denied" and outside.charged_to is None


def test_the_causes_of_a_shortfall(db: Database) -> None:
    february = order_compliance(db, FACILITY, "order-9", "2025-02", "2025-02", at=NOW).periods[0]
    (refusal,) = february.refusals
    assert (refusal.at, refusal.contact_name, refusal.reason) == (wall(12, 10), "K. Ana", "denied")
    assert refusal.rule_ids == ("sec-kids",)
    decided = refusal.decided
    assert decided is not None and decided.decision.reason is Reason.DENIED
    words = explain(
        decided.decision,
        Request(decided.person_id, decided.contact, decided.channel, decided.at),
        decided.rules,
        decided.usage,
        language="es",
        zone=DENVER,
    )
    assert [cause.rule_id for cause in words.causes] == ["sec-kids"]
    assert "Esta regla prohíbe" in words.causes[0].sentence

    (override,) = february.overrides
    assert override.span.rule.id == "sec-kids"
    assert (override.first_day, override.last_day, override.days) == (
        date(2025, 2, 10),
        date(2025, 2, 20),
        11,
    )
    assert override.span.imposed_by == "staff:7:J. Ortiz"
    assert override.span.lifted_by == "staff:8:W. Chen"
    assert override.span.lift_reason == "Review found no risk."

    assert [(held.contact_name, held.status) for held in february.lapsed] == [
        ("L. Ana", "released"),
        ("K. Ana", "expired"),
    ]
    assert february.cancelled == ()  # a phone order has no visits

    march = order_compliance(db, FACILITY, "order-9", "2025-03", "2025-03", at=NOW).periods[0]
    assert march.shortfall == 4
    assert (march.refusals, march.overrides, march.lapsed) == ((), (), ())


def test_a_timeline_of_the_rules_and_activities(db: Database) -> None:
    report = order_compliance(db, FACILITY, "order-9", "2025-02", "2025-02", at=NOW)
    assert report.order.rule.case_number == "CV-9"
    assert [span.rule.id for span in report.rules] == ["g-phone", "sec-kids"]
    assert report.activities == ()
    assert [span.rule.id for span in court_orders(db, FACILITY)] == ["order-9", "order-w"]


def test_a_weekly_order_counts_every_week_the_months_touch(db: Database) -> None:
    report = order_compliance(db, FACILITY, "order-w", "2025-02", "2025-02", at=NOW)
    assert [(p.key, p.entitled) for p in report.periods] == [
        ("2025-W05", 1),  # Monday 27 January to Sunday 2 February: the order starts on the 1st
        ("2025-W06", 1),
        ("2025-W07", 1),
        ("2025-W08", 1),
        ("2025-W09", 1),  # to Sunday 2 March
    ]
    assert report.start == wall(27, 0, month=1) and report.end == wall(3, 0, month=3)
    assert sum(p.delivered for p in report.periods) == 0  # the calls were by phone


@pytest.mark.parametrize(
    ("order", "first", "last", "field", "message"),
    [
        ("g-phone", "2025-02", "2025-02", "rule_id", "g-phone is not a court-order grant"),
        ("order-9", "2025-03", "2025-02", "to", "the last month comes before the first"),
        ("order-9", "2025-W05", "2025-02", "from", "write a month as a year and a month"),
        ("order-9", "2025-02", "2025-13", "to", "write a month as a year and a month"),
        ("order-9", "1900-01", "2025-02", "from", "the range is too long"),
    ],
)
def test_what_is_not_a_report(
    db: Database, order: str, first: str, last: str, field: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        order_compliance(db, FACILITY, order, first, last, at=NOW)
    assert refused.value.field == field
    assert refused.value.message.startswith(message)


def test_an_order_that_is_not_there(db: Database) -> None:
    with pytest.raises(NotFound):
        order_compliance(db, FACILITY, "order-404", "2025-02", "2025-02", at=NOW)


def test_a_cancelled_video_visit_is_a_cause(fresh_db: Callable[[DbTemplate], Database]) -> None:
    """An order of video visits with the supermax case's daughters: a booked visit
    cancelled by staff is named, with its visitors, who cancelled it and why."""
    db = fresh_db(SUPERMAX)
    now = datetime(2026, 12, 1, 17, tzinfo=UTC)  # Tuesday 10:00 in Denver
    load_visits(db, "usp-red-mesa", at=now)
    impose_rule(
        db,
        "usp-red-mesa",
        {
            "id": "order-video",
            "authority": "court_order",
            "kind": "grant",
            "channel": "video",
            "person": "salazar",
            "contacts": {"ids": ["daughter-a", "daughter-b"]},
            "quota": {"count": 2, "per": "month"},
            "max_minutes": 45,
            "case_number": "CV-17",
            "text": "Two video visits a month with his daughters.",
        },
        at=now,
        actor="staff:1:Records",
    )
    answer = booking.book(
        db, "usp-red-mesa", "salazar", "video-thu", date(2026, 12, 10),
        ["daughter-a", "daughter-b"], booker="staff", actor="staff:1:Records", now=now,
    )  # fmt: skip
    assert answer.allowed and answer.booking is not None
    booking.cancel(
        db,
        "usp-red-mesa",
        answer.booking.id,
        reason="The video suite is closed for repairs.",
        actor="staff:2:Visiting",
        now=now + timedelta(hours=1),
    )
    (period,) = order_compliance(
        db, "usp-red-mesa", "order-video", "2026-12", "2026-12", at=now
    ).periods
    assert (period.entitled, period.delivered, period.shortfall) == (2, 0, 2)
    (visit,) = period.cancelled
    assert visit.at == datetime(2026, 12, 11, 0, tzinfo=UTC)  # Thursday 17:00 in Denver
    assert visit.visitors == ("A. Salazar", "M. Salazar")
    assert visit.cancelled_by == "staff:2:Visiting"
    assert visit.reason == "The video suite is closed for repairs."
