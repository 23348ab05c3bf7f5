"""No over-booking against a real server: ``kinline serve`` with two worker
processes, 64 clients booking the last place of a session at the same moment
over HTTP, 20 rounds, on SQLite and PostgreSQL. Each round exactly one gets
the place and 63 are refused as ``no_capacity``, never a 5xx; the session's
counter, its bookings and the usage ledger's held visits agree.
"""

from __future__ import annotations

import subprocess
import textwrap
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import _server
import httpx
import pytest
from _server import KINLINE, running_server
from sqlalchemy import select
from test_calls_race import race

from kinline.audit.service import verify_log
from kinline.db.engine import Database
from kinline.db.tables import SessionRow, VisitBookingRow, VisitorRow, VisitSlotRow
from kinline.identity.service import create_token
from kinline.scenario import load_into
from kinline.visits import booking, sessions

FACILITY = "fci-visits"
ZONE = ZoneInfo("America/Denver")
RACERS = 64
ROUNDS = 20


def write_scenario(tmp_path: Path) -> str:
    """The racers r00..r63 and one more person, ``first``, each with one approved
    visitor, under a grant of visits without a quota."""
    people = [f"r{n:02d}" for n in range(RACERS)] + ["first"]
    lines = [
        "scenario: visits-race",
        f"facility: {{id: {FACILITY}, name: FCI Visits, timezone: {ZONE.key}}}",
        "people:",
        *(f"  - {{id: {p}, name: P. {p}, language: en}}" for p in people),
        "contacts:",
        *(
            f"  - {{id: v-{p}, person: {p}, relationship: parent,"
            f' phones: ["+1 303 555 0100"], approved: [visit]}}'
            for p in people
        ),
        "rules:",
        textwrap.indent(
            textwrap.dedent(
                """\
                - {id: g-visit, authority: facility_policy, kind: grant, channel: visit,
                   person: all, contacts: any, text: Visits.}
                """
            ),
            "  ",
        ),
    ]
    path = tmp_path / "visits-race.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture
def postgres_url(postgres_templates: Any) -> Iterator[str]:
    name = postgres_templates.fresh()
    yield postgres_templates.url_for(name)
    postgres_templates.drop(name)


@pytest.fixture
def clients() -> Iterator[list[httpx.Client]]:
    # A new connection for every request: uvicorn closes a connection idle for
    # 5 s, and one closed just as a booking is sent on it would be a lost answer,
    # not a refusal (on a busy machine a round takes longer than that).
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    opened = [httpx.Client(timeout=60.0, limits=no_reuse) for _ in range(RACERS)]
    try:
        yield opened
    finally:
        for client in opened:
            client.close()


def prepare(db: Database, tmp_path: Path, today: date) -> list[date]:
    """The scenario, approved visitors, and one session a day for the rounds (two
    open places each, one of them taken by ``first``): the dates raced for."""
    now = datetime.now(UTC)
    load_into(write_scenario(tmp_path), db)
    with db.transaction() as session:
        for contact in [f"v-r{n:02d}" for n in range(RACERS)] + ["v-first"]:
            session.add(
                VisitorRow(
                    facility_id=FACILITY, person_id=contact.removeprefix("v-"),
                    contact_id=contact, date_of_birth=date(1970, 1, 1), address="1 Main St",
                    country="US", criminal_record_declared=False, status="approved",
                    applied_at=now, applied_by="test",
                )
            )  # fmt: skip
    sessions.add_room(db, FACILITY, "hall", "Visiting hall", actor="test", at=now)
    days = [today + timedelta(days=7 + n) for n in range(ROUNDS)]
    for n, day in enumerate(days):
        sessions.add_template(
            db, FACILITY, f"s{n:02d}", room_id="hall", weekday=day.weekday(), starts=time(13),
            ends=time(14), kind="contact", capacity_open=2, capacity_closed=0, valid_from=day,
            valid_to=day, actor="test", at=now,
        )  # fmt: skip
        first = booking.book(
            db, FACILITY, "first", f"s{n:02d}", day, ["v-first"], booker="staff",
            actor="test", now=now,
        )  # fmt: skip
        assert first.allowed, first
    return days


@pytest.mark.timeout(1800)
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_racing_bookings_take_exactly_the_last_place(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clients: list[httpx.Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two worker processes importing the app on a machine busy with other
    # suites may take longer than the usual minute to answer.
    monkeypatch.setattr(_server, "READY_SECONDS", 300.0)
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'visits-race.db'}"
        upgrade = subprocess.run(
            [str(KINLINE), "db", "upgrade", "--database-url", url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    db = Database(url, pool_size=2, max_overflow=2)
    try:
        today = datetime.now(ZONE).date()
        days = prepare(db, tmp_path, today)
        _desk, token = create_token(db, "desk", "staff", at=datetime.now(UTC))
        headers = {"Authorization": f"Bearer {token}"}
        with running_server(url, workers=2) as server:
            for n, day in enumerate(days):
                answers = race(
                    clients,
                    lambda client, i, n=n, day=day: client.post(
                        f"{server.base_url}/v1/visits/bookings",
                        json={
                            "person_id": f"r{i:02d}",
                            "template_id": f"s{n:02d}",
                            "date": day.isoformat(),
                            "visitors": [f"v-r{i:02d}"],
                        },
                        headers=headers,
                    ),
                )
                assert [a.error for a in answers] == [None] * RACERS
                assert [a.status for a in answers] == [200] * RACERS, [a.body for a in answers]
                won = [a.body for a in answers if a.body["allowed"]]
                lost = [a.body for a in answers if not a.body["allowed"]]
                assert len(won) == 1, f"round {n}: {len(won)} bookings"
                assert won[0]["booking"]["status"] == "booked"
                assert {r["reason"] for r in lost} == {"no_capacity"}
                with db.transaction() as session:
                    slot = session.scalars(
                        select(VisitSlotRow).where(VisitSlotRow.template_id == f"s{n:02d}")
                    ).one()
                    statuses = Counter(
                        session.scalars(
                            select(VisitBookingRow.status).where(VisitBookingRow.slot_id == slot.id)
                        )
                    )
                assert (slot.booked_open, slot.capacity_open) == (2, 2)
                assert statuses == {"booked": 2}
        with db.transaction() as session:
            held = session.scalars(
                select(SessionRow.status).where(SessionRow.channel == "visit")
            ).all()
        assert Counter(held) == {"held": 2 * ROUNDS}
        assert verify_log(db).problem is None
    finally:
        db.dispose()
