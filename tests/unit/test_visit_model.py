"""Visitor rules without a database: who may be approved, what a restriction
leaves on a day, how it is shown, and the facility's visit settings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinline.errors import InvalidInput
from kinline.rules.model import Setting
from kinline.visits.model import (
    Restriction,
    RestrictionKind,
    Supervision,
    Visitor,
    VisitorStatus,
    VisitSettings,
    approval_blockers,
    check_restriction_dates,
    check_settings,
    shown,
    standing,
)
from kinline.visits.slots import Booker, BookingWindow, Refusal

AT = datetime(2024, 6, 1, 12, tzinfo=UTC)
TODAY = date(2024, 6, 1)

WIFE = Visitor(
    id=1,
    facility_id="f",
    person_id="salazar",
    contact_id="wife",
    name="E. Salazar",
    relationship="spouse",
    date_of_birth=date(1980, 3, 2),
    address="1 Main St, Los Angeles",
    country="US",
    timezone="America/Los_Angeles",
    id_document_type="driving_licence",
    id_document_number="D123",
    id_checked_by="officer",
    id_checked_at=AT,
    criminal_record_declared=True,
    criminal_record="Co-defendant, 2019",
    supervision=Supervision.SUPERVISED_RELEASE,
    supervising_officer="P. Officer",
    supervising_office="US Probation, C.D. Cal.",
    officer_consent_at=None,
    officer_consent_by=None,
    officer_consent_note=None,
    co_defendant=False,
    accompanying_contact_id=None,
    status=VisitorStatus.APPLIED,
    applied_at=AT,
    applied_by="wife",
)


DEFAULTS = VisitSettings()


def codes(
    visitor: Visitor, settings: VisitSettings = DEFAULTS, *, adult_approved: bool = False
) -> list[str]:
    blockers = approval_blockers(visitor, settings, today=TODAY, adult_approved=adult_approved)
    return [b.code for b in blockers]


def test_a_visitor_under_supervision_waits_for_the_officers_consent() -> None:
    assert codes(WIFE) == ["officer_consent_missing"]
    consented = replace(WIFE, officer_consent_at=AT, officer_consent_by="P. Officer")
    assert codes(consented) == []


def test_a_facility_may_not_require_the_officers_consent() -> None:
    assert codes(WIFE, VisitSettings(officer_consent_required=False)) == []


def test_an_unchecked_id_blocks_approval() -> None:
    assert "id_not_checked" in codes(replace(WIFE, id_checked_at=None))


def test_only_an_application_not_yet_decided_is_approved() -> None:
    assert "wrong_state" in codes(replace(WIFE, status=VisitorStatus.REFUSED))


def test_a_minor_needs_an_approved_adult_by_the_configured_age() -> None:
    child = replace(WIFE, supervision=None, date_of_birth=date(2010, 6, 2))  # 13
    assert codes(child) == ["minor_without_adult"]
    with_adult = replace(child, accompanying_contact_id="wife")
    assert codes(with_adult) == ["minor_without_adult"]
    assert codes(with_adult, adult_approved=True) == []
    assert codes(child, VisitSettings(adult_age=13)) == []
    assert codes(child, VisitSettings(minors_need_adult=False)) == []


def test_the_eighteenth_birthday_makes_an_adult() -> None:
    turns_today = replace(WIFE, supervision=None, date_of_birth=date(2006, 6, 1))
    assert codes(turns_today) == []
    turns_tomorrow = replace(turns_today, date_of_birth=date(2006, 6, 2))
    assert codes(turns_tomorrow) == ["minor_without_adult"]


def test_a_co_defendant_is_flagged_for_the_warden_unless_the_facility_says_not() -> None:
    flagged = replace(WIFE, co_defendant=True)
    assert flagged.flagged(VisitSettings())
    assert not flagged.flagged(VisitSettings(co_defendants_to_warden=False))
    assert not WIFE.flagged(VisitSettings())


def restriction(kind: RestrictionKind, starts: date, until: date | None) -> Restriction:
    return Restriction(1, 1, "wife", kind, "Contraband found.", starts, until, AT, "security")


def test_a_restriction_is_shown_as_not_until_its_end() -> None:
    closed = restriction(RestrictionKind.CLOSED, TODAY, date(2024, 9, 1))
    assert shown(closed, "en", TODAY) == "Closed visits only, not until 2024-09-01"
    assert shown(closed, "es", TODAY) == "Solo visitas cerradas, no antes del 2024-09-01"
    banned = restriction(RestrictionKind.BANNED, date(2024, 7, 1), None)
    assert shown(banned, "en", TODAY) == "No visits, from 2024-07-01, until further notice"
    assert shown(banned, "xx", TODAY).startswith("No visits")


def test_a_restriction_holds_from_its_first_day_to_the_day_before_until() -> None:
    closed = restriction(RestrictionKind.CLOSED, date(2024, 6, 10), date(2024, 6, 20))
    assert not closed.in_force_on(date(2024, 6, 9))
    assert closed.in_force_on(date(2024, 6, 10))
    assert closed.in_force_on(date(2024, 6, 19))
    assert not closed.in_force_on(date(2024, 6, 20))
    lifted = replace(closed, lifted_at=AT)
    assert not lifted.in_force_on(date(2024, 6, 15), AT)
    assert lifted.in_force_on(date(2024, 6, 15), datetime(2024, 5, 1, tzinfo=UTC))


def test_restriction_dates_must_be_in_order() -> None:
    with pytest.raises(InvalidInput) as raised:
        check_restriction_dates(TODAY, TODAY)
    assert raised.value.field == "until"
    check_restriction_dates(TODAY, None)


def test_standing_refuses_the_unapproved_and_the_banned_and_raises_the_setting() -> None:
    assert standing("x", None, [], TODAY, at=AT).refusal is Refusal.VISITOR_NOT_APPROVED
    assert standing("wife", WIFE, [], TODAY, at=AT).refusal is Refusal.VISITOR_NOT_APPROVED
    approved = replace(WIFE, status=VisitorStatus.APPROVED)
    clear = standing("wife", approved, [], TODAY, at=AT)
    assert (clear.refusal, clear.setting) == (None, Setting.OPEN)
    rules = [
        restriction(RestrictionKind.NON_CONTACT, TODAY, None),
        restriction(RestrictionKind.CLOSED, date(2024, 6, 5), date(2024, 6, 8)),
        restriction(RestrictionKind.BANNED, date(2024, 7, 1), date(2024, 8, 1)),
    ]
    assert standing("wife", approved, rules, TODAY, at=AT).setting is Setting.NON_CONTACT
    assert standing("wife", approved, rules, date(2024, 6, 6), at=AT).setting is Setting.CLOSED
    banned = standing("wife", approved, rules, date(2024, 7, 15), at=AT)
    assert banned.refusal is Refusal.VISITOR_RESTRICTED
    assert banned.message is not None and "not until 2024-08-01" in banned.message
    assert standing("wife", approved, rules, date(2024, 8, 1), at=AT).refusal is None


def test_settings_give_group_limits_and_booking_windows() -> None:
    settings = VisitSettings(adult_age=16, public_min_notice_days=1, public_max_notice_days=14)
    assert settings.group_limits.adult_age == 16
    assert settings.booking_window(Booker.PUBLIC) == BookingWindow(1, 14)
    assert settings.booking_window(Booker.STAFF) == BookingWindow(0, 60)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"adult_age": 0}, "adult_age"),
        ({"reservation_minutes": 0}, "reservation_minutes"),
        ({"public_min_notice_days": 30}, "public_min_notice_days"),
        ({"staff_max_notice_days": 400}, "staff_max_notice_days"),
    ],
)
def test_settings_out_of_bounds_name_the_field(change: dict[str, int], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_settings(replace(VisitSettings(), **change))
    assert raised.value.field == field


@given(
    starts=st.dates(date(2024, 1, 1), date(2025, 1, 1)),
    length=st.integers(1, 400),
    day=st.dates(date(2023, 6, 1), date(2026, 6, 1)),
)
def test_a_banned_visitor_is_refused_exactly_while_the_ban_holds(
    starts: date, length: int, day: date
) -> None:
    until = date.fromordinal(starts.toordinal() + length)
    ban = restriction(RestrictionKind.BANNED, starts, until)
    approved = replace(WIFE, status=VisitorStatus.APPROVED)
    refused = standing("wife", approved, [ban], day, at=AT).refusal is not None
    assert refused == (starts <= day < until)
