"""shard-ready keys: facility_id in every primary, unique and foreign key

Citus distributes a table by a column only if its primary key and each unique
constraint hold that column, and a foreign key between two distributed tables
only if it joins them on it. This revision makes every table that holds a
facility's data fit (kinline.db.sharding lists the reference tables, which
are not distributed):

- the 18 tables with an integer ``id`` get the primary key ``(facility_id,
  id)``, and ``audit_heads`` ``(facility_id, chain)``;
- ``uq_sessions_hold_id``, ``uq_notice_deliveries_target`` and
  ``uq_audit_events_chain_seq`` gain ``facility_id`` in front;
- the foreign keys of visit bookings to their slot, of a booking's visitors
  to their booking and of visitor restrictions to their visitor join on
  ``(facility_id, id)``.

- every id the database makes, and each column that names one, becomes a
  64-bit integer (its PostgreSQL sequence too): a national operator's
  sessions and audit events would outrun 2**31 within months, and Citus
  lets each node draw from a bigint sequence by itself, where an integer
  one is drawn only on the coordinator.

No row moves and no value changes; every id keeps its value.

Ids. SQLite autoincrements only a one-column integer primary key, so ``id``
is now a plain integer whose value the database makes (kinline.db.ids): on
PostgreSQL from the SERIAL sequence each table has had since it was made
(unchanged here: its column default still calls it, so COPY without ids
still works), on SQLite ``max(rowid) + 1``, the same number SQLite gives the
new row's hidden rowid. Recreating an SQLite table numbers its rowids afresh,
so the rowid of every copied row is set back to its id here; ``max(rowid)``
is then the largest id, found in O(1). Ids stay unique in the whole database,
not only within a facility: the API names sessions, notices, appeals and
bookings by id alone. Two alternatives were weighed and left: ids unique per
facility only (a counter table per facility) would make every id in every
URL ambiguous without its facility; UUIDs would change every id column's
type and every stored reference (appeals name notices and sessions, bookings
name sessions) for no gain a sequence does not already give.

PostgreSQL: the constraints are dropped and added in dependency order (the
foreign keys onto a changing primary key first, added back last). SQLite
cannot alter a constraint: each table is recreated (alembic's batch mode)
from its own reflected shape with the new keys, and the foreign keys of the
recreated tables are checked before the transaction commits.

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-02 17:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SERIAL_TABLES = (
    "adverse_actions",
    "appeal_steps",
    "appeals",
    "approvals",
    "audit_events",
    "delivery_attempts",
    "non_associations",
    "notice_deliveries",
    "notices",
    "print_batches",
    "sessions",
    "usage_entries",
    "visit_blocks",
    "visit_bookings",
    "visit_requests",
    "visit_slots",
    "visitor_restrictions",
    "visitors",
)

# table: (primary key before, after)
PRIMARY_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    **dict.fromkeys(SERIAL_TABLES, (("id",), ("facility_id", "id"))),
    "audit_heads": (("chain",), ("facility_id", "chain")),
}


class Unique(NamedTuple):
    table: str
    name: str
    before: tuple[str, ...]
    after: tuple[str, ...]


UNIQUES = (
    Unique("sessions", "uq_sessions_hold_id", ("hold_id",), ("facility_id", "hold_id")),
    Unique(
        "notice_deliveries",
        "uq_notice_deliveries_target",
        ("notice_id", "channel", "recipient"),
        ("facility_id", "notice_id", "channel", "recipient"),
    ),
    Unique(
        "audit_events",
        "uq_audit_events_chain_seq",
        ("chain", "seq"),
        ("facility_id", "chain", "seq"),
    ),
)


class ForeignKey(NamedTuple):
    table: str
    column: str
    referred: str

    @property
    def old_name(self) -> str:
        return f"fk_{self.table}_{self.column}_{self.referred}"

    @property
    def new_name(self) -> str:
        return f"fk_{self.table}_facility_id_{self.referred}"


# Ids the database makes, and the columns that name them, become 64-bit.
WIDENED: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(SERIAL_TABLES, ("id",)),
    "notice_deliveries": ("id", "notice_id", "batch_id"),
    "delivery_attempts": ("id", "delivery_id"),
    "appeals": ("id", "notice_id", "session_id"),
    "appeal_steps": ("id", "appeal_id"),
    "visitor_restrictions": ("id", "visitor_id"),
    "visit_bookings": ("id", "slot_id", "session_id", "rescheduled_from"),
    "visit_booking_visitors": ("booking_id",),
    "visit_requests": ("id", "booking_id"),
    "notice_issues": ("notice_id",),
}

FOREIGN_KEYS = (
    ForeignKey("visit_bookings", "slot_id", "visit_slots"),
    ForeignKey("visit_booking_visitors", "booking_id", "visit_bookings"),
    ForeignKey("visitor_restrictions", "visitor_id", "visitors"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _recreate_all(forward=True)
    else:
        _alter_all(forward=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _recreate_all(forward=False)
    else:
        _alter_all(forward=False)


def _alter_all(*, forward: bool) -> None:
    """PostgreSQL: drop the constraints and add them in their other shape."""
    for fk in FOREIGN_KEYS:
        op.drop_constraint(fk.old_name if forward else fk.new_name, fk.table, type_="foreignkey")
    width = "bigint" if forward else "integer"
    for table, columns in WIDENED.items():
        for column in columns:
            op.alter_column(
                table,
                column,
                type_=sa.BigInteger() if forward else sa.Integer(),
                existing_type=sa.Integer() if forward else sa.BigInteger(),
            )
        if table in SERIAL_TABLES:
            op.execute(f"ALTER SEQUENCE {table}_id_seq AS {width}")
    for table, (before, after) in PRIMARY_KEYS.items():
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, list(after if forward else before))
    for unique in UNIQUES:
        op.drop_constraint(unique.name, unique.table, type_="unique")
        columns = unique.after if forward else unique.before
        op.create_unique_constraint(unique.name, unique.table, list(columns))
    for fk in FOREIGN_KEYS:
        if forward:
            mine, theirs = ["facility_id", fk.column], ["facility_id", "id"]
            op.create_foreign_key(fk.new_name, fk.table, fk.referred, mine, theirs)
        else:
            op.create_foreign_key(fk.old_name, fk.table, fk.referred, [fk.column], ["id"])


def _recreate_all(*, forward: bool) -> None:
    """SQLite: each changed table made again with its new keys, rows copied."""
    tables = sorted(
        {
            *PRIMARY_KEYS,
            *WIDENED,
            *(unique.table for unique in UNIQUES),
            *(fk.table for fk in FOREIGN_KEYS),
        }
    )
    connection = op.get_bind()
    for table in tables:
        shape = _reshaped(connection, table, forward=forward)
        with op.batch_alter_table(table, recreate="always", copy_from=shape):
            pass
        if forward and table in SERIAL_TABLES:
            # The copy numbered the rowids 1, 2, ...: give each row its id back
            # (through negatives, so no two rows ever share a rowid).
            op.execute(f"UPDATE {table} SET rowid = -id")  # noqa: S608 (names are ours)
            op.execute(f"UPDATE {table} SET rowid = -rowid")  # noqa: S608
    for table in tables:
        broken = connection.exec_driver_sql(f"PRAGMA foreign_key_check({table})").all()
        if broken:
            raise RuntimeError(f"{table}: rows whose foreign keys point nowhere: {broken[:5]}")


def _reshaped(connection: sa.Connection, table: str, *, forward: bool) -> sa.Table:
    """``table`` as the database has it, with the keys of the other side of
    this revision."""
    inspector = sa.inspect(connection)
    widened = WIDENED.get(table, ())
    width = sa.BigInteger() if forward else sa.Integer()
    columns = [
        sa.Column(
            column["name"],
            width if column["name"] in widened else column["type"],
            nullable=column["nullable"],
            server_default=sa.text(column["default"]) if column["default"] is not None else None,
        )
        for column in inspector.get_columns(table)
    ]
    constraints: list[sa.schema.SchemaItem] = []
    keys = PRIMARY_KEYS.get(table)
    primary = inspector.get_pk_constraint(table)["constrained_columns"]
    if keys is not None:
        primary = list(keys[1] if forward else keys[0])
    constraints.append(sa.PrimaryKeyConstraint(*primary, name=f"pk_{table}"))
    changed = {unique.name: unique for unique in UNIQUES if unique.table == table}
    for found in inspector.get_unique_constraints(table):
        unique_columns = found["column_names"]
        if found["name"] in changed:
            unique = changed[found["name"]]
            unique_columns = list(unique.after if forward else unique.before)
        constraints.append(sa.UniqueConstraint(*unique_columns, name=found["name"]))
    moved = {(fk.column, fk.referred): fk for fk in FOREIGN_KEYS if fk.table == table}
    for found_fk in inspector.get_foreign_keys(table):
        referred = found_fk["referred_table"]
        local = [c for c in found_fk["constrained_columns"] if c != "facility_id"]
        fk = moved.get((local[0], referred)) if len(local) == 1 else None
        if fk is None:
            name, mine, theirs = (
                found_fk["name"],
                found_fk["constrained_columns"],
                found_fk["referred_columns"],
            )
        elif forward:
            name, mine, theirs = fk.new_name, ["facility_id", fk.column], ["facility_id", "id"]
        else:
            name, mine, theirs = fk.old_name, [fk.column], ["id"]
        constraints.append(
            sa.ForeignKeyConstraint(mine, [f"{referred}.{c}" for c in theirs], name=name)
        )
    for check in inspector.get_check_constraints(table):
        constraints.append(sa.CheckConstraint(sa.text(check["sqltext"]), name=check["name"]))
    shape = sa.Table(table, sa.MetaData(), *columns, *constraints)
    for index in inspector.get_indexes(table):
        names = [name for name in index["column_names"] if name is not None]
        sa.Index(index["name"], *(shape.c[name] for name in names), unique=index["unique"])
    return shape
