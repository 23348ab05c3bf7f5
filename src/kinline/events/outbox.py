"""Writing the outbox: one row beside each audit event, in its transaction
(on PostgreSQL in the same statement as the event, see ``ADD_PG_CTE``).

Called by ``kinline.audit.service.record_event``, the one writer of the audit
log, so every change that is recorded is also announced, and one that rolls
back announces nothing (a transactional outbox). This module sits below the
audit log: it imports only the pure event model and the table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BindParameter, Executable, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kinline.db.engine import core
from kinline.db.tables import DomainEventRow
from kinline.events.model import cloud_event

_VALUES: dict[str, BindParameter[Any]] = {
    "facility_id": bindparam("facility_id"),
    "id": bindparam("id"),
    "chain": bindparam("chain"),
    "seq": bindparam("seq"),
    "type": bindparam("type"),
    "recorded_at": bindparam("recorded_at"),
    "body": bindparam("body"),
}
# Built once: this runs on every change (see kinline.audit.repository). An id
# already in the outbox is the same event again (its chain and seq), never a
# different one: the first stays.
# PostgreSQL's INSERT is also run as a data-modifying CTE, for the audit log's
# append to write its event, its head and this row in one statement
# (``kinline.audit.repository``).
# There its parameters are named ``o_<column>`` (``prefixed``), apart from
# the statement's own.
ADD_PG = (
    postgresql.insert(DomainEventRow)
    .values({name: bindparam(f"o_{name}") for name in _VALUES})
    .on_conflict_do_nothing()
)
_ADD: dict[str, Executable] = {
    "postgresql": postgresql.insert(DomainEventRow).values(_VALUES).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(DomainEventRow).values(_VALUES).on_conflict_do_nothing(),
}


def outbox_row(
    *,
    facility_id: str,
    chain: str,
    seq: int,
    tag: str,
    payload_json: str,
    occurred_at_iso: str,
) -> dict[str, object] | None:
    """The outbox row (the parameters of ``_ADD``) of the audit event (chain,
    seq), None if its tag makes no domain event."""
    event = cloud_event(facility_id, chain, seq, tag, payload_json, occurred_at_iso)
    if event is None:
        return None
    return {
        "facility_id": event.facility_id,
        "id": event.id,
        "chain": event.chain,
        "seq": event.seq,
        "type": event.type,
        "recorded_at": datetime.now(UTC),
        "body": event.body,
    }


def prefixed(row: dict[str, object]) -> dict[str, object]:
    """An outbox row's parameters as ``ADD_PG`` names them."""
    return {f"o_{name}": value for name, value in row.items()}


def add_event(session: Session, row: dict[str, object]) -> None:
    """Insert an outbox row (``outbox_row``) on its own."""
    connection = core(session)
    connection.execute(_ADD[connection.dialect.name], row)
