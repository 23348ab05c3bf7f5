"""The audit log on a migrated database: appends, tampering found and located, races, the CLI.

Runs once on SQLite and once on PostgreSQL (KINLINE_TEST_POSTGRES_URL). Each
dialect gets one database for this module, migrated by Alembic; each test
starts from empty audit tables.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from kinline.audit import repository
from kinline.audit.chain import event_hash
from kinline.audit.cli import app as audit_app
from kinline.audit.service import facility_chain, person_chain, record_event, verify_log
from kinline.db.engine import Database
from kinline.db.migrate import upgrade
from kinline.db.routing import cross_facility
from kinline.db.tables import AuditEventRow, AuditHeadRow

FACILITY = "fac-1"
CHICAGO = ZoneInfo("America/Chicago")
START = datetime(2025, 5, 1, 9, 0, tzinfo=CHICAGO)
EVENTS = cast(sa.Table, AuditEventRow.__table__)
HEADS = cast(sa.Table, AuditHeadRow.__table__)


def _postgres_url() -> str:
    url = os.environ.get("KINLINE_TEST_POSTGRES_URL")
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail(
            "CI=true but KINLINE_TEST_POSTGRES_URL is not set: "
            "the audit log must be tested on PostgreSQL"
        )
    pytest.skip("KINLINE_TEST_POSTGRES_URL is not set: audit log tests on PostgreSQL skipped")


def _fresh_postgres(base: str) -> tuple[str, Callable[[], None]]:
    server = make_url(base)
    name = f"kinline_test_audit_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return server.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def audit_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    drop: Callable[[], None] = lambda: None  # noqa: E731
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('audit') / 'audit.db'}"
    else:
        url, drop = _fresh_postgres(_postgres_url())
    try:
        upgrade(url)
        database = Database(url)
        yield database
        database.dispose()
    finally:
        drop()


@pytest.fixture
def db(audit_database: Database) -> Database:
    with audit_database.engine.begin() as connection:
        connection.execute(sa.delete(EVENTS))
        connection.execute(sa.delete(HEADS))
    return audit_database


def append(db: Database, chain: str, count: int, *, actor: str = "officer") -> None:
    """``count`` events on ``chain``, each committed in a transaction of its own."""
    for n in range(count):
        with db.transaction() as session:
            record_event(
                session,
                facility_id=FACILITY,
                chain=chain,
                actor=actor,
                tag="policy:rule:imposed",
                payload={"n": n, "starts_at": START + timedelta(days=n), "text": "ñ"},
                at=START + timedelta(minutes=n),
            )


def record(session: Session, chain: str, *, actor: str) -> None:
    record_event(
        session,
        facility_id=FACILITY,
        chain=chain,
        actor=actor,
        tag="policy:rule:lifted",
        payload={},
        at=START,
    )


def stored(db: Database, chain: str) -> list[sa.Row[tuple[int, int, str]]]:
    """(seq, id, actor) of each stored event of ``chain``, in seq order."""
    with db.engine.connect() as connection:
        return list(
            connection.execute(
                sa.select(EVENTS.c.seq, EVENTS.c.id, EVENTS.c.actor)
                .where(EVENTS.c.chain == chain)
                .order_by(EVENTS.c.seq)
            )
        )


def row_id(db: Database, chain: str, seq: int) -> int:
    return int({row.seq: row.id for row in stored(db, chain)}[seq])


def tamper(db: Database, *statements: sa.Executable) -> None:
    with db.engine.begin() as connection:
        for statement in statements:
            connection.execute(statement)


def at_seq(chain: str, seq: int) -> sa.ColumnElement[bool]:
    return sa.and_(EVENTS.c.chain == chain, EVENTS.c.seq == seq)


ALICE = person_chain(FACILITY, "alice")
BOB = person_chain(FACILITY, "bob")
ZOE = person_chain(FACILITY, "zoe")


@pytest.fixture
def three_chains(db: Database) -> Database:
    """Bob's chain, the one tampered with, sorts between two that are left alone."""
    append(db, ALICE, 3)
    append(db, BOB, 5)
    append(db, ZOE, 2)
    append(db, facility_chain(FACILITY), 2)
    return db


# -- appending --------------------------------------------------------------------------------


def test_recorded_events_form_verifying_chains(three_chains: Database) -> None:
    report = verify_log(three_chains)
    assert (report.chains, report.events, report.problem) == (4, 12, None)
    assert [row.seq for row in stored(three_chains, BOB)] == [1, 2, 3, 4, 5]


def test_an_event_keeps_its_instant_and_hashes_it_in_utc(db: Database) -> None:
    append(db, ALICE, 2)
    with db.engine.connect() as connection:
        rows = connection.execute(
            sa.select(EVENTS).where(EVENTS.c.chain == ALICE).order_by(EVENTS.c.seq)
        ).all()
        head = connection.execute(sa.select(HEADS).where(HEADS.c.chain == ALICE)).one()
    first, second = rows
    assert first.occurred_at == START
    assert json.loads(first.payload) == {
        "n": 0,
        "starts_at": "2025-05-01T14:00:00+00:00",
        "text": "ñ",
    }
    assert first.hash == event_hash(
        "0" * 64,
        ALICE,
        1,
        "2025-05-01T14:00:00+00:00",
        "officer",
        "policy:rule:imposed",
        first.payload,
    )
    assert second.prev_hash == first.hash
    assert (head.seq, head.hash, head.facility_id) == (2, second.hash, FACILITY)


def test_an_event_commits_only_with_the_change_it_records(db: Database) -> None:
    append(db, ALICE, 1)

    def change_that_fails() -> None:
        with db.transaction() as session:
            record(session, ALICE, actor="officer")
            record(session, BOB, actor="officer")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError, match="the change failed"):
        change_that_fails()
    assert [row.seq for row in stored(db, ALICE)] == [1]
    assert stored(db, BOB) == []
    report = verify_log(db)
    assert (report.chains, report.events, report.problem) == (1, 1, None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tag": "policy:imposed"}, "source:subject:action"),
        ({"chain": person_chain("fac-2", "alice")}, "not a chain of facility"),
        ({"chain": "alice"}, "not a chain of facility"),
        ({"at": datetime(2025, 5, 1, 9, 0)}, "timezone-aware"),
        ({"payload": {"at": datetime(2025, 5, 1, 9, 0)}}, "naive"),
    ],
)
def test_a_malformed_event_is_refused_and_nothing_is_written(
    db: Database, change: dict[str, object], message: str
) -> None:
    event: dict[str, object] = {
        "facility_id": FACILITY,
        "chain": ALICE,
        "actor": "officer",
        "tag": "policy:rule:imposed",
        "payload": {},
        "at": START,
    }
    with pytest.raises(ValueError, match=message), db.transaction() as session:
        record_event(session, **{**event, **change})  # type: ignore[arg-type]
    assert verify_log(db).chains == 0


# -- tampering --------------------------------------------------------------------------------


def _payload_rewritten(db: Database) -> tuple[int, int | None, str]:
    tamper(db, sa.update(EVENTS).where(at_seq(BOB, 3)).values(payload='{"n":99}'))
    return 3, row_id(db, BOB, 3), "changed"


def _time_moved(db: Database) -> tuple[int, int | None, str]:
    moved = datetime(2025, 4, 1, tzinfo=UTC)
    tamper(db, sa.update(EVENTS).where(at_seq(BOB, 2)).values(occurred_at=moved))
    return 2, row_id(db, BOB, 2), "changed"


def _actor_replaced(db: Database) -> tuple[int, int | None, str]:
    sql = "UPDATE audit_events SET actor = 'warden' WHERE chain = :chain AND seq = 4"
    tamper(db, sa.text(sql).bindparams(chain=BOB))
    return 4, row_id(db, BOB, 4), "changed"


def _moved_to_other_facility(db: Database) -> tuple[int, int | None, str]:
    tamper(db, sa.update(EVENTS).where(at_seq(BOB, 1)).values(facility_id="fac-2"))
    return 1, row_id(db, BOB, 1), "changed"


def _middle_deleted(db: Database) -> tuple[int, int | None, str]:
    tamper(db, sa.delete(EVENTS).where(at_seq(BOB, 3)))
    return 3, None, "deleted"


def _last_deleted(db: Database) -> tuple[int, int | None, str]:
    tamper(db, sa.delete(EVENTS).where(at_seq(BOB, 5)))
    return 5, None, "deleted"


def _seqs_swapped(db: Database) -> tuple[int, int | None, str]:
    fourth = row_id(db, BOB, 4)
    tamper(
        db,
        sa.update(EVENTS).where(at_seq(BOB, 2)).values(seq=-2),
        sa.update(EVENTS).where(at_seq(BOB, 4)).values(seq=2),
        sa.update(EVENTS).where(at_seq(BOB, -2)).values(seq=4),
    )
    return 2, fourth, "reordered"


def _head_deleted(db: Database) -> tuple[int, int | None, str]:
    tamper(db, sa.delete(HEADS).where(HEADS.c.chain == BOB))
    return 5, None, "deleted"


def _last_rewritten_and_rehashed(db: Database) -> tuple[int, int | None, str]:
    """A forger who knows the hash function still cannot make the head agree."""
    with db.engine.connect() as connection:
        last = connection.execute(sa.select(EVENTS).where(at_seq(BOB, 5))).one()
    payload = '{"n":0}'
    iso = last.occurred_at.astimezone(UTC).isoformat()
    forged = event_hash(last.prev_hash, BOB, 5, iso, last.actor, last.tag, payload)
    tamper(db, sa.update(EVENTS).where(at_seq(BOB, 5)).values(payload=payload, hash=forged))
    return 5, last.id, "changed"


TAMPERINGS = [
    _payload_rewritten,
    _time_moved,
    _actor_replaced,
    _moved_to_other_facility,
    _middle_deleted,
    _last_deleted,
    _seqs_swapped,
    _head_deleted,
    _last_rewritten_and_rehashed,
]


@pytest.mark.parametrize("tampering", TAMPERINGS, ids=lambda f: f.__name__.strip("_"))
def test_tampering_is_found_in_the_right_chain_at_the_right_seq(
    three_chains: Database, tampering: Callable[[Database], tuple[int, int | None, str]]
) -> None:
    seq, event_id, what = tampering(three_chains)
    problem = verify_log(three_chains).problem
    assert problem is not None
    assert (problem.chain, problem.seq, problem.row_id, problem.what) == (BOB, seq, event_id, what)


# -- races ------------------------------------------------------------------------------------


def run_threads(count: int, work: Callable[[int, threading.Barrier], None]) -> None:
    barrier = threading.Barrier(count)
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            work(index, barrier)
        except BaseException as error:  # re-raised below, in the test's thread
            failures.append(error)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not [thread for thread in threads if thread.is_alive()]
    if failures:
        raise failures[0]


def test_concurrent_appends_to_one_chain_stay_contiguous(db: Database) -> None:
    threads, each = 8, 25

    def work(index: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        append(db, ALICE, each, actor=f"thread-{index}")

    run_threads(threads, work)
    rows = stored(db, ALICE)
    assert [row.seq for row in rows] == list(range(1, threads * each + 1))
    switches = sum(1 for a, b in itertools.pairwise(rows) if a.actor != b.actor)
    assert switches > threads - 1, "the threads ran one after another: nothing raced"
    report = verify_log(db)
    assert (report.events, report.problem) == (threads * each, None)


def test_concurrent_first_appends_create_one_head(db: Database) -> None:
    chains = [person_chain(FACILITY, f"new-{n}") for n in range(15)]

    def work(index: int, barrier: threading.Barrier) -> None:
        for chain in chains:
            barrier.wait()
            append(db, chain, 1, actor=f"thread-{index}")

    run_threads(6, work)
    for chain in chains:
        assert [row.seq for row in stored(db, chain)] == [1, 2, 3, 4, 5, 6]
    report = verify_log(db)
    assert (report.chains, report.events, report.problem) == (15, 90, None)


def test_verifying_while_appending_sees_no_false_problem(db: Database) -> None:
    appending = threading.Event()
    reports: list[object] = []

    def work(index: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        if index == 0:
            while not appending.is_set():
                reports.append(verify_log(db).problem)
        else:
            append(db, person_chain(FACILITY, f"p{index % 2}"), 20, actor=f"thread-{index}")
            if index == 1:
                appending.set()

    run_threads(4, work)
    assert reports
    assert set(reports) == {None}


@pytest.mark.parametrize(
    "audit_database", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_the_head_stays_locked_until_the_appending_transaction_ends(db: Database) -> None:
    """On SQLite the whole write transaction is serialised instead, so only PostgreSQL."""
    append(db, ALICE, 1)

    def append_behind_the_lock() -> None:
        with db.transaction() as other:
            other.execute(sa.text("SET LOCAL lock_timeout = '300ms'"))
            record(other, ALICE, actor="second")

    with db.transaction() as holder:
        record(holder, ALICE, actor="first")
        with pytest.raises(OperationalError, match="lock timeout"):
            append_behind_the_lock()
    assert [row.actor for row in stored(db, ALICE)] == ["officer", "first"]


# -- the command ------------------------------------------------------------------------------


def test_verify_command_exits_0_on_an_intact_log(three_chains: Database) -> None:
    result = CliRunner().invoke(audit_app, ["verify", "--database-url", three_chains.url])
    assert result.exit_code == 0, result.output
    assert "12 events in 4 chains verified" in result.output


def test_verify_command_exits_1_and_says_where(three_chains: Database) -> None:
    event_id = row_id(three_chains, BOB, 3)
    _payload_rewritten(three_chains)
    result = CliRunner().invoke(audit_app, ["verify", "--database-url", three_chains.url])
    assert result.exit_code == 1, result.output
    assert f"chain {BOB}, seq 3, event id {event_id}" in result.output
    assert "changed" in result.output


def test_verify_command_reads_the_configured_database(
    three_chains: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _middle_deleted(three_chains)
    monkeypatch.setenv("KINLINE_DATABASE_URL", three_chains.url)
    result = CliRunner().invoke(audit_app, ["verify"])
    assert result.exit_code == 1, result.output
    assert f"chain {BOB}, seq 3, event id none (missing)" in result.output


def test_verify_command_help_says_what_it_checks() -> None:
    result = CliRunner().invoke(audit_app, ["verify", "--help"])
    assert result.exit_code == 0
    assert "--database-url" in result.output
    assert "exits 1" in " ".join(result.output.split()).lower()


def test_chains_stream_whole_across_batch_boundaries(three_chains: Database) -> None:
    with cross_facility("test-fixture"), three_chains.transaction() as session:
        streamed = [
            (chain.chain, [event.link.seq for event in chain.events], chain.head)
            for chain in repository.iter_chains(session, batch_size=2)
        ]
    assert [(name, seqs) for name, seqs, _ in streamed] == [
        (facility_chain(FACILITY), [1, 2]),
        (ALICE, [1, 2, 3]),
        (BOB, [1, 2, 3, 4, 5]),
        (ZOE, [1, 2]),
    ]
    assert [head[0] for _, _, head in streamed if head is not None] == [2, 3, 5, 2]
