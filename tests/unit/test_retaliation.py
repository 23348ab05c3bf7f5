"""Retaliation flags (SPEC 7): an adverse action closely following a protected activity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from kinline.rules.periods import wall_to_instant
from kinline.rules.retaliation import (
    AdverseAction,
    ProtectedActivity,
    RetaliationFlag,
    retaliation_flags,
)

ZONE = ZoneInfo("America/Denver")
WINDOW = 90


def at(wall: str) -> datetime:
    return wall_to_instant(datetime.fromisoformat(wall), ZONE)


def activity(activity_id: str, when: str | datetime, person: str = "salazar") -> ProtectedActivity:
    instant = at(when) if isinstance(when, str) else when
    return ProtectedActivity(activity_id, person, "pro_se_motion", instant)


def action(action_id: str, when: str | datetime, person: str = "salazar") -> AdverseAction:
    instant = at(when) if isinstance(when, str) else when
    return AdverseAction(action_id, person, "impose", instant)


def flags(
    actions: list[AdverseAction], activities: list[ProtectedActivity], window: int = WINDOW
) -> set[tuple[str, str, int]]:
    return {
        (flag.action, flag.activity, flag.days)
        for flag in retaliation_flags(actions, activities, window, ZONE)
    }


def test_activity_at_the_same_moment_is_zero_days() -> None:
    assert flags([action("sam-2", "2024-05-01T08:00")], [activity("m1", "2024-05-01T08:00")]) == {
        ("sam-2", "m1", 0)
    }


def test_the_flag_carries_both_moments_and_the_person() -> None:
    [flag] = retaliation_flags(
        [action("sam-2", "2024-05-01T08:00")], [activity("m1", "2024-04-15T08:00")], WINDOW, ZONE
    )
    assert flag == RetaliationFlag(
        action="sam-2",
        activity="m1",
        person="salazar",
        days=16,
        action_at=at("2024-05-01T08:00"),
        activity_at=at("2024-04-15T08:00"),
    )


def test_the_most_recent_activity_at_or_before_the_action_is_named() -> None:
    activities = [
        activity("m-old", "2024-04-01T09:00"),
        activity("m-recent", "2024-04-25T09:00"),
        activity("m-mid", "2024-04-10T09:00"),
        activity("m-after", "2024-05-02T09:00"),
    ]
    assert flags([action("sam-2", "2024-05-01T08:00")], activities) == {("sam-2", "m-recent", 5)}


def test_a_tie_names_the_later_recorded_activity() -> None:
    activities = [activity("first", "2024-04-25T09:00"), activity("second", "2024-04-25T09:00")]
    assert flags([action("sam-2", "2024-05-01T09:00")], activities) == {("sam-2", "second", 6)}


def test_days_are_floored() -> None:
    assert flags([action("a", "2024-05-04T07:59")], [activity("m", "2024-05-01T08:00")]) == {
        ("a", "m", 2)
    }


def test_activity_after_the_action_is_not_flagged() -> None:
    acted = at("2024-05-01T08:00")
    later = [activity("m", acted + timedelta(seconds=1)), activity("n", "2024-06-01")]
    assert flags([action("a", acted)], later) == set()


def test_activity_outside_the_window_is_not_flagged() -> None:
    old = [activity("m", "2024-01-31T08:00")]
    assert flags([action("a", "2024-05-01T08:01")], old) == set()
    assert flags([action("a", "2024-05-01T08:01")], old, window=92) == {("a", "m", 91)}


def test_the_window_end_is_inclusive() -> None:
    # 2024-01-31 08:00 to 2024-04-30 08:00 is exactly 90 days on the wall clock
    assert flags([action("a", "2024-04-30T08:00")], [activity("m", "2024-01-31T08:00")]) == {
        ("a", "m", 90)
    }
    assert flags([action("a", "2024-04-30T08:01")], [activity("m", "2024-01-31T08:00")]) == set()


def test_another_persons_activity_is_not_flagged() -> None:
    activities = [activity("m", "2024-04-30T08:00", person="someone-else")]
    assert flags([action("a", "2024-05-01T08:00")], activities) == set()


def test_only_the_persons_own_activities_are_considered() -> None:
    activities = [
        activity("mine", "2024-04-20T08:00"),
        activity("theirs", "2024-04-30T08:00", person="someone-else"),
    ]
    assert flags([action("a", "2024-05-01T08:00")], activities) == {("a", "mine", 11)}


def test_each_action_is_flagged_on_its_own() -> None:
    activities = [activity("m1", "2024-04-01T08:00"), activity("m2", "2024-04-20T08:00")]
    actions = [
        action("before-all", "2024-03-01T08:00"),
        action("between", "2024-04-10T08:00"),
        action("after", "2024-04-30T08:00"),
        action("revoke:wife:visit", "2024-04-20T08:00"),
    ]
    assert flags(actions, activities) == {
        ("between", "m1", 9),
        ("after", "m2", 10),
        ("revoke:wife:visit", "m2", 0),
    }


def test_days_are_counted_on_the_wall_clock_across_spring_forward() -> None:
    # 10 wall-clock days, but only 239 hours
    activity_at, action_at = at("2024-03-01T10:00"), at("2024-03-11T10:00")
    assert action_at - activity_at == timedelta(days=10) - timedelta(hours=1)
    assert flags([action("a", action_at)], [activity("m", activity_at)]) == {("a", "m", 10)}


def test_days_are_counted_on_the_wall_clock_across_fall_back() -> None:
    # 9 days 23:30 on the wall clock, 10 days 00:30 in absolute time
    activity_at, action_at = at("2024-10-30T10:00"), at("2024-11-09T09:30")
    assert action_at - activity_at == timedelta(days=10, minutes=30)
    assert flags([action("a", action_at)], [activity("m", activity_at)]) == {("a", "m", 9)}


def test_the_window_is_on_the_wall_clock_too() -> None:
    # 90 wall-clock days; 90 days and an hour in absolute time
    activity_at, action_at = at("2024-08-10T10:00"), at("2024-11-08T10:00")
    assert action_at - activity_at == timedelta(days=90, hours=1)
    assert flags([action("a", action_at)], [activity("m", activity_at)]) == {("a", "m", 90)}


def test_an_earlier_activity_in_the_dst_fold_is_zero_days() -> None:
    # 01:50 MDT then 01:10 MST: the action is 20 minutes later, its wall clock 40 minutes earlier
    activity_at = datetime(2024, 11, 3, 7, 50, tzinfo=UTC)
    action_at = datetime(2024, 11, 3, 8, 10, tzinfo=UTC)
    assert flags([action("a", action_at)], [activity("m", activity_at)]) == {("a", "m", 0)}


def test_no_activities_no_flags() -> None:
    assert retaliation_flags([action("a", "2024-05-01")], [], WINDOW, ZONE) == []
