"""The weekly allocation: small cases whose optimum is known, fairness, and reasons."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from kinline.visits.allocation import (
    Allocation,
    Outcome,
    Place,
    Preference,
    Problem,
    Request,
    Session,
    allocate,
    first_come_first_served,
    violations,
    week_of,
    window_closes_at,
)

T0 = datetime(2026, 3, 2, 9, 0)


def request(
    key: str,
    *sessions: str,
    person: str | None = None,
    visitors: int = 1,
    recent: int = 0,
    minute: int = 0,
    place: Place = Place.OPEN,
) -> Request:
    return Request(
        key,
        person or f"person-{key}",
        visitors,
        tuple(Preference(session, place) for session in sessions),
        T0 + timedelta(minutes=minute),
        recent,
    )


def outcome(result: Allocation, key: str) -> Outcome:
    return next(o for o in result.outcomes if o.request == key)


def test_cp_sat_moves_a_flexible_request_to_meet_one_more() -> None:
    problem = Problem(
        (Session("sat", 1, 0), Session("sun", 1, 0)),
        (request("early", "sat", "sun", minute=0), request("late", "sat", minute=5)),
    )
    fcfs = first_come_first_served(problem)
    best = allocate(problem, seconds=5)
    assert fcfs.met == 1
    assert outcome(fcfs, "late").reason == "no_capacity"
    assert best.met == 2
    assert outcome(best, "early").session == "sun"
    assert outcome(best, "early").rank == 2
    assert outcome(best, "late").session == "sat"
    assert best.status == "OPTIMAL"
    assert best.gap == 0.0
    assert best.met_bound == 2


def test_first_preference_when_it_has_room() -> None:
    problem = Problem((Session("a", 5, 0), Session("b", 5, 0)), (request("r", "b", "a"),))
    result = allocate(problem, seconds=5)
    assert outcome(result, "r").session == "b"
    assert outcome(result, "r").rank == 1


def test_fewer_recent_visits_first() -> None:
    problem = Problem(
        (Session("sat", 1, 0),),
        (
            request("often", "sat", recent=3, minute=0),
            request("rarely", "sat", recent=0, minute=30),
        ),
    )
    assert outcome(first_come_first_served(problem), "often").session == "sat"
    best = allocate(problem, seconds=5)
    assert outcome(best, "rarely").session == "sat"
    assert outcome(best, "often").reason == "no_capacity"


def test_more_requests_met_outweighs_fairness() -> None:
    # Four visitors fit the room: the one large group with no recent visit, or
    # the two pairs who visit often. Two met beats one.
    problem = Problem(
        (Session("sat", 2, 0, visitor_places=4),),
        (
            request("large", "sat", visitors=4, recent=0, minute=0),
            request("pair-1", "sat", visitors=2, recent=4, minute=1),
            request("pair-2", "sat", visitors=2, recent=4, minute=2),
        ),
    )
    fcfs = first_come_first_served(problem)
    best = allocate(problem, seconds=5)
    assert fcfs.met == 1
    assert best.met == 2
    assert outcome(best, "large").reason == "no_capacity"


def test_a_closed_place_uses_the_closed_capacity() -> None:
    problem = Problem(
        (Session("hall", 10, 1),),
        (
            request("first", "hall", place=Place.CLOSED, minute=0),
            request("second", "hall", place=Place.CLOSED, minute=1),
            request("open", "hall", minute=2),
        ),
    )
    result = allocate(problem, seconds=5)
    assert result.met == 2
    assert outcome(result, "open").place is Place.OPEN
    closed = sorted([outcome(result, "first").reason or "", outcome(result, "second").reason or ""])
    assert closed == ["", "no_capacity"]


def test_non_associated_people_never_share_a_session() -> None:
    problem = Problem(
        (Session("sat", 5, 0), Session("sun", 5, 0)),
        (
            request("a", "sat", person="p1"),
            request("b", "sat", person="p2", minute=1),
            request("c", "sat", "sun", person="p3", minute=2),
            request("d", "sat", person="p4", minute=3),
        ),
        non_associations=frozenset({frozenset({"p1", "p2"}), frozenset({"p3", "p4"})}),
    )
    for result in (first_come_first_served(problem), allocate(problem, seconds=5)):
        assert violations(problem, result) == []
        # One of the two non-associated people has Saturday; the other is told why.
        pair = sorted([outcome(result, "a").reason or "", outcome(result, "b").reason or ""])
        assert pair == ["", "non_association"]
    best = allocate(problem, seconds=5)
    assert best.met == 3
    assert outcome(best, "c").session == "sun"


def test_a_person_gets_no_more_visits_than_the_quota_leaves() -> None:
    problem = Problem(
        (Session("sat", 5, 0), Session("sun", 5, 0)),
        (
            request("partner", "sat", person="p1"),
            request("parents", "sun", person="p1", minute=1),
            request("friend", "sun", person="p1", minute=2),
        ),
        visits_allowed={"p1": 2},
    )
    result = allocate(problem, seconds=5)
    assert result.met == 2
    unmet = [o for o in result.outcomes if o.session is None]
    assert [o.reason for o in unmet] == ["quota_exhausted"]


def test_a_person_once_per_session() -> None:
    problem = Problem(
        (Session("sat", 5, 0),),
        (request("partner", "sat", person="p1"), request("parents", "sat", person="p1")),
    )
    result = allocate(problem, seconds=5)
    assert result.met == 1
    assert [o.reason for o in result.outcomes if o.session is None] == ["already_booked"]


def test_refusals_found_before_allocating_keep_their_reason() -> None:
    refused = Request(
        "r",
        "p1",
        1,
        (
            Preference("sat", refusal="visitor_not_approved"),
            Preference("sun", refusal="outside_booking_window"),
        ),
        T0,
    )
    problem = Problem((Session("sat", 5, 0), Session("sun", 5, 0)), (refused,))
    result = allocate(problem, seconds=5)
    assert outcome(result, "r").session is None
    assert outcome(result, "r").reason == "visitor_not_approved"
    assert outcome(result, "r").reasons == ("visitor_not_approved", "outside_booking_window")


def test_the_reason_is_that_of_the_best_bookable_preference() -> None:
    problem = Problem(
        (Session("sat", 1, 0), Session("sun", 1, 0)),
        (
            request("first", "sun"),
            Request(
                "second",
                "p2",
                1,
                (Preference("sat", refusal="outside_window"), Preference("sun")),
                T0 + timedelta(minutes=1),
                recent_visits=3,  # the first request has seen fewer visits: it has Sunday
            ),
        ),
    )
    result = allocate(problem, seconds=5)
    assert outcome(result, "second").reason == "no_capacity"
    assert outcome(result, "second").reasons == ("outside_window", "no_capacity")


def test_no_preferences_no_visit() -> None:
    problem = Problem((Session("sat", 1, 0),), (request("empty"),))
    assert outcome(allocate(problem, seconds=5), "empty").reason == "no_preference"


def test_nothing_to_allocate() -> None:
    result = allocate(Problem((), ()), seconds=5)
    assert result.met == 0
    assert result.outcomes == ()


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    count = draw(st.integers(1, 4))
    sessions = tuple(
        Session(
            f"s{n}",
            draw(st.integers(0, 3)),
            draw(st.integers(0, 1)),
            draw(st.one_of(st.none(), st.integers(1, 8))),
        )
        for n in range(count)
    )
    people = [f"p{n}" for n in range(draw(st.integers(1, 5)))]
    requests = []
    for n in range(draw(st.integers(0, 10))):
        keys = draw(st.lists(st.sampled_from([s.key for s in sessions]), max_size=3, unique=True))
        preferences = tuple(
            Preference(
                key,
                draw(st.sampled_from(Place)),
                draw(st.one_of(st.none(), st.just("outside_window"))),
            )
            for key in keys
        )
        requests.append(
            Request(
                f"r{n}",
                draw(st.sampled_from(people)),
                draw(st.integers(1, 4)),
                preferences,
                T0 + timedelta(minutes=draw(st.integers(0, 60))),
                draw(st.integers(0, 6)),
            )
        )
    allowed = {p: draw(st.integers(0, 2)) for p in people if draw(st.booleans())}
    pairs = frozenset(
        frozenset(pair)
        for pair in draw(st.lists(st.lists(st.sampled_from(people), min_size=2, max_size=2)))
        if len(set(pair)) == 2
    )
    return Problem(sessions, tuple(requests), allowed, pairs)


@settings(max_examples=40, deadline=None)
@given(problems())
def test_any_allocation_is_valid_optimal_and_explained(problem: Problem) -> None:
    fcfs = first_come_first_served(problem)
    best = allocate(problem, seconds=5)
    assert violations(problem, fcfs) == []
    assert violations(problem, best) == []
    assert best.met >= fcfs.met
    assert best.status == "OPTIMAL"
    assert best.met_bound == best.met
    for result in (fcfs, best):
        for item in result.outcomes:
            assert (item.session is None) == (item.reason is not None)
            if item.session is None:
                asked = next(r for r in problem.requests if r.key == item.request)
                assert len(item.reasons) == len(asked.preferences)


def test_a_weeks_window_closes_at_midnight_the_friday_before() -> None:
    denver = ZoneInfo("America/Denver")
    for day in (date(2026, 3, 9), date(2026, 3, 12), date(2026, 3, 15)):
        assert week_of(day) == date(2026, 3, 9)
        assert window_closes_at(day, denver) == datetime(2026, 3, 6, 7, 0, tzinfo=UTC)
    # After the change to summer time the same local midnight is an hour earlier in UTC.
    assert window_closes_at(date(2026, 3, 18), denver) == datetime(2026, 3, 13, 6, 0, tzinfo=UTC)
