"""Which tables shard by facility and which are copied to every node.

kinline runs on one database or on PostgreSQL sharded by facility with Citus.
Every table that holds a facility's data is *distributed* on ``facility_id``:
its primary key, each unique key and each foreign key to another distributed
table include ``facility_id``, so a row, its neighbours and the statements
that touch them live on one shard. The tables below hold no facility's data
(or data that spans facilities) and are *reference* tables: one copy on every
node, so any shard may join them and point foreign keys at them.

A new table with a ``facility_id`` column is distributed unless it is listed
here; a new table without one must be listed here (the catalog test,
tests/integration/test_shard_keys.py, fails otherwise).
"""

from __future__ import annotations

from sqlalchemy import MetaData, Table

DISTRIBUTION_COLUMN = "facility_id"

REFERENCE_TABLES: dict[str, str] = {
    "facilities": "the facilities themselves: every distributed table points at them",
    "subjects": "identity spans facilities: one staff member, lawyer or relative "
    "may act at several facilities with one sign-in",
    "subject_bindings": "what a subject may touch at which facility; its facility_id "
    "is a scope of the grant, not ownership, and signing in reads all of a subject's "
    "bindings at once, before any facility is known",
    "api_tokens": "a token belongs to a subject and is found by its hash before any "
    "facility is known; its optional facility_id narrows its scope",
    "web_sessions": "a signed-in subject's session, found by its cookie before any "
    "facility is known",
    "password_resets": "a subject's password reset, found by its token's hash",
    "alembic_version": "the schema's revision, one row for the whole database",
}


def is_reference(name: str) -> bool:
    """``name`` is a reference table (copied to every node)."""
    return name in REFERENCE_TABLES


def distributed_tables(metadata: MetaData) -> list[Table]:
    """Every table of ``metadata`` distributed by facility: those with a
    ``facility_id`` column that are not reference tables, in dependency order
    (a table after those its foreign keys point at)."""
    return [
        table
        for table in metadata.sorted_tables
        if DISTRIBUTION_COLUMN in table.c and not is_reference(table.name)
    ]


def distributed_table_names(metadata: MetaData) -> frozenset[str]:
    """The names of ``distributed_tables(metadata)``."""
    return frozenset(table.name for table in distributed_tables(metadata))
