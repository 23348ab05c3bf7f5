"""Invariant 2 for every kind of allowance: however many set-ups race for the last
call, exactly one is held.

One ``kinline serve`` with two worker processes per backend, shared by every
kind, real HTTP from threads released by one barrier: 32 on PostgreSQL,
whose row locks let the racers' transactions interleave, 16 on SQLite,
where an immediate transaction serialises every writer of the file and 16
contend for it as surely as 32. Each kind of allowance has its own person,
all in one facility: a calendar day, ISO week and month; a rolling window;
a minute quota that the held minutes exhaust; a count and minutes quota
together; a limit's quota; a grant's own quota under a roomier limit; a gap
limit, and a zero gap; a grant for every person (``person: all``); a video
call. After each round the counters and rolling entries equal a recount
from the sessions table; then the hold is released and the ledger must be
as it was before the round (empty), so every round races for a fresh last
call.
"""

from __future__ import annotations

import subprocess
import textwrap
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from _server import KINLINE, Server, running_server
from sqlalchemy import select
from test_calls_race import race

from kinline.db.engine import Database
from kinline.db.tables import SessionRow, UsageCounterRow, UsageEntryRow
from kinline.identity.service import create_token
from kinline.rules.model import DAY, MONTH, WEEK, Period
from kinline.rules.periods import period_key
from kinline.scenario import load_into

FACILITY = "fci-ledger"
ZONE = ZoneInfo("America/Denver")
RACERS = {"sqlite": 16, "postgresql": 32}
ROUNDS = 20
NUMBER = "+1 303 555 0100"


@dataclass(frozen=True)
class Kind:
    """A kind of allowance with room for exactly one more call, and the refusal every
    set-up that loses the race gets."""

    name: str
    rules: str  # with $p for the person and $c for their contact
    reason: str
    failing: str  # the rule named by the refusal
    channel: str = "phone"
    periods: tuple[tuple[str, Period | int], ...] = ()  # rule -> calendar period or rolling days


def _grant(quota: str = "", cap: int | None = 15, channel: str = "phone") -> str:
    fields = [
        "id: g-$p, authority: facility_policy, kind: grant",
        f"channel: {channel}, person: $p, contacts: {{ids: [$c]}}",
    ]
    if quota:
        fields.append(f"quota: {quota}")
    if cap is not None:
        fields.append(f"max_minutes: {cap}")
    return "- {" + ", ".join([*fields, "text: Calls."]) + "}"


def _limit(fields: str) -> str:
    return (
        "- {id: l-$p, authority: facility_policy, kind: limit, channel: phone, person: $p,"
        f" contacts: {{ids: [$c]}}, {fields}, text: A limit.}}"
    )


QUOTA = "quota_exhausted"
KINDS = [
    Kind("day", _grant("{count: 1, per: day}"), QUOTA, "g-$p", periods=(("g", DAY),)),
    Kind("week", _grant("{count: 1, per: week}"), QUOTA, "g-$p", periods=(("g", WEEK),)),
    Kind("month", _grant("{count: 1, per: month}"), QUOTA, "g-$p", periods=(("g", MONTH),)),
    Kind(
        "rolling", _grant("{count: 1, per: {rolling_days: 7}}"), QUOTA, "g-$p", periods=(("g", 7),)
    ),
    # No cap: the hold takes all 15 minutes, and nothing is left.
    Kind(
        "minutes", _grant("{minutes: 15, per: day}", cap=None), QUOTA, "g-$p", periods=(("g", DAY),)
    ),
    Kind(
        "count-and-minutes",
        _grant("{count: 3, minutes: 20, per: week}", cap=None),
        QUOTA,
        "g-$p",
        periods=(("g", WEEK),),
    ),
    Kind(
        "limit-quota",
        _grant() + "\n" + _limit("quota: {count: 1, per: month}"),
        QUOTA,
        "l-$p",
        periods=(("l", MONTH),),
    ),
    Kind(
        "grant-quota-under-a-limit",
        _grant("{count: 1, per: {rolling_days: 30}}")
        + "\n"
        + _limit("quota: {count: 10, per: day}"),
        QUOTA,
        "g-$p",
        periods=(("g", 30), ("l", DAY)),
    ),
    Kind("gap", _grant() + "\n" + _limit("min_gap_minutes: 60"), "too_soon", "l-$p"),
    Kind("zero-gap", _grant() + "\n" + _limit("min_gap_minutes: 0"), "too_soon", "l-$p"),
    # One grant for every person, below; its quota is counted per person.
    Kind("person-all", "", QUOTA, "g-all", periods=(("g-all", MONTH),)),
    Kind(
        "video",
        _grant("{count: 1, per: day}", channel="video"),
        QUOTA,
        "g-$p",
        channel="video",
        periods=(("g", DAY),),
    ),
]


def fill(template: str, p: str) -> str:
    return template.replace("$p", p).replace("$c", f"c-{p}")


def person(kind: Kind) -> str:
    return f"p-{kind.name}"


def scenario(path: Path) -> Path:
    people, contacts, rules = [], [], []
    everyone = []
    for kind in KINDS:
        p = person(kind)
        c = f"c-{p}"
        people.append(f"  - {{id: {p}, name: P. {kind.name}, language: en}}")
        contacts.append(
            f'  - {{id: {c}, person: {p}, relationship: parent, phones: ["{NUMBER}"],'
            " approved: [phone, video]}"
        )
        if kind.rules:
            rules.append(textwrap.indent(fill(kind.rules, p), "  "))
        else:
            everyone.append(c)
    rules.append(
        "  - {id: g-all, authority: facility_policy, kind: grant, channel: phone, person: all,"
        f" contacts: {{ids: [{', '.join(everyone)}]}}, quota: {{count: 1, per: month}},"
        " max_minutes: 15, text: One call a month.}"
    )
    lines = [
        "scenario: ledger-race",
        f"facility: {{id: {FACILITY}, name: FCI Ledger, timezone: {ZONE.key}}}",
        "people:",
        *people,
        "contacts:",
        *contacts,
        "rules:",
        *rules,
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


Ledger = tuple[dict[tuple[str, str], Any], Counter[str]]


@dataclass
class Arena:
    db: Database
    server: Server
    headers: dict[str, str]
    clients: list[httpx.Client]

    @property
    def racers(self) -> int:
        return len(self.clients)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def arena(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Arena]:
    folder = tmp_path_factory.mktemp("ledger-race")
    if request.param == "postgresql":
        templates = request.getfixturevalue("postgres_templates")
        name = templates.fresh()
        url = templates.url_for(name)
    else:
        url = f"sqlite:///{folder / 'race.db'}"
        done = subprocess.run(
            [str(KINLINE), "db", "upgrade", "--database-url", url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    db = Database(url, pool_size=2, max_overflow=2)
    clients = [httpx.Client(timeout=60.0) for _ in range(RACERS[request.param])]
    try:
        load_into(str(scenario(folder / "race.yaml")), db)
        _caller, token = create_token(db, "pbx", "telephony", at=datetime.now(UTC))
        with running_server(url, workers=2) as server:
            answers = race(
                clients, lambda client, _i: client.get(f"{server.base_url}/openapi.json")
            )
            assert [a.status for a in answers] == [200] * len(clients)
            yield Arena(db, server, {"Authorization": f"Bearer {token}"}, clients)
    finally:
        for client in clients:
            client.close()
        db.dispose()
        if request.param == "postgresql":
            templates.drop(name)


def sessions_of(db: Database, person_id: str) -> list[SessionRow]:
    with db.transaction() as session:
        return list(
            session.scalars(
                select(SessionRow).where(
                    SessionRow.facility_id == FACILITY, SessionRow.person_id == person_id
                )
            )
        )


def ledger_of(db: Database, person_id: str) -> Ledger:
    """The person's non-zero counters, and their rolling entries counted per rule."""
    with db.transaction() as session:
        counters = {
            (row.rule_id, row.period_key): (row.sessions, row.minutes)
            for row in session.scalars(
                select(UsageCounterRow).where(
                    UsageCounterRow.facility_id == FACILITY,
                    UsageCounterRow.person_id == person_id,
                )
            )
            if (row.sessions, row.minutes) != (0, 0)
        }
        entries = Counter(
            session.scalars(
                select(UsageEntryRow.rule_id).where(
                    UsageEntryRow.facility_id == FACILITY, UsageEntryRow.person_id == person_id
                )
            )
        )
    return counters, entries


def recount(
    kind: Kind, p: str, rows: list[SessionRow]
) -> tuple[dict[tuple[str, str], Any], Counter[str]]:
    """The counters and rolling entries the sessions call for."""
    counters: dict[tuple[str, str], Any] = {}
    entries: Counter[str] = Counter()
    for row in rows:
        if row.status not in ("held", "connected", "completed"):
            continue
        for prefix, period in kind.periods:
            rule_id = prefix if prefix == "g-all" else f"{prefix}-{p}"
            if rule_id not in (row.charged_to, *row.governed_by):
                continue
            if isinstance(period, int):
                entries[rule_id] += 1
                continue
            key = (rule_id, period_key(period, row.started_at, ZONE))
            sessions, minutes = counters.get(key, (0, 0))
            counters[key] = (sessions + 1, minutes + row.minutes)
    return counters, entries


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_racing_setups_hold_exactly_the_last_call(arena: Arena, kind: Kind) -> None:
    """Round after round, the racers set up one person's last call of this kind at
    once: exactly one is held, every other is refused naming the exhausted rule;
    released, the hold gives the last call back for the next round."""
    base = arena.server.base_url
    p = person(kind)
    failing = fill(kind.failing, p)
    for n in range(ROUNDS):
        answers = race(
            arena.clients,
            lambda client, i, n=n: client.post(
                f"{base}/v1/calls/authorize",
                json={
                    "person_id": p,
                    "dialed": NUMBER,
                    "channel": kind.channel,
                    "idempotency_key": f"{p}-{n:02d}-{i}",
                },
                headers=arena.headers,
            ),
        )
        assert [a.error for a in answers] == [None] * arena.racers
        assert [a.status for a in answers] == [200] * arena.racers, [a.body for a in answers]
        held = [a.body for a in answers if a.body["allowed"]]
        assert len(held) == 1, f"{kind.name}, round {n}: {len(held)} holds for the last call"
        refusals = {
            (a.body["reason"], tuple(a.body["rules"])) for a in answers if not a.body["allowed"]
        }
        assert refusals == {(kind.reason, (failing,))}, refusals
        rows = sessions_of(arena.db, p)
        this_round = [
            row for row in rows if (row.idempotency_key or "").startswith(f"{p}-{n:02d}-")
        ]
        assert Counter(row.status for row in this_round) == {
            "held": 1,
            "denied": arena.racers - 1,
        }
        assert ledger_of(arena.db, p) == recount(kind, p, rows)
        released = arena.clients[0].post(
            f"{base}/v1/calls/{held[0]['hold_id']}/release", headers=arena.headers
        )
        assert (released.status_code, released.json()["state"]) == (200, "released")
        assert ledger_of(arena.db, p) == ({}, Counter()), "a released hold left usage behind"
