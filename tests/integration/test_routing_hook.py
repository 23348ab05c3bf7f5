"""The routing hook on real engines: a statement over a facility table without a
facility predicate raises before it reaches the database, unless it runs in a
declared cross-facility operation (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from kinline.db.engine import Database
from kinline.db.routing import (
    UnroutedStatement,
    cross_facility,
    declare_code,
    forget_code,
    install,
)
from kinline.db.tables import FacilityRow, SessionRow

HERE = str(Path(__file__).parents[1])  # the tests, declared by conftest.py


@pytest.fixture(autouse=True)
def checked_here(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This module's own statements are checked (the suite's other test code
    runs as "test-fixture"), and raise even when a run lists them instead."""
    monkeypatch.delenv("KINLINE_ROUTING_REPORT", raising=False)
    forget_code(HERE)
    yield
    declare_code(HERE, "test-fixture")


def test_the_integration_suite_checks_every_engine() -> None:
    assert os.environ.get("KINLINE_ROUTING_CHECK") == "1"


def test_the_tests_own_statements_run_as_a_declared_operation(db: Database) -> None:
    declare_code(HERE, "test-fixture")
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(SessionRow)) == 0
    forget_code(HERE)
    with pytest.raises(UnroutedStatement), db.transaction() as session:
        session.scalar(select(func.count()).select_from(SessionRow))


def test_an_unconstrained_statement_raises_naming_its_table(db: Database) -> None:
    unrouted = text("SELECT count(*) FROM sessions WHERE person_id = :p")
    with (
        pytest.raises(UnroutedStatement, match="no facility_id predicate on sessions") as raised,
        db.engine.connect() as connection,
    ):
        connection.execute(unrouted, {"p": "x"})
    assert "SELECT count(*) FROM sessions WHERE person_id" in str(raised.value)


def test_an_orm_query_by_id_alone_raises_and_writes_nothing(db: Database) -> None:
    with pytest.raises(UnroutedStatement, match="sessions"), db.transaction() as session:
        session.execute(select(func.count()).select_from(SessionRow))
    # The connection is usable after: the statement never reached the database.
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(FacilityRow)) == 0


def test_a_statement_pinned_to_a_facility_runs(db: Database) -> None:
    with db.transaction() as session:
        found = session.scalar(
            select(func.count()).select_from(SessionRow).where(SessionRow.facility_id == "north")
        )
    assert found == 0


def test_a_declared_cross_facility_operation_runs_unconstrained(db: Database) -> None:
    with cross_facility("test-fixture"), db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(SessionRow)) == 0
    # ... and only inside its block.
    with pytest.raises(UnroutedStatement), db.transaction() as session:
        session.scalar(select(func.count()).select_from(SessionRow))


def test_install_checks_an_engine_made_without_kinline(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:  # not checked: not made by kinline
            connection.execute(text("SELECT count(*) FROM notices")).scalar_one()
        install(engine)
        with pytest.raises(UnroutedStatement, match="notices"), engine.connect() as connection:
            connection.execute(text("SELECT count(*) FROM notices")).scalar_one()
        with engine.connect() as connection:
            counted = connection.execute(
                text("SELECT count(*) FROM notices WHERE facility_id = :f"), {"f": "north"}
            )
            assert counted.scalar_one() == 0
    finally:
        engine.dispose()
