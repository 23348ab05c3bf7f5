"""Statements sent on psycopg's own connection (``kinline.db.raw``): each is
routed by facility as the engine's hook requires of every other statement
(the hook does not see them), and a list sent as one array literal comes back
from PostgreSQL as the list it was, whatever its values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, literal, select, text
from sqlalchemy.exc import DataError, DBAPIError

import kinline.audit.repository
import kinline.calls.repository
import kinline.identity.repository  # noqa: F401  (their statements are made at import)
from kinline.db import raw
from kinline.db.engine import Database
from kinline.db.routing import check_statement, facility_tables


def test_every_raw_statement_is_routed_by_facility() -> None:
    names = {statement.name for statement in raw.STATEMENTS}
    assert {"open_ledgers", "lock_holds", "round_reads", "add_many"} <= names
    assert {"append_many", "settle_and_append", "token_with_subject"} <= names
    tables = facility_tables()
    for statement in raw.STATEMENTS:
        verdict = check_statement(statement.sql, "postgresql", tables)
        assert verdict.routes, (statement.name, verdict.reason)


def test_the_check_finds_a_raw_statement_that_is_not_routed() -> None:
    unrouted = raw.Raw("unrouted", text("SELECT count(*) FROM sessions WHERE person_id = :p"))
    raw.STATEMENTS.remove(unrouted)
    verdict = check_statement(unrouted.sql, "postgresql", facility_tables())
    assert not verdict.routes
    assert "sessions" in verdict.unrouted


@pytest.mark.parametrize("db_backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_an_array_literal_comes_back_as_the_list_it_was(db: Database) -> None:
    texts = ['a"b', "NULL", None, "{x,y}", "back\\slash", "", " spaced ", "ünï", "a,b", '\\"']
    numbers = [0, -7, None, 2**40]
    zone = timezone(timedelta(hours=-5))
    instants = [datetime(2026, 12, 3, 9, 30, 1, 123456, tzinfo=zone), None, datetime.now(UTC)]
    statement = raw.Raw(
        "echo",
        text(
            "SELECT CAST(:texts AS text[]), CAST(:numbers AS bigint[]),"
            " CAST(:instants AS timestamptz[]), CAST(:empty AS text[])"
        ),
    )
    raw.STATEMENTS.remove(statement)
    params = {
        "texts": raw.array(texts),
        "numbers": raw.array(numbers),
        "instants": raw.array(instants),
        "empty": raw.array([]),
    }
    with db.transaction() as session:
        for _ in range(7):  # past psycopg's preparing, the same answer
            [(got_texts, got_numbers, got_instants, got_empty)] = statement.rows(session, params)
            assert got_texts == texts
            assert got_numbers == numbers
            assert got_instants == instants
            assert got_instants[0].tzinfo is UTC
            assert got_empty == []


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        raw.array([datetime(2026, 12, 3, 9, 30)])


@pytest.mark.parametrize("db_backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(db: Database) -> None:
    """Callers catch SQLAlchemy's errors (a round falls back on ``DBAPIError``):
    a statement that fails on psycopg's connection raises the same kind, and the
    session's transaction rolls back as after any other failed statement."""
    failing = raw.Raw("failing", text("SELECT CAST(:n AS int) / 0"))
    raw.STATEMENTS.remove(failing)
    with pytest.raises(DataError) as raised, db.transaction() as session:
        failing.rows(session, {"n": 1})
    assert isinstance(raised.value, DBAPIError)
    assert "division by zero" in str(raised.value.orig)
    with db.transaction() as session:  # the pool's connection is usable again
        assert raw.Raw("one", text("SELECT 1")).rows(session, {}) == [(1,)]
    raw.STATEMENTS.pop()


@pytest.mark.parametrize("db_backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_values_a_statement_carries_are_sent_with_the_callers(db: Database) -> None:
    carried = raw.Raw("carried", select(literal(None), literal("kept"), bindparam("given")))
    raw.STATEMENTS.remove(carried)
    with db.transaction() as session:
        assert carried.rows(session, {"given": "mine"}) == [(None, "kept", "mine")]
