"""A round of set-ups and ends (``calls.rounds.run_round``) leaves the database
they would have left one at a time (``calls.path.authorize``, ``end``) in the
same order: the same sessions, counters, gap marks, audit events (hashes and all),
chain heads and outbox rows, and the same answers.

Every kind of allowance of the ledger race (calendar quotas, minutes, a
limit's quota, gap limits, a grant for every person, video, rolling windows
that a round leaves to the set-up on its own), set-ups of one person in one
round racing for the last call, and the set-ups a round does not take (an
unknown number, a key used again for the same and for another set-up, a
contact named by id, a visit channel, a person not held here, one not
known) in rounds of every size; each person's first set-up begins their
audit chain, in a round or on its own. Hold ids are
drawn from one counter in both runs, so two equal databases are equal to the
byte.
"""

from __future__ import annotations

import itertools
import random
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import OperationalError
from test_ledger_race import FACILITY, KINDS, NUMBER, person, scenario

from kinline.api import create_app
from kinline.calls import api as calls_api
from kinline.calls import path, rounds
from kinline.calls.model import Status
from kinline.calls.path import Call, authorize, end
from kinline.calls.rounds import Ending, SetUp, run_round
from kinline.db.engine import Database
from kinline.db.tables import PersonRow
from kinline.errors import KinlineError
from kinline.identity.service import create_token
from kinline.scenario import load_into

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # a Monday, 08:00 in Denver
TABLES = {
    "sessions": "id",
    "usage_counters": "person_id, rule_id, period_key",
    "usage_entries": "id",
    "gap_marks": "person_id, rule_id",
    "audit_events": "chain, seq",
    "audit_heads": "chain",
    "domain_events": "chain, seq",
}
IGNORED = {"domain_events": {"recorded_at"}}  # when the outbox row was made


def setups(rng: random.Random) -> list[SetUp]:
    """A morning of set-ups for every kind's person, and the odd ones out."""
    made: list[SetUp] = []
    people = [(person(kind), kind.channel) for kind in KINDS]
    for step in range(10):
        at = START + timedelta(minutes=37 * step)
        for who, channel in rng.sample(people, len(people)):
            made.append(_setup(who, f"{who}-{step}", at, channel=channel))
        if step % 3 == 0:
            made.append(_setup(person(KINDS[0]), f"{person(KINDS[0])}-{step}", at))
    odd = [
        _setup(person(KINDS[0]), "unknown-number", START, dialed="+1 212 555 0199"),
        _setup(person(KINDS[1]), f"{person(KINDS[1])}-2", START),  # the same key again
        _setup(person(KINDS[2]), f"{person(KINDS[1])}-3", START),  # another's key
        _setup(person(KINDS[0]), "by-contact", START, dialed=None, contact=f"c-{person(KINDS[0])}"),
        _setup(person(KINDS[0]), "a-visit", START, channel="visit"),
        _setup("p-released", "released", START + timedelta(hours=2)),
        _setup("p-nobody", "nobody", START),
    ]
    for item in odd:
        made.insert(rng.randrange(len(made) // 3, len(made)), item)
    return made


def _setup(
    who: str,
    key: str,
    at: datetime,
    *,
    channel: str = "phone",
    dialed: str | None = NUMBER,
    contact: str | None = None,
) -> SetUp:
    return SetUp(FACILITY, who, dialed, contact, channel, key, actor="pbx", at=at)


def one(db: Database, setup: SetUp) -> object:
    """What ``authorize`` answers the set-up on its own: the call, or the error."""
    try:
        return summary(
            authorize(
                db,
                setup.facility_id,
                setup.person_id,
                dialed=setup.dialed,
                contact_id=setup.contact_id,
                channel=setup.channel,
                idempotency_key=setup.idempotency_key,
                actor="pbx",
                at=setup.at,
            )
        )
    except KinlineError as error:
        return (type(error).__name__, error.field, str(error))


def summary(call: Call) -> tuple[Any, ...]:
    return (
        call.hold_id, call.state, call.decision, call.minutes, call.expires_at, call.ended_at,
        call.settled_by, call.replayed, call.authorized_at,
    )  # fmt: skip


def contents(db: Database) -> dict[str, list[dict[str, Any]]]:
    with db.transaction() as session:
        return {
            table: [
                {k: v for k, v in row.items() if k not in IGNORED.get(table, set())}
                for row in session.execute(text(f"SELECT * FROM {table} ORDER BY {order}"))  # noqa: S608
                .mappings()
                .all()
            ]
            for table, order in TABLES.items()
        }


@pytest.fixture
def counted_holds(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Hold ids from a counter; calling the result starts it again."""
    counter: Iterator[int] = iter(())

    def restart() -> None:
        nonlocal counter
        counter = itertools.count(1)

    class Counted:
        @staticmethod
        def uuid4() -> uuid.UUID:
            return uuid.UUID(int=next(counter))

    monkeypatch.setattr(path, "uuid", Counted)
    restart()
    return restart


def loaded(fresh_db: Callable[..., Database], folder: Path) -> Database:
    """The ledger race's facility, and one more person (released, below)."""
    db = fresh_db()
    source = scenario(folder / "rounds.yaml")
    lines = source.read_text().splitlines()
    lines.insert(
        lines.index("people:") + 1, "  - {id: p-released, name: P. Released, language: en}"
    )
    lines.insert(
        lines.index("contacts:") + 1,
        f'  - {{id: c-released, person: p-released, relationship: parent, phones: ["{NUMBER}"],'
        " approved: [phone]}",
    )
    lines.append(
        "  - {id: g-released, authority: facility_policy, kind: grant, channel: phone,"
        " person: p-released, contacts: {ids: [c-released]}, max_minutes: 15, text: Calls.}"
    )
    source.write_text("\n".join(lines) + "\n")
    load_into(str(source), db)
    with db.transaction() as session:
        session.execute(
            update(PersonRow)
            .where(PersonRow.facility_id == FACILITY, PersonRow.id == "p-released")
            .values(custody_status="released", custody_changed_at=START + timedelta(hours=1))
        )
    return db


Op = SetUp | Ending


def run_one(db: Database, op: Op) -> object:
    """What the request answers on its own: the call, or the error."""
    if isinstance(op, SetUp):
        return one(db, op)
    try:
        return summary(end(db, op.facility_id, op.hold_id, op.seconds, actor="pbx", at=op.at))
    except KinlineError as error:
        return (type(error).__name__, error.field, str(error))


def endings(rng: random.Random, open_holds: dict[str, datetime]) -> list[Ending]:
    """Ends of some of the holds answered so far: most in time, some after their
    hold lapsed, some twice; and one of a hold that does not exist."""
    made: list[Ending] = []
    for hold_id, authorized_at in list(open_holds.items()):
        if rng.random() < 0.4:
            continue
        late = rng.random() < 0.15
        at = authorized_at + timedelta(minutes=10 if late else 1)
        seconds = rng.choice([0, 59, 61, 600, 3000])
        made.append(Ending(FACILITY, hold_id, seconds, actor="pbx", at=at))
        if rng.random() < 0.1:
            made.append(Ending(FACILITY, hold_id, seconds, actor="pbx", at=at))
        if rng.random() < 0.8:
            del open_holds[hold_id]  # the rest are ended again later
    if rng.random() < 0.2:
        made.append(Ending(FACILITY, "h_unknown", 60, actor="pbx", at=START))
    rng.shuffle(made)
    return made


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_round_leaves_the_database_one_at_a_time_would(
    fresh_db: Callable[..., Database],
    tmp_path: Path,
    counted_holds: Callable[[], None],
    seed: int,
) -> None:
    rng = random.Random(seed)
    made = setups(rng)
    rounds_db, single_db = loaded(fresh_db, tmp_path), loaded(fresh_db, tmp_path)
    sizes = itertools.cycle([1, 5, 2, 13, 40, 3])
    order: list[Op] = []
    by_round: list[object] = []
    decided = ended = 0
    open_holds: dict[str, datetime] = {}
    counted_holds()
    start = 0
    while start < len(made):
        chunk = made[start : start + next(sizes)]
        start += len(chunk)
        ends = endings(rng, open_holds)
        answers, closed = run_round(rounds_db, chunk, ends)
        later: list[Op] = []
        for op, answer in [*zip(ends, closed, strict=True), *zip(chunk, answers, strict=True)]:
            if answer is None:
                later.append(op)
                continue
            order.append(op)
            by_round.append(summary(answer))
            decided += isinstance(op, SetUp)
            ended += isinstance(op, Ending)
            if isinstance(op, SetUp) and answer.hold_id is not None:
                open_holds[answer.hold_id] = answer.authorized_at
        for op in later:
            order.append(op)
            by_round.append(run_one(rounds_db, op))
            if isinstance(op, SetUp) and isinstance(by_round[-1], tuple) and by_round[-1][0]:
                hold_id, authorized_at = by_round[-1][0], by_round[-1][-1]
                if isinstance(hold_id, str) and isinstance(authorized_at, datetime):
                    open_holds[hold_id] = authorized_at
    counted_holds()
    alone = [run_one(single_db, op) for op in order]
    assert by_round == alone
    if rounds_db.dialect == "sqlite":
        assert decided == ended == 0  # one writer at a time: every request on its own
        return
    # Most set-ups were decided in rounds, and some of them refused in one; ends
    # were settled in rounds, and some ran on their own (lapsed, twice, unknown).
    alone_ends = sum(isinstance(op, Ending) for op in order) - ended
    assert decided > len(made) // 2
    assert ended >= 5 and alone_ends >= 1
    refused = [a for a in by_round if isinstance(a, tuple) and a[1] == Status.DENIED]
    assert refused
    assert contents(rounds_db) == contents(single_db)


def test_a_round_that_meets_a_database_error_leaves_every_request_to_run_alone(
    fresh_db: Callable[..., Database],
    tmp_path: Path,
    counted_holds: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = loaded(fresh_db, tmp_path)
    first = _setup(person(KINDS[0]), "first", START)
    answered = one(db, first)
    assert isinstance(answered, tuple) and answered[1] == Status.HELD
    if db.dialect == "sqlite":
        return
    written = contents(db)

    def lost(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    # The round's last statement (the events, and the ends' writes with them)
    # fails after its set-ups were written: the round's transaction rolls back.
    monkeypatch.setattr(rounds, "record_events", lost)
    setups = [_setup(person(KINDS[1]), "second", START)]
    endings = [Ending(FACILITY, answered[0], 60, "pbx", START + timedelta(minutes=1))]
    assert run_round(db, setups, endings) == ([None], [None])
    assert contents(db) == written  # nothing of the round was written


def test_a_round_that_waits_past_the_statement_timeout_writes_nothing_and_runs_alone(
    fresh_db: Callable[..., Database], tmp_path: Path, counted_holds: Callable[[], None]
) -> None:
    """A real error from the database inside a round (its ledgers' lock waited
    for another writer past ``statement_timeout``), not one made in Python: the
    round answers None for each request and writes nothing; run alone once the
    other writer is gone, the set-up is held."""
    db = loaded(fresh_db, tmp_path)
    if db.dialect == "sqlite":
        return
    written = contents(db)
    impatient = Database(db.url, statement_timeout=300)
    caller = person(KINDS[1])
    setup = _setup(caller, "waited", START)
    try:
        with db.engine.connect() as other:
            other.execute(
                text("SELECT id FROM people WHERE facility_id = :f AND id = :p FOR UPDATE"),
                {"f": FACILITY, "p": caller},
            )
            assert run_round(impatient, [setup]) == ([None], [])
            other.rollback()
        assert contents(db) == written
        answered = one(impatient, setup)
        assert isinstance(answered, tuple) and answered[1] == Status.HELD
    finally:
        impatient.engine.dispose()


def test_a_round_whose_connection_the_server_drops_writes_nothing_and_runs_alone(
    fresh_db: Callable[..., Database],
    tmp_path: Path,
    counted_holds: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server ends the round's backend (``pg_terminate_backend``) just
    before the round's first statement on psycopg's connection: the round
    answers None for each request, and alone the set-up is held, on a
    connection that works."""
    db = loaded(fresh_db, tmp_path)
    if db.dialect == "sqlite":
        return
    written = contents(db)
    opened = rounds.repository.open_ledgers
    killed: list[int] = []

    def dropped(session: Any, *args: Any) -> Any:
        pid = session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with db.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            other.commit()
        killed.append(pid)
        return opened(session, *args)

    monkeypatch.setattr(rounds.repository, "open_ledgers", dropped)
    setup = _setup(person(KINDS[2]), "dropped", START)
    assert run_round(db, [setup]) == ([None], [])
    assert killed
    monkeypatch.undo()
    assert contents(db) == written
    answered = one(db, setup)
    assert isinstance(answered, tuple) and answered[1] == Status.HELD


def test_requests_racing_over_http_are_answered_by_rounds(
    fresh_db: Callable[..., Database], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sixteen set-ups for the last call of a day at once, each on an event loop
    of its own (a test client outside ``with`` opens one per request), then
    each holder's end: one hold, every answer the documented one, and on
    PostgreSQL every request answered by a round, none on its own."""
    db = loaded(fresh_db, tmp_path)
    _caller, token = create_token(db, "pbx", "telephony", at=datetime.now(UTC))
    alone: list[str] = []
    for name in ("_lean_authorize", "_lean_end"):
        real = getattr(calls_api, name)

        def counted(*args: Any, _real: Any = real, _name: str = name) -> Any:
            alone.append(_name)
            return _real(*args)

        monkeypatch.setattr(calls_api, name, counted)
    http = TestClient(create_app(db), raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {token}"}
    # Its first use is recorded by a full route (refused: not its scope).
    assert http.get("/v1/facilities", headers=headers).status_code == 403
    who = person(KINDS[0])  # one call a day
    body = {"person_id": who, "dialed": NUMBER}
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(
                lambda n: http.post(
                    f"/v1/calls/authorize?facility_id={FACILITY}",
                    json={**body, "idempotency_key": f"race-{n}"},
                    headers=headers,
                ),
                range(16),
            )
        )
    assert [a.status_code for a in answers] == [200] * 16
    held = [a.json() for a in answers if a.json()["allowed"]]
    assert len(held) == 1
    assert {a.json()["reason"] for a in answers if not a.json()["allowed"]} == {"quota_exhausted"}
    ended = http.post(
        f"/v1/calls/{held[0]['hold_id']}/end?facility_id={FACILITY}",
        json={"seconds": 61},
        headers=headers,
    )
    assert ended.status_code == 200 and ended.json()["minutes"] == 2
    again = http.post(
        f"/v1/calls/{held[0]['hold_id']}/end?facility_id={FACILITY}",
        json={"seconds": 61},
        headers=headers,
    )
    assert again.json() == ended.json()  # the same end again: the same answer
    if db.dialect == "sqlite":
        assert len(alone) == 18  # SQLite: every request on its own
    else:
        assert alone == ["_lean_end"]  # only the end reported twice
