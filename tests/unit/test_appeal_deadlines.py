"""Appeal deadlines and levels, pure: calendar days in the facility's zone.

Each test pins one reading stated in ``kinline.appeals.model``'s docstring.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kinline.appeals.model import (
    DEFAULT_LEVELS,
    FEDERAL_LEVELS,
    ISSUING_OFFICE_LEVELS,
    AppealError,
    Level,
    LevelConfig,
    Outcome,
    Route,
    Status,
    answered,
    config_from_stored,
    deadline,
    denied_by_silence,
    escalated,
    extended,
    filed,
    in_time,
    is_closed,
    is_overdue,
    last_day,
    parse_config,
    parse_levels,
    start_of_day,
    withdrawn,
)
from kinline.people.model import Facility

DENVER = ZoneInfo("America/Denver")
NEW_YORK = ZoneInfo("America/New_York")


def wall(text: str, zone: ZoneInfo) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone).astimezone(UTC)


def hours(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 3600


# --- N calendar days ------------------------------------------------------------


def test_a_window_closes_at_local_midnight_after_its_last_day() -> None:
    event = wall("2024-05-01T08:00", DENVER)
    closes = deadline(event, 20, DENVER)
    assert closes == wall("2024-05-22T00:00", DENVER)
    assert closes == datetime(2024, 5, 22, 6, 0, tzinfo=UTC)
    assert last_day(closes, DENVER) == date(2024, 5, 21)
    # The last microsecond of the last day is in time; local midnight is late.
    assert in_time(closes - timedelta(microseconds=1), closes)
    assert not in_time(closes, closes)


def test_the_day_of_the_event_is_day_zero_whatever_its_hour() -> None:
    early = deadline(wall("2024-05-01T00:00", DENVER), 20, DENVER)
    late = deadline(wall("2024-05-01T23:59:59", DENVER), 20, DENVER)
    assert early == late == wall("2024-05-22T00:00", DENVER)


def test_the_facility_calendar_not_utc_decides_the_day() -> None:
    # 20:00 in Denver on 1 May is 02:00 UTC on 2 May: still day zero is 1 May.
    event = wall("2024-05-01T20:00", DENVER)
    assert event.date() == date(2024, 5, 2)
    assert last_day(deadline(event, 20, DENVER), DENVER) == date(2024, 5, 21)


def test_the_notice_appeal_by_date_is_the_first_levels_last_day() -> None:
    facility = Facility("f", "F", "America/Denver", appeal_days=20)
    for text in ("2024-05-01T08:00", "2024-03-01T23:30", "2024-11-03T01:30", "2024-01-31T00:00"):
        event = wall(text, DENVER)
        closes = deadline(event, FEDERAL_LEVELS[0].file_days, DENVER)
        assert last_day(closes, DENVER) == facility.appeal_deadline(event)


@pytest.mark.parametrize(
    ("zone", "event", "closes", "span"),
    [
        # Spring forward (10 March 2024 in both zones): the window is an hour shorter.
        (DENVER, "2024-03-01T12:00", "2024-03-22T00:00", 20 * 24 + 12 - 1),
        (NEW_YORK, "2024-03-01T12:00", "2024-03-22T00:00", 20 * 24 + 12 - 1),
        # Fall back (3 November 2024): an hour longer.
        (DENVER, "2024-10-25T12:00", "2024-11-15T00:00", 20 * 24 + 12 + 1),
        (NEW_YORK, "2024-10-25T12:00", "2024-11-15T00:00", 20 * 24 + 12 + 1),
    ],
)
def test_windows_across_dst_count_calendar_days_not_hours(
    zone: ZoneInfo, event: str, closes: str, span: int
) -> None:
    start = wall(event, zone)
    end = deadline(start, 20, zone)
    assert end == wall(closes, zone)
    assert end.astimezone(zone).hour == 0
    assert hours(start, end) == span


@pytest.mark.parametrize(
    ("zone", "day", "length"),
    [
        (DENVER, date(2024, 3, 10), 23),
        (NEW_YORK, date(2024, 3, 10), 23),
        (DENVER, date(2024, 11, 3), 25),
        (NEW_YORK, date(2024, 11, 3), 25),
        (DENVER, date(2024, 6, 1), 24),
    ],
)
def test_a_window_ending_on_a_dst_day_ends_at_its_local_midnight(
    zone: ZoneInfo, day: date, length: int
) -> None:
    # A one-day window opened the day before `day` ends at the end of `day`.
    opened = start_of_day(day - timedelta(days=1), zone) + timedelta(hours=12)
    closes = deadline(opened, 1, zone)
    assert hours(start_of_day(day, zone), closes) == length
    assert closes.astimezone(zone).replace(tzinfo=None) == datetime.combine(
        day + timedelta(days=1), datetime.min.time()
    )


def test_an_event_in_the_repeated_hour_counts_from_its_day() -> None:
    first = datetime(2024, 11, 3, 1, 30, tzinfo=DENVER, fold=0).astimezone(UTC)
    second = datetime(2024, 11, 3, 1, 30, tzinfo=DENVER, fold=1).astimezone(UTC)
    assert hours(first, second) == 1
    assert deadline(first, 20, DENVER) == deadline(second, 20, DENVER)
    assert last_day(deadline(second, 20, DENVER), DENVER) == date(2024, 11, 23)


def test_a_skipped_midnight_starts_the_day_after_the_gap() -> None:
    # Santiago skipped 00:00-01:00 on 8 September 2024.
    santiago = ZoneInfo("America/Santiago")
    begins = start_of_day(date(2024, 9, 8), santiago)
    assert begins.astimezone(santiago).replace(tzinfo=None) == datetime(2024, 9, 8, 1, 0)
    assert begins == datetime(2024, 9, 8, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event", "days", "last"),
    [
        ("2024-01-31T09:00", 20, "2024-02-20"),
        ("2023-01-31T09:00", 30, "2023-03-02"),  # February 2023 has 28 days
        ("2024-01-31T09:00", 30, "2024-03-01"),  # 2024 is a leap year
        ("2024-02-10T09:00", 20, "2024-03-01"),
        ("2023-02-10T09:00", 20, "2023-03-02"),
        ("2024-02-28T09:00", 1, "2024-02-29"),
        ("2024-12-20T09:00", 20, "2025-01-09"),
        ("2024-04-30T23:59", 31, "2024-05-31"),
    ],
)
def test_month_and_year_ends_are_just_days(event: str, days: int, last: str) -> None:
    closes = deadline(wall(event, DENVER), days, DENVER)
    assert last_day(closes, DENVER) == date.fromisoformat(last)
    assert closes == start_of_day(date.fromisoformat(last) + timedelta(days=1), DENVER)


# --- the levels -----------------------------------------------------------------


def test_the_default_levels_are_the_federal_program() -> None:
    assert [
        (lv.name, lv.file_days, lv.answer_days, lv.extension_days) for lv in FEDERAL_LEVELS
    ] == [
        ("informal resolution", 20, 20, 0),
        ("warden", 20, 20, 20),
        ("regional director", 20, 30, 30),
        ("central office", 30, 40, 20),
    ]
    assert list(ISSUING_OFFICE_LEVELS) == [Level("issuing office", 20, 20, 20)]
    assert DEFAULT_LEVELS.levels(Route.STANDARD) == FEDERAL_LEVELS
    assert DEFAULT_LEVELS.levels(Route.ISSUING_OFFICE) == ISSUING_OFFICE_LEVELS
    assert config_from_stored(None) == DEFAULT_LEVELS


def test_configured_levels_round_trip_through_storage() -> None:
    config = parse_config(
        {
            "standard": [
                {"name": "unit manager", "file_days": 10, "answer_days": 5},
                {"name": "warden", "file_days": 15, "answer_days": 30, "extension_days": 10},
            ],
            "issuing_office": [{"name": "security chief", "file_days": 7, "answer_days": 7}],
        }
    )
    assert config.standard == (Level("unit manager", 10, 5, 0), Level("warden", 15, 30, 10))
    assert config.issuing_office == (Level("security chief", 7, 7, 0),)
    assert config_from_stored(config.as_stored()) == config
    # A plain list sets the standard route and keeps the default issuing office.
    only = parse_config([{"name": "warden", "file_days": 15, "answer_days": 30}])
    assert only == LevelConfig(standard=(Level("warden", 15, 30, 0),))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "levels"),
        ("warden", "levels"),
        ([{"name": "a", "file_days": 1, "answer_days": 1}, "b"], "levels[1]"),
        ([{"name": "", "file_days": 1, "answer_days": 1}], "levels[0].name"),
        ([{"file_days": 1, "answer_days": 1}], "levels[0].name"),
        ([{"name": "a", "file_days": 0, "answer_days": 1}], "levels[0].file_days"),
        (
            [
                {"name": "a", "file_days": 1, "answer_days": 1},
                {"name": "b", "file_days": 1, "answer_days": "20"},
            ],
            "levels[1].answer_days",
        ),
        ([{"name": "a", "file_days": 1, "answer_days": True}], "levels[0].answer_days"),
        ([{"name": "a", "file_days": 1, "answer_days": 400}], "levels[0].answer_days"),
        (
            [{"name": "a", "file_days": 1, "answer_days": 1, "extension_days": -1}],
            "levels[0].extension_days",
        ),
        ([{"name": "a", "file_days": 1, "answer_days": 1, "days": 1}], "levels[0].days"),
        (
            [
                {"name": "a", "file_days": 1, "answer_days": 1},
                {"name": "A", "file_days": 1, "answer_days": 1},
            ],
            "levels[1].name",
        ),
        ({"issuing_office": []}, "standard"),
        ({"standard": [{"name": "a", "file_days": 1, "answer_days": 1}], "region": []}, "region"),
        (
            {
                "standard": [{"name": "a", "file_days": 1, "answer_days": 1}],
                "issuing_office": [{"name": "b", "file_days": 1}],
            },
            "issuing_office[0].answer_days",
        ),
    ],
)
def test_bad_levels_name_the_field(data: object, field: str) -> None:
    with pytest.raises(AppealError) as raised:
        parse_config(data)
    assert raised.value.field == field
    assert raised.value.message


def test_parse_levels_names_its_own_field() -> None:
    with pytest.raises(AppealError) as raised:
        parse_levels([{"name": "a", "file_days": 1}], "standard")
    assert raised.value.field == "standard[0].answer_days"


# --- an appeal's way through the levels ---------------------------------------------

EVENT = wall("2024-05-01T08:00", DENVER)


def test_filing_in_time_opens_the_first_level() -> None:
    at = wall("2024-05-21T23:59", DENVER)
    stage = filed(FEDERAL_LEVELS, EVENT, at, DENVER)
    assert (stage.level, stage.level_name, stage.status) == (
        0,
        "informal resolution",
        Status.PENDING,
    )
    assert stage.answer_due == wall("2024-06-11T00:00", DENVER)
    assert stage.file_next_by is None
    assert not stage.extended


def test_filing_late_is_refused_naming_at_unless_accepted() -> None:
    at = wall("2024-05-22T00:00", DENVER)
    with pytest.raises(AppealError) as raised:
        filed(FEDERAL_LEVELS, EVENT, at, DENVER)
    assert raised.value.field == "at"
    assert not raised.value.conflict
    assert "2024-05-21" in raised.value.message
    assert "late with a reason" in raised.value.message
    stage = filed(FEDERAL_LEVELS, EVENT, at, DENVER, accepted_late=True)
    assert stage.status is Status.PENDING


def test_a_notices_printed_date_is_honoured_when_later() -> None:
    short = parse_levels([{"name": "unit manager", "file_days": 5, "answer_days": 3}])
    promised = date(2024, 5, 21)
    in_time_by_notice = wall("2024-05-21T23:59", DENVER)
    assert filed(short, EVENT, in_time_by_notice, DENVER, promised=promised).level == 0
    with pytest.raises(AppealError):
        filed(short, EVENT, wall("2024-05-22T00:00", DENVER), DENVER, promised=promised)
    with pytest.raises(AppealError):
        filed(short, EVENT, in_time_by_notice, DENVER)
    # An earlier printed date never shortens the level's own window.
    assert filed(FEDERAL_LEVELS, EVENT, in_time_by_notice, DENVER, promised=date(2024, 5, 2))


def test_a_denial_opens_the_next_window_from_the_answer() -> None:
    stage = filed(FEDERAL_LEVELS, EVENT, wall("2024-05-02T09:00", DENVER), DENVER)
    denied = answered(
        stage, FEDERAL_LEVELS, Outcome.DENIED, wall("2024-05-10T15:00", DENVER), DENVER
    )
    assert denied.status is Status.DENIED
    # The warden's 20 days, from the informal answer.
    assert denied.file_next_by == wall("2024-05-31T00:00", DENVER)
    warden = escalated(denied, FEDERAL_LEVELS, wall("2024-05-30T10:00", DENVER), DENVER)
    assert (warden.level, warden.level_name, warden.status) == (1, "warden", Status.PENDING)
    assert warden.answer_due == wall("2024-06-20T00:00", DENVER)


def test_a_grant_closes_the_appeal() -> None:
    stage = filed(FEDERAL_LEVELS, EVENT, wall("2024-05-02T09:00", DENVER), DENVER)
    granted = answered(
        stage, FEDERAL_LEVELS, Outcome.GRANTED, wall("2024-05-03T09:00", DENVER), DENVER
    )
    assert granted.status is Status.GRANTED
    assert granted.file_next_by is None
    assert is_closed(granted)
    with pytest.raises(AppealError) as raised:
        escalated(granted, FEDERAL_LEVELS, wall("2024-05-04T09:00", DENVER), DENVER)
    assert raised.value.conflict
    with pytest.raises(AppealError):
        answered(granted, FEDERAL_LEVELS, Outcome.DENIED, wall("2024-05-04T09:00", DENVER), DENVER)


def test_a_partial_grant_may_be_taken_further() -> None:
    stage = filed(FEDERAL_LEVELS, EVENT, wall("2024-05-02T09:00", DENVER), DENVER)
    partial = answered(
        stage, FEDERAL_LEVELS, Outcome.PARTIALLY_GRANTED, wall("2024-05-03T09:00", DENVER), DENVER
    )
    assert partial.status is Status.PARTIALLY_GRANTED
    assert escalated(partial, FEDERAL_LEVELS, wall("2024-05-04T09:00", DENVER), DENVER).level == 1


def test_silence_is_a_denial_at_the_instant_the_answer_window_closed() -> None:
    stage = filed(FEDERAL_LEVELS, EVENT, wall("2024-05-02T09:00", DENVER), DENVER)
    assert stage.answer_due == wall("2024-05-23T00:00", DENVER)
    assert not is_overdue(stage, wall("2024-05-22T23:59", DENVER))
    assert is_overdue(stage, wall("2024-05-23T00:00", DENVER))
    silent = denied_by_silence(stage, FEDERAL_LEVELS, DENVER)
    assert silent.status is Status.DENIED_BY_SILENCE
    # 20 days counted from 23 May, the day the denial happened: to 12 June.
    assert silent.file_next_by == wall("2024-06-13T00:00", DENVER)
    assert last_day(silent.file_next_by, DENVER) == date(2024, 6, 12)


def test_escalating_after_silence_needs_no_sweep() -> None:
    stage = filed(FEDERAL_LEVELS, EVENT, wall("2024-05-02T09:00", DENVER), DENVER)
    at = wall("2024-06-01T10:00", DENVER)
    warden = escalated(stage, FEDERAL_LEVELS, at, DENVER)
    assert warden.level == 1
    # Too early: the answer is not yet late, nothing to escalate.
    with pytest.raises(AppealError) as raised:
        escalated(stage, FEDERAL_LEVELS, wall("2024-05-22T10:00", DENVER), DENVER)
    assert raised.value.field == "appeal_id"
    assert raised.value.conflict


def test_escalating_after_the_next_window_is_late() -> None:
    stage = filed(FEDERAL_LEVELS, EVENT, wall("2024-05-02T09:00", DENVER), DENVER)
    silent = denied_by_silence(stage, FEDERAL_LEVELS, DENVER)
    late = wall("2024-06-13T00:00", DENVER)
    with pytest.raises(AppealError) as raised:
        escalated(silent, FEDERAL_LEVELS, late, DENVER)
    assert raised.value.field == "at"
    assert "2024-06-12" in raised.value.message
    assert escalated(silent, FEDERAL_LEVELS, late, DENVER, accepted_late=True).level == 1


def test_a_late_denial_never_shortens_the_window_silence_opened() -> None:
    stage = filed(FEDERAL_LEVELS, EVENT, wall("2024-05-02T09:00", DENVER), DENVER)
    silent = denied_by_silence(stage, FEDERAL_LEVELS, DENVER)
    # Answered a day after it was due: the window runs from the answer, later.
    later = answered(
        silent, FEDERAL_LEVELS, Outcome.DENIED, wall("2024-05-24T09:00", DENVER), DENVER
    )
    assert later.status is Status.DENIED
    assert later.file_next_by == wall("2024-06-14T00:00", DENVER)
    # A late grant closes it.
    assert (
        answered(silent, FEDERAL_LEVELS, Outcome.GRANTED, wall("2024-05-24T09:00", DENVER), DENVER)
    ).status is Status.GRANTED


def test_one_extension_per_level_before_the_answer_is_due() -> None:
    informal = filed(FEDERAL_LEVELS, EVENT, wall("2024-05-02T09:00", DENVER), DENVER)
    with pytest.raises(AppealError) as raised:
        extended(informal, FEDERAL_LEVELS, wall("2024-05-03T09:00", DENVER), DENVER)
    assert "no extension" in raised.value.message
    denied = answered(
        informal, FEDERAL_LEVELS, Outcome.DENIED, wall("2024-05-03T09:00", DENVER), DENVER
    )
    warden = escalated(denied, FEDERAL_LEVELS, wall("2024-05-04T09:00", DENVER), DENVER)
    assert warden.answer_due == wall("2024-05-25T00:00", DENVER)
    longer = extended(warden, FEDERAL_LEVELS, wall("2024-05-24T23:00", DENVER), DENVER)
    # 20 more calendar days after 24 May: through 13 June.
    assert longer.answer_due == wall("2024-06-14T00:00", DENVER)
    assert longer.extended
    with pytest.raises(AppealError) as again:
        extended(longer, FEDERAL_LEVELS, wall("2024-05-25T09:00", DENVER), DENVER)
    assert again.value.conflict
    assert "already extended" in again.value.message
    with pytest.raises(AppealError) as too_late:
        extended(warden, FEDERAL_LEVELS, wall("2024-05-25T00:00", DENVER), DENVER)
    assert too_late.value.field == "at"


def test_the_last_level_is_final() -> None:
    stage = filed(FEDERAL_LEVELS, EVENT, wall("2024-05-02T09:00", DENVER), DENVER)
    at = wall("2024-05-03T09:00", DENVER)
    for level in range(1, 4):
        stage = answered(stage, FEDERAL_LEVELS, Outcome.DENIED, at, DENVER)
        at += timedelta(days=1)
        stage = escalated(stage, FEDERAL_LEVELS, at, DENVER)
        assert stage.level == level
        at += timedelta(days=1)
    assert stage.level_name == "central office"
    assert stage.answer_due == deadline(at - timedelta(days=1), 40, DENVER)
    final = answered(stage, FEDERAL_LEVELS, Outcome.DENIED, at, DENVER)
    assert final.file_next_by is None
    assert is_closed(final)
    with pytest.raises(AppealError) as raised:
        escalated(final, FEDERAL_LEVELS, at, DENVER)
    assert "last one" in raised.value.message
    with pytest.raises(AppealError):
        withdrawn(final)


def test_the_issuing_office_route_is_one_level() -> None:
    levels = DEFAULT_LEVELS.levels(Route.ISSUING_OFFICE)
    stage = filed(levels, EVENT, wall("2024-05-02T09:00", DENVER), DENVER)
    assert stage.level_name == "issuing office"
    silent = denied_by_silence(stage, levels, DENVER)
    assert silent.file_next_by is None
    assert is_closed(silent)


def test_configured_levels_set_the_deadlines() -> None:
    levels = parse_levels(
        [
            {"name": "unit manager", "file_days": 5, "answer_days": 3},
            {"name": "warden", "file_days": 10, "answer_days": 15, "extension_days": 5},
        ]
    )
    stage = filed(levels, EVENT, wall("2024-05-06T09:00", DENVER), DENVER)
    assert stage.answer_due == wall("2024-05-10T00:00", DENVER)
    with pytest.raises(AppealError):
        filed(levels, EVENT, wall("2024-05-07T00:00", DENVER), DENVER)
    silent = denied_by_silence(stage, levels, DENVER)
    assert silent.file_next_by == wall("2024-05-21T00:00", DENVER)
    warden = escalated(silent, levels, wall("2024-05-20T12:00", DENVER), DENVER)
    assert warden.answer_due == wall("2024-06-05T00:00", DENVER)
    assert extended(warden, levels, wall("2024-06-01T00:00", DENVER), DENVER).answer_due == wall(
        "2024-06-10T00:00", DENVER
    )


def test_withdrawing_an_open_appeal() -> None:
    stage = filed(FEDERAL_LEVELS, EVENT, wall("2024-05-02T09:00", DENVER), DENVER)
    gone = withdrawn(stage)
    assert gone.status is Status.WITHDRAWN
    assert is_closed(gone)
    with pytest.raises(AppealError) as raised:
        withdrawn(gone)
    assert raised.value.conflict
