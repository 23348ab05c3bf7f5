"""Invariants 2 and 3 against a real server: ``kinline serve`` with two worker
processes, real HTTP from many threads, and a SIGKILL of the whole process tree.

No over-spend: however many set-ups race for the last call of an allowance,
exactly one is held. No lost record: every end the server acknowledged is
there after a crash, the counters match the sessions, every hold has its audit
event, and the sweep settles whatever the crash left open.
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from _server import KINLINE, Server, running_server
from sqlalchemy import func, select

from kinline.audit.service import verify_log
from kinline.db.engine import Database
from kinline.db.tables import AuditEventRow, SessionRow, UsageCounterRow
from kinline.identity.service import create_token
from kinline.rules.model import MONTH, WEEK, Period
from kinline.rules.periods import period_key
from kinline.scenario import load_into

FACILITY = "fci-race"
ZONE = ZoneInfo("America/Denver")
RACERS = 64
DIALED = "(303) 555-0100"  # the contact's +13035550100, written as a caller might


def write_scenario(tmp_path: Path, people: int, rules: str) -> str:
    """A facility with ``people`` people p00, p01, ..., each with one approved contact."""
    lines = [
        "scenario: calls-race",
        f"facility: {{id: {FACILITY}, name: FCI Race, timezone: {ZONE.key}}}",
        "people:",
        *(f"  - {{id: p{n:02d}, name: P. {n:02d}, language: en}}" for n in range(people)),
        "contacts:",
        *(
            f"  - {{id: c{n:02d}, person: p{n:02d}, relationship: parent,"
            f' phones: ["+1 303 555 0100"], approved: [phone]}}'
            for n in range(people)
        ),
        "rules:",
        textwrap.indent(textwrap.dedent(rules), "  "),
    ]
    path = tmp_path / "race.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


# Exactly one call a month, at any hour: the API decides at the server's clock.
ONE_CALL = """\
- {id: g-one, authority: facility_policy, kind: grant, channel: phone, person: all,
   contacts: any, quota: {count: 1, per: month}, max_minutes: 15,
   text: One call a month.}
"""

# Plenty of calls, counted by a monthly grant and a weekly limit that also caps a
# call at 10 minutes, so settlement touches two counters and caps the minutes.
PLENTY = """\
- {id: g-plenty, authority: facility_policy, kind: grant, channel: phone, person: all,
   contacts: any, quota: {count: 100000, minutes: 100000, per: month}, max_minutes: 15,
   text: Calls.}
- {id: l-week, authority: facility_policy, kind: limit, channel: phone, person: all,
   contacts: any, quota: {count: 100000, per: week}, max_minutes: 10,
   text: Ten minutes a call.}
"""
STREAMS = 8  # client threads streaming calls at the server that is to be killed
QUOTA_PERIODS: dict[str, Period] = {"g-one": MONTH, "g-plenty": MONTH, "l-week": WEEK}


@dataclass
class Setup:
    db: Database
    url: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def postgres_url(postgres_templates: Any) -> Iterator[str]:
    name = postgres_templates.fresh()
    yield postgres_templates.url_for(name)
    postgres_templates.drop(name)


@contextmanager
def prepare(url: str, tmp_path: Path, people: int, rules: str) -> Iterator[Setup]:
    """The scenario loaded into ``url`` and a telephony token, through the services."""
    db = Database(url, pool_size=2, max_overflow=2)
    try:
        load_into(write_scenario(tmp_path, people, rules), db)
        _caller, token = create_token(db, "pbx", "telephony", at=datetime.now(UTC))
        yield Setup(db, url, token)
    finally:
        db.dispose()


# ---------------------------------------------------------------------------
# What the database holds


def sessions_of(db: Database, person: str | None = None) -> list[SessionRow]:
    with db.transaction() as session:
        query = select(SessionRow).where(SessionRow.facility_id == FACILITY)
        if person is not None:
            query = query.where(SessionRow.person_id == person)
        return list(session.scalars(query.order_by(SessionRow.id)))


def counters_of(
    db: Database, person: str | None = None
) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(person, rule, period) -> (sessions, minutes), leaving out counters back at zero."""
    with db.transaction() as session:
        query = select(UsageCounterRow).where(UsageCounterRow.facility_id == FACILITY)
        if person is not None:
            query = query.where(UsageCounterRow.person_id == person)
        return {
            (row.person_id, row.rule_id, row.period_key): (row.sessions, row.minutes)
            for row in session.scalars(query)
            if (row.sessions, row.minutes) != (0, 0)
        }


def counters_from_sessions(rows: list[SessionRow]) -> dict[tuple[str, str, str], tuple[int, int]]:
    """The counters recomputed from the sessions: every held, connected or completed
    session counts once, with its minutes, for its grant and each limit governing it."""
    tally: dict[tuple[str, str, str], tuple[int, int]] = {}
    for row in rows:
        if row.status not in ("held", "connected", "completed"):
            continue
        assert row.charged_to is not None
        for rule_id in (row.charged_to, *row.governed_by):
            key = (row.person_id, rule_id, period_key(QUOTA_PERIODS[rule_id], row.started_at, ZONE))
            sessions, minutes = tally.get(key, (0, 0))
            tally[key] = (sessions + 1, minutes + row.minutes)
    return tally


def audit_tags(db: Database) -> Counter[str]:
    with db.transaction() as session:
        return Counter(
            dict(
                session.execute(
                    select(AuditEventRow.tag, func.count())
                    .where(AuditEventRow.facility_id == FACILITY)
                    .group_by(AuditEventRow.tag)
                ).all()
            )
        )


def assert_audit_log_intact(db: Database, url: str) -> None:
    report = verify_log(db)
    assert report.problem is None, report.problem
    done = subprocess.run(
        [str(KINLINE), "audit", "verify", "--database-url", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------------------
# Racing clients


@dataclass
class Answer:
    status: int | None = None
    body: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    sent: float = 0.0
    received: float = 0.0


def race(
    clients: list[httpx.Client], request: Callable[[httpx.Client, int], httpx.Response]
) -> list[Answer]:
    """Send one request from each client at the same moment (a barrier), each from its
    own thread; every outcome, exceptions included, is returned rather than raised."""
    answers = [Answer() for _ in clients]
    barrier = threading.Barrier(len(clients))

    def fire(index: int) -> None:
        answer = answers[index]
        try:
            barrier.wait(timeout=60)
            answer.sent = time.monotonic()
            response = request(clients[index], index)
            answer.received = time.monotonic()
            answer.status = response.status_code
            answer.body = response.json()
        except Exception as error:  # reported by the test, not lost in a thread
            answer.error = repr(error)

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a racing request hung"
    return answers


def in_flight_at_once(answers: list[Answer]) -> int:
    """The most requests that were sent and not yet answered at one moment."""
    edges = sorted([(a.sent, 1) for a in answers] + [(a.received, -1) for a in answers])
    peak = current = 0
    for _moment, step in edges:
        current += step
        peak = max(peak, current)
    return peak


@pytest.fixture
def clients() -> Iterator[list[httpx.Client]]:
    opened = [httpx.Client(timeout=60.0) for _ in range(RACERS)]
    try:
        yield opened
    finally:
        for client in opened:
            client.close()


def warm_up(server: Server, clients: list[httpx.Client], setup: Setup) -> None:
    """Open every client's keep-alive connection, so the race starts on sockets
    already accepted by the server."""
    answers = race(clients, lambda client, _i: client.get(f"{server.base_url}/openapi.json"))
    assert [a.status for a in answers] == [200] * len(clients), answers


# ---------------------------------------------------------------------------
# Invariant 2: no over-spend


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_racing_setups_take_exactly_the_last_call(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clients: list[httpx.Client],
) -> None:
    """64 set-ups race for a person's one call a month, over and over: each time
    exactly one is held and 63 are refused as quota_exhausted, never a 5xx."""
    rounds = 20 if backend == "postgresql" else 3
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'race.db'}"
        upgrade = subprocess.run(
            [str(KINLINE), "db", "upgrade", "--database-url", url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    with prepare(url, tmp_path, rounds, ONE_CALL) as setup:
        with running_server(url, workers=2) as server:
            warm_up(server, clients, setup)
            peaks = []
            for round_number in range(rounds):
                person = f"p{round_number:02d}"
                answers = race(
                    clients,
                    lambda client, i, person=person: client.post(
                        f"{server.base_url}/v1/calls/authorize",
                        json={
                            "person_id": person,
                            "dialed": DIALED,
                            "idempotency_key": f"{person}-racer-{i}",
                        },
                        headers=setup.headers,
                    ),
                )
                assert [a.error for a in answers] == [None] * RACERS
                assert [a.status for a in answers] == [200] * RACERS, [a.body for a in answers]
                peaks.append(in_flight_at_once(answers))
                allowed = [a.body for a in answers if a.body["allowed"]]
                refused = [a.body for a in answers if not a.body["allowed"]]
                assert len(allowed) == 1, f"round {round_number}: {len(allowed)} calls held"
                winner = allowed[0]
                assert winner["hold_id"] and winner["charged_to"] == "g-one"
                assert winner["max_minutes"] == 15 and winner["replayed"] is False
                assert len(refused) == RACERS - 1
                assert {(r["reason"], tuple(r["rules"]), r["hold_id"]) for r in refused} == {
                    ("quota_exhausted", ("g-one",), None)
                }

                rows = sessions_of(setup.db, person)
                held = [row for row in rows if row.status == "held"]
                assert [row.hold_id for row in held] == [winner["hold_id"]]
                assert Counter(row.status for row in rows) == {"held": 1, "denied": RACERS - 1}
                month = period_key(MONTH, held[0].started_at, ZONE)
                assert counters_of(setup.db, person) == {(person, "g-one", month): (1, 15)}

                ended = httpx.post(
                    f"{server.base_url}/v1/calls/{winner['hold_id']}/end",
                    json={"seconds": 125},
                    headers=setup.headers,
                    timeout=60,
                )
                assert ended.status_code == 200, ended.text
                assert ended.json()["state"] == "completed" and ended.json()["minutes"] == 3
                assert counters_of(setup.db, person) == {(person, "g-one", month): (1, 3)}
            print(f"in flight at once, by round: {peaks}", file=sys.stderr)
            # The requests really raced: many were in the server at once, every round.
            assert min(peaks) >= RACERS // 4, peaks

        tags = audit_tags(setup.db)
        assert tags["calls:authorize:allowed"] == rounds
        assert tags["calls:authorize:refused"] == rounds * (RACERS - 1)
        assert tags["calls:call:ended"] == rounds
        assert_audit_log_intact(setup.db, url)


@pytest.mark.postgres
def test_same_idempotency_key_racing_gives_one_hold(
    postgres_url: str, tmp_path: Path, clients: list[httpx.Client]
) -> None:
    """32 retries of one set-up, all at once: one hold, the same answer to each."""
    racers = clients[:32]
    with prepare(postgres_url, tmp_path, 1, PLENTY) as setup:
        with running_server(postgres_url, workers=2) as server:
            warm_up(server, racers, setup)
            for attempt in range(5):
                key = f"pbx-retry-{attempt}"
                body = {"person_id": "p00", "dialed": DIALED, "idempotency_key": key}
                answers = race(
                    racers,
                    lambda client, _i, body=body: client.post(
                        f"{server.base_url}/v1/calls/authorize", json=body, headers=setup.headers
                    ),
                )
                assert [a.error for a in answers] == [None] * len(racers)
                assert [a.status for a in answers] == [200] * len(racers), [a.body for a in answers]
                hold_ids = {a.body["hold_id"] for a in answers}
                assert len(hold_ids) == 1 and None not in hold_ids, hold_ids
                assert all(a.body["allowed"] for a in answers)
                assert sorted(a.body["replayed"] for a in answers) == [False] + [True] * (
                    len(racers) - 1
                )
                with setup.db.transaction() as session:
                    keyed = session.scalars(
                        select(SessionRow).where(SessionRow.idempotency_key == key)
                    ).all()
                    assert [(row.hold_id, row.status) for row in keyed] == [
                        (hold_ids.pop(), "held")
                    ]
            rows = sessions_of(setup.db, "p00")
            assert len(rows) == 5
            assert counters_of(setup.db) == counters_from_sessions(rows)
            assert set(counters_of(setup.db).values()) == {(5, 50)}
        assert audit_tags(setup.db)["calls:authorize:allowed"] == 5
        assert_audit_log_intact(setup.db, postgres_url)


# ---------------------------------------------------------------------------
# Invariant 3: no lost record


@dataclass
class Ledger:
    """What the server acknowledged (answered 200 to), by hold id."""

    authorized: dict[str, int] = field(default_factory=dict)  # hold id -> max_minutes
    connected: set[str] = field(default_factory=set)
    ended: dict[str, tuple[int, int]] = field(default_factory=dict)  # -> (seconds, minutes)
    released: set[str] = field(default_factory=set)
    refused: int = 0
    requests: int = 0
    failures: list[str] = field(default_factory=list)  # non-200 answers: must be none
    lock: threading.Lock = field(default_factory=threading.Lock)


def stream_calls(
    base_url: str,
    headers: dict[str, str],
    people: list[str],
    seed: int,
    ledger: Ledger,
    stop: threading.Event,
) -> None:
    """Authorize, then connect and end (mostly), end unconnected, release, or leave
    open, until the server goes away; every 200 is written down."""
    rng = random.Random(seed)
    with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as client:

        def post(path: str, body: dict[str, Any] | None = None) -> dict[str, Any] | None:
            response = client.post(path, json=body)
            with ledger.lock:
                ledger.requests += 1
                if response.status_code != 200:
                    ledger.failures.append(f"{path}: {response.status_code} {response.text}")
                    stop.set()  # fail fast: the test reports it
                    return None
            result: dict[str, Any] = response.json()
            return result

        try:
            while not stop.is_set():
                person = rng.choice(people)
                key = f"{person}-{uuid.uuid4().hex}"
                answer = post(
                    "/v1/calls/authorize",
                    {"person_id": person, "dialed": DIALED, "idempotency_key": key},
                )
                if answer is None:
                    continue
                hold_id = answer["hold_id"]
                if not answer["allowed"]:
                    with ledger.lock:
                        ledger.refused += 1
                    continue
                with ledger.lock:
                    ledger.authorized[hold_id] = answer["max_minutes"]
                roll = rng.random()
                if roll < 0.05:
                    continue  # left held: the sweep expires it
                if roll < 0.15:
                    if post(f"/v1/calls/{hold_id}/release") is not None:
                        with ledger.lock:
                            ledger.released.add(hold_id)
                    continue
                if roll >= 0.25:  # below 0.25: ended without a connect report
                    if post(f"/v1/calls/{hold_id}/connect") is None:
                        continue
                    with ledger.lock:
                        ledger.connected.add(hold_id)
                    if roll < 0.30:
                        continue  # connected and never ended: the sweep settles it
                seconds = rng.randrange(0, 1500)
                ended = post(f"/v1/calls/{hold_id}/end", {"seconds": seconds})
                if ended is not None:
                    with ledger.lock:
                        ledger.ended[hold_id] = (seconds, ended["minutes"])
        except httpx.TransportError:
            return  # the server was killed under us: this request may or may not have landed


@pytest.mark.postgres
def test_sigkill_loses_no_acknowledged_end(postgres_url: str, tmp_path: Path) -> None:
    """SIGKILL the server (supervisor and workers) in the middle of a stream of calls,
    restart it, and find every acknowledged end, a consistent ledger and audit log,
    and nothing the sweep cannot settle."""
    people = [f"p{n:02d}" for n in range(16)]
    seed = random.randrange(2**32)
    print(f"seed {seed}", file=sys.stderr)
    rng = random.Random(seed)
    with prepare(postgres_url, tmp_path, len(people), PLENTY) as setup:
        ledger = Ledger()
        server = Server(postgres_url, workers=2)
        try:
            server.start()
            stop = threading.Event()
            streams = [
                threading.Thread(
                    target=stream_calls,
                    args=(
                        server.base_url,
                        setup.headers,
                        people[n::STREAMS],
                        seed + n,
                        ledger,
                        stop,
                    ),
                )
                for n in range(STREAMS)
            ]
            for stream in streams:
                stream.start()
            # Kill after some hundreds of acknowledged requests (a count, not a delay, so a
            # loaded machine still gets there), at a random moment between two of them.
            target = rng.randrange(200, 400)
            deadline = time.monotonic() + 120
            while (
                ledger.requests < target
                and time.monotonic() < deadline
                and not stop.is_set()
                and any(stream.is_alive() for stream in streams)
            ):
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.05))
            server.kill()
            stop.set()
            for stream in streams:
                stream.join(timeout=60)
            assert not any(stream.is_alive() for stream in streams)
            assert ledger.failures == [], ledger.failures[:5]
            print(
                f"{ledger.requests} acknowledged requests, {len(ledger.ended)} ends",
                file=sys.stderr,
            )
            assert ledger.requests >= target, "the server was killed too early to mean much"
            assert ledger.refused == 0

            server.start()
            check_acknowledged(server, setup, ledger)
            rows = sessions_of(setup.db)
            check_ledger(setup, rows)
            assert len(rows) >= len(ledger.authorized)
            # Still idempotent across the crash: the same end gives the same answer.
            hold_id, (seconds, minutes) = next(iter(ledger.ended.items()))
            replay = httpx.post(
                f"{server.base_url}/v1/calls/{hold_id}/end",
                json={"seconds": seconds},
                headers=setup.headers,
                timeout=30,
            )
            assert replay.status_code == 200 and replay.json()["minutes"] == minutes
            server.kill()

            open_before = sum(row.status in ("held", "connected") for row in rows)
            sweep = subprocess.run(
                [str(KINLINE), "holds", "sweep", "--at", "2100-01-01T00:00",
                 "--database-url", postgres_url, "--json"],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert sweep.returncode == 0, sweep.stdout + sweep.stderr
            assert '"expired"' in sweep.stdout
            after = sessions_of(setup.db)
            assert not [row.hold_id for row in after if row.status in ("held", "connected")]
            settled_now = sum(row.settled_by == "timeout" for row in after)
            assert settled_now == open_before
            check_ledger(setup, after)
            for row in after:
                if row.hold_id in ledger.ended:
                    assert (row.status, row.minutes) == ("completed", ledger.ended[row.hold_id][1])
        except BaseException:
            print(f"--- kinline serve log:\n{server.log()}", file=sys.stderr)
            raise
        finally:
            server.close()


def check_acknowledged(server: Server, setup: Setup, ledger: Ledger) -> None:
    """Every acknowledged step is there, read back over HTTP from the restarted server."""
    with httpx.Client(base_url=server.base_url, headers=setup.headers, timeout=30.0) as client:
        for hold_id, max_minutes in ledger.authorized.items():
            response = client.get(f"/v1/calls/{hold_id}")
            assert response.status_code == 200, response.text
            call = response.json()
            assert call["max_minutes"] == max_minutes == 10
            if hold_id in ledger.ended:
                seconds, minutes = ledger.ended[hold_id]
                assert minutes == min(math.ceil(seconds / 60), max_minutes)
                assert (call["state"], call["minutes"], call["settled_by"]) == (
                    "completed",
                    minutes,
                    "platform",
                ), (hold_id, seconds)
            elif hold_id in ledger.released:
                assert (call["state"], call["minutes"]) == ("released", 0)
            elif hold_id in ledger.connected:
                assert call["state"] in ("connected", "completed"), call
            else:
                assert call["state"] in ("held", "connected", "completed", "released"), call


def check_ledger(setup: Setup, rows: list[SessionRow]) -> None:
    """Counters equal the sessions, and every hold committed with its audit event."""
    assert counters_of(setup.db) == counters_from_sessions(rows)
    assert all(row.status != "denied" for row in rows)
    with_hold = [row for row in rows if row.hold_id is not None]
    assert len(with_hold) == len(rows)
    tags = audit_tags(setup.db)
    assert tags["calls:authorize:allowed"] == len(with_hold)
    by_status = Counter(row.status for row in rows)
    assert tags["calls:call:released"] == by_status["released"]
    assert tags["calls:call:expired"] == by_status["expired"]
    # A completed call ended once, or was settled by the sweep and never re-ended here.
    assert tags["calls:call:ended"] == by_status["completed"]
    for row in rows:
        assert row.reserved is not None and row.reserved["counters"], row.hold_id
    assert_audit_log_intact(setup.db, setup.url)
