"""Migration 0015 (shard-ready keys) on a filled database, SQLite and PostgreSQL.

The database is migrated to the revision before 0015 and filled through
kinline's own services: the demo (visits, a court order), every scenario of
../shared/scenarios and tests/scenarios, and an import of vendor call
records. Every table's rows are counted and summed up (a digest of their
contents), the database is upgraded, and each table must hold the same rows,
every id unchanged; then new work gets fresh ids, above every old one.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from _databases import SHARED
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, create_engine, inspect, make_url, select, text

from kinline.appeals.service import file_appeal
from kinline.calls.importer import import_calls
from kinline.changes.service import impose_rule
from kinline.changes.visitors import decide_visitor, restrict_visitor
from kinline.db.base import Base
from kinline.db.engine import Database
from kinline.db.ids import NextId
from kinline.db.migrate import alembic_config, upgrade
from kinline.demo.load import load_demo
from kinline.identity.service import create_token
from kinline.notices.delivery.service import make_print_batches
from kinline.notices.service import list_notices
from kinline.people.model import Facility, Person
from kinline.people.service import add_contact, admit_person, register_facility
from kinline.rules.model import Channel, Contact
from kinline.scenario import load_into
from kinline.visits import booking, requests, sessions, upkeep, visitors
from kinline.visits.model import RestrictionKind, Verdict
from kinline.visits.requests import Preferred
from kinline.visits.visitors import Application

OURS = Path(__file__).resolve().parents[1] / "scenarios"
T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
ACTOR = "test"
# Held back until after the upgrade: new work on the migrated database.
LATER = OURS / "person-all-quotas-and-notices.yaml"
# The tables whose ids the database makes, from the models (each has NextId as
# the default of its id): the same 18 that migration 0015 lists for itself.
SERIAL_TABLES = tuple(
    sorted(
        table.name
        for table in Base.metadata.sorted_tables
        if "id" in table.c
        and table.c.id.default is not None
        and isinstance(getattr(table.c.id.default, "arg", None), NextId)
    )
)


def before_0015() -> str:
    """The revision 0015 follows."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    revision = script.get_revision("0015")
    assert revision is not None and isinstance(revision.down_revision, str)
    return revision.down_revision


@pytest.fixture
def empty_url(db_backend: str, tmp_path: Path) -> Iterator[str]:
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'filled.db'}"
        return
    server = make_url(os.environ["KINLINE_TEST_POSTGRES_URL"])
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"kinline_shard_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def fill(db: Database, tmp_path: Path) -> None:
    """Everything kinline writes, through its services, in many facilities."""
    demo = load_demo(db, at=NOW)
    scenarios = sorted(SHARED.glob("*.yaml")) + sorted(OURS.glob("*.yaml"))
    for path in scenarios:
        if path != LATER and path.name != Path(demo.path).name:
            load_into(str(path), db)
    import_vendor_calls(db, tmp_path / "calls.csv", "imp", days=range(40))
    visits_and_appeals(db, tmp_path / "visits.yaml")
    # Identity (reference tables): a subject bound at one facility, with a token.
    create_token(db, "pbx", "telephony", at=NOW, facility_id="imp")


VISITS = """\
scenario: visits, appeals and printed notices
facility: {id: shard-visits, name: FCI Shard, timezone: America/Denver}
people:
  - {id: ana, name: A. Ana, language: en, housing_unit: A-1}
  - {id: ben, name: B. Ben, language: es, housing_unit: B-2}
contacts:
  - {id: mom, person: ana, relationship: parent, phones: ["+1 303 555 0100"],
     approved: [phone], email: mom@example.org}
  - {id: sis, person: ana, relationship: sibling, phones: ["+1 303 555 0101"],
     approved: [phone]}
  - {id: wife, person: ben, relationship: spouse, phones: ["+1 303 555 0104"],
     approved: [phone]}
rules:
  - {id: g-visit, authority: facility_policy, kind: grant, channel: visit, person: all,
     contacts: any, quota: {count: 4, per: month}, text: Four visits a month.}
  - {id: g-phone, authority: facility_policy, kind: grant, channel: phone, person: all,
     contacts: any, text: Calls.}
"""
VISITS_NOW = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # a Monday, 10:00 in Denver


def visits_and_appeals(db: Database, path: Path) -> None:
    """A facility with visitors, a booking, a block, a restriction, a
    non-association, a request for the allocation, an appeal and a print run."""
    path.write_text(VISITS, encoding="utf-8")
    load_into(str(path), db)
    facility, now, staff = "shard-visits", VISITS_NOW, "staff"
    sanction = {
        "id": "d-ana",
        "authority": "sanction",
        "kind": "deny",
        "channel": "phone",
        "person": "ana",
        "contacts": "any",
        "text": "Calls suspended.",
    }
    impose_rule(db, facility, sanction, at=now, actor=staff, reason="A threat on a call.")
    sessions.add_room(db, facility, "main", "Main hall", actor=staff, at=now)
    for template, weekday in (("sat-am", 5), ("sun-am", 6)):
        sessions.add_template(
            db, facility, template, room_id="main", weekday=weekday, starts=time(9),
            ends=time(11), kind="contact", capacity_open=3, capacity_closed=1,
            valid_from=date(2026, 3, 1), actor=staff, at=now,
        )  # fmt: skip
    approved = {}
    for contact, born in (
        ("mom", date(1960, 1, 1)),
        ("sis", date(1990, 1, 1)),
        ("wife", date(1980, 1, 1)),
    ):
        visitor = visitors.apply(
            db,
            facility,
            Application(
                contact_id=contact, date_of_birth=born, address="1 Main St", country="US",
                criminal_record_declared=False,
            ),
            at=now,
            actor=staff,
        )  # fmt: skip
        visitors.check_id(
            db, facility, visitor.id, document_type="driving_licence",
            document_number=f"D{born.year}", at=now, actor=staff,
        )  # fmt: skip
        decide_visitor(
            db, facility, visitor.id, verdict=Verdict.APPROVE, reason="Identity checked.",
            at=now, actor=staff,
        )  # fmt: skip
        approved[contact] = visitor.id
    answer = booking.book(
        db, facility, "ana", "sat-am", date(2026, 3, 7), ["mom"], booker="staff", actor=staff,
        now=now,
    )  # fmt: skip
    assert answer.booking is not None
    upkeep.block(
        db, facility, date(2026, 3, 14), room_id=None, reason="Lockdown drill.", actor=staff,
        now=now,
    )  # fmt: skip
    upkeep.record_non_association(
        db, facility, "ana", "ben", reason="Separated.", actor=staff, at=now
    )
    restrict_visitor(
        db, facility, approved["sis"], kind=RestrictionKind.CLOSED, reason="Contraband.",
        at=now, actor=staff,
    )  # fmt: skip
    requests.submit_request(
        db, facility, "ben", ["wife"], [Preferred("sun-am", date(2026, 3, 22))],
        actor="family:ben", now=now,
    )  # fmt: skip
    notice = list_notices(db, facility, "ana")[0]
    file_appeal(
        db, facility, person_id="ana", notice_id=notice.id, filed_by="person", filer="A. Ana",
        text="My sister never threatened anyone.", at=now, actor="kiosk",
    )  # fmt: skip
    assert make_print_batches(db, at=now + timedelta(days=1), facility_id=facility)


def import_vendor_calls(db: Database, path: Path, facility_id: str, days: range) -> None:
    """A facility whose calls come from a vendor's export: two people, a daily quota."""
    if days.start == 0:
        register_facility(
            db, Facility(facility_id, "Import", "America/New_York"), at=T0, actor=ACTOR
        )
        phone = frozenset({Channel.PHONE})
        for person, contact, number in (
            ("okafor", "mother", "+1 404 555 0134"),
            ("reyes", "partner", "+1 718 555 0123"),
        ):
            admit_person(db, Person(facility_id, person, person.title(), "en"), at=T0, actor=ACTOR)
            add_contact(
                db,
                facility_id,
                Contact(contact, person, "parent", approved=phone),
                name=contact.title(),
                phones=[number],
                at=T0,
                actor=ACTOR,
            )
        rule = {
            "id": "daily",
            "authority": "facility_policy",
            "kind": "grant",
            "channel": "phone",
            "person": "all",
            "contacts": "any",
            "quota": {"count": 3, "per": {"rolling_days": 1}},
            "max_minutes": 20,
        }
        impose_rule(db, facility_id, rule, at=T0, actor=ACTOR, in_force_at_start=True)
    lines = ["person,dialed,start,seconds,channel"]
    for day in days:
        start = T0 + timedelta(days=day, hours=2)
        for call in range(4):  # more than the quota lets through: some are refused
            at = (start + timedelta(minutes=30 * call)).strftime("%Y-%m-%dT%H:%M:%S")
            lines.append(f"okafor,+1 404 555 0134,{at},{300 + call},phone")
            lines.append(f"reyes,+1 718 555 0123,{at},{600 + call},phone")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = import_calls(db, facility_id, path, at=NOW, actor=ACTOR, batch_size=50)
    assert summary.exit_code == 0, summary.errors


def contents(engine: Engine) -> dict[str, tuple[int, str]]:
    """Each table's row count and a digest of its rows (in any order)."""
    metadata = MetaData()
    metadata.reflect(engine)
    found: dict[str, tuple[int, str]] = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            if table.name == "alembic_version":  # the revision, which moves on
                continue
            rows = sorted(repr(tuple(row)) for row in connection.execute(select(table)))
            digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()
            found[table.name] = (len(rows), digest)
    return found


def max_ids(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table: scalar(connection, f"SELECT coalesce(max(id), 0) FROM {table}")  # noqa: S608
            for table in SERIAL_TABLES
        }


def scalar(connection: Connection, sql: str, **params: object) -> int:
    # Every table name here is one of ours, never data.
    return int(connection.execute(text(sql), params).scalar_one())


def test_every_row_is_kept_and_new_rows_get_fresh_ids(
    empty_url: str, db_backend: str, tmp_path: Path
) -> None:
    upgrade(empty_url, before_0015())
    db = Database(empty_url)
    try:
        fill(db, tmp_path)
    finally:
        db.dispose()
    engine = create_engine(empty_url)
    before = contents(engine)
    ids_before = max_ids(engine)
    filled = {table for table, (count, _) in before.items() if count}
    # The fill reaches every table 0015 changes, in many facilities, and the
    # reference tables.
    assert {*SERIAL_TABLES, "audit_heads", "visit_booking_visitors"} <= filled
    assert {"facilities", "subjects", "subject_bindings", "api_tokens"} <= filled
    with engine.connect() as connection:
        assert scalar(connection, "SELECT count(*) FROM facilities") > 20

    upgrade(empty_url)

    assert contents(engine) == before
    keys = inspect(engine)
    for table in (*SERIAL_TABLES, "audit_heads"):
        assert keys.get_pk_constraint(table)["constrained_columns"][0] == "facility_id", table
    if db_backend == "sqlite":
        # Each row's hidden rowid is its id again, so max(rowid) + 1 is a new id.
        with engine.connect() as connection:
            for table in SERIAL_TABLES:
                assert scalar(connection, f"SELECT count(*) FROM {table} WHERE rowid != id") == 0  # noqa: S608

    db = Database(empty_url)
    try:
        load_into(str(LATER), db)
        import_vendor_calls(db, tmp_path / "more.csv", "imp", days=range(40, 45))
    finally:
        db.dispose()
    ids_after = max_ids(engine)
    grown = {table for table in SERIAL_TABLES if ids_after[table] > ids_before[table]}
    assert {"sessions", "audit_events", "usage_entries", "notices", "notice_deliveries"} <= grown
    with engine.connect() as connection:
        for table in grown:
            # Every id is still one row's: new rows got ids no old row had.
            total = scalar(connection, f"SELECT count(*) FROM {table}")  # noqa: S608
            distinct = scalar(connection, f"SELECT count(DISTINCT id) FROM {table}")  # noqa: S608
            newer = f"SELECT count(*) FROM {table} WHERE id > :old"  # noqa: S608
            assert distinct == total, table
            assert scalar(connection, newer, old=ids_before[table]) == total - before[table][0]
    engine.dispose()
