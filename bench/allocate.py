"""A week's visit requests shared out two ways: first come, first served, and CP-SAT.

What is measured
    One facility's week of visiting from a fixed seed: 60 sessions in three rooms
    (a main hall and a family hall with open tables, a few closed booths and a cap
    on visitors in the room; a video suite of screens), and 5,000 requests from
    2,500 people made during a one-week request window, each with up to three
    ranked sessions. Then every request is given a session or refused, twice:

    * FCFS (``first_come_first_served``): requests in the order they arrived, each
      into its best-ranked preference that still has room: how the UK service
      books visits, and the baseline;
    * CP-SAT (``allocate``): every request at once, maximizing requests met, then
      fairness (fewer recent visits first), then the rank met.

The shape, and why it is realistic
    Demand is uneven as it is in prisons: weekend afternoons are wanted three times
    as much as weekday mornings, and most requests arrive in the first day of the
    window. A person may be asked for by up to three family groups (a partner, the
    parents, friends), and may have one, two or three visits left in the week; most
    groups are one to three visitors, some bring children up to six in all. One in
    four requests is for a video visit (family far away or abroad). One in twelve
    must take a closed place (a visitor restricted to closed visits). Some
    preferences were already refused by the booking checks (outside the booking
    window, a visitor not yet approved, the engine's window): they count as asked
    but never bookable. 150 pairs of people must not share a session.

Both answers are checked against every constraint (``violations``); the run exits 1
if either breaks one. The last line is ``met cp-sat/fcfs: X``. The issue's target:
more met than FCFS, a gap of at most 1 %, and at most 20 s.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from datetime import datetime, timedelta

from kinline.visits.allocation import (
    Allocation,
    Place,
    Preference,
    Problem,
    Request,
    Session,
    allocate,
    first_come_first_served,
    violations,
)

WINDOW_OPENS = datetime(2026, 3, 2, 9, 0)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REFUSALS = ("outside_booking_window", "visitor_not_approved", "outside_window")


def _sessions(rng: random.Random) -> tuple[list[Session], dict[str, float], set[str]]:
    """60 sessions: each hall 2 a weekday and 3 a weekend day, the video suite 4 a day."""
    sessions: list[Session] = []
    popularity: dict[str, float] = {}
    video: set[str] = set()
    for day, name in enumerate(WEEKDAYS):
        weekend = day >= 5
        times = ("09:30", "14:00", "18:00") if weekend else ("14:00", "18:00")
        for hall, (low, high) in (("main", (64, 84)), ("family", (32, 44))):
            for at in times:
                tables = rng.randint(low, high)
                closed = rng.randint(2, 5) if hall == "main" else rng.randint(1, 2)
                key = f"{hall}-{name}-{at}"
                visitors = int(tables * 2.4) + closed * 3
                sessions.append(Session(key, tables, closed, visitors))
                weight = 3.0 if weekend and at == "14:00" else 1.6 if weekend else 1.0
                popularity[key] = weight * (1.3 if at == "18:00" and not weekend else 1.0)
        for at in ("08:00", "11:00", "16:00", "20:00"):
            key = f"video-{name}-{at}"
            sessions.append(Session(key, rng.randint(16, 24), 0, None))
            # Evenings suit families in other time zones and after work.
            popularity[key] = (2.2 if at in ("16:00", "20:00") else 0.8) * (
                1.5 if day >= 5 else 1.0
            )
            video.add(key)
    return sessions, popularity, video


def build_problem(seed: int, requests: int, people: int) -> Problem:
    rng = random.Random(seed)
    sessions, popularity, video = _sessions(rng)
    halls = [s.key for s in sessions if s.key not in video]
    screens = sorted(video)
    persons = [f"p{n:04d}" for n in range(people)]
    allowed = {person: rng.choices((1, 2, 3), weights=(6, 3, 1))[0] for person in persons}
    recent = {person: min(8, int(rng.expovariate(0.6))) for person in persons}
    # Some people are asked for by several family groups, most by one or two.
    person_weights = [rng.choice((1, 1, 1, 2, 2, 3, 4)) for _ in persons]
    made: list[Request] = []
    for number in range(requests):
        person = rng.choices(persons, weights=person_weights)[0]
        by_video = rng.random() < 0.25
        pool = screens if by_video else halls
        wanted = rng.choices((1, 2, 3), weights=(1, 2, 7))[0]
        picks: list[str] = []
        while len(picks) < wanted:
            key = rng.choices(pool, weights=[popularity[k] for k in pool])[0]
            if key not in picks:
                picks.append(key)
        closed = not by_video and rng.random() < 1 / 12
        place = Place.CLOSED if closed else Place.OPEN
        preferences = tuple(
            Preference(key, place, rng.choice(REFUSALS) if rng.random() < 0.04 else None)
            for key in picks
        )
        visitors = rng.choices((1, 2, 3, 4, 5, 6), weights=(30, 35, 20, 9, 4, 2))[0]
        # Most requests arrive on the window's first day, the rest over the week.
        hours = rng.expovariate(1 / 6) if rng.random() < 0.7 else rng.uniform(0, 7 * 24)
        submitted = WINDOW_OPENS + timedelta(hours=min(hours, 7 * 24 - 1))
        made.append(
            Request(f"r{number:05d}", person, visitors, preferences, submitted, recent[person])
        )
    pairs: set[frozenset[str]] = set()
    while len(pairs) < 150:
        pairs.add(frozenset(rng.sample(persons, 2)))
    return Problem(tuple(sessions), tuple(made), allowed, frozenset(pairs))


def _report(problem: Problem, result: Allocation) -> None:
    ranks = Counter(o.rank for o in result.outcomes if o.rank is not None)
    reasons = Counter(o.reason for o in result.outcomes if o.reason is not None)
    recent = {r.key: r.recent_visits for r in problem.requests}
    unseen = [o for o in result.outcomes if recent[o.request] == 0]
    unseen_met = sum(1 for o in unseen if o.session is not None)
    print(f"{result.method}:")
    print(f"  requests met        {result.met:>6} of {len(problem.requests)}")
    print(f"  solve time          {result.seconds:>9.2f} s")
    print("  preference met      " + ", ".join(f"{k}: {ranks[k]}" for k in sorted(ranks)))
    print(
        f"  met, no recent visit {unseen_met:>5} of {len(unseen)} "
        f"({unseen_met / max(1, len(unseen)):.1%})"
    )
    print("  unmet because       " + ", ".join(f"{k}: {n}" for k, n in reasons.most_common()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--people", type=int, default=2500)
    parser.add_argument("--seed", type=int, default=20260302)
    parser.add_argument("--seconds", type=float, default=8.0, help="CP-SAT's time limit")
    parser.add_argument("--workers", type=int, default=2, help="CP-SAT's search workers")
    args = parser.parse_args()

    problem = build_problem(args.seed, args.requests, args.people)
    places = sum(s.open_places + s.closed_places for s in problem.sessions)
    asked = sum(len(r.preferences) for r in problem.requests)
    print(
        f"{len(problem.requests)} requests ({asked} preferences) from "
        f"{len({r.person for r in problem.requests})} people for {places} places "
        f"in {len(problem.sessions)} sessions (seed {args.seed})"
    )
    fcfs = first_come_first_served(problem)
    cpsat = allocate(problem, seconds=args.seconds, workers=args.workers)
    failed = False
    for result in (fcfs, cpsat):
        _report(problem, result)
        broken = violations(problem, result)
        if broken:
            failed = True
            print(f"  BROKEN: {len(broken)} constraints, e.g. {broken[:3]}")
    print(
        f"cp-sat status {cpsat.status}, optimality gap {cpsat.gap:.4%} "
        f"(at most {cpsat.met_bound} requests could be met)"
    )
    print(f"met cp-sat/fcfs: {cpsat.met / max(1, fcfs.met):.4f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
