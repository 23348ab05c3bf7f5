"""Statements run on psycopg's own connection, under the session's transaction,
without SQLAlchemy's execution context: the call path's rounds (PostgreSQL).

A round of set-ups and ends runs five to seven statements however many
requests it holds; at half the evening peak a round holds one or two, and its
cost is then the fixed cost of each statement. A profile of a worker there
(``docs/call-path-speed.md``) put a sixth of its time in SQLAlchemy setting up
and tearing down each execution (the context, the result, the type
processors) and a tenth in psycopg's array dumper walking each list. A
``Raw`` statement is compiled once, at import, to psycopg's SQL; it is sent
with ``prepare=True`` (parsed and planned once per connection) on the
session's connection, inside its transaction, and its rows come back as
psycopg makes them. Lists go as one array literal each (``array``), untyped,
cast by the statement.

What this leaves out, on purpose: the ORM's autoflush (``core`` flushes before
each statement, as an ORM query would), SQLAlchemy's type processors (the
statements here read text, integers, JSON, and instants, which psycopg returns
timezone-aware in UTC, the sessions' time zone, as ``UTCDateTime`` would), and
the engine's ``before_cursor_execute`` hooks: every ``Raw`` statement is listed
in ``STATEMENTS``, and the suite checks each for routing by facility
(``tests/integration/test_raw_statements.py``) as the hook checks the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar, cast

import psycopg
from psycopg import Connection as Driver
from psycopg.rows import RowFactory, dict_row, tuple_row
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from kinline.db.engine import core

_DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]

Row = TypeVar("Row")
STATEMENTS: list[Raw] = []
"""Every ``Raw`` statement made, in the order made."""
WATCHERS: list[Callable[[str, Mapping[str, Any]], None]] = []
"""Called with each statement's SQL and parameters before it is sent (what
SQLAlchemy's ``before_cursor_execute`` is to the others; ``bench/_statements.py``
writes them down to EXPLAIN them)."""


class Raw:
    """One statement, compiled once to psycopg's SQL (``%(name)s`` parameters)."""

    __slots__ = ("constants", "name", "sql")

    def __init__(self, name: str, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        assert isinstance(compiled, SQLCompiler)
        if "POSTCOMPILE" in compiled.string:  # an expanding IN: not sent as one array
            raise TypeError(f"{name}: an expanding parameter")
        self.name = name
        self.sql = compiled.string
        # The values the statement carries itself (literals SQLAlchemy binds,
        # None among them); the rest are the caller's to give.
        self.constants = {
            name: bind.effective_value
            for bind, name in compiled.bind_names.items()
            if not bind.required
        }
        STATEMENTS.append(self)

    def _params(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**self.constants, **params} if self.constants else params

    def rows(self, session: Session, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The statement's rows, as tuples in its columns' order."""
        return self._fetched(session, params, tuple_row)

    def mappings(self, session: Session, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The statement's rows, each as a dict by column name."""
        return self._fetched(session, params, dict_row)

    def run(self, session: Session, params: Mapping[str, Any]) -> None:
        """Run the statement, for what it writes."""
        self._fetched(session, params, tuple_row)

    def _fetched(
        self, session: Session, params: Mapping[str, Any], rows: RowFactory[Row]
    ) -> list[Row]:
        connection = core(session)  # the session's transaction, begun if it was not
        driver = connection.connection.driver_connection
        assert isinstance(driver, Driver)
        values = self._params(params)
        for watcher in WATCHERS:
            watcher(self.sql, values)
        try:
            cursor = driver.cursor(row_factory=rows)
            cursor.execute(self.sql, values, prepare=True)
            return cursor.fetchall() if cursor.description is not None else []
        except psycopg.Error as error:
            raise _translated(connection, self.sql, values, error) from error


def _translated(
    connection: Connection, sql: str, params: Mapping[str, Any], error: psycopg.Error
) -> DBAPIError:
    """``error`` as SQLAlchemy raises a driver's (``OperationalError`` for a
    timeout or a deadlock, ``IntegrityError``, ...), so callers handle one kind;
    a connection the server dropped is invalidated, as SQLAlchemy does, so the
    pool does not hand it out again."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(cast(Any, error), connection.connection.dbapi_connection, None)
    if lost:
        connection.invalidate(error)
    made = DBAPIError.instance(
        sql,
        params,
        error,
        psycopg.Error,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=dialect,
    )
    assert isinstance(made, DBAPIError)  # a driver's error always makes one
    return made


def array(values: Iterable[object]) -> str:
    """``values`` as a PostgreSQL array literal (``{"a",NULL,"3"}``): each as its
    text (an instant in ISO 8601), None as NULL. Sent untyped, the statement's
    cast types it: ``CAST(%(ids)s AS bigint[])``."""
    parts = []
    for value in values:
        if value is None:
            parts.append("NULL")
            continue
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("a naive datetime in an array of instants")
            text = value.isoformat()
        else:
            text = str(value)
        if "\\" in text or '"' in text:
            text = text.replace("\\", "\\\\").replace('"', '\\"')
        parts.append(f'"{text}"')
    return "{" + ",".join(parts) + "}"
