"""Integer ids of distributed tables: made by the database, unique in the whole
database though the primary key is ``(facility_id, id)``.

A distributed table's primary key must hold ``facility_id`` (sharding.py), and
SQLite autoincrements only a one-column integer primary key (SQLAlchemy
refuses to compile ``autoincrement`` on a composite one). So ``id`` is a plain
integer whose default is a SQL expression, compiled per dialect:

- PostgreSQL: ``nextval('<table>_id_seq')``, the sequence each table's SERIAL
  column has had since it was created (declared on the metadata too, so a
  schema built from the models has it). Citus keeps a distributed table's
  sequence on the coordinator, so ids stay unique across shards.
- SQLite: ``(SELECT coalesce(max(rowid), 0) + 1 FROM <table>)``. The table
  keeps its hidden rowid, which SQLite sets to the same ``max(rowid) + 1`` for
  the row being inserted, so ``rowid = id`` and the lookup is the rowid
  b-tree's last entry (O(1)); writers are serialised by the database lock, so
  two inserts never read the same maximum. Migration 0015 sets the rowid of
  every existing row to its id, which keeps that true for old rows.

The expression is evaluated once per INSERT statement: on SQLite, a single
INSERT of several rows (``insertmanyvalues``, an unordered executemany with
RETURNING) would give them all one id. SQLAlchemy sends such a batch row by
row when the RETURNING is ``sort_by_parameter_order=True`` (as the ORM's
flush asks), and a plain executemany row by row anyway; an unordered
executemany with RETURNING on these tables is refused when it is compiled
(``CompileError``) rather than left to write rows that share an id.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, MetaData, Sequence
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal


class NextId(ColumnElement[int]):
    """The next id of ``table``, as the database makes it."""

    inherit_cache = True
    # What the statement cache keys on: two tables' ids are two statements.
    _traverse_internals: list[tuple[str, InternalTraversal]] = [  # noqa: RUF012
        ("table", InternalTraversal.dp_string)
    ]
    type = BigInteger()

    def __init__(self, table: str) -> None:
        self.table = table


def sequence_name(table: str) -> str:
    """The sequence of ``table``'s ids on PostgreSQL (SERIAL's own name)."""
    return f"{table}_id_seq"


@compiles(NextId, "postgresql")
def _next_id_postgresql(element: NextId, compiler: SQLCompiler, **kw: Any) -> str:
    return f"nextval('{sequence_name(element.table)}')"


@compiles(NextId)
def _next_id_sqlite(element: NextId, compiler: SQLCompiler, **kw: Any) -> str:
    statement = compiler.statement
    returning: tuple[object, ...] = getattr(statement, "_returning", ())
    ordered: bool = getattr(statement, "_sort_by_parameter_order", False)
    if compiler.for_executemany and returning and not ordered:
        raise CompileError(
            f"an INSERT of many {element.table} rows with RETURNING needs"
            " sort_by_parameter_order=True: in one statement they would share one id"
        )
    # Table names come from the models, never from data.
    return f"(SELECT coalesce(max(rowid), 0) + 1 FROM {element.table})"  # noqa: S608


def next_id(table: str, metadata: MetaData) -> NextId:
    """The default of ``table``'s ``id``; declares its sequence on ``metadata``
    (created with the schema on PostgreSQL, ignored by SQLite)."""
    Sequence(sequence_name(table), metadata=metadata)
    return NextId(table)
