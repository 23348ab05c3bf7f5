"""What sessions add to the usage ledger, summed for its one writer: a call
set-up's single change and an import's batch go through the same sum, and a
hold's reservation is read off its change. Pure: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinline.calls.model import (
    EntryAdded,
    GapHeld,
    Reservation,
    UsageAdded,
    reservation,
    settlement,
    usage_added,
)
from kinline.calls.rows import BatchLedger
from kinline.rules.usage import (
    CounterIncrement,
    GapMark,
    RollingEntry,
    Tally,
    UsageChange,
    UsageLedger,
)

ZONE = ZoneInfo("America/Denver")
T0 = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def test_nothing_adds_nothing() -> None:
    assert usage_added([]) == UsageAdded()
    assert usage_added([("ana", UsageChange())]) == UsageAdded()


def test_counters_are_summed_per_person_rule_and_period() -> None:
    month = CounterIncrement("g", "2026-12", 15)
    week = CounterIncrement("l", "2026-W49", 15)
    added = usage_added(
        [
            ("ana", UsageChange(counters=(month, week))),
            ("ana", UsageChange(counters=(CounterIncrement("g", "2026-12", 4),))),
            ("ben", UsageChange(counters=(month,))),
            ("ana", UsageChange(counters=(CounterIncrement("g", "2027-01", 0),))),
        ]
    )
    assert added.counters == {
        ("ana", "g", "2026-12"): Tally(2, 19),
        ("ana", "l", "2026-W49"): Tally(1, 15),
        ("ben", "g", "2026-12"): Tally(1, 15),
        ("ana", "g", "2027-01"): Tally(1, 0),
    }


def test_every_rolling_entry_is_kept_in_order_as_a_utc_instant() -> None:
    local = T0.astimezone(ZONE)
    added = usage_added(
        [
            ("ana", UsageChange(entries=(RollingEntry("g", local, 15),))),
            ("ben", UsageChange(entries=(RollingEntry("g", T0, 10),))),
            ("ana", UsageChange(entries=(RollingEntry("g", local, 15),))),
        ]
    )
    assert added.entries == (
        EntryAdded("ana", "g", T0, 15),
        EntryAdded("ben", "g", T0, 10),
        EntryAdded("ana", "g", T0, 15),
    )
    assert all(entry.started_at.tzinfo is UTC for entry in added.entries)


def test_a_gap_mark_is_raised_to_the_latest_end_whatever_the_order() -> None:
    added = usage_added(
        [
            ("ana", UsageChange(gaps=(GapMark("l", T0 + minutes(30)),))),
            ("ana", UsageChange(gaps=(GapMark("l", T0 + minutes(10)),))),
            ("ben", UsageChange(gaps=(GapMark("l", T0),))),
            ("ana", UsageChange(gaps=(GapMark("z", T0.astimezone(ZONE)),))),
        ]
    )
    assert added.gaps == {
        ("ana", "l"): T0 + minutes(30),
        ("ben", "l"): T0,
        ("ana", "z"): T0,
    }


people = st.sampled_from(["ana", "ben"])
rule_ids = st.sampled_from(["g", "l"])
offsets = st.integers(min_value=-3000, max_value=3000).map(lambda n: T0 + minutes(n))
changes = st.builds(
    UsageChange,
    counters=st.lists(
        st.builds(
            CounterIncrement, rule_ids, st.sampled_from(["2026-11", "2026-12"]), st.integers(0, 60)
        ),
        max_size=3,
    ).map(tuple),
    entries=st.lists(
        st.builds(RollingEntry, rule_ids, offsets, st.integers(0, 60)), max_size=2
    ).map(tuple),
    gaps=st.lists(st.builds(GapMark, rule_ids, offsets), max_size=2).map(tuple),
)


@given(st.lists(st.tuples(people, changes), max_size=12))
def test_the_sum_is_what_applying_each_change_in_turn_leaves(
    applied: list[tuple[str, UsageChange]],
) -> None:
    """Written in one go, a batch leaves the ledger as the changes applied one by
    one would (the in-memory ledger the engine's tests use)."""
    one_by_one = UsageLedger(ZONE)
    for person, change in applied:
        one_by_one.apply(person, change)
    added = usage_added(applied)
    for person in ("ana", "bob", "ben"):
        snapshot = one_by_one.snapshot(person)
        assert {
            (rule_id, key): tally
            for (who, rule_id, key), tally in added.counters.items()
            if who == person
        } == dict(snapshot.counters)
        assert {
            rule_id: [
                (e.started_at, e.minutes)
                for e in added.entries
                if e.person == person and e.rule_id == rule_id
            ]
            for rule_id in snapshot.rolling
        } == {rule_id: list(entries) for rule_id, entries in snapshot.rolling.items()}
        assert {
            rule_id: end for (who, rule_id), end in added.gaps.items() if who == person
        } == dict(snapshot.gaps)
    assert len(added.entries) == sum(len(change.entries) for _, change in applied)


@given(st.lists(st.tuples(people, changes), max_size=8))
def test_a_batch_adds_the_sum_of_what_it_applied(applied: list[tuple[str, UsageChange]]) -> None:
    batch = BatchLedger(ZONE)
    for person, change in applied:
        batch.apply(person, change)
    assert batch.added == usage_added(applied)


def test_a_batch_adds_only_its_own_calls_not_what_it_was_seeded_with() -> None:
    batch = BatchLedger(ZONE)
    batch.seed_counter("ana", "g", "2026-12", Tally(3, 45))
    batch.seed_gap("ana", "l", T0 + minutes(90))
    change = UsageChange(
        counters=(CounterIncrement("g", "2026-12", 15),), gaps=(GapMark("l", T0 + minutes(15)),)
    )
    batch.apply("ana", change)
    snapshot = batch.snapshot("ana")
    assert snapshot.counters[("g", "2026-12")] == Tally(4, 60)
    assert snapshot.gaps["l"] == T0 + minutes(90)
    assert batch.added == UsageAdded(
        counters={("ana", "g", "2026-12"): Tally(1, 15)}, gaps={("ana", "l"): T0 + minutes(15)}
    )


HOLD = UsageChange(
    counters=(CounterIncrement("g", "2026-12", 15), CounterIncrement("l", "2026-W49", 15)),
    entries=(RollingEntry("r", T0, 15),),
    gaps=(GapMark("l", T0 + minutes(15)), GapMark("z", T0 + minutes(15))),
)


def test_a_hold_reserves_its_counters_its_entries_and_the_marks_it_raised() -> None:
    earlier = T0 - minutes(60)
    held = reservation(HOLD, {"l": earlier.astimezone(ZONE), "other": T0}, [41])
    assert held == Reservation(
        counters=(("g", "2026-12"), ("l", "2026-W49")),
        entries=(41,),
        gaps=(GapHeld("l", earlier, T0 + minutes(15)), GapHeld("z", None, T0 + minutes(15))),
    )
    assert all(gap.prior is None or gap.prior.tzinfo is UTC for gap in held.gaps)


def test_a_mark_already_later_than_the_hold_stays_where_it_was() -> None:
    later = T0 + minutes(120)
    held = reservation(HOLD, {"l": later}, [41])
    assert held.gaps[0] == GapHeld("l", later, later)
    # Taken back, the mark is asked to return to where it stood.
    back = settlement(held, started_at=T0, held_minutes=15, minutes=None)
    assert (back.gaps[0].expected, back.gaps[0].wanted) == (later, later)


def test_a_reservation_needs_one_id_per_rolling_entry() -> None:
    with pytest.raises(ValueError, match="1 rolling entries, 0 ids"):
        reservation(HOLD, {}, [])


def test_a_reservation_keeps_the_stored_form_holds_were_written_in() -> None:
    """Holds already in ``sessions.reserved`` keep settling: the form is unchanged."""
    stored = {
        "counters": [["g", "2026-12"], ["l", "2026-W49"]],
        "entries": [41],
        "gaps": [
            ["l", "2026-12-01T17:00:00+00:00", "2026-12-01T18:15:00+00:00"],
            ["z", None, "2026-12-01T18:15:00+00:00"],
        ],
    }
    held = reservation(HOLD, {"l": T0 - minutes(60)}, [41])
    assert held.as_json() == stored
    assert Reservation.from_json(stored) == held
