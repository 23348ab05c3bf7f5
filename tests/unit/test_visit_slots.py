"""Visiting sessions, places, groups, booking windows, statuses and invitations: pure."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from kinline.rules.model import Channel, Setting
from kinline.visits import calendar, slots
from kinline.visits.slots import (
    Block,
    BookingWindow,
    GroupLimits,
    Place,
    SessionKind,
    Template,
)
from kinline.visits.statuses import VisitStatus, lapsed, may_move, refusal_due

DENVER = ZoneInfo("America/Denver")


def template(**changes: object) -> Template:
    base: dict[str, object] = {
        "id": "sat-am",
        "room_id": "main",
        "weekday": 5,  # Saturday
        "starts": time(9, 0),
        "ends": time(11, 0),
        "kind": SessionKind.CONTACT,
        "capacity_open": 10,
        "capacity_closed": 2,
        "valid_from": date(2026, 3, 7),  # a Saturday
    }
    base.update(changes)
    return Template(**base)  # type: ignore[arg-type]


def test_weekly_template_offers_its_weekday_only() -> None:
    found = slots.occurrences([template()], [], date(2026, 3, 1), date(2026, 3, 31), DENVER)
    assert [o.day for o in found] == [date(2026, 3, d) for d in (7, 14, 21, 28)]


def test_fortnightly_counts_weeks_from_valid_from() -> None:
    t = template(every_weeks=2, valid_from=date(2026, 3, 12))  # a Thursday: week of 9 March
    found = slots.occurrences([t], [], date(2026, 3, 1), date(2026, 4, 30), DENVER)
    assert [o.day for o in found] == [date(2026, 3, d) for d in (14, 28)] + [
        date(2026, 4, d) for d in (11, 25)
    ]
    assert not slots.occurs_on(t, date(2026, 3, 21))


def test_valid_dates_and_excluded_dates() -> None:
    t = template(valid_to=date(2026, 3, 21), excluded=frozenset({date(2026, 3, 14)}))
    found = slots.occurrences([t], [], date(2026, 2, 1), date(2026, 4, 30), DENVER)
    assert [o.day for o in found] == [date(2026, 3, 7), date(2026, 3, 21)]


def test_blocks_take_a_room_or_the_whole_facility() -> None:
    other = template(id="sat-b", room_id="annex")
    blocks = [
        Block(date(2026, 3, 7), "main", "flooding"),
        Block(date(2026, 3, 14), None, "lockdown"),
    ]
    found = slots.occurrences(
        [template(), other], blocks, date(2026, 3, 7), date(2026, 3, 14), DENVER
    )
    assert [(o.day, o.room_id) for o in found] == [(date(2026, 3, 7), "annex")]
    hit = slots.blocking(
        [*blocks, Block(date(2026, 3, 14), "main", "x")], "main", date(2026, 3, 14)
    )
    assert hit is not None and hit.reason == "lockdown"


def test_session_keeps_its_wall_time_across_dst() -> None:
    # America/Denver springs forward on 8 March 2026.
    t = template(weekday=6, valid_from=date(2026, 3, 1))
    before, after = slots.occurrences([t], [], date(2026, 3, 1), date(2026, 3, 8), DENVER)
    assert before.starts_at == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
    assert after.starts_at == datetime(2026, 3, 8, 15, 0, tzinfo=UTC)
    assert before.minutes == after.minutes == 120


def test_session_in_the_dst_gap_resolves_with_fold_zero() -> None:
    t = template(weekday=6, starts=time(2, 30), ends=time(4, 0), valid_from=date(2026, 3, 8))
    (occ,) = slots.occurrences([t], [], date(2026, 3, 8), date(2026, 3, 8), DENVER)
    assert occ.starts_at == datetime(2026, 3, 8, 9, 30, tzinfo=UTC)  # 02:30 MST
    assert occ.minutes == 30  # 04:00 MDT is 10:00 UTC


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"weekday": 7}, "weekday"),
        ({"ends": time(9, 0)}, "ends"),
        ({"capacity_open": -1}, "capacity_open"),
        ({"capacity_open": 0, "capacity_closed": 0}, "capacity_open"),
        ({"kind": SessionKind.VIDEO}, "capacity_closed"),
        ({"every_weeks": 3}, "every_weeks"),
        ({"valid_to": date(2026, 3, 1)}, "valid_to"),
    ],
)
def test_template_problems_name_the_field(changes: dict[str, object], field: str) -> None:
    problem = slots.template_problem(template(**changes))
    assert problem is not None and problem[0] == field


def test_a_good_template_has_no_problem() -> None:
    assert slots.template_problem(template()) is None


@pytest.mark.parametrize(
    ("kind", "required", "expected"),
    [
        (SessionKind.CONTACT, Setting.OPEN, (Place.OPEN, Setting.OPEN)),
        (SessionKind.CONTACT, Setting.NON_CONTACT, (Place.CLOSED, Setting.CLOSED)),
        (SessionKind.CONTACT, Setting.CLOSED, (Place.CLOSED, Setting.CLOSED)),
        (SessionKind.NON_CONTACT, Setting.OPEN, (Place.OPEN, Setting.NON_CONTACT)),
        (SessionKind.NON_CONTACT, Setting.NON_CONTACT, (Place.OPEN, Setting.NON_CONTACT)),
        (SessionKind.NON_CONTACT, Setting.CLOSED, (Place.CLOSED, Setting.CLOSED)),
        (SessionKind.VIDEO, Setting.CLOSED, (Place.OPEN, None)),
    ],
)
def test_a_visit_takes_the_least_restrictive_place_it_may(
    kind: SessionKind, required: Setting, expected: tuple[Place, Setting | None]
) -> None:
    assert slots.place_for(kind, required) == expected


def test_most_restrictive_setting_and_channels() -> None:
    assert slots.most_restrictive([]) is Setting.OPEN
    assert slots.most_restrictive([None, Setting.NON_CONTACT, Setting.OPEN]) is Setting.NON_CONTACT
    assert slots.most_restrictive([Setting.CLOSED, Setting.NON_CONTACT]) is Setting.CLOSED
    assert SessionKind.VIDEO.channel is Channel.VIDEO
    assert SessionKind.NON_CONTACT.channel is Channel.VISIT


def test_age_on_a_leap_birthday() -> None:
    assert slots.age_on(date(2008, 2, 29), date(2026, 2, 28)) == 17
    assert slots.age_on(date(2008, 2, 29), date(2026, 3, 1)) == 18


def test_group_limits() -> None:
    limits = GroupLimits(max_visitors=3, max_adults=2, max_children=2, adult_age=18)
    day = date(2026, 3, 7)
    adult, child = date(1990, 1, 1), date(2015, 6, 1)
    assert slots.group_problem([adult, child, child], limits, day) is None
    assert slots.group_problem([], limits, day) == "a visit needs at least one visitor"
    assert "at most 3 visitors" in str(slots.group_problem([adult] + [child] * 3, limits, day))
    assert "at most 2 adults" in str(slots.group_problem([adult, adult, None], limits, day))
    assert "at most 2 children" in str(
        slots.group_problem([adult, child, child, child], GroupLimits(4, 2, 2), day)
    )
    assert "only with an adult" in str(slots.group_problem([child], limits, day))
    # the adult age is the facility's
    assert slots.group_problem([date(2009, 1, 1)], GroupLimits(adult_age=16), day) is None


def test_booking_window_counts_facility_days() -> None:
    window = BookingWindow(min_days=2, max_days=28)
    today = date(2026, 3, 1)
    assert not slots.within_window(window, today, date(2026, 3, 2))
    assert slots.within_window(window, today, date(2026, 3, 3))
    assert slots.within_window(window, today, date(2026, 3, 29))
    assert not slots.within_window(window, today, date(2026, 3, 30))


def test_status_moves() -> None:
    assert may_move(VisitStatus.RESERVED, VisitStatus.BOOKED)
    assert may_move(VisitStatus.REQUESTED, VisitStatus.CANCELLED)
    assert may_move(VisitStatus.CHECKED_IN, VisitStatus.COMPLETED)
    assert not may_move(VisitStatus.REQUESTED, VisitStatus.CHECKED_IN)
    assert not may_move(VisitStatus.CANCELLED, VisitStatus.BOOKED)
    assert not may_move(VisitStatus.COMPLETED, VisitStatus.NO_SHOW)
    assert VisitStatus.REQUESTED.holds_place and not VisitStatus.CANCELLED.holds_place


def test_reservation_lapses_and_requests_are_refused_in_time() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    expires = now + timedelta(minutes=10)
    assert not lapsed(VisitStatus.RESERVED, expires, now + timedelta(minutes=9))
    assert lapsed(VisitStatus.RESERVED, expires, expires)
    assert not lapsed(VisitStatus.BOOKED, expires, expires + timedelta(hours=1))
    assert not refusal_due(now, 72, now + timedelta(hours=71, minutes=59))
    assert refusal_due(now, 72, now + timedelta(hours=72))


def test_local_times_follow_each_zone_s_own_rules() -> None:
    # 10:00 in Denver on 9 March 2026 (MDT, -6) is 10:00 in Mexico City (no DST, -6);
    # on 2 March (MST, -7) it is 11:00 there.
    for day, hour in ((9, 10), (2, 11)):
        starts = datetime(2026, 3, day, 10, 0).replace(tzinfo=DENVER)
        shown = calendar.local_time(starts, starts + timedelta(hours=1), "America/Mexico_City")
        assert shown.starts.hour == hour
        assert shown.utc_offset == "-06:00"


def test_visitor_zone_falls_back_to_country_then_facility() -> None:
    assert calendar.visitor_zone("Europe/Madrid", "MX", "America/Denver") == "Europe/Madrid"
    assert calendar.visitor_zone("Not/AZone", "mx", "America/Denver") == "America/Mexico_City"
    assert calendar.visitor_zone(None, "ZZ", "America/Denver") == "America/Denver"
    assert calendar.visitor_zone(None, None, "America/Denver") == "America/Denver"


def test_invitation_has_vtimezone_and_local_times() -> None:
    starts = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)
    invitation = calendar.Invitation(
        uid="visit-7@usp-hc.kinline",
        summary="Video visit with R. Salazar",
        description="Your local time: 10:00",
        location="Video room",
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        timezone="America/Denver",
        attendees=[calendar.Attendee("Ana", "ana@example.org"), calendar.Attendee("B", None)],
    )
    text = calendar.invitation_ics(invitation, stamp=starts - timedelta(days=3))
    parsed = Calendar.from_ical(text)
    (zone,) = parsed.walk("VTIMEZONE")
    assert str(zone["TZID"]) == "America/Denver"
    (event,) = parsed.walk("VEVENT")
    assert event.decoded("dtstart") == starts
    assert "DTSTART;TZID=America/Denver:20260309T100000" in text
    assert str(event["attendee"]) == "mailto:ana@example.org"
    assert str(parsed["method"]) == "REQUEST"
    cancelled = calendar.invitation_ics(
        dataclasses.replace(invitation, cancelled=True, sequence=1),
        stamp=starts,
    )
    assert "METHOD:CANCEL" in cancelled and "STATUS:CANCELLED" in cancelled
    assert "STATUS:CONFIRMED" in text
    tentative = calendar.invitation_ics(
        dataclasses.replace(invitation, tentative=True), stamp=starts
    )
    assert "STATUS:TENTATIVE" in tentative and "METHOD:REQUEST" in tentative


def test_each_change_of_a_visits_status_raises_its_sequence() -> None:
    requested = calendar.visit_sequence(confirmed=False, cancelled=False)
    confirmed = calendar.visit_sequence(confirmed=True, cancelled=False)
    cancelled = calendar.visit_sequence(confirmed=True, cancelled=True)
    assert requested < confirmed < cancelled
    assert calendar.visit_sequence(confirmed=False, cancelled=True) == cancelled
