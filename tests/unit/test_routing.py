"""The routing check: which statements reach one facility's shard.

Statements as SQLAlchemy sends them to each driver: ``?`` on SQLite,
``%(name)s`` on PostgreSQL (psycopg), names qualified by table or alias.
"""

from __future__ import annotations

import pytest

from kinline.db.routing import (
    CROSS_FACILITY,
    check_statement,
    cross_facility,
    declared_operation,
    facility_tables,
)

TABLES = frozenset({"sessions", "notices", "people", "appeals", "audit_events"})

ROUTED = [
    # SELECT by facility, alone or among other predicates
    "SELECT * FROM sessions WHERE sessions.facility_id = ? AND sessions.id = ?",
    "SELECT * FROM sessions WHERE sessions.id = ? AND sessions.facility_id = ?",
    "SELECT * FROM sessions AS s WHERE s.facility_id = ?",
    "SELECT * FROM sessions WHERE facility_id = ?",
    "SELECT * FROM sessions WHERE sessions.facility_id = CAST(? AS VARCHAR)",
    "SELECT * FROM sessions WHERE sessions.facility_id = 'north'",
    # IN a list of values
    "SELECT * FROM sessions WHERE sessions.facility_id IN (?, ?, ?)",
    # a table that holds no facility's data needs nothing
    "SELECT * FROM facilities WHERE facilities.id = ?",
    "SELECT * FROM subjects",
    "SELECT 1",
    # a join: each facility table pinned, or equal on facility_id to one that is
    "SELECT * FROM sessions JOIN people ON people.facility_id = sessions.facility_id"
    " AND people.id = sessions.person_id WHERE sessions.facility_id = ?",
    "SELECT * FROM sessions AS s JOIN people AS p ON p.id = s.person_id AND p.facility_id = ?"
    " WHERE s.facility_id = ?",
    "SELECT * FROM sessions JOIN people USING (facility_id) WHERE sessions.facility_id = ?",
    "SELECT * FROM people LEFT OUTER JOIN sessions ON sessions.facility_id = people.facility_id"
    " AND sessions.person_id = people.id WHERE people.facility_id = ?",
    "SELECT * FROM sessions JOIN subject_bindings AS b ON b.person_id = sessions.person_id"
    " WHERE sessions.facility_id = ?",
    # OR: each branch pins the table
    "SELECT * FROM sessions WHERE (sessions.facility_id = ? AND sessions.id = ?)"
    " OR (sessions.facility_id = ? AND sessions.id = ?)",
    "SELECT * FROM sessions WHERE sessions.facility_id = ?"
    " AND (sessions.id = ? OR sessions.id = ?)",
    # subqueries: correlated on facility_id, or pinned themselves
    "SELECT * FROM people WHERE people.facility_id = ? AND EXISTS (SELECT 1 FROM sessions"
    " WHERE sessions.facility_id = people.facility_id AND sessions.person_id = people.id)",
    "SELECT * FROM people WHERE people.facility_id = ? AND people.id IN (SELECT sessions.person_id"
    " FROM sessions WHERE sessions.facility_id = ?)",
    "SELECT (SELECT count(*) FROM notices WHERE notices.facility_id = people.facility_id)"
    " FROM people WHERE people.facility_id = ?",
    "SELECT * FROM (SELECT * FROM sessions WHERE sessions.facility_id = ?) AS x"
    " JOIN people ON people.facility_id = x.facility_id",
    # CTEs
    "WITH mine AS (SELECT * FROM sessions WHERE sessions.facility_id = ?)"
    " SELECT * FROM mine JOIN notices ON notices.facility_id = mine.facility_id",
    "WITH mine AS (SELECT * FROM sessions WHERE sessions.facility_id = ?)"
    " SELECT count(*) FROM mine",
    # set operations: every arm pinned
    "SELECT id FROM sessions WHERE sessions.facility_id = ?"
    " UNION ALL SELECT id FROM notices WHERE notices.facility_id = ?",
    # INSERT names facility_id; INSERT ... SELECT from a pinned query
    "INSERT INTO sessions (id, facility_id, person_id) VALUES (?, ?, ?)",
    "INSERT INTO sessions (id, facility_id) VALUES (?, ?), (?, ?) RETURNING id",
    "INSERT INTO sessions (facility_id, id) SELECT facility_id, id FROM notices"
    " WHERE notices.facility_id = ?",
    "INSERT OR IGNORE INTO sessions (facility_id, id) VALUES (?, ?)",
    # SQLite's id of a new row (kinline.db.ids), not a read of rows
    "INSERT INTO appeals (id, facility_id) VALUES"
    " ((SELECT coalesce(max(rowid), 0) + 1 FROM appeals), ?) RETURNING id",
    # a tuple (facility_id, id) IN given tuples, as PostgreSQL and SQLite write it
    "UPDATE notices SET title=? WHERE (notices.facility_id, notices.id) IN ((?, ?), (?, ?))",
    "UPDATE notices SET title=? WHERE (notices.facility_id, notices.id) IN (VALUES (?, ?), (?, ?))",
    # UPDATE and DELETE pinned in WHERE
    "UPDATE sessions SET minutes=? WHERE sessions.facility_id = ? AND sessions.id = ?",
    "DELETE FROM notices WHERE notices.facility_id = ? AND notices.id = ?",
    "UPDATE sessions SET minutes=(SELECT count(*) FROM notices WHERE notices.facility_id ="
    " sessions.facility_id) WHERE sessions.facility_id = ?",
    # transaction control, settings and schema changes touch no rows
    "SAVEPOINT sa_savepoint_1",
    "RELEASE SAVEPOINT sa_savepoint_1",
    "BEGIN IMMEDIATE",
    "PRAGMA foreign_keys=ON",
    "CREATE INDEX ix_x ON sessions (facility_id, person_id)",
]

UNROUTED = [
    # no predicate, or one on another column
    ("SELECT * FROM sessions", "sessions"),
    ("SELECT count(*) FROM sessions", "sessions"),
    ("SELECT * FROM sessions WHERE sessions.id = ?", "sessions"),
    ("SELECT * FROM sessions WHERE sessions.facility_id != ?", "sessions"),
    ("SELECT * FROM sessions WHERE sessions.facility_id LIKE ?", "sessions"),
    # IN a subquery cannot be pruned to one shard
    (
        "SELECT * FROM sessions WHERE sessions.facility_id IN (SELECT facility_id FROM facilities)",
        "sessions",
    ),
    # OR that loosens the predicate
    ("SELECT * FROM sessions WHERE sessions.facility_id = ? OR sessions.id = ?", "sessions"),
    (
        "SELECT * FROM sessions WHERE (sessions.facility_id = ? AND sessions.id = ?)"
        " OR sessions.id = ?",
        "sessions",
    ),
    # a join: one of two tables left free
    (
        "SELECT * FROM sessions JOIN people ON people.id = sessions.person_id"
        " WHERE sessions.facility_id = ?",
        "people",
    ),
    ("SELECT * FROM sessions AS s, people AS p WHERE s.facility_id = ?", "people"),
    ("SELECT * FROM sessions JOIN people ON people.facility_id = sessions.facility_id", "sessions"),
    # the predicate on the wrong table's column
    (
        "SELECT * FROM sessions AS s JOIN people AS p ON p.id = s.person_id"
        " WHERE p.facility_id = ?",
        "sessions",
    ),
    # subqueries
    (
        "SELECT * FROM people WHERE people.facility_id = ? AND EXISTS (SELECT 1 FROM sessions"
        " WHERE sessions.person_id = people.id)",
        "sessions",
    ),
    (
        "SELECT * FROM people WHERE people.facility_id = ? AND people.id IN"
        " (SELECT sessions.person_id FROM sessions)",
        "sessions",
    ),
    ("SELECT * FROM (SELECT * FROM sessions) AS x WHERE x.facility_id = ?", "sessions"),
    (
        "SELECT * FROM facilities WHERE EXISTS (SELECT 1 FROM notices"
        " WHERE notices.facility_id = facilities.id)",
        "notices",
    ),
    # CTEs
    ("WITH every AS (SELECT * FROM sessions) SELECT * FROM every", "sessions"),
    (
        "WITH mine AS (SELECT * FROM sessions WHERE sessions.facility_id = ?)"
        " SELECT * FROM mine JOIN notices ON notices.person_id = mine.person_id",
        "notices",
    ),
    # set operations: one arm free
    (
        "SELECT id FROM sessions WHERE sessions.facility_id = ? UNION SELECT id FROM notices",
        "notices",
    ),
    # INSERT without facility_id, INSERT ... SELECT from everywhere
    ("INSERT INTO sessions (id, person_id) VALUES (?, ?)", "sessions"),
    ("INSERT INTO sessions (facility_id, id) SELECT facility_id, id FROM notices", "notices"),
    (
        "INSERT INTO appeals (id, facility_id) VALUES ((SELECT max(id) + 1 FROM appeals), ?)",
        "appeals",
    ),
    ("UPDATE notices SET title=? WHERE (notices.person_id, notices.id) IN ((?, ?))", "notices"),
    # UPDATE and DELETE by id alone
    ("UPDATE sessions SET minutes=? WHERE sessions.id = ?", "sessions"),
    ("DELETE FROM notices WHERE notices.id = ?", "notices"),
    ("DELETE FROM notices", "notices"),
    ("UPDATE sessions SET minutes=? WHERE sessions.facility_id = ? OR sessions.id = ?", "sessions"),
]

POSTGRES_ROUTED = [
    "SELECT sessions.id FROM sessions WHERE sessions.facility_id = %(facility_id_1)s::VARCHAR"
    " AND sessions.hold_id = %(hold_id_1)s::VARCHAR FOR UPDATE",
    "SELECT * FROM sessions WHERE sessions.facility_id = ANY (%(ids)s)",
    "SELECT * FROM sessions WHERE sessions.facility_id IN (%(f_1_1)s::VARCHAR, %(f_1_2)s::VARCHAR)",
    "INSERT INTO sessions (id, facility_id) VALUES (nextval('sessions_id_seq'), %(f)s)"
    " ON CONFLICT (facility_id, id) DO UPDATE SET minutes = excluded.minutes RETURNING sessions.id",
    "UPDATE sessions SET minutes=%(m)s FROM people WHERE sessions.facility_id = %(f)s"
    " AND people.facility_id = sessions.facility_id AND people.id = sessions.person_id",
    "DELETE FROM notices USING people WHERE people.facility_id = %(f)s"
    " AND notices.facility_id = people.facility_id",
    "WITH added AS (INSERT INTO notices (id, facility_id) VALUES (1, %(f)s) RETURNING id)"
    " SELECT id FROM added",
    "select pg_catalog.version()",
    "SELECT pg_advisory_xact_lock(%(key)s)",
    "show standard_conforming_strings",
]

POSTGRES_UNROUTED = [
    (
        "UPDATE sessions SET minutes=%(m)s FROM people WHERE sessions.facility_id = %(f)s"
        " AND people.id = sessions.person_id",
        "people",
    ),
    ("DELETE FROM notices USING people WHERE people.facility_id = %(f)s", "notices"),
    ("TRUNCATE sessions", "sessions"),
    (
        "WITH gone AS (DELETE FROM notices WHERE notices.id = %(id)s RETURNING id) SELECT 1",
        "notices",
    ),
]


@pytest.mark.parametrize("statement", ROUTED)
def test_a_statement_pinned_to_facilities_routes(statement: str) -> None:
    verdict = check_statement(statement, "sqlite", TABLES)
    assert verdict.routes, verdict.reason


@pytest.mark.parametrize(("statement", "table"), UNROUTED)
def test_a_statement_that_may_reach_every_facility_is_refused(statement: str, table: str) -> None:
    verdict = check_statement(statement, "sqlite", TABLES)
    assert table in verdict.unrouted
    assert table in verdict.reason


@pytest.mark.parametrize("statement", POSTGRES_ROUTED)
def test_postgresql_statements_pinned_to_facilities_route(statement: str) -> None:
    verdict = check_statement(statement, "postgresql", TABLES)
    assert verdict.routes, verdict.reason


@pytest.mark.parametrize(("statement", "table"), POSTGRES_UNROUTED)
def test_postgresql_statements_that_may_reach_every_facility_are_refused(
    statement: str, table: str
) -> None:
    assert table in check_statement(statement, "postgresql", TABLES).unrouted


def test_only_the_unconstrained_tables_are_named() -> None:
    verdict = check_statement(
        "SELECT * FROM sessions JOIN people ON people.id = sessions.person_id"
        " JOIN notices ON notices.person_id = people.id WHERE sessions.facility_id = ?",
        "sqlite",
        TABLES,
    )
    assert verdict.unrouted == ("people", "notices")


def test_an_unparsable_statement_routes_only_if_it_names_no_facility_table() -> None:
    assert check_statement("SELECT FROM WHERE ((", "sqlite", TABLES).routes
    verdict = check_statement("SELECT FROM sessions WHERE ((", "sqlite", TABLES)
    assert verdict.unrouted == ("sessions",)
    assert "could not be parsed" in verdict.reason


def test_facility_tables_are_the_distributed_ones() -> None:
    tables = facility_tables()
    assert {"sessions", "notices", "audit_events", "audit_heads", "people"} <= tables
    assert not tables & {"facilities", "subjects", "subject_bindings", "api_tokens"}


def test_a_cross_facility_operation_is_declared_with_its_reason() -> None:
    assert declared_operation() is None
    name = next(iter(CROSS_FACILITY))
    with cross_facility(name):
        assert declared_operation() == name
    assert declared_operation() is None
    unknown = cross_facility("a sweep nobody declared")
    with pytest.raises(KeyError, match="not a declared cross-facility operation"):
        unknown.__enter__()
    assert all(reason.strip() for reason in CROSS_FACILITY.values())
