"""Call set-ups and ends decided a round at a time: many people's requests in
one transaction, read by a few statements and written by a few, each set-up
still decided by the engine, in turn, against the ledger as the requests
before it left it.

``authorize`` and ``end`` (``calls.path``) read and write one request in five
to eight statements and a commit; at the evening peak that fixed cost per
request is what the call path spends most on. ``run_round`` takes every
request a worker has queued since its last round and, in one transaction per
facility:

1. admits each one's caller (the token, as the request's own transaction
   would);
2. locks the ledgers of all their people, the set-ups' and the ends' (found
   by hold id), in person id order (as an import's batch does, so two rounds,
   or a round and a single request, never wait for each other in a circle),
   then the heads of their audit chains, and reads which keys were used: one
   statement;
3. steps the ends first (all the round's requests arrived before any was
   answered, so this is an order they could have run in), each by
   ``calls.model.end`` as alone: one statement locks their set-ups;
4. reads the contacts dialled, the rules that may be in force and the usage
   (one statement), and decides each set-up in arrival order, at the clock
   read after the locks, against the usage as stored less what the round's
   ends give back, plus the holds of the set-ups before it in the round
   (``rows.BatchLedger``, as an import's batch): two set-ups racing for the
   last call in one round get one hold, as in two transactions; the
   sessions and their counters are one statement;
5. writes every audit event (each chained in its person's chain), the heads,
   the outbox rows, and the ends' set-ups with what they give back to the
   counters, in one statement, and commits once.

Its statements are sent on psycopg's own connection, prepared, with each list
as one array literal (``db.raw``): at half the evening peak a round holds one
or two requests, and SQLAlchemy's execution context and psycopg's array
dumper were a quarter of its cost.

A round takes the common request: a set-up of a number dialled, by a person
held here, under a key not used before, on a known number, with no
rolling-window rule; the end of a known hold, once in the round, in time,
whose reservation is on calendar counters alone. Any other request of the
round is answered None and then run on its own by ``calls.path.authorize`` or
``calls.path.end`` after the round committed (an unknown number, a replayed
or reused key, a person released, a rolling window, a lapsed hold, a caller
refused: each worded there, as always). The database after a round is the
one those requests would have left one at a time in the same order;
``tests/integration/test_call_rounds.py`` holds it to that. On SQLite (one
writer at a time) every request is run on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from kinline.audit.repository import Writes, lock_heads
from kinline.audit.service import Event, person_chain, record_events
from kinline.calls import ledger, model, repository
from kinline.calls.path import (
    CALLS,
    Admit,
    Call,
    authorized_payload,
    authorized_tag,
    call_of,
    checked_key,
    checked_seconds,
    decided_row,
    event_of,
    fingerprint_of,
    new_hold,
    state_of,
    stepped,
)
from kinline.calls.rows import BatchLedger
from kinline.db.engine import Database
from kinline.db.tables import SessionRow
from kinline.errors import KinlineError
from kinline.people.model import Facility, held, normalize_phone, parse_channel
from kinline.rules.decide import Request, decide
from kinline.rules.model import DAY, MONTH, WEEK, Channel, Rule
from kinline.rules.periods import period_key
from kinline.rules.usage import ZERO, Tally

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SetUp:
    """One set-up of a round, as ``calls.path.authorize`` takes it."""

    facility_id: str
    person_id: str
    dialed: str | None
    contact_id: str | None
    channel: str
    idempotency_key: str
    actor: str | Admit
    at: datetime | None = None
    """The instant to decide at (tests, as ``authorize``'s ``at``); None: the clock
    once the round's ledgers are locked."""


@dataclass(slots=True)
class _Pending:
    index: int
    setup: SetUp
    actor: str
    channel: Channel
    e164: str
    key: str
    at: datetime

    @property
    def person(self) -> str:
        return self.setup.person_id


@dataclass(frozen=True, slots=True)
class Ending:
    """One call's end in a round, as ``calls.path.end`` takes it."""

    facility_id: str
    hold_id: str
    seconds: int
    actor: str | Admit
    at: datetime


Answers = list[Call | None]


def run_round(
    db: Database,
    setups: Sequence[SetUp],
    endings: Sequence[Ending] = (),
    *,
    clock: Callable[[], datetime] | None = None,
) -> tuple[Answers, Answers]:
    """Each set-up's and each end's answer, in order, for those the round decided
    and wrote (one transaction a facility); None for each one to run on its
    own (``calls.path.authorize``, ``calls.path.end``) after this returns.

    The round's ends are taken before its set-ups (they all arrived before any
    was answered, so any order is one they could have run in): a set-up is
    decided against the ledger as the round's ends settled it."""
    decided: Answers = [None] * len(setups)
    ended: Answers = [None] * len(endings)
    if db.engine.dialect.name != "postgresql":
        return decided, ended
    now = clock or (lambda: datetime.now(UTC))
    facilities = sorted({s.facility_id for s in setups} | {e.facility_id for e in endings})
    for facility_id in facilities:
        mine = [(i, s) for i, s in enumerate(setups) if s.facility_id == facility_id]
        ends = [(i, e) for i, e in enumerate(endings) if e.facility_id == facility_id]
        try:
            with db.transaction() as session:
                by_setup, by_end = _round_in(session, facility_id, mine, ends, now)
        except DBAPIError as error:
            # A deadlock with a writer outside the call path, a lost connection:
            # nothing of the round was written, so each of its requests is run
            # on its own, as if no round had been tried.
            count = len(mine) + len(ends)
            log.warning("a round of %d requests ran one by one: %s", count, error.orig)
            continue
        for index, call in by_setup.items():
            decided[index] = call
        for index, call in by_end.items():
            ended[index] = call
    return decided, ended


def _round_in(
    session: Session,
    facility_id: str,
    setups: Sequence[tuple[int, SetUp]],
    endings: Sequence[tuple[int, Ending]],
    now: Callable[[], datetime],
) -> tuple[dict[int, Call], dict[int, Call]]:
    """Decide and write what a round can take of one facility's set-ups and ends;
    the answers by index."""
    admitted = [(i, s, actor) for i, s in setups if (actor := _admitted(session, s)) is not None]
    closing = [(i, e, actor) for i, e in endings if (actor := _admitted(session, e)) is not None]
    if not admitted and not closing:
        return {}, {}
    opened = repository.open_ledgers(
        session,
        facility_id,
        {s.person_id for _, s, _ in admitted},
        {e.hold_id for _, e, _ in closing},
        {s.idempotency_key for _, s, _ in admitted},
    )
    if opened is None:
        return {}, {}
    facility, custody = opened.facility, opened.custody
    events: list[Event] = []
    ended, writes, back = _end(session, facility, closing, custody, events)
    decided = _authorize(session, facility, admitted, custody, opened.used, now, events, back)
    if events:
        heads = {person_chain(facility_id, person): head for person, head in opened.heads.items()}
        missing = {event.chain for event in events} - heads.keys()
        if missing:  # a person's first event: their chain begins (its head locked)
            heads.update(lock_heads(session, facility_id, missing))
        # The ends' writes go with the events' (each end has its event).
        record_events(session, facility_id=facility_id, events=events, heads=heads, also=writes)
    return decided, ended


def _end(
    session: Session,
    facility: Facility,
    endings: Sequence[tuple[int, Ending, str]],
    custody: dict[str, repository.Custody],
    events: list[Event],
) -> tuple[dict[int, Call], Writes | None, list[dict[str, object]]]:
    """Step the ends a round takes (a known hold, ended once in the round, not
    lapsed, its reservation on calendar counters alone), with their events
    added to ``events``: the answers by index, the writes that settle them
    (``repository.settling``, for the statement that records the events), and
    what they take back from the counters (``ledger.settled_counters``), which
    the round's set-ups are decided after."""
    if not endings:
        return {}, None, []
    held = repository.lock_holds(session, facility.id, [e.hold_id for _, e, _ in endings])
    rows = {row.hold_id: row for row in held}
    seen: set[str] = set()
    done: list[tuple[int, SessionRow]] = []
    counters: list[dict[str, object]] = []
    for index, ending, actor in endings:
        row = rows.get(ending.hold_id)
        if ending.hold_id in seen or row is None or row.person_id not in custody:
            continue
        seen.add(ending.hold_id)
        if row.max_minutes is None:
            continue
        try:
            step = model.end(state_of(row), checked_seconds(ending.seconds), ending.at)
        except KinlineError:
            continue  # refused on its own, in its words
        if step.replayed or step.lapsed or step.tag is None:
            continue
        settled, extra = stepped(row, step)
        if settled is not None and (settled.entries or settled.gaps):
            continue  # rolling entries and gap marks: settled on its own
        if settled is not None:
            counters += ledger.settled_counters(facility.id, row.person_id, settled)
        chain = person_chain(facility.id, row.person_id)
        events.append(Event(chain, actor, step.tag, event_of(row, extra), ending.at))
        done.append((index, row))
    if not done:
        return {}, None, []
    writes = repository.settling(facility.id, [row for _, row in done], counters)
    return {index: call_of(row) for index, row in done}, writes, counters


def _authorize(
    session: Session,
    facility: Facility,
    admitted: Sequence[tuple[int, SetUp, str]],
    custody: dict[str, repository.Custody],
    used: set[str],
    now: Callable[[], datetime],
    events: list[Event],
    back: Sequence[dict[str, object]],
) -> dict[int, Call]:
    """Decide and write the set-ups a round takes, with their events added to
    ``events``, against the counters as stored less what the round's ends take
    ``back`` (written after, with the events); the answers by index."""
    if not admitted:
        return {}
    facility_id = facility.id
    pending: list[_Pending] = []
    for index, setup, actor in admitted:
        taken = _pending(facility, index, setup, actor, custody, used, now)
        if taken is not None:
            used.add(taken.key)
            pending.append(taken)
    if not pending:
        return {}
    zone = facility.zone
    read = repository.round_reads(
        session,
        facility_id,
        {(p.person, p.e164) for p in pending},
        {p.channel for p in pending},
        min(p.at for p in pending),
        max(p.at for p in pending),
        {period_key(period, p.at, zone) for p in pending for period in (DAY, WEEK, MONTH)},
    )
    book, rules = read.book, read.rules
    pending = [p for p in pending if (p.person, p.e164) in book]
    relevant: dict[tuple[str, Channel], list[Rule]] = {}
    decidable: list[_Pending] = []
    for p in pending:
        key = (p.person, p.channel)
        if key not in relevant:
            relevant[key] = [r for r in rules if r.channel is p.channel and r.concerns(key[0])]
        if not any(r.quota is not None and r.quota.per.is_rolling for r in relevant[key]):
            decidable.append(p)
    if not decidable:
        return {}
    batch = _seeded(zone, read, back)
    by_id = {rule.id: rule for rule in rules}
    rows: list[SessionRow] = []
    for p in decidable:
        person = p.person
        contact = book[(person, p.e164)]
        request = Request(person, contact.as_of(p.at), p.channel, p.at)
        snapshot = batch.snapshot(person)
        decision = decide(request, relevant[(person, p.channel)], snapshot, zone)
        change = model.charged_usage(decision, by_id, p.at, decision.max_minutes or 0, zone)
        hold = reserved = None
        if change is not None:
            hold = new_hold(decision, p.at)
            reserved = model.reservation(change, snapshot.gaps, ()).as_json()
            batch.apply(person, change)
        row = decided_row(facility, person, contact.id, p.channel, decision, p.at, hold, reserved)
        row.idempotency_key = p.key
        row.request_hash = fingerprint_of(person, p.e164, p.channel)
        rows.append(row)
    added = batch.added
    repository.add_many(session, facility_id, rows, ledger.counter_rows(facility_id, added))
    ledger.write_usage(session, facility_id, added, counters=False)  # the gap marks, if any
    events += [_authorized(p, row) for p, row in zip(decidable, rows, strict=True)]
    return {p.index: call_of(row) for p, row in zip(decidable, rows, strict=True)}


def _admitted(session: Session, setup: SetUp | Ending) -> str | None:
    """The actor to record, or None if the caller is refused (the set-up, run on
    its own, is then refused as it always is)."""
    if isinstance(setup.actor, str):
        return setup.actor
    try:
        return setup.actor(session)
    except Exception:
        return None


def _pending(
    facility: Facility,
    index: int,
    setup: SetUp,
    actor: str,
    custody: dict[str, repository.Custody],
    used: set[str],
    now: Callable[[], datetime],
) -> _Pending | None:
    """The set-up ready to decide, or None if a round does not take it."""
    if setup.dialed is None or setup.contact_id is not None:
        return None
    if setup.person_id not in custody:
        return None
    try:
        channel = parse_channel(setup.channel)
        key = checked_key(setup.idempotency_key)
        e164 = normalize_phone(setup.dialed, facility.country, "dialed")
    except KinlineError:
        return None
    if channel not in CALLS or key in used:
        return None
    at = now() if setup.at is None else setup.at
    status, changed_at = custody[setup.person_id]
    if not held(status, changed_at, at):
        return None
    return _Pending(index, setup, actor, channel, e164, key, at)


def _seeded(
    zone: ZoneInfo, stored: repository.RoundReads, back: Sequence[dict[str, object]]
) -> BatchLedger:
    """A ledger of the round's people's stored calendar counters, less what the
    round's ends take ``back``, and their gap marks (no rolling window: a round
    does not take those)."""
    taken: dict[tuple[object, object, object], Tally] = {}
    for row in back:
        counter = (row["person_id"], row["rule_id"], row["period_key"])
        earlier = taken.get(counter, ZERO)
        sessions, minutes = row["sessions"], row["minutes"]
        assert isinstance(sessions, int) and isinstance(minutes, int)
        taken[counter] = Tally(earlier.sessions + sessions, earlier.minutes + minutes)
    batch = BatchLedger(zone)
    for person_id, rule_id, key, tally in stored.counters:
        less = taken.get((person_id, rule_id, key), ZERO)
        left = Tally(tally.sessions - less.sessions, tally.minutes - less.minutes)
        batch.seed_counter(person_id, rule_id, key, left)
    for person_id, rule_id, last_end in stored.gaps:
        batch.seed_gap(person_id, rule_id, last_end)
    return batch


def _authorized(p: _Pending, row: SessionRow) -> Event:
    """The audit event of a set-up decided, as ``calls.path.authorize`` records it."""
    payload = authorized_payload(row, p.e164, p.channel, p.key)
    return Event(
        person_chain(row.facility_id, row.person_id), p.actor, authorized_tag(row), payload, p.at
    )
