"""Writing to and verifying the audit log.

``record_event`` is the one use case here that does not own its transaction:
an audit event must commit with the change it records or not at all, so it
joins the caller's transaction and never commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from kinline.audit import repository
from kinline.audit.chain import (
    ChainLink,
    Problem,
    canonical_json,
    chain_facility,
    check_tag,
    event_hash,
    to_json_value,
    verify_chain,
)
from kinline.audit.chain import facility_chain as facility_chain
from kinline.audit.chain import person_chain as person_chain
from kinline.db.engine import Database
from kinline.db.routing import cross_facility
from kinline.events.outbox import outbox_row


@dataclass(frozen=True, slots=True)
class VerifyReport:
    chains: int
    events: int
    problem: Problem | None


def record_event(
    session: Session,
    *,
    facility_id: str,
    chain: str,
    actor: str,
    tag: str,
    payload: Mapping[str, object],
    at: datetime,
    head: tuple[int, str] | None = None,
) -> None:
    """Append one event to ``chain`` inside the caller's transaction.

    ``head``: the chain's (seq, hash) when the caller has locked its head row
    already, in this transaction (as ``repository.lock_head`` would, say in the
    statement that took its own lock first); else the head is locked here.

    Holds the chain's head lock until the caller commits or rolls back, so a
    caller appending to several chains should take them in a fixed order
    (facility before person) to keep PostgreSQL from seeing a deadlock.
    A malformed tag, a chain of another facility, a naive time or a payload
    that is not JSON raise ValueError or TypeError: they are programming
    errors, not input to report.
    """
    _check(facility_id, chain, tag, at)
    head_seq, head_hash = head or repository.lock_head(
        session, facility_id=facility_id, chain=chain
    )
    link, announced = _link(facility_id, chain, actor, tag, payload, at, (head_seq, head_hash))
    repository.append(session, facility_id, link, at, announced)


@dataclass(frozen=True, slots=True)
class Event:
    """One event of ``record_events``: what ``record_event`` takes, but the session."""

    chain: str
    actor: str
    tag: str
    payload: Mapping[str, object]
    at: datetime


def record_events(
    session: Session,
    *,
    facility_id: str,
    events: Sequence[Event],
    heads: Mapping[str, tuple[int, str]],
    also: repository.Writes | None = None,
) -> None:
    """Append ``events`` in order, each to its chain, inside the caller's
    transaction: the same events, hashes and outbox rows as ``record_event`` of
    each in turn, written by one statement (with ``also``'s writes, made by
    ``repository.appending``).

    ``heads``: the (seq, hash) of every chain named, each already locked by the
    caller in this transaction (``repository.lock_heads``)."""
    current = dict(heads)
    links: list[tuple[ChainLink, datetime]] = []
    announced: list[dict[str, object]] = []
    for event in events:
        _check(facility_id, event.chain, event.tag, event.at)
        link, row = _link(
            facility_id, event.chain, event.actor, event.tag, event.payload, event.at,
            current[event.chain],
        )  # fmt: skip
        current[event.chain] = (link.seq, link.hash)
        links.append((link, event.at))
        if row is not None:
            announced.append(row)
    moved = {chain: head for chain, head in current.items() if head != heads[chain]}
    repository.append_many(session, facility_id, links, moved, announced, also)


def _check(facility_id: str, chain: str, tag: str, at: datetime) -> None:
    check_tag(tag)
    if chain_facility(chain) != facility_id:
        raise ValueError(f"audit chain {chain!r} is not a chain of facility {facility_id!r}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("an audit event needs a timezone-aware time")


def _link(
    facility_id: str,
    chain: str,
    actor: str,
    tag: str,
    payload: Mapping[str, object],
    at: datetime,
    head: tuple[int, str],
) -> tuple[ChainLink, dict[str, object] | None]:
    """The event appended to ``chain`` after ``head``, and its outbox row (None if
    its tag announces nothing)."""
    payload_json = canonical_json(to_json_value(payload))
    occurred_at_iso = at.astimezone(UTC).isoformat()
    head_seq, head_hash = head
    seq = head_seq + 1
    digest = event_hash(head_hash, chain, seq, occurred_at_iso, actor, tag, payload_json)
    link = ChainLink(chain, seq, occurred_at_iso, actor, tag, payload_json, head_hash, digest, 0)
    # The transactional outbox: the change's domain event commits with it.
    announced = outbox_row(
        facility_id=facility_id,
        chain=chain,
        seq=seq,
        tag=tag,
        payload_json=payload_json,
        occurred_at_iso=occurred_at_iso,
    )
    return link, announced


def verify_log(db: Database) -> VerifyReport:
    """Check every chain against its events and head, from one snapshot.

    Goes on past the first problem so the counts cover the whole log.
    """
    chains = events = 0
    first: Problem | None = None
    with cross_facility("audit-verify"), db.transaction() as session:
        repository.read_consistently(session)
        for stored in repository.iter_chains(session):
            chains += 1
            events += len(stored.events)
            if first is None:
                first = _first_problem(stored)
    return VerifyReport(chains, events, first)


def _first_problem(stored: repository.StoredChain) -> Problem | None:
    links = [event.link for event in stored.events]
    problem = verify_chain(links, stored.head, chain=stored.chain)
    if stored.head is None and stored.events:
        last = links[-1]
        missing = Problem(
            stored.chain, last.seq, None, "deleted", "the chain's head is missing, so is its end"
        )
        problem = _earlier(problem, missing)
    owner = chain_facility(stored.chain)
    for event in stored.events:
        if event.facility_id != owner:
            misfiled = Problem(
                stored.chain,
                event.link.seq,
                event.link.row_id,
                "changed",
                f"its facility {event.facility_id!r} is not the chain's",
            )
            return _earlier(problem, misfiled)
    return problem


def _earlier(problem: Problem | None, other: Problem) -> Problem:
    return other if problem is None or other.seq < problem.seq else problem
