"""Every query of the audit log.

Appends to one chain are serialised on its head row: on PostgreSQL by a row
lock held to the end of the caller's transaction, on SQLite by the IMMEDIATE
transaction the engine always begins. Two appends can therefore never take
the same seq, and a rolled-back change takes its events with it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Executable, bindparam, exists, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kinline.audit.chain import GENESIS, ChainLink
from kinline.db.engine import core
from kinline.db.raw import Raw, array
from kinline.db.tables import AuditEventRow, AuditHeadRow
from kinline.events.outbox import ADD_PG, add_event, prefixed

BATCH_SIZE = 2000


@dataclass(frozen=True, slots=True)
class StoredEvent:
    facility_id: str
    link: ChainLink


@dataclass(frozen=True, slots=True)
class StoredChain:
    """A chain as stored: its head (None if the head row is gone) and its events."""

    chain: str
    head: tuple[int, str] | None
    events: list[StoredEvent]


_HEADS = AuditHeadRow.__table__
# Built once: the append path runs on every change, and building a statement
# costs more than running it.
_SELECT_HEAD = (
    select(_HEADS.c.seq, _HEADS.c.hash)
    .where(_HEADS.c.facility_id == bindparam("facility_id"), _HEADS.c.chain == bindparam("chain"))
    .with_for_update()
)
_ADD_EVENT = insert(AuditEventRow).values(
    facility_id=bindparam("e_facility_id"),
    chain=bindparam("e_chain"),
    seq=bindparam("e_seq"),
    occurred_at=bindparam("e_occurred_at"),
    actor=bindparam("e_actor"),
    tag=bindparam("e_tag"),
    payload=bindparam("e_payload"),
    prev_hash=bindparam("e_prev_hash"),
    hash=bindparam("e_hash"),
)
_ADVANCE_HEAD = (
    update(AuditHeadRow)
    .where(
        AuditHeadRow.facility_id == bindparam("e_facility_id"),
        AuditHeadRow.chain == bindparam("e_chain"),
    )
    .values(seq=bindparam("e_seq"), hash=bindparam("e_hash"))
)
# PostgreSQL adds the event and advances the head in one statement, and with
# the event's outbox row when it announces one (one round trip fewer each).
_APPEND_PG = _ADVANCE_HEAD.add_cte(_ADD_EVENT.cte("added"))
_APPEND_ANNOUNCED_PG = _ADVANCE_HEAD.add_cte(_ADD_EVENT.cte("added")).add_cte(
    ADD_PG.cte("announced")
)


def lock_head(session: Session, *, facility_id: str, chain: str) -> tuple[int, str]:
    """The chain's (seq, hash), locked until the transaction ends; created if new.

    A concurrent first append to the same chain may insert the head first, so
    the insert yields to it and both then queue on the one row lock.
    """
    head = _select_head_for_update(session, facility_id, chain)
    if head is not None:
        return head
    session.execute(
        _insert_head_unless_present(session.get_bind().dialect.name, facility_id, chain)
    )
    head = _select_head_for_update(session, facility_id, chain)
    if head is None:  # pragma: no cover - the row was just inserted or seen
        raise RuntimeError(f"the head of audit chain {chain!r} vanished")
    return head


def _insert_head_unless_present(dialect: str, facility_id: str, chain: str) -> Executable:
    values = {"facility_id": facility_id, "chain": chain, "seq": 0, "hash": GENESIS}
    # The primary key is the only unique key of audit_heads, so no conflict
    # target is named: the statement is right on either side of migration 0015,
    # which moved that key from (chain) to (facility_id, chain).
    if dialect == "postgresql":
        return postgresql.insert(AuditHeadRow).values(values).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(AuditHeadRow).values(values).on_conflict_do_nothing()
    raise RuntimeError(f"the audit log does not support {dialect}")  # pragma: no cover


def _select_head_for_update(
    session: Session, facility_id: str, chain: str
) -> tuple[int, str] | None:
    row = (
        core(session)
        .execute(_SELECT_HEAD, {"facility_id": facility_id, "chain": chain})
        .one_or_none()
    )
    return None if row is None else (row.seq, row.hash)


def append(
    session: Session,
    facility_id: str,
    link: ChainLink,
    occurred_at: datetime,
    announced: dict[str, object] | None = None,
) -> None:
    """Add the event and make it the chain's head (whose lock the caller holds),
    with its outbox row ``announced`` (``events.outbox.outbox_row``) if any."""
    params: dict[str, object] = {
        "e_facility_id": facility_id,
        "e_chain": link.chain,
        "e_seq": link.seq,
        "e_occurred_at": occurred_at,
        "e_actor": link.actor,
        "e_tag": link.tag,
        "e_payload": link.payload_json,
        "e_prev_hash": link.prev_hash,
        "e_hash": link.hash,
    }
    connection = core(session)
    if connection.dialect.name == "postgresql":
        if announced is None:
            connection.execute(_APPEND_PG, params)
        else:
            connection.execute(_APPEND_ANNOUNCED_PG, {**params, **prefixed(announced)})
        return
    connection.execute(_ADD_EVENT, params)
    connection.execute(_ADVANCE_HEAD, params)
    if announced is not None:
        add_event(session, announced)


_LOCK_HEADS = (
    select(_HEADS.c.chain, _HEADS.c.seq, _HEADS.c.hash)
    .where(
        _HEADS.c.facility_id == bindparam("facility_id"),
        _HEADS.c.chain.in_(bindparam("chains", expanding=True)),
    )
    .order_by(_HEADS.c.chain)
    .with_for_update()
)


_BEGIN_HEAD_PG = (
    postgresql.insert(AuditHeadRow)
    .values(
        facility_id=bindparam("facility_id"),
        chain=bindparam("chain"),
        seq=bindparam("seq"),
        hash=bindparam("hash"),
    )
    .on_conflict_do_nothing()
)


def lock_heads(
    session: Session, facility_id: str, chains: Iterable[str]
) -> dict[str, tuple[int, str]]:
    """The (seq, hash) of each of ``chains``, each locked until the transaction
    ends, in chain order; a chain with no head yet is begun (as ``lock_head``
    begins one). PostgreSQL only (a round of the call path)."""
    wanted = sorted(set(chains))
    connection = core(session)
    params = {"facility_id": facility_id, "chains": wanted}
    heads = {chain: (seq, hash) for chain, seq, hash in connection.execute(_LOCK_HEADS, params)}
    missing = [chain for chain in wanted if chain not in heads]
    if missing:
        begun = [
            {"facility_id": facility_id, "chain": chain, "seq": 0, "hash": GENESIS}
            for chain in missing
        ]
        connection.execute(_BEGIN_HEAD_PG, begun)
        params = {"facility_id": facility_id, "chains": missing}
        heads.update(
            {chain: (seq, hash) for chain, seq, hash in connection.execute(_LOCK_HEADS, params)}
        )
    return heads


# A round's events, the heads they move and their outbox rows, in one statement
# of arrays (PostgreSQL): however many events, one statement compiled once.
# The events' ids are drawn in the arrays' order, as one INSERT each would.
_APPEND_CTES = """
    added AS (
        INSERT INTO audit_events
            (id, facility_id, chain, seq, occurred_at, actor, tag, payload, prev_hash, hash)
        SELECT nextval('audit_events_id_seq'), :facility_id, e.chain, e.seq, e.occurred_at,
               e.actor, e.tag, e.payload, e.prev_hash, e.hash
        FROM unnest(
            CAST(:chains AS text[]), CAST(:seqs AS int[]), CAST(:occurred AS timestamptz[]),
            CAST(:actors AS text[]), CAST(:tags AS text[]), CAST(:payloads AS text[]),
            CAST(:prev_hashes AS text[]), CAST(:hashes AS text[])
        ) WITH ORDINALITY AS e(chain, seq, occurred_at, actor, tag, payload, prev_hash, hash, n)
        ORDER BY e.n
    ), moved AS (
        UPDATE audit_heads AS h SET seq = m.seq, hash = m.hash
        FROM unnest(
            CAST(:head_chains AS text[]), CAST(:head_seqs AS int[]), CAST(:head_hashes AS text[])
        ) AS m(chain, seq, hash)
        WHERE h.facility_id = :facility_id AND h.chain = m.chain
    )
"""
_APPEND_OUTBOX = """
    INSERT INTO domain_events (facility_id, id, chain, seq, type, recorded_at, body)
    SELECT :facility_id, o.id, o.chain, o.seq, o.type, o.recorded_at, o.body
    FROM unnest(
        CAST(:o_ids AS text[]), CAST(:o_chains AS text[]), CAST(:o_seqs AS int[]),
        CAST(:o_types AS text[]), CAST(:o_recorded AS timestamptz[]), CAST(:o_bodies AS text[])
    ) AS o(id, chain, seq, type, recorded_at, body)
    ON CONFLICT DO NOTHING
"""


def appending(name: str, writes: str = "") -> Raw:
    """The statement of ``append_many``, which also runs ``writes`` (other
    writes of the same transaction, as common table expressions named apart
    from ``added`` and ``moved``, their parameters named apart from
    ``append_many``'s): one round trip for both. Made once, at import."""
    before = f"{writes.strip()},\n" if writes else ""
    return Raw(name, text(f"WITH {before}{_APPEND_CTES.strip()}\n{_APPEND_OUTBOX}"))


_APPEND_MANY_RAW = appending("append_many")
Writes = tuple[Raw, Mapping[str, object]]
"""A statement made by ``appending`` and the parameters of its other writes."""


def append_many(
    session: Session,
    facility_id: str,
    links: Sequence[tuple[ChainLink, datetime]],
    heads: Mapping[str, tuple[int, str]],
    announced: Sequence[dict[str, object]],
    also: Writes | None = None,
) -> None:
    """Add the events (each with the time it occurred), move each chain's head
    (whose lock the caller holds) to ``heads``, and add the outbox rows
    (``events.outbox.outbox_row``), and run ``also``'s writes: one statement
    (PostgreSQL)."""
    moved = sorted(heads.items())
    outbox = (
        ("id", "ids"),
        ("chain", "chains"),
        ("seq", "seqs"),
        ("type", "types"),
        ("recorded_at", "recorded"),
        ("body", "bodies"),
    )
    params = {
        "facility_id": facility_id,
        "chains": array(link.chain for link, _ in links),
        "seqs": array(link.seq for link, _ in links),
        "occurred": array(at.astimezone(UTC) for _, at in links),
        "actors": array(link.actor for link, _ in links),
        "tags": array(link.tag for link, _ in links),
        "payloads": array(link.payload_json for link, _ in links),
        "prev_hashes": array(link.prev_hash for link, _ in links),
        "hashes": array(link.hash for link, _ in links),
        "head_chains": array(chain for chain, _ in moved),
        "head_seqs": array(seq for _, (seq, _hash) in moved),
        "head_hashes": array(hash for _, (_seq, hash) in moved),
        **{f"o_{plural}": array(row[name] for row in announced) for name, plural in outbox},
    }
    if also is None:
        _APPEND_MANY_RAW.run(session, params)
    else:
        statement, more = also
        statement.run(session, {**params, **more})


def read_consistently(session: Session) -> None:
    """Make the rest of this transaction read one snapshot.

    Heads and events are read by separate statements; under PostgreSQL's
    default READ COMMITTED an append between them would look like tampering.
    Must be the first use of the session. SQLite's transaction is already a
    snapshot.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def iter_chains(session: Session, batch_size: int = BATCH_SIZE) -> Iterator[StoredChain]:
    """Every chain with its events in seq order, streamed in batches.

    Only one chain's events are held at a time. Heads whose events are all
    gone come last, with no events.
    """
    events = session.execute(
        select(
            AuditEventRow.chain,
            AuditEventRow.seq,
            AuditEventRow.occurred_at,
            AuditEventRow.actor,
            AuditEventRow.tag,
            AuditEventRow.payload,
            AuditEventRow.prev_hash,
            AuditEventRow.hash,
            AuditEventRow.id,
            AuditEventRow.facility_id,
            AuditHeadRow.seq,
            AuditHeadRow.hash,
        )
        .outerjoin(AuditHeadRow, AuditHeadRow.chain == AuditEventRow.chain)
        .order_by(AuditEventRow.chain, AuditEventRow.seq)
        .execution_options(yield_per=batch_size)
    )
    for chain, rows in itertools.groupby(events, key=lambda row: row[0]):
        stored: list[StoredEvent] = []
        head: tuple[int, str] | None = None
        for name, seq, at, actor, tag, payload, prev, hash, id, facility, hseq, hhash in rows:
            head = None if hseq is None else (hseq, hhash)
            iso = at.astimezone(UTC).isoformat()
            link = ChainLink(name, seq, iso, actor, tag, payload, prev, hash, id)
            stored.append(StoredEvent(facility, link))
        yield StoredChain(chain, head, stored)
    bare_heads = session.execute(
        select(AuditHeadRow.chain, AuditHeadRow.seq, AuditHeadRow.hash)
        .where(~exists().where(AuditEventRow.chain == AuditHeadRow.chain))
        .order_by(AuditHeadRow.chain)
        .execution_options(yield_per=batch_size)
    )
    for chain, seq, hash in bare_heads:
        yield StoredChain(chain, (seq, hash), [])
