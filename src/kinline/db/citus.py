"""The statements that shard a migrated kinline database with Citus, in order.

``kinline db citus-plan`` prints them; docs/scaling.md explains them. They are
derived from the models and ``kinline.db.sharding``, so a new table is in the
plan as soon as it is in the schema:

1. ``create_reference_table`` for each reference table, parents first (the
   distributed tables' foreign keys point at them, so they must be reference
   tables before any of those is distributed).
2. ``create_distributed_table(table, 'facility_id')`` for each distributed
   table, ``people`` first and then parents before children; every other table
   is co-located with ``people`` (``colocate_with``), so all of one facility's rows, of every
   table, live in shards of the same index on the same node, and a join or a
   foreign key on ``(facility_id, ...)`` never leaves that node.

``alembic_version`` is a reference table in the catalog sense (no facility's
data) but is left to the coordinator: only migrations read it.
"""

from __future__ import annotations

from sqlalchemy import MetaData

from kinline.db import tables as _tables  # noqa: F401  (the models fill Base.metadata)
from kinline.db.base import Base
from kinline.db.sharding import (
    DISTRIBUTION_COLUMN,
    REFERENCE_TABLES,
    distributed_tables,
)

ANCHOR = "people"
"""The table every other distributed table is co-located with."""

COORDINATOR_ONLY = frozenset({"alembic_version"})
"""Tables left local to the coordinator: read only by migrations."""


def _literal(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def citus_plan(metadata: MetaData = Base.metadata) -> list[str]:
    """The SQL statements, in order, that make a migrated database sharded by
    facility on Citus (run on the coordinator, once, after ``kinline db upgrade``)."""
    statements = ["CREATE EXTENSION IF NOT EXISTS citus;"]
    statements.extend(
        f"SELECT create_reference_table({_literal(table.name)});"
        for table in metadata.sorted_tables
        if table.name in REFERENCE_TABLES and table.name not in COORDINATOR_ONLY
    )
    distributed = distributed_tables(metadata)
    # The person is the unit of the call path's lock and of the audit chains,
    # so the co-location group is named after their table, which goes first
    # (its only foreign key is to a reference table).
    distributed.sort(key=lambda table: table.name != ANCHOR)
    if distributed:
        anchor = distributed[0].name
        for table in distributed:
            colocation = "" if table.name == anchor else f", colocate_with => {_literal(anchor)}"
            statements.append(
                f"SELECT create_distributed_table({_literal(table.name)}, "
                f"{_literal(DISTRIBUTION_COLUMN)}{colocation});"
            )
    return statements
