"""A large population for ``authorize.py``, written with ``COPY`` instead of the services.

What kinline's services write for a person admitted with one contact approved
for phone (``authorize.admit``), written here directly: the person, the
contact, its number, its approval, the two audit events of the person's hash
chain (``people:person:admitted``, ``people:contact:added``), the chain's
head and the two outbox rows the events announce. Every value is made by
kinline's own functions (``normalize_phone``, ``canonical_json``,
``event_hash``, ``outbox_row``), so the rows are the services' rows, and
``check`` proves it: it sets a few people up both ways, in two scratch
databases, and compares every table row for row (all but the generated ids and
the outbox's ``recorded_at``, the clock at insertion).

Admitting a person through the services costs a few milliseconds (six
statements and a commit); a million of them would take an hour on two cores.
``COPY`` writes them in about a minute (the rows are made in a pool of
processes, each chunk written in one transaction).
"""

from __future__ import annotations

import io
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import Integer, create_engine, select
from sqlalchemy.engine import make_url

from kinline.audit.chain import GENESIS, canonical_json, event_hash, person_chain, to_json_value
from kinline.db.base import Base
from kinline.events.outbox import outbox_row
from kinline.people.model import normalize_phone

CHUNK = 50_000  # people per transaction

# Table, columns and one row per person, in the order foreign keys need.
PEOPLE = (
    "people",
    ("facility_id", "id", "name", "language", "custody_status", "admitted_at"),
)
CONTACTS = (
    "contacts",
    ("facility_id", "id", "person_id", "name", "relationship", "privileged", "notify_by_email"),
)
PHONES = ("contact_phones", ("facility_id", "contact_id", "e164"))
APPROVALS = ("approvals", ("facility_id", "contact_id", "channel", "approved_at"))
HEADS = ("audit_heads", ("facility_id", "chain", "seq", "hash"))
EVENTS = (
    "audit_events",
    ("facility_id", "chain", "seq", "occurred_at", "actor", "tag", "payload", "prev_hash", "hash"),
)
OUTBOX = ("domain_events", ("facility_id", "id", "chain", "seq", "type", "recorded_at", "body"))
TABLES = (PEOPLE, CONTACTS, PHONES, APPROVALS, HEADS, EVENTS, OUTBOX)


def _field(value: object) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


class Rows:
    """Each table's rows in COPY's text format, person by person."""

    def __init__(self) -> None:
        self.buffers = {name: io.StringIO() for name, _ in TABLES}

    def add(self, table: str, values: Sequence[object]) -> None:
        self.buffers[table].write("\t".join(map(_field, values)) + "\n")


def person_rows(
    rows: Rows,
    facility_id: str,
    country: str,
    index: int,
    at: datetime,
    actor: str,
    phone_of: Callable[[int], tuple[str, str]],
) -> None:
    """Person ``index`` as ``authorize.admit`` makes them: ids, names and number alike."""
    person_id, contact_id = f"p{index:05d}", f"c{index:05d}"
    name, contact_name = f"Person {index}", f"Parent of {index}"
    e164 = normalize_phone(phone_of(index)[0], country, "contact.phones[0]")
    rows.add("people", (facility_id, person_id, name, "en", "in_custody", at))
    rows.add("contacts", (facility_id, contact_id, person_id, contact_name, "parent", False, False))
    rows.add("contact_phones", (facility_id, contact_id, e164))
    rows.add("approvals", (facility_id, contact_id, "phone", at))
    chain = person_chain(facility_id, person_id)
    iso = at.astimezone(UTC).isoformat()
    events: list[tuple[str, dict[str, object]]] = [
        (
            "people:person:admitted",
            {"person_id": person_id, "name": name, "language": "en", "housing_unit": None},
        ),
        (
            "people:contact:added",
            {
                "contact_id": contact_id,
                "name": contact_name,
                "relationship": "parent",
                "privileged": False,
                "phones": [e164],
                "approved": ["phone"],
                "email": None,
                "language": None,
                "country": None,
            },
        ),
    ]
    previous = GENESIS
    for seq, (tag, payload) in enumerate(events, start=1):
        payload_json = canonical_json(to_json_value(payload))
        digest = event_hash(previous, chain, seq, iso, actor, tag, payload_json)
        rows.add(
            "audit_events",
            (facility_id, chain, seq, at, actor, tag, payload_json, previous, digest),
        )
        announced = outbox_row(
            facility_id=facility_id,
            chain=chain,
            seq=seq,
            tag=tag,
            payload_json=payload_json,
            occurred_at_iso=iso,
        )
        if announced is not None:
            rows.add("domain_events", [announced[column] for column in OUTBOX[1]])
        previous = digest
    rows.add("audit_heads", (facility_id, chain, len(events), previous))


def _write_chunk(
    libpq_url: str,
    facility_id: str,
    country: str,
    indices: range,
    at: datetime,
    actor: str,
    phone_of: Callable[[int], tuple[str, str]],
) -> int:
    """Make and COPY the rows of people ``indices``, in one transaction."""
    rows = Rows()
    for index in indices:
        person_rows(rows, facility_id, country, index, at, actor, phone_of)
    with psycopg.connect(libpq_url) as connection, connection.cursor() as cursor:
        for table, columns in TABLES:
            statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
            with cursor.copy(statement) as copy:
                copy.write(rows.buffers[table].getvalue())
        connection.commit()
    return len(indices)


def copy_people(
    libpq_url: str,
    facility_id: str,
    country: str,
    indices: range,
    at: datetime,
    actor: str,
    phone_of: Callable[[int], tuple[str, str]],
    processes: int,
) -> int:
    """People ``indices`` written by COPY, ``CHUNK`` to a transaction, on ``processes``."""
    chunks = [
        range(first, min(first + CHUNK, indices.stop))
        for first in range(indices.start, indices.stop, CHUNK)
    ]
    if processes <= 1 or len(chunks) <= 1:
        return sum(
            _write_chunk(libpq_url, facility_id, country, chunk, at, actor, phone_of)
            for chunk in chunks
        )
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=spawn) as pool:
        done = [
            pool.submit(_write_chunk, libpq_url, facility_id, country, chunk, at, actor, phone_of)
            for chunk in chunks
        ]
        return sum(part.result() for part in done)


# Columns the database makes, different however the same rows are written.
GENERATED = {("domain_events", "recorded_at")}


def table_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, but their generated ids (integer ``id``) and
    ``GENERATED`` columns, sorted: what two setups must agree on."""
    engine = create_engine(url)
    found: dict[str, list[tuple[Any, ...]]] = {}
    try:
        with engine.connect() as connection:
            for table in Base.metadata.sorted_tables:
                columns = [
                    column
                    for column in table.columns
                    if not (column.name == "id" and isinstance(column.type, Integer))
                    and (table.name, column.name) not in GENERATED
                ]
                rows = connection.execute(select(*columns)).all()
                found[table.name] = sorted((tuple(row) for row in rows), key=repr)
    finally:
        engine.dispose()
    return found


def differences(
    made: dict[str, list[tuple[Any, ...]]], copied: dict[str, list[tuple[Any, ...]]]
) -> Iterator[str]:
    """What differs between the services' rows and COPY's, table by table."""
    for table in sorted(set(made) | set(copied)):
        ours, theirs = made.get(table, []), copied.get(table, [])
        if ours != theirs:
            only_made = [row for row in ours if row not in theirs][:3]
            only_copied = [row for row in theirs if row not in ours][:3]
            yield (
                f"{table}: {len(ours)} rows by the services, {len(theirs)} by COPY;"
                f" only by the services: {only_made}; only by COPY: {only_copied}"
            )


def libpq(url: str) -> str:
    """The SQLAlchemy URL as psycopg takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
