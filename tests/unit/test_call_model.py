"""The pure model of a call's life: the set-up state machine, the reservation a
hold makes and the arithmetic of settling it, the decision a call carries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinline.calls import model
from kinline.calls.model import (
    CallState,
    GapHeld,
    Reservation,
    SettledBy,
    Status,
    settlement,
)
from kinline.errors import KinlineError
from kinline.rules.decide import Decision
from kinline.rules.model import Monitoring, Reason, Setting

T0 = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
GRACE = timedelta(minutes=5)
TIMEOUT = timedelta(minutes=2)


def held(max_minutes: int = 15) -> CallState:
    return model.hold("h_1", T0, max_minutes, TIMEOUT)


def test_a_hold_counts_its_maximum_until_it_connects() -> None:
    state = held()
    assert (state.status, state.minutes, state.expires_at) == (Status.HELD, 15, T0 + TIMEOUT)


def test_connect_runs_until_the_last_allowed_minute_and_its_grace() -> None:
    step = model.connect(held(), T0 + timedelta(seconds=30), GRACE)
    assert step.tag == "calls:call:connected" and not step.settles
    assert step.state.status == Status.CONNECTED
    assert step.state.expires_at == T0 + timedelta(seconds=30, minutes=15) + GRACE
    assert model.connect(step.state, T0 + timedelta(minutes=1), GRACE).replayed


def test_a_hold_that_lapsed_expires_and_charges_nothing() -> None:
    step = model.connect(held(), T0 + TIMEOUT, GRACE)
    assert step.lapsed and step.settles and step.settle_to is None
    assert (step.state.status, step.state.minutes) == (Status.EXPIRED, 0)
    assert step.state.settled_by == SettledBy.TIMEOUT


@pytest.mark.parametrize(
    ("seconds", "minutes"), [(0, 0), (1, 1), (60, 1), (61, 2), (15 * 60, 15), (3600, 15)]
)
def test_end_charges_whole_minutes_rounded_up_never_above_the_maximum(
    seconds: int, minutes: int
) -> None:
    connected = model.connect(held(), T0, GRACE).state
    step = model.end(connected, seconds, T0 + timedelta(seconds=seconds))
    assert (step.state.status, step.state.minutes, step.settle_to) == (
        Status.COMPLETED,
        minutes,
        minutes,
    )
    assert step.state.settled_by == SettledBy.PLATFORM


def test_an_end_without_a_connect_connects_and_ends() -> None:
    step = model.end(held(), 85, T0 + timedelta(seconds=90))
    assert step.state.connected_at == T0 + timedelta(seconds=5)
    assert (step.state.status, step.state.minutes) == (Status.COMPLETED, 2)


def test_a_repeated_end_is_answered_again_and_a_different_one_is_a_conflict() -> None:
    done = model.end(held(), 125, T0).state
    assert model.end(done, 150, T0).replayed  # also 3 minutes
    with pytest.raises(KinlineError) as raised:
        model.end(done, 300, T0)
    assert raised.value.status == 409


def test_a_late_end_corrects_a_call_settled_at_its_maximum() -> None:
    connected = model.connect(held(), T0, GRACE).state
    swept = model.sweep(connected, T0 + timedelta(minutes=30))
    assert (swept.state.minutes, swept.state.settled_by) == (15, SettledBy.TIMEOUT)
    late = model.end(swept.state, 61, T0 + timedelta(minutes=31))
    assert (late.state.minutes, late.state.settled_by, late.settle_to) == (
        2,
        SettledBy.PLATFORM,
        2,
    )


def test_release_takes_the_hold_back_and_only_a_hold_can_be_released() -> None:
    step = model.release(held(), T0)
    assert (step.state.status, step.settle_to, step.settles) == (Status.RELEASED, None, True)
    assert model.release(step.state, T0).replayed
    connected = model.connect(held(), T0, GRACE).state
    with pytest.raises(KinlineError) as raised:
        model.release(connected, T0)
    assert raised.value.status == 409


def test_the_sweep_leaves_what_still_has_time() -> None:
    assert model.sweep(held(), T0 + TIMEOUT - timedelta(seconds=1)).replayed
    assert model.sweep(held(), T0 + TIMEOUT).state.status == Status.EXPIRED


def test_settling_a_hold_gives_back_the_unused_minutes_and_keeps_the_session() -> None:
    reservation = Reservation(
        counters=(("g", "2026-12"),),
        entries=(7,),
        gaps=(GapHeld("l-gap", T0 - timedelta(hours=1), T0 + timedelta(minutes=15)),),
    )
    settled = settlement(reservation, started_at=T0, held_minutes=15, minutes=4)
    assert (settled.sessions_back, settled.minutes_back, settled.entry_minutes) == (0, 11, 4)
    move = settled.gaps[0]
    assert (move.expected, move.wanted) == (T0 + timedelta(minutes=15), T0 + timedelta(minutes=4))
    assert settled.reservation.gaps[0].set_to == T0 + timedelta(minutes=4)


def test_taking_a_hold_back_removes_it_and_restores_the_gap_mark() -> None:
    prior = T0 - timedelta(hours=1)
    reservation = Reservation(
        counters=(("g", "2026-12"),),
        entries=(7,),
        gaps=(GapHeld("l-gap", prior, T0 + timedelta(minutes=15)),),
    )
    settled = settlement(reservation, started_at=T0, held_minutes=15, minutes=None)
    assert (settled.sessions_back, settled.minutes_back, settled.entry_minutes) == (1, 15, None)
    assert settled.gaps[0].wanted == prior
    assert settled.reservation == Reservation(counters=(("g", "2026-12"),))


@given(
    held_minutes=st.integers(0, 1440),
    used=st.one_of(st.none(), st.integers(0, 1440)),
    prior=st.one_of(st.none(), st.integers(-3000, 3000)),
)
def test_a_settled_session_counts_exactly_its_minutes(
    held_minutes: int, used: int | None, prior: int | None
) -> None:
    used = None if used is None else min(used, held_minutes)
    before = None if prior is None else T0 + timedelta(minutes=prior)
    own = T0 + timedelta(minutes=held_minutes)
    reservation = Reservation(
        counters=(("g", "k"),), entries=(1,), gaps=(GapHeld("l", before, max(own, before or own)),)
    )
    settled = settlement(reservation, started_at=T0, held_minutes=held_minutes, minutes=used)
    # What stays counted: the hold's minutes less those given back.
    assert held_minutes - settled.minutes_back == (used or 0)
    assert settled.sessions_back == (1 if used is None else 0)
    wanted = settled.gaps[0].wanted
    if used is None:
        assert wanted == before
    else:
        end = T0 + timedelta(minutes=used)
        assert wanted == max(end, before or end)


def test_a_reservation_survives_its_stored_form() -> None:
    reservation = Reservation(
        counters=(("g", "2026-12"), ("l", "2026-W49")),
        entries=(3, 4),
        gaps=(GapHeld("l", None, T0), GapHeld("m", T0 - timedelta(days=1), T0)),
    )
    assert Reservation.from_json(reservation.as_json()) == reservation
    assert Reservation.from_json(None) == Reservation()


def test_a_decision_survives_its_stored_form() -> None:
    decision = Decision(
        allowed=True,
        reason=None,
        rules=("g", "l"),
        charged_to="g",
        max_minutes=15,
        monitoring=Monitoring.RECORDED,
        interpreter="es",
        setting=Setting.CLOSED,
        conflicts=("s",),
        governed_by=("l",),
    )
    assert model.decision_from_json(model.decision_json(decision), ["l"]) == decision
    refused = Decision(allowed=False, reason=Reason.NOT_ON_LIST, rules=())
    stored = model.decision_json(refused, dialed="+13035550100")
    assert stored["dialed"] == "+13035550100"
    assert model.decision_from_json(stored) == refused
