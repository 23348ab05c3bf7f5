"""Statements over many rows at once, for work in bulk (an import's batch).

A list of ids goes to the server as one parameter (an array on PostgreSQL,
``= ANY(...)``; a JSON array read by ``json_each`` on SQLite), not as one
parameter per id: a batch names thousands of people, and an ``IN`` list
that long costs more to render, send and plan than to run, and runs into
the drivers' limits on parameters. On PostgreSQL it is also a plain index
condition, so the plan stays good when the tables' statistics are stale,
as they are while a first import fills them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    JSON,
    Dialect,
    String,
    Table,
    TextClause,
    any_,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType

from kinline.db.raw import array


def among(
    session: Session,
    column: ColumnElement[Any] | InstrumentedAttribute[Any],
    values: Iterable[str],
) -> ColumnElement[bool]:
    """``column`` is one of ``values``, sent as one parameter."""
    ids = sorted(values)
    if session.get_bind().dialect.name == "postgresql":
        # Sent as the array's text, untyped, so the cast types the parameter
        # itself and a custom plan sees a constant array (hashed, or an index
        # condition); psycopg's own array dumper walks the list in Python, some
        # 1 µs an id. Typed as text, the cast would be a function of it, run per
        # row: 10,000 ids took past the statement timeout.
        written = bindparam(None, array(ids), type_=NullType())
        return column == any_(cast(written, ARRAY(String)))
    members = func.json_each(literal(json.dumps(ids), String)).table_valued("value")
    return column.in_(select(members.c.value))


def plan_with_values(session: Session) -> None:
    """Until the transaction ends, plan every query for its parameters' values.

    psycopg prepares a statement it has run five times, and PostgreSQL then
    plans it once for any values: ``id = ANY($1)`` over thousands of ids
    becomes a filter that walks the whole array for each row, and a batch's
    lookups went from milliseconds to a second each. Planned for the values,
    the array is hashed or used as an index condition.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def write_rows(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict: Sequence[str] = (),
    update: Sequence[str] = (),
    latest: Sequence[str] = (),
) -> None:
    """Insert ``rows`` in one statement; on a ``conflict`` of keys, add the new
    values of the ``update`` columns to the stored ones and keep the later of
    the ``latest`` columns.

    On PostgreSQL plain inserts go by ``COPY``, and upserts as one JSON
    document into ``INSERT ... SELECT FROM json_to_recordset(...) ON
    CONFLICT``: one statement and one round trip however many rows. An
    ``executemany``, even pipelined, sends each row on its own and managed
    some 13,000 sessions/s here by itself, and a whole import has to reach
    10,000 rows/s; ``COPY`` takes 10,000 sessions in about a tenth of a
    second. Elsewhere (SQLite, in process), one ``executemany`` of the Core
    insert.
    """
    if not rows:
        return
    names = list(rows[0])
    if session.get_bind().dialect.name == "postgresql":
        if not conflict:
            _copy(session, table, names, rows)
            return
        dialect = session.get_bind().dialect
        shape = (tuple(names), tuple(conflict), tuple(update), tuple(latest))
        document = json.dumps(rows, separators=(",", ":"), default=_json_instant)
        session.execute(_recordset_insert(dialect, table, *shape), {"rows": document})
        return
    insert_ = sqlite.insert(table)
    if conflict:
        excluded = insert_.excluded
        changes: dict[str, Any] = {name: table.c[name] + excluded[name] for name in update}
        for name in latest:
            later = excluded[name] > table.c[name]
            changes[name] = case((later, excluded[name]), else_=table.c[name])
        session.execute(
            insert_.on_conflict_do_update(index_elements=list(conflict), set_=changes), list(rows)
        )
    else:
        session.execute(insert(table), list(rows))


def _copy(
    session: Session, table: Table, names: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    """``COPY table (names) FROM STDIN`` on the session's own connection, so in its
    transaction; JSON columns go as their text."""
    json_columns = {name for name in names if isinstance(table.c[name].type, JSON)}
    # Rows often share one value object (a decision); each is serialised once.
    texts: dict[int, str] = {}

    def as_text(value: object) -> str:
        text_ = texts.get(id(value))
        if text_ is None:
            text_ = texts[id(value)] = json.dumps(value)
        return text_

    driver = session.connection().connection.driver_connection
    assert driver is not None
    values = itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)
    positions = [index for index, name in enumerate(names) if name in json_columns]
    # Every name comes from the table's metadata; the rows are data, never SQL.
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            line = list(values(row))
            for index in positions:
                line[index] = as_text(line[index])
            copy.write_row(line)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_field(value: str | None) -> str:
    """A text value as a field of ``COPY ... FROM STDIN`` (text format); None is NULL."""
    if value is None:
        return "\\N"
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def copy_lines(session: Session, table: Table, names: Sequence[str], lines: Iterable[str]) -> None:
    """``COPY table (names) FROM STDIN`` of rows already written as COPY's text
    lines (fields made by ``copy_field``, tab-separated, each line ending in a
    newline), on the session's own connection, so in its transaction. PostgreSQL
    only. Formatting a row's fields in one f-string costs a fraction of
    ``write_row``'s type dispatch per value."""
    driver = session.connection().connection.driver_connection
    assert driver is not None
    unknown = [name for name in names if name not in table.c]
    if unknown:  # every name must be the table's: names are SQL, the rows data
        raise KeyError(f"{table.name} has no columns {unknown}")
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) == 4096:
                copy.write("".join(chunk))
                chunk = []
        if chunk:
            copy.write("".join(chunk))


def _json_instant(value: object) -> str:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat()
    raise TypeError(f"{value!r} cannot be sent as JSON")


@functools.cache
def _recordset_insert(
    dialect: Dialect,
    table: Table,
    names: tuple[str, ...],
    conflict: tuple[str, ...],
    update: tuple[str, ...],
    latest: tuple[str, ...],
) -> TextClause:
    """``INSERT INTO table (names) SELECT names FROM json_to_recordset(:rows)``."""
    # Every name comes from the table's metadata; the rows are one bound parameter.
    columns = ", ".join(names)
    shape = ", ".join(f"{name} {table.c[name].type.compile(dialect=dialect)}" for name in names)
    sql = (
        f"INSERT INTO {table.name} ({columns}) SELECT {columns}"  # noqa: S608
        f" FROM json_to_recordset(CAST(:rows AS json)) AS rows({shape})"
    )
    if conflict:
        changes = [f"{name} = {table.name}.{name} + excluded.{name}" for name in update]
        changes += [f"{name} = GREATEST({table.name}.{name}, excluded.{name})" for name in latest]
        sql += f" ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {', '.join(changes)}"
    return text(sql)
