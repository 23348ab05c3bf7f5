"""Periods in the facility's zone: keys, spans, DST and rolling windows (SPEC 1, 3.1)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinline.rules.model import DAY, MONTH, WEEK, Period, rolling
from kinline.rules.periods import (
    closing_instant,
    elapsed,
    local,
    parse_period,
    period_key,
    rolling_start,
    span_of,
    wall_to_instant,
    whole_minutes,
)
from kinline.rules.usage import Tally, UsageLedger, UsageSnapshot

DENVER = ZoneInfo("America/Denver")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def wall(text: str, zone: ZoneInfo = DENVER) -> datetime:
    return wall_to_instant(datetime.fromisoformat(text), zone)


# --- period keys in local time ---------------------------------------------------------


def test_month_end_late_evening_local_is_next_day_utc() -> None:
    instant = wall("2024-03-31T23:30")
    assert instant == utc(2024, 4, 1, 5, 30)
    assert period_key(MONTH, instant, DENVER) == "2024-03"
    assert period_key(DAY, instant, DENVER) == "2024-03-31"
    assert period_key(WEEK, instant, DENVER) == "2024-W13"
    # the same instant in UTC would be April
    assert period_key(MONTH, instant, ZoneInfo("UTC")) == "2024-04"


def test_year_end_month_key() -> None:
    assert period_key(MONTH, wall("2024-12-31T23:59:59"), DENVER) == "2024-12"
    assert period_key(MONTH, wall("2025-01-01T00:00"), DENVER) == "2025-01"


@pytest.mark.parametrize(
    ("local_wall", "key"),
    [
        ("2024-12-29T23:59", "2024-W52"),  # Sunday
        ("2024-12-30T00:00", "2025-W01"),  # Monday, still December
        ("2025-01-01T12:00", "2025-W01"),
        ("2021-01-03T12:00", "2020-W53"),  # Sunday, already January
        ("2021-01-04T00:00", "2021-W01"),
        ("2027-01-01T08:00", "2026-W53"),
    ],
)
def test_iso_week_across_a_year_end(local_wall: str, key: str) -> None:
    assert period_key(WEEK, wall(local_wall), DENVER) == key


def test_week_starts_monday_midnight_local() -> None:
    sunday_late = wall("2024-03-17T23:59:59")
    monday = wall("2024-03-18T00:00")
    assert monday - sunday_late == timedelta(seconds=1)
    assert period_key(WEEK, sunday_late, DENVER) == "2024-W11"
    assert period_key(WEEK, monday, DENVER) == "2024-W12"
    # Monday 03:00 UTC is still Sunday evening in Denver
    assert period_key(WEEK, utc(2024, 3, 18, 3, 0), DENVER) == "2024-W11"


def test_rolling_period_has_no_calendar_key() -> None:
    with pytest.raises(ValueError, match="no calendar key"):
        period_key(rolling(7), utc(2024, 3, 1), DENVER)


# --- parse_period ----------------------------------------------------------------------


def test_parse_month() -> None:
    span = parse_period("2024-02", DENVER)
    assert span.period == MONTH
    assert (span.first, span.after) == (date(2024, 2, 1), date(2024, 3, 1))
    assert (span.start, span.end) == (utc(2024, 2, 1, 7), utc(2024, 3, 1, 7))


def test_parse_december_ends_next_year() -> None:
    span = parse_period("2024-12", DENVER)
    assert span.after == date(2025, 1, 1)
    assert span.end == utc(2025, 1, 1, 7)


def test_parse_week() -> None:
    span = parse_period("2025-W01", DENVER)
    assert span.period == WEEK
    assert (span.first, span.after) == (date(2024, 12, 30), date(2025, 1, 6))
    assert span.start == utc(2024, 12, 30, 7)
    assert parse_period("2020-W53", DENVER).first == date(2020, 12, 28)


def test_parse_day() -> None:
    span = parse_period("2024-02-29", DENVER)
    assert span.period == DAY
    assert (span.first, span.after) == (date(2024, 2, 29), date(2024, 3, 1))
    assert span.end - span.start == timedelta(hours=24)


@pytest.mark.parametrize(
    ("key", "hours"),
    [("2024-03-10", 23), ("2024-11-03", 25), ("2024-W10", 167), ("2024-03", 743)],
)
def test_spans_with_a_dst_change_are_not_whole_days(key: str, hours: int) -> None:
    span = parse_period(key, DENVER)
    assert span.end - span.start == timedelta(hours=hours)


@pytest.mark.parametrize(
    "key",
    [
        "2024-13",
        "2024-00",
        "2024-3",
        "24-03",
        "2024/03",
        "",
        " 2024-03",
        "2024-03 ",
        "2024-W00",
        "2024-W53",  # 2024 has 52 ISO weeks
        "2024-W1",
        "2024-w10",
        "2023-02-29",
        "2024-04-31",
        "2024-03-04T00:00",
        "2024-3-4",
        "march",
    ],
)
def test_parse_period_rejects_bad_input(key: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        parse_period(key, DENVER)


def test_span_holds_is_half_open() -> None:
    span = parse_period("2024-03", DENVER)
    assert span.holds(span.start)
    assert not span.holds(span.end)
    assert span.holds(span.end - timedelta(microseconds=1))
    assert not span.holds(span.start - timedelta(microseconds=1))


def test_span_overlaps_an_interval_sharing_any_moment() -> None:
    span = parse_period("2024-03", DENVER)
    assert span.overlaps(None, None)
    assert not span.overlaps(span.end, None)
    assert span.overlaps(span.end - timedelta(seconds=1), None)
    assert not span.overlaps(None, span.start)
    assert span.overlaps(None, span.start + timedelta(seconds=1))
    assert span.overlaps(span.start - timedelta(days=40), span.end + timedelta(days=40))


# --- DST ------------------------------------------------------------------------------


def test_wall_to_instant_in_a_gap_uses_fold_zero() -> None:
    # 2024-03-10 02:30 does not exist in Denver; fold=0 reads it with the MST offset
    assert wall("2024-03-10T02:30") == utc(2024, 3, 10, 9, 30)
    assert local(utc(2024, 3, 10, 9, 30), DENVER) == datetime(2024, 3, 10, 3, 30)


def test_wall_to_instant_in_a_fold_is_the_first_occurrence() -> None:
    # 2024-11-03 01:30 happens twice; fold=0 is the MDT one
    assert wall("2024-11-03T01:30") == utc(2024, 11, 3, 7, 30)
    assert local(utc(2024, 11, 3, 8, 30), DENVER) == datetime(2024, 11, 3, 1, 30)


def test_wall_to_instant_refuses_an_aware_time() -> None:
    with pytest.raises(ValueError, match="naive"):
        wall_to_instant(utc(2024, 3, 1), DENVER)


def test_wall_to_instant_returns_utc() -> None:
    instant = wall("2024-07-01T12:00")
    assert instant.tzinfo is UTC
    assert instant == utc(2024, 7, 1, 18)


@pytest.mark.parametrize(
    ("start", "closes", "expected"),
    [
        (utc(2024, 3, 10, 8, 30), time(17, 0), utc(2024, 3, 10, 23, 0)),  # 01:30 MST -> 17:00 MDT
        (utc(2024, 11, 3, 6, 30), time(17, 0), utc(2024, 11, 4, 0, 0)),  # 00:30 MDT -> 17:00 MST
        (utc(2024, 3, 10, 8, 30), time(2, 30), utc(2024, 3, 10, 9, 30)),  # closes in the gap
        (utc(2024, 11, 3, 6, 30), time(1, 30), utc(2024, 11, 3, 7, 30)),  # closes in the fold
        (utc(2024, 3, 5, 6, 0), time(23, 30), utc(2024, 3, 5, 6, 30)),  # local day, not UTC day
    ],
)
def test_closing_instant_on_the_local_day(
    start: datetime, closes: time, expected: datetime
) -> None:
    assert closing_instant(start, closes, DENVER) == expected


def test_minutes_to_closing_on_dst_days_are_absolute() -> None:
    spring = utc(2024, 3, 10, 8, 0)  # 01:00 MST
    assert whole_minutes(elapsed(spring, closing_instant(spring, time(4, 0), DENVER))) == 120
    autumn = utc(2024, 11, 3, 6, 0)  # 00:00 MDT
    assert whole_minutes(elapsed(autumn, closing_instant(autumn, time(4, 0), DENVER))) == 300


def test_elapsed_between_aware_times_in_the_zone_is_absolute() -> None:
    before = datetime(2024, 3, 10, 1, 0, tzinfo=DENVER)
    after = datetime(2024, 3, 10, 3, 0, tzinfo=DENVER)
    assert elapsed(before, after) == timedelta(hours=1)


def test_whole_minutes_rounds_down() -> None:
    assert whole_minutes(timedelta(seconds=119)) == 1
    assert whole_minutes(timedelta(seconds=59)) == 0
    assert whole_minutes(timedelta(seconds=-1)) == -1


# --- rolling windows -------------------------------------------------------------------


def test_rolling_start_is_n_times_24_hours_in_absolute_time() -> None:
    start = wall("2024-03-10T12:00")  # MDT, the day clocks sprang forward
    assert rolling_start(rolling(1), start) == utc(2024, 3, 9, 18, 0)
    assert local(rolling_start(rolling(1), start), DENVER) == datetime(2024, 3, 9, 11, 0)
    assert rolling_start(rolling(30), start) == start - timedelta(days=30)


def test_rolling_window_is_open_at_start_and_closed_at_the_session() -> None:
    at = wall("2024-03-10T12:00")
    boundary = at - timedelta(hours=24)
    snapshot = UsageSnapshot(
        zone=DENVER,
        rolling={
            "r": [
                (boundary, 1),
                (boundary + timedelta(seconds=1), 10),
                (at, 100),
                (at + timedelta(seconds=1), 1000),
            ]
        },
    )
    tally = snapshot.tally("r", rolling(1), at)
    assert (tally.sessions, tally.minutes) == (2, 110)


def test_calendar_tally_reads_the_period_of_the_instant() -> None:
    snapshot = UsageSnapshot(zone=DENVER, counters={("g", "2024-03"): Tally(2, 5)})
    assert snapshot.tally("g", MONTH, wall("2024-03-31T23:59")) == Tally(2, 5)
    assert snapshot.tally("g", MONTH, wall("2024-04-01T00:00")) == Tally(0, 0)
    assert snapshot.tally("g", MONTH, wall("2024-03-01T00:00")) == Tally(2, 5)
    assert snapshot.tally("g", MONTH, wall("2024-02-29T23:59")) == Tally(0, 0)
    assert UsageLedger(DENVER).snapshot("p").tally("g", MONTH, utc(2024, 3, 1)) == Tally(0, 0)


# --- properties -----------------------------------------------------------------------

ZONES = [
    "America/Denver",
    "Europe/London",
    "Australia/Lord_Howe",  # 30-minute DST
    "America/Santiago",  # midnight transitions
    "America/Sao_Paulo",  # historical midnight gaps
    "America/Havana",  # midnight transitions
    "Asia/Beirut",  # midnight transitions
    "Pacific/Apia",  # skipped 2011-12-30 entirely
    "Antarctica/Troll",  # two-hour DST
    "Asia/Kolkata",
    "UTC",
]
zones = st.sampled_from(ZONES).map(ZoneInfo)
instants = st.datetimes(min_value=datetime(1995, 1, 1), max_value=datetime(2035, 12, 31)).map(
    lambda naive: naive.replace(tzinfo=UTC)
)
calendar_periods = st.sampled_from([DAY, WEEK, MONTH])


@settings(max_examples=200, deadline=None)
@given(zone=zones, instant=instants, period=calendar_periods)
def test_every_instant_lies_in_the_span_of_its_own_key(
    zone: ZoneInfo, instant: datetime, period: Period
) -> None:
    span = span_of(period, instant, zone)
    assert span.key == period_key(period, instant, zone)
    assert span.period == period
    assert span.holds(instant)
    assert parse_period(span.key, zone) == span


@settings(max_examples=200, deadline=None)
@given(zone=zones, instant=instants, period=calendar_periods)
def test_consecutive_spans_tile_time(zone: ZoneInfo, instant: datetime, period: Period) -> None:
    span = span_of(period, instant, zone)
    assert span.start < span.end
    following = span_of(period, span.end, zone)
    preceding = span_of(period, span.start - timedelta(microseconds=1), zone)
    # no gap and no overlap on either side
    assert following.start == span.end
    assert preceding.end == span.start
    assert preceding.key < span.key < following.key
    # the last moment of the span is still in it
    assert period_key(period, span.end - timedelta(microseconds=1), zone) == span.key
    assert period_key(period, span.start, zone) == span.key


@settings(max_examples=100, deadline=None)
@given(zone=zones, instant=instants, days=st.integers(min_value=1, max_value=90))
def test_rolling_window_length_is_exact(zone: ZoneInfo, instant: datetime, days: int) -> None:
    start = rolling_start(rolling(days), instant.astimezone(zone))
    assert elapsed(start, instant) == timedelta(days=days)
