"""A round of set-ups (``calls.rounds.authorize_round``) leaves the database the
set-ups would have left one at a time (``calls.path.authorize``) in the same
order: the same sessions, counters, gap marks, audit events (hashes and all),
chain heads and outbox rows, and the same answers.

Every kind of allowance of the ledger race (calendar quotas, minutes, a
limit's quota, gap limits, a grant for every person, video, rolling windows
that a round leaves to the set-up on its own), set-ups of one person in one
round racing for the last call, and the set-ups a round does not take (an
unknown number, a key used again for the same and for another set-up, a
contact named by id, a visit channel, a person not held here, a first
set-up whose chain has not begun) in rounds of every size. Hold ids are
drawn from one counter in both runs, so two equal databases are equal to the
byte.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update
from test_ledger_race import FACILITY, KINDS, NUMBER, person, scenario

from kinline.calls import path
from kinline.calls.path import Call, authorize
from kinline.calls.rounds import SetUp, authorize_round
from kinline.db.engine import Database
from kinline.db.tables import PersonRow
from kinline.errors import KinlineError
from kinline.scenario import load_into

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
    return (call.hold_id, call.state, call.decision, call.minutes, call.expires_at, call.replayed)


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


@pytest.mark.parametrize("seed", [1, 2, 3])
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
    order: list[int] = []
    by_round: dict[int, object] = {}
    decided = 0
    counted_holds()
    start = 0
    while start < len(made):
        chunk = list(range(start, min(len(made), start + next(sizes))))
        start = chunk[-1] + 1
        answers = authorize_round(rounds_db, [made[i] for i in chunk])
        for i, answer in zip(chunk, answers, strict=True):
            if answer is not None:
                order.append(i)
                by_round[i] = summary(answer)
                decided += 1
        for i, answer in zip(chunk, answers, strict=True):
            if answer is None:
                order.append(i)
                by_round[i] = one(rounds_db, made[i])
    counted_holds()
    alone = {i: one(single_db, made[i]) for i in order}
    assert by_round == alone
    if rounds_db.dialect == "sqlite":
        assert decided == 0  # one writer at a time: every set-up on its own
        return
    # Most set-ups were decided in rounds, and some of them refused in one.
    assert decided > len(made) // 2
    assert any(not answer[2].allowed for answer in by_round.values() if len(answer) == 6)  # type: ignore[index]
    assert contents(rounds_db) == contents(single_db)
