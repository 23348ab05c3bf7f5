"""A week's visiting places shared out fairly when demand exceeds them (issue item 5).

Families submit ranked preferences during a request window; at its close every
request is either given one of its preferred sessions or told why not. Two methods
over the same problem:

* ``first_come_first_served``: requests in the order they arrived, each booked into
  its best-ranked preference that still has room: the UK visit-booking model, and
  the baseline.
* ``allocate``: OR-Tools CP-SAT. Lexicographic objective, as one weighted sum: the
  number of requests met first (each met request is worth more than every
  secondary point together), then fairness (people with fewer recent visits
  before people with more), then the rank of the preference met. The FCFS answer
  starts from a flow relaxation (below), so it never does worse than that start.

The relaxation: people -> requests -> (session, place) as a min-cost max-flow,
leaving out the room's visitor cap, a person once per session and
non-associations. Its maximum flow is an upper bound on the requests any
allocation meets, given to CP-SAT as a redundant constraint (so the bound it
proves is tight from the start), and its flow, repaired greedily to respect
every constraint, is the solver's hint.

Everything the database knows is precomputed by the caller as plain values: each
preference either names a refusal (the engine's reason, ``visitor_not_approved``,
``visitor_restricted``, ``outside_booking_window``, a setting the session lacks)
or the kind of place it would take (open or closed); each person's room in the
visit quota for the week; the person's non-associations. The model then enforces
what only a joint choice can: places of each kind per session, visitors a room
holds, the quota, a person at most once per session, and no two non-associated
people in the same session.

No I/O: the service feeds it and books the winners through the booking service.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from kinline.rules.periods import wall_to_instant

if TYPE_CHECKING:  # OR-Tools is imported when an allocation runs, not with the API
    from ortools.sat.python import cp_model

WINDOW_CLOSES_DAYS_BEFORE = 3
"""A week's request window closes at midnight, facility time, this many days before
its Monday (the Friday before): time to allocate, book and tell every family."""
MOST_PREFERENCES = 5
RECENT_DAYS = 28
"""Visits completed in these days before the window closes count as recent."""
FAIRNESS_CAP = 4
"""Recent visits beyond this count as this many: a person with 4 and one with 9
recent visits are equally far back in the queue."""


class Place(StrEnum):
    """Which of a session's capacities a booking takes."""

    OPEN = "open"
    CLOSED = "closed"


class Method(StrEnum):
    CP_SAT = "cp-sat"
    FCFS = "fcfs"


class Unmet(StrEnum):
    """Why a bookable preference was not given (refusals found before the
    allocation keep their own reason words)."""

    NO_CAPACITY = "no_capacity"
    NON_ASSOCIATION = "non_association"
    QUOTA_EXHAUSTED = "quota_exhausted"
    ALREADY_BOOKED = "already_booked"
    NO_PREFERENCE = "no_preference"


@dataclass(frozen=True, slots=True)
class Session:
    """One occurrence of a visiting session in the week."""

    key: str
    open_places: int
    closed_places: int
    visitor_places: int | None = None  # visitors the room holds at once; None: no cap


@dataclass(frozen=True, slots=True)
class Preference:
    """One ranked choice. ``refusal`` set: the session cannot be booked for this
    request at all (found by the booking checks before allocating)."""

    session: str
    place: Place = Place.OPEN
    refusal: str | None = None


@dataclass(frozen=True, slots=True)
class Request:
    key: str
    person: str
    visitors: int
    preferences: tuple[Preference, ...]  # best first
    submitted_at: datetime
    recent_visits: int = 0


@dataclass(frozen=True, slots=True)
class Problem:
    sessions: tuple[Session, ...]
    requests: tuple[Request, ...]
    visits_allowed: Mapping[str, int] = field(default_factory=dict)  # person -> room left
    non_associations: frozenset[frozenset[str]] = frozenset()  # pairs of people


@dataclass(frozen=True, slots=True)
class Outcome:
    request: str
    session: str | None  # None: unmet
    rank: int | None  # 1 for the first preference
    place: Place | None
    reason: str | None  # set when unmet
    reasons: tuple[str, ...] = ()  # one per preference, when unmet


@dataclass(frozen=True, slots=True)
class Allocation:
    method: Method
    outcomes: tuple[Outcome, ...]
    seconds: float
    status: str = "FEASIBLE"
    objective: int = 0
    bound: int = 0
    met_bound: int = 0  # the most requests any allocation could meet, as the solver proved

    @property
    def met(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.session is not None)

    @property
    def gap(self) -> float:
        """The solver's relative optimality gap, (bound - objective) / bound."""
        if self.bound <= 0:
            return 0.0
        return max(0, self.bound - self.objective) / self.bound


class RequestStatus(StrEnum):
    PENDING = "pending"
    MET = "met"
    UNMET = "unmet"
    WITHDRAWN = "withdrawn"


Choice = tuple[int, int]  # (request index, preference index)


def week_of(day: date) -> date:
    """The Monday of ``day``'s week: requests are allocated a week at a time."""
    return day - timedelta(days=day.weekday())


def window_closes_at(day: date, zone: ZoneInfo) -> datetime:
    """When the request window for the week holding ``day`` closes (UTC)."""
    closing = week_of(day) - timedelta(days=WINDOW_CLOSES_DAYS_BEFORE)
    return wall_to_instant(datetime.combine(closing, dt_time()), zone)


# --------------------------------------------------------------------------- state


class _Ledger:
    """Places taken so far, to test whether one more choice fits."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.sessions = {session.key: session for session in problem.sessions}
        self.taken: dict[tuple[str, Place], int] = defaultdict(int)
        self.visitors: dict[str, int] = defaultdict(int)
        self.people_in: dict[str, set[str]] = defaultdict(set)
        self.visits: dict[str, int] = defaultdict(int)
        self.partners: dict[str, set[str]] = defaultdict(set)
        for pair in problem.non_associations:
            if len(pair) == 2:
                one, other = sorted(pair)
                self.partners[one].add(other)
                self.partners[other].add(one)

    def blocked(self, request: Request, preference: Preference) -> str | None:
        """Why this bookable preference cannot be added now; None if it fits."""
        session = self.sessions.get(preference.session)
        if session is None:
            return Unmet.NO_CAPACITY
        allowed = self.problem.visits_allowed.get(request.person)
        if allowed is not None and self.visits[request.person] >= allowed:
            return Unmet.QUOTA_EXHAUSTED
        people = self.people_in[session.key]
        if request.person in people:
            return Unmet.ALREADY_BOOKED
        if self.partners[request.person] & people:
            return Unmet.NON_ASSOCIATION
        limit = session.open_places if preference.place is Place.OPEN else session.closed_places
        if self.taken[(session.key, preference.place)] >= limit:
            return Unmet.NO_CAPACITY
        visitor_cap = session.visitor_places
        if visitor_cap is not None and self.visitors[session.key] + request.visitors > visitor_cap:
            return Unmet.NO_CAPACITY
        return None

    def take(self, request: Request, preference: Preference) -> None:
        self.taken[(preference.session, preference.place)] += 1
        self.visitors[preference.session] += request.visitors
        self.people_in[preference.session].add(request.person)
        self.visits[request.person] += 1


def _bookable(preference: Preference, sessions: Mapping[str, Session]) -> bool:
    return preference.refusal is None and preference.session in sessions


def _fill(problem: Problem, ledger: _Ledger, order: Iterable[int], met: dict[int, int]) -> None:
    """Give each request in ``order`` its best-ranked preference that still fits."""
    for index in order:
        if index in met:
            continue
        request = problem.requests[index]
        for rank, preference in enumerate(request.preferences):
            if not _bookable(preference, ledger.sessions):
                continue
            if ledger.blocked(request, preference) is None:
                ledger.take(request, preference)
                met[index] = rank
                break


def _outcomes(problem: Problem, met: Mapping[int, int]) -> tuple[Outcome, ...]:
    """Each request's outcome; an unmet one is told why for each preference."""
    ledger = _Ledger(problem)
    for index, rank in met.items():
        request = problem.requests[index]
        ledger.take(request, request.preferences[rank])
    outcomes = []
    for index, request in enumerate(problem.requests):
        if index in met:
            rank = met[index]
            chosen = request.preferences[rank]
            outcomes.append(Outcome(request.key, chosen.session, rank + 1, chosen.place, None))
            continue
        reasons: list[str] = []
        first_bookable: str | None = None
        for preference in request.preferences:
            if preference.refusal is not None:
                reasons.append(preference.refusal)
                continue
            why = ledger.blocked(request, preference) or Unmet.NO_CAPACITY
            reasons.append(why)
            if first_bookable is None:
                first_bookable = why
        reason = first_bookable or (reasons[0] if reasons else Unmet.NO_PREFERENCE)
        outcomes.append(Outcome(request.key, None, None, None, str(reason), tuple(reasons)))
    return tuple(outcomes)


# --------------------------------------------------------------------------- methods


def first_come_first_served(problem: Problem) -> Allocation:
    """The baseline: in order of arrival, the best-ranked preference with room."""
    started = time.perf_counter()
    met: dict[int, int] = {}
    _fill(problem, _Ledger(problem), _arrival_order(problem), met)
    seconds = time.perf_counter() - started
    return Allocation(Method.FCFS, _outcomes(problem, met), seconds)


def _arrival_order(problem: Problem) -> list[int]:
    return sorted(
        range(len(problem.requests)),
        key=lambda index: (problem.requests[index].submitted_at, problem.requests[index].key),
    )


def weights(problem: Problem) -> tuple[int, list[list[int]]]:
    """(the worth of one met request, the secondary points of each choice).

    Secondary points: fairness (FAIRNESS_CAP minus recent visits, capped) counts
    above every rank point, and the rank (first preference highest) breaks ties.
    One met request outweighs the secondary points of all requests together, so
    the objective meets as many requests as possible first.
    """
    longest = max((len(request.preferences) for request in problem.requests), default=1) or 1
    points = []
    for request in problem.requests:
        fairness = FAIRNESS_CAP - min(max(request.recent_visits, 0), FAIRNESS_CAP)
        points.append(
            [fairness * longest + (longest - 1 - rank) for rank in range(len(request.preferences))]
        )
    most = FAIRNESS_CAP * longest + longest - 1
    return most * len(problem.requests) + 1, points


def allocate(problem: Problem, *, seconds: float = 15.0, workers: int = 2) -> Allocation:
    """The CP-SAT allocation, within ``seconds`` of solving."""
    started = time.perf_counter()
    sessions = {session.key: session for session in problem.sessions}
    from ortools.sat.python import cp_model

    met_worth, points = weights(problem)
    model = cp_model.CpModel()
    chosen: dict[Choice, cp_model.IntVar] = {}
    by_place: dict[tuple[str, Place], list[Choice]] = defaultdict(list)
    by_session: dict[str, list[Choice]] = defaultdict(list)
    by_person_session: dict[tuple[str, str], list[Choice]] = defaultdict(list)
    by_person: dict[str, list[Choice]] = defaultdict(list)
    for index, request in enumerate(problem.requests):
        mine: list[cp_model.IntVar] = []
        for rank, preference in enumerate(request.preferences):
            if not _bookable(preference, sessions):
                continue
            choice = (index, rank)
            variable = model.new_bool_var(f"x{index}_{rank}")
            chosen[choice] = variable
            mine.append(variable)
            by_place[(preference.session, preference.place)].append(choice)
            by_session[preference.session].append(choice)
            by_person_session[(request.person, preference.session)].append(choice)
            by_person[request.person].append(choice)
        if len(mine) > 1:
            model.add_at_most_one(mine)
    for (key, place), choices in by_place.items():
        session = sessions[key]
        limit = session.open_places if place is Place.OPEN else session.closed_places
        if len(choices) > limit:
            model.add(_total(chosen, choices) <= limit)
    for key, choices in by_session.items():
        cap = sessions[key].visitor_places
        if cap is not None and sum(problem.requests[i].visitors for i, _ in choices) > cap:
            groups = [problem.requests[i].visitors for i, _ in choices]
            model.add(_total(chosen, choices, groups) <= cap)
    for choices in by_person_session.values():
        if len(choices) > 1:
            model.add_at_most_one(chosen[choice] for choice in choices)
    for person, choices in by_person.items():
        allowed = problem.visits_allowed.get(person)
        if allowed is not None and len(choices) > allowed:
            model.add(_total(chosen, choices) <= allowed)
    _forbid_non_associations(problem, model, chosen, by_person_session)
    everything = list(chosen)
    model.maximize(_total(chosen, everything, [met_worth + points[i][r] for i, r in everything]))
    most, relaxed = _relaxation(problem, everything, points)
    model.add(_total(chosen, everything) <= most)
    start = _repair(problem, relaxed)
    hinted = set(start.items())
    for choice, variable in chosen.items():
        model.add_hint(variable, choice in hinted)

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = workers
    # The model is an assignment with few side constraints, started from a hint
    # within a fraction of a percent of the bound: presolve (symmetry, probing)
    # took most of the time limit and found nothing the search needs.
    solver.parameters.cp_model_presolve = False
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        # No answer in time: keep the baseline's, and claim no better bound than
        # every request met at its best weight.
        met: dict[int, int] = dict(start)
        objective = 0
        bound = most * met_worth + sum(max(p, default=0) for p in points)
    else:
        met = {i: r for (i, r), variable in chosen.items() if solver.boolean_value(variable)}
        objective = round(solver.objective_value)
        bound = round(solver.best_objective_bound)
    # A solve stopped by the time limit may leave a place a request could still
    # take; fill those so that "no_capacity" is always true of an unmet request.
    ledger = _Ledger(problem)
    for index, rank in met.items():
        ledger.take(problem.requests[index], problem.requests[index].preferences[rank])
    _fill(problem, ledger, _arrival_order(problem), met)
    objective = max(objective, sum(met_worth + points[i][r] for i, r in met.items()))
    return Allocation(
        Method.CP_SAT,
        _outcomes(problem, met),
        time.perf_counter() - started,
        status=solver.status_name(status),
        objective=objective,
        bound=max(bound, objective),
        met_bound=max(bound, objective) // met_worth,
    )


def _relaxation(
    problem: Problem, choices: Sequence[Choice], points: Sequence[Sequence[int]]
) -> tuple[int, list[Choice]]:
    """(the most requests any allocation meets, the choices of a maximum flow
    that scores best on fairness and rank)."""
    from ortools.graph.python import min_cost_flow

    flow = min_cost_flow.SimpleMinCostFlow()
    people = sorted({request.person for request in problem.requests})
    person_node = {person: 1 + n for n, person in enumerate(people)}
    request_base = 1 + len(people)
    place_node: dict[tuple[str, Place], int] = {}
    next_node = request_base + len(problem.requests)
    for session in problem.sessions:
        for place in Place:
            place_node[(session.key, place)] = next_node
            next_node += 1
    sink = next_node
    unbounded = len(problem.requests)
    for person in people:
        allowed = problem.visits_allowed.get(person, unbounded)
        flow.add_arc_with_capacity_and_unit_cost(0, person_node[person], max(allowed, 0), 0)
    for index, request in enumerate(problem.requests):
        flow.add_arc_with_capacity_and_unit_cost(
            person_node[request.person], request_base + index, 1, 0
        )
    top = max((max(p, default=0) for p in points), default=0)
    arcs: list[tuple[int, Choice]] = []
    for index, rank in choices:
        preference = problem.requests[index].preferences[rank]
        arc = flow.add_arc_with_capacity_and_unit_cost(
            request_base + index,
            place_node[(preference.session, preference.place)],
            1,
            top - points[index][rank],
        )
        arcs.append((arc, (index, rank)))
    for session in problem.sessions:
        for place in Place:
            places = session.open_places if place is Place.OPEN else session.closed_places
            flow.add_arc_with_capacity_and_unit_cost(
                place_node[(session.key, place)], sink, max(places, 0), 0
            )
    flow.set_node_supply(0, unbounded)
    flow.set_node_supply(sink, -unbounded)
    if flow.solve_max_flow_with_min_cost() != flow.OPTIMAL:
        return len(problem.requests), []
    return flow.maximum_flow(), [choice for arc, choice in arcs if flow.flow(arc) > 0]


def _repair(problem: Problem, relaxed: Sequence[Choice]) -> dict[int, int]:
    """The relaxation's choices that respect every constraint, fairest first,
    then the other requests' best fitting preferences in order of arrival."""
    ledger = _Ledger(problem)
    met: dict[int, int] = {}
    ordered = sorted(
        relaxed,
        key=lambda choice: (problem.requests[choice[0]].recent_visits, choice[1], choice[0]),
    )
    for index, rank in ordered:
        request = problem.requests[index]
        if ledger.blocked(request, request.preferences[rank]) is None:
            ledger.take(request, request.preferences[rank])
            met[index] = rank
    _fill(problem, ledger, _arrival_order(problem), met)
    return met


def _total(
    chosen: Mapping[Choice, cp_model.IntVar],
    choices: Sequence[Choice],
    coefficients: Sequence[int] | None = None,
) -> cp_model.LinearExpr:
    from ortools.sat.python import cp_model

    variables = [chosen[choice] for choice in choices]
    if coefficients is None:
        return cp_model.LinearExpr.sum(variables)
    return cp_model.LinearExpr.weighted_sum(variables, coefficients)


def _forbid_non_associations(
    problem: Problem,
    model: cp_model.CpModel,
    chosen: Mapping[Choice, cp_model.IntVar],
    by_person_session: Mapping[tuple[str, str], Sequence[Choice]],
) -> None:
    sessions_of: dict[str, set[str]] = defaultdict(set)
    for person, key in by_person_session:
        sessions_of[person].add(key)
    for pair in problem.non_associations:
        if len(pair) != 2:
            continue
        one, other = sorted(pair)
        for key in sessions_of[one] & sessions_of[other]:
            for mine in by_person_session[(one, key)]:
                for theirs in by_person_session[(other, key)]:
                    model.add_bool_or([chosen[mine].Not(), chosen[theirs].Not()])


def violations(problem: Problem, allocation: Allocation) -> list[str]:
    """Every constraint an allocation breaks (none, for a correct one)."""
    requests = {request.key: request for request in problem.requests}
    sessions = {session.key: session for session in problem.sessions}
    ledger = _Ledger(problem)
    found = []
    for outcome in allocation.outcomes:
        if outcome.session is None or outcome.rank is None:
            continue
        request = requests[outcome.request]
        preference = request.preferences[outcome.rank - 1]
        if preference.refusal is not None or preference.session not in sessions:
            found.append(f"{outcome.request}: booked into a refused preference")
            continue
        why = ledger.blocked(request, preference)
        if why is not None:
            found.append(f"{outcome.request}: {why} in {preference.session}")
        ledger.take(request, preference)
    return found
