"""The rules Citus enforces, checked on the catalog of a migrated PostgreSQL.

Citus distributes a table by a column only if its primary key and every
unique constraint (and unique index) hold the column; a foreign key between
two distributed tables must join them on it; a distributed table may point at
a reference table, never a reference table at a distributed one. Every table
is either distributed (it has ``facility_id``) or declared a reference table
in kinline.db.sharding. No Citus server here: the checker reads pg_catalog,
and a scratch schema of bad tables proves it finds each kind of breach.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    insert,
    make_url,
    select,
    text,
)
from sqlalchemy.exc import CompileError
from sqlalchemy.schema import CreateTable

from kinline.db import tables  # noqa: F401  (registers every table on the metadata)
from kinline.db.base import Base
from kinline.db.engine import Database
from kinline.db.ids import NextId, sequence_name
from kinline.db.migrate import alembic_config, upgrade
from kinline.db.sharding import (
    DISTRIBUTION_COLUMN,
    REFERENCE_TABLES,
    distributed_table_names,
    distributed_tables,
)
from kinline.db.tables import UsageEntryRow
from kinline.people.model import Facility
from kinline.people.service import register_facility

T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Catalog:
    """One schema's tables, keys and foreign keys, as PostgreSQL has them."""

    columns: dict[str, set[str]]  # table: its columns
    primary: dict[str, list[str]]  # table: its primary key's columns
    unique: list[tuple[str, str, list[str]]]  # (table, constraint or index, columns)
    foreign: list[tuple[str, str, list[str], str, list[str]]]  # (table, name, cols, to, cols)


def read_catalog(connection: Connection, schema: str) -> Catalog:
    columns: dict[str, set[str]] = {}
    for table, column in connection.execute(
        text(
            "SELECT c.relname, a.attname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
            " WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')"
        ),
        {"schema": schema},
    ):
        columns.setdefault(table, set()).add(column)
    primary: dict[str, list[str]] = {}
    unique: list[tuple[str, str, list[str]]] = []
    # Every unique index: those behind PRIMARY KEY and UNIQUE constraints and
    # those made by CREATE UNIQUE INDEX alike (Citus refuses them all).
    for table, name, is_primary, keys in connection.execute(
        text(
            "SELECT t.relname, i.relname, x.indisprimary,"
            " array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n)"
            "       JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum"
            "       ORDER BY k.n)"
            " FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid"
            " JOIN pg_class i ON i.oid = x.indexrelid"
            " JOIN pg_namespace n ON n.oid = t.relnamespace"
            " WHERE n.nspname = :schema AND x.indisunique"
        ),
        {"schema": schema},
    ):
        if is_primary:
            primary[table] = list(keys)
        else:
            unique.append((table, name, list(keys)))
    foreign = [
        (table, name, list(mine), referred, list(theirs))
        for table, name, mine, referred, theirs in connection.execute(
            text(
                "SELECT t.relname, c.conname,"
                " array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(attnum, n)"
                "       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum"
                "       ORDER BY k.n),"
                " r.relname,"
                " array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(attnum, n)"
                "       JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum"
                "       ORDER BY k.n)"
                " FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid"
                " JOIN pg_class r ON r.oid = c.confrelid"
                " JOIN pg_namespace n ON n.oid = t.relnamespace"
                " WHERE n.nspname = :schema AND c.contype = 'f'"
            ),
            {"schema": schema},
        )
    ]
    return Catalog(columns, primary, unique, foreign)


def breaches(catalog: Catalog, reference: set[str] | frozenset[str]) -> list[str]:
    """What Citus would refuse in ``catalog``, distributing by ``facility_id``
    every table that has it and is not in ``reference``; one line each."""
    column = DISTRIBUTION_COLUMN
    distributed = {table for table, names in catalog.columns.items() if column in names} - set(
        reference
    )
    found: list[str] = []
    for table in sorted(catalog.columns):
        if table not in distributed and table not in reference:
            found.append(f"{table}: no {column} and not declared a reference table")
    for table in sorted(distributed):
        keys = catalog.primary.get(table)
        if keys is None:
            found.append(f"{table}: no primary key")
        elif column not in keys:
            found.append(f"{table}: primary key ({', '.join(keys)}) lacks {column}")
    for table, name, keys in catalog.unique:
        if table in distributed and column not in keys:
            found.append(f"{table}: unique {name} ({', '.join(keys)}) lacks {column}")
    for table, name, mine, referred, theirs in catalog.foreign:
        if table in distributed and referred in distributed:
            pairs = set(zip(mine, theirs, strict=True))
            if (column, column) not in pairs:
                found.append(
                    f"{table}: foreign key {name} to distributed {referred}"
                    f" does not join on {column}"
                )
        elif table not in distributed and referred in distributed:
            found.append(f"{table}: reference table's foreign key {name} to distributed {referred}")
    return found


@pytest.fixture(scope="module")
def migrated(postgres_templates: Any) -> Iterator[Connection]:
    """A connection to a database the migrations built."""
    name = postgres_templates.fresh()
    engine = create_engine(postgres_templates.url_for(name))
    with engine.connect() as connection:
        yield connection
    engine.dispose()
    postgres_templates.drop_later(name)


@pytest.mark.postgres
def test_the_migrated_schema_is_what_citus_distributes(migrated: Connection) -> None:
    catalog = read_catalog(migrated, "public")

    assert breaches(catalog, REFERENCE_TABLES.keys()) == []


@pytest.mark.postgres
def test_every_table_in_the_catalog_is_distributed_or_a_declared_reference(
    migrated: Connection,
) -> None:
    catalog = read_catalog(migrated, "public")
    models = distributed_table_names(Base.metadata)
    with_column = {t for t, names in catalog.columns.items() if DISTRIBUTION_COLUMN in names}

    assert with_column - set(REFERENCE_TABLES) == models
    assert set(catalog.columns) == models | set(REFERENCE_TABLES)
    # api_tokens and subject_bindings carry facility_id as a scope, yet are reference.
    assert {"api_tokens", "subject_bindings"} <= with_column
    assert not {"api_tokens", "subject_bindings"} & models


@pytest.mark.postgres
def test_the_keys_are_facility_first(migrated: Connection) -> None:
    """facility_id leads every distributed primary key, so each key's index
    serves a facility's lookups too."""
    catalog = read_catalog(migrated, "public")

    assert {
        table: keys
        for table, keys in catalog.primary.items()
        if table in distributed_table_names(Base.metadata) and keys[0] != DISTRIBUTION_COLUMN
    } == {}
    assert catalog.primary["sessions"] == ["facility_id", "id"]
    assert catalog.primary["audit_heads"] == ["facility_id", "chain"]


@pytest.mark.postgres
def test_foreign_keys_to_reference_tables_are_allowed(migrated: Connection) -> None:
    catalog = read_catalog(migrated, "public")
    onto_reference = [
        (table, referred)
        for table, _, _, referred, _ in catalog.foreign
        if table in distributed_table_names(Base.metadata) and referred in REFERENCE_TABLES
    ]

    assert ("people", "facilities") in onto_reference
    assert breaches(catalog, REFERENCE_TABLES.keys()) == []


def catalog_of(metadata: MetaData) -> Catalog:
    """The models' own keys, read as the catalog would show them."""
    unique: list[tuple[str, str, list[str]]] = []
    for table in metadata.sorted_tables:
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint):
                unique.append((table.name, str(constraint.name), list(constraint.columns.keys())))
        for index in table.indexes:
            if index.unique:
                unique.append((table.name, str(index.name), [c.name for c in index.columns]))
    return Catalog(
        columns={table.name: set(table.c.keys()) for table in metadata.sorted_tables},
        primary={
            table.name: list(table.primary_key.columns.keys()) for table in metadata.sorted_tables
        },
        unique=unique,
        foreign=[
            (
                table.name,
                str(fk.name),
                list(fk.column_keys),
                fk.referred_table.name,
                [element.column.name for element in fk.elements],
            )
            for table in metadata.sorted_tables
            for fk in table.foreign_key_constraints
        ],
    )


def test_the_models_meet_the_same_rules() -> None:
    """The check without a server: the models, as the migrations must build them."""
    assert breaches(catalog_of(Base.metadata), REFERENCE_TABLES.keys()) == []


def test_the_models_agree_with_the_reference_list() -> None:
    """Every model is distributed or reference; the reference list names no
    table that has gone (but alembic_version, which no model declares)."""
    names = {table.name for table in Base.metadata.sorted_tables}
    distributed = {table.name for table in distributed_tables(Base.metadata)}

    assert names - distributed <= set(REFERENCE_TABLES)
    assert set(REFERENCE_TABLES) - names == {"alembic_version"}
    assert "facilities" not in distributed


SCRATCH = "shard_probe"
BAD_TABLES = """
CREATE TABLE facilities (id text PRIMARY KEY);
CREATE TABLE subjects (id int PRIMARY KEY, person_facility text, person_id int);
CREATE TABLE people (
    facility_id text REFERENCES facilities (id), id int, PRIMARY KEY (facility_id, id)
);
CREATE TABLE orders_by_id (facility_id text, id int PRIMARY KEY);
CREATE TABLE holds (
    facility_id text, id int, hold text UNIQUE, PRIMARY KEY (facility_id, id)
);
CREATE TABLE codes (facility_id text, id int, code text, PRIMARY KEY (facility_id, id));
CREATE UNIQUE INDEX ix_codes_code ON codes (code);
CREATE TABLE slots (facility_id text, id int, PRIMARY KEY (facility_id, id), UNIQUE (id));
CREATE TABLE bookings (
    facility_id text, id int, slot_id int REFERENCES slots (id),
    PRIMARY KEY (facility_id, id)
);
CREATE TABLE crossed (
    facility_id text, other_facility text, person_id int,
    FOREIGN KEY (other_facility, person_id) REFERENCES people (facility_id, id)
);
CREATE TABLE no_key (facility_id text, note text);
CREATE TABLE orphan (note text);
ALTER TABLE subjects ADD FOREIGN KEY (person_facility, person_id)
    REFERENCES people (facility_id, id);
"""


@pytest.fixture
def scratch(migrated: Connection) -> Iterator[Connection]:
    """A schema of tables that break each rule, dropped when the test ends."""
    migrated.execute(text(f"CREATE SCHEMA {SCRATCH}"))
    migrated.execute(text(f"SET search_path TO {SCRATCH}"))
    try:
        for statement in BAD_TABLES.split(";"):
            if statement.strip():
                migrated.execute(text(statement))
        yield migrated
    finally:
        migrated.rollback()


@pytest.mark.postgres
def test_the_checker_reports_every_kind_of_breach(scratch: Connection) -> None:
    found = breaches(read_catalog(scratch, SCRATCH), {"facilities", "subjects"})

    assert sorted(found) == sorted(
        [
            "orphan: no facility_id and not declared a reference table",
            "orders_by_id: primary key (id) lacks facility_id",
            "no_key: no primary key",
            "holds: unique holds_hold_key (hold) lacks facility_id",
            "codes: unique ix_codes_code (code) lacks facility_id",
            "slots: unique slots_id_key (id) lacks facility_id",
            "bookings: foreign key bookings_slot_id_fkey to distributed slots"
            " does not join on facility_id",
            "crossed: no primary key",
            "crossed: foreign key crossed_other_facility_person_id_fkey to distributed people"
            " does not join on facility_id",
            "subjects: reference table's foreign key subjects_person_facility_person_id_fkey"
            " to distributed people",
        ]
    )


@pytest.mark.postgres
def test_the_checker_passes_a_conforming_schema(scratch: Connection) -> None:
    scratch.execute(text("DROP TABLE orders_by_id, holds, codes, bookings, slots, crossed"))
    scratch.execute(text("DROP TABLE no_key, orphan"))
    scratch.execute(
        text("ALTER TABLE subjects DROP CONSTRAINT subjects_person_facility_person_id_fkey")
    )

    assert breaches(read_catalog(scratch, SCRATCH), {"facilities", "subjects"}) == []


@pytest.mark.postgres
def test_a_new_model_table_that_breaks_a_rule_fails_the_check(scratch: Connection) -> None:
    """A table added as kinline adds its tables (to the models, then the schema)
    without facility_id in its key is reported by the same check as the catalog's."""
    metadata = MetaData(schema=SCRATCH)
    new = Table(
        "call_notes",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("facility_id", String(64), nullable=False),
    )
    scratch.execute(CreateTable(new))

    found = breaches(read_catalog(scratch, SCRATCH), {"facilities", "subjects"})

    assert "call_notes: primary key (id) lacks facility_id" in found


def before_0015() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    revision = script.get_revision("0015")
    assert revision is not None and isinstance(revision.down_revision, str)
    return revision.down_revision


@pytest.fixture
def before_keys(postgres_templates: Any) -> Iterator[Connection]:
    """A database migrated to the revision before 0015."""
    server = make_url(postgres_templates.url_for("postgres"))
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"kinline_shard_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(server.set(database=name))
    try:
        upgrade(postgres_templates.url_for(name), before_0015())
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
def test_before_migration_0015_the_checker_finds_every_key_it_changed(
    before_keys: Connection,
) -> None:
    """The schema as it was: each key 0015 changes is reported, and nothing else."""
    found = breaches(read_catalog(before_keys, "public"), REFERENCE_TABLES.keys())

    serial = [
        "adverse_actions", "appeal_steps", "appeals", "approvals", "audit_events",
        "delivery_attempts", "non_associations", "notice_deliveries", "notices",
        "print_batches", "sessions", "usage_entries", "visit_blocks", "visit_bookings",
        "visit_requests", "visit_slots", "visitor_restrictions", "visitors",
    ]  # fmt: skip
    old_fk = "foreign key fk_{0}_{1}_{2} to distributed {2} does not join on facility_id"
    assert sorted(found) == sorted(
        [f"{table}: primary key (id) lacks facility_id" for table in serial]
        + [
            "audit_heads: primary key (chain) lacks facility_id",
            "audit_events: unique uq_audit_events_chain_seq (chain, seq) lacks facility_id",
            "sessions: unique uq_sessions_hold_id (hold_id) lacks facility_id",
            "notice_deliveries: unique uq_notice_deliveries_target"
            " (notice_id, channel, recipient) lacks facility_id",
            "visit_bookings: " + old_fk.format("visit_bookings", "slot_id", "visit_slots"),
            "visit_booking_visitors: "
            + old_fk.format("visit_booking_visitors", "booking_id", "visit_bookings"),
            "visitor_restrictions: "
            + old_fk.format("visitor_restrictions", "visitor_id", "visitors"),
        ]
    )


def test_ids_are_fresh_for_each_row_however_rows_are_inserted(db: Database) -> None:
    """One statement of many rows, ordered RETURNING, the ORM's flush: each row
    its own id, unique across facilities. On SQLite an unordered RETURNING of
    many rows would share one id, and is refused."""
    register_facility(db, Facility("north", "North", "UTC"), at=T0, actor="test")
    register_facility(db, Facility("south", "South", "UTC"), at=T0, actor="test")

    def entries() -> list[dict[str, object]]:
        return [
            {"facility_id": f, "person_id": "p", "rule_id": "r", "started_at": T0, "minutes": 1}
            for f in ("north", "south", "north")
        ]

    entry = UsageEntryRow
    with db.transaction() as session:
        ordered = insert(entry).returning(entry.id, sort_by_parameter_order=True)
        returned = list(session.execute(ordered, entries()).scalars())
        session.execute(insert(entry), entries())
        session.add_all([entry(**values) for values in entries()])
        session.flush()
        ids = list(
            session.scalars(select(entry.id).where(entry.facility_id.in_(["north", "south"])))
        )
    assert len(set(returned)) == 3
    assert sorted(ids) == list(range(min(ids), min(ids) + 9))
    with db.transaction() as session:
        unordered = insert(entry).returning(entry.id)
        if db.dialect == "sqlite":
            with pytest.raises(CompileError, match="sort_by_parameter_order"):
                session.execute(unordered, entries())
        else:
            assert len(set(session.execute(unordered, entries()).scalars())) == 3


@pytest.mark.postgres
def test_every_id_the_database_makes_has_its_sequence(migrated: Connection) -> None:
    """A distributed table whose id is ``_serial_id`` draws it from
    ``<table>_id_seq``: the migrations must have made each one."""
    made = {
        table.name
        for table in Base.metadata.sorted_tables
        if "id" in table.c
        and table.c.id.default is not None
        and isinstance(getattr(table.c.id.default, "arg", None), NextId)
    }
    sequences = dict(
        migrated.execute(text("SELECT sequencename, data_type::text FROM pg_sequences")).all()
    )
    widths = dict(
        migrated.execute(
            text(
                "SELECT table_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'public' AND column_name = 'id'"
            )
        ).all()
    )

    assert len(made) == 18
    # 64-bit, sequence and column: 2**31 sessions or audit events come within months.
    assert {sequence_name(table): sequences.get(sequence_name(table)) for table in made} == {
        sequence_name(table): "bigint" for table in made
    }
    assert {table: widths[table] for table in made} == dict.fromkeys(made, "bigint")
