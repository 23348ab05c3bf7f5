"""The call path: authorize a call set-up with a hold on the allowance, then
connect, end or release it; expire what the platform never reports.

Every step is one transaction that first locks the person's allowance ledger
(``require_person(..., lock=True)``), so set-ups for one person run one after
the other and none can spend what another has already held. An allowed
set-up adds its ``max_minutes`` to the usage counters at once (the hold);
ending the call settles them to the whole minutes used, releasing it or its
expiry takes them back. The same idempotency key always gives the same answer
and never a second hold.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kinline.audit.service import person_chain, record_event
from kinline.calls import ledger, model, repository
from kinline.calls.model import CallState, Reservation, SettledBy, Settlement, Status, Step
from kinline.calls.repository import Head
from kinline.calls.service import ExplainedDecision, decide_in
from kinline.db.engine import Database
from kinline.db.routing import cross_facility
from kinline.db.tables import SessionRow
from kinline.errors import Conflict, InvalidInput, NotFound
from kinline.people import repository as people
from kinline.people.model import Facility, normalize_phone, parse_channel
from kinline.people.service import require_facility, require_person
from kinline.rules.decide import Decision
from kinline.rules.model import Channel, Reason
from kinline.rules.usage import UsageChange

MAX_KEY = 200
Admit = Callable[[Session], str]
"""Admits the caller inside a step's own transaction, before anything else is
read, and returns the actor to record (``calls.api``'s lean routes: the token
is read in the call's transaction, not in one of its own); raises to refuse."""
CALLS = (Channel.PHONE, Channel.VIDEO)
MAX_SECONDS = 24 * 3600


def _now() -> datetime:
    return datetime.now(UTC)


def hold_timeout() -> timedelta:
    """How long a hold waits for its call to connect (``KINLINE_HOLD_SECONDS``, 120)."""
    return timedelta(seconds=int(os.environ.get("KINLINE_HOLD_SECONDS", "120")))


def end_grace() -> timedelta:
    """How long after its last allowed minute a connected call that never reported
    its end is settled at ``max_minutes`` (``KINLINE_END_GRACE_SECONDS``, 300)."""
    return timedelta(seconds=int(os.environ.get("KINLINE_END_GRACE_SECONDS", "300")))


@dataclass(frozen=True, slots=True)
class Call:
    """A call set-up as the telephony platform sees it."""

    hold_id: str | None
    state: Status
    person_id: str
    contact_id: str | None
    channel: str
    authorized_at: datetime
    decision: Decision
    minutes: int
    expires_at: datetime | None
    connected_at: datetime | None
    ended_at: datetime | None
    settled_by: str | None
    dialed: str | None = None
    replayed: bool = False

    @property
    def allowed(self) -> bool:
        return self.decision.allowed


def call_of(row: SessionRow, *, replayed: bool = False) -> Call:
    dialed = row.decision.get("dialed")
    return Call(
        hold_id=row.hold_id,
        state=Status(row.status),
        person_id=row.person_id,
        contact_id=row.contact_id or None,
        channel=row.channel,
        authorized_at=row.started_at,
        decision=model.decision_from_json(row.decision, row.governed_by or ()),
        minutes=row.minutes if row.status != Status.DENIED else 0,
        expires_at=row.expires_at,
        connected_at=row.connected_at,
        ended_at=row.ended_at,
        settled_by=row.settled_by,
        dialed=None if dialed is None else str(dialed),
        replayed=replayed,
    )


def state_of(row: SessionRow) -> CallState:
    assert row.hold_id is not None and row.max_minutes is not None
    return CallState(
        hold_id=row.hold_id,
        status=Status(row.status),
        started_at=row.started_at,
        minutes=row.minutes,
        max_minutes=row.max_minutes,
        expires_at=row.expires_at,
        connected_at=row.connected_at,
        ended_at=row.ended_at,
        settled_by=None if row.settled_by is None else SettledBy(row.settled_by),
    )


def fingerprint_of(person_id: str, target: str, channel: Channel) -> str:
    return hashlib.sha256(f"{person_id}\x00{target}\x00{channel}".encode()).hexdigest()


def checked_key(key: str) -> str:
    if not key or not key.strip():
        raise InvalidInput("an idempotency key is required", field="idempotency_key")
    if len(key) > MAX_KEY:
        raise InvalidInput(f"at most {MAX_KEY} characters", field="idempotency_key")
    if any(ord(ch) < 32 for ch in key):
        raise InvalidInput("must not contain control characters", field="idempotency_key")
    return key


def authorize(
    db: Database,
    facility_id: str,
    person_id: str,
    *,
    dialed: str | None = None,
    contact_id: str | None = None,
    channel: Channel | str = Channel.PHONE,
    idempotency_key: str,
    actor: str | Admit,
    at: datetime | None = None,
) -> Call:
    """May ``person_id`` place this call now? If so, hold its allowance.

    An unknown number is refused as ``not_on_list``; it is not an error.

    The set-up is decided at ``at``, or when None (a live set-up) at the
    clock read once the person's ledger is locked: a set-up that waited for
    the lock is decided after every hold taken before it, never at the
    moment it arrived, so its windows hold every earlier hold. Whatever the
    instant, the usage it is decided against is the whole ledger
    (``recording``), so a set-up at an earlier instant than a hold already
    taken still cannot overfill a window that holds both.
    """
    channel = parse_channel(channel)
    if channel not in CALLS:
        raise InvalidInput("a call is by phone or video; visits are booked", field="channel")
    key = checked_key(idempotency_key)
    if (dialed is None) == (contact_id is None):
        raise InvalidInput("give either dialed or contact_id", field="dialed")
    fingerprints: list[str] = []
    try:
        with db.transaction() as session:
            who = actor if isinstance(actor, str) else actor(session)
            chain = person_chain(facility_id, person_id)
            facility, used, head = _open_ledger(session, facility_id, person_id, key, chain)
            at = _now() if at is None else at
            e164 = None if dialed is None else normalize_phone(dialed, facility.country, "dialed")
            fingerprint = fingerprint_of(person_id, e164 or f"contact:{contact_id}", channel)
            fingerprints.append(fingerprint)
            if used:
                earlier = repository.by_idempotency_key(session, facility_id, key)
                assert earlier is not None  # the ledger lock was taken with it seen
                return _answered_before(earlier, fingerprint)
            if e164 is not None:
                contact_id = people.contact_by_phone(session, facility_id, person_id, e164)
            counting: list[dict[str, object]] = []
            if contact_id is None:
                row = _refuse_unknown_number(facility, person_id, channel, e164, at)
            else:
                explained = decide_in(
                    session,
                    facility,
                    person_id,
                    contact_id,
                    channel,
                    at,
                    person_checked=True,
                    recording=True,
                )
                row = _hold(session, facility, explained, at, counting)
            row.idempotency_key = key
            row.request_hash = fingerprint
            also = None
            if counting:
                also = ((ledger.counting_pg(len(counting)),), ledger.counter_params(counting))
            repository.add(session, row, also)
            record_event(
                session,
                facility_id=facility_id,
                chain=chain,
                actor=who,
                tag=authorized_tag(row),
                payload=authorized_payload(row, e164, channel, key),
                at=at,
                head=head,
            )
            return call_of(row)
    except IntegrityError:
        # A set-up with the same key committed while this one decided: the
        # statement that locked the ledger read the keys as they were before it
        # waited for the lock. Answer as the key's first use was answered.
        if not fingerprints:
            raise
        with db.transaction() as session:
            earlier = repository.by_idempotency_key(session, facility_id, key)
        if earlier is None:
            raise
        return _answered_before(earlier, fingerprints[0])


def authorized_tag(row: SessionRow) -> str:
    """The audit tag of a set-up as decided."""
    return f"calls:authorize:{'allowed' if row.status == Status.HELD else 'refused'}"


def authorized_payload(
    row: SessionRow, e164: str | None, channel: Channel, key: str
) -> dict[str, object]:
    """The audit payload of a set-up as decided and written (``row.id`` set)."""
    return {
        "session_id": row.id,
        "hold_id": row.hold_id,
        "contact_id": row.contact_id or None,
        "dialed": e164,
        "channel": str(channel),
        "idempotency_key": key,
        "decision": row.decision,
        "expires_at": row.expires_at,
    }


def _answered_before(earlier: SessionRow, fingerprint: str) -> Call:
    """The answer given to the first use of an idempotency key, if this is the
    same request; a conflict if the key was used for another."""
    if earlier.request_hash != fingerprint:
        raise Conflict(
            "this idempotency key was used for a different call set-up",
            field="idempotency_key",
        )
    return call_of(earlier, replayed=True)


def _open_ledger(
    session: Session, facility_id: str, person_id: str, key: str, chain: str
) -> tuple[Facility, bool, Head | None]:
    """The person's facility, whether ``key`` was used and the head of their audit
    ``chain`` (None if it has none yet), with the person's allowance ledger
    locked, then the head."""
    found = repository.open_ledger(session, facility_id, person_id, key, chain)
    if found is None:
        require_facility(session, facility_id)
        require_person(session, facility_id, person_id)
        raise AssertionError("unreachable: the facility and the person both exist")
    return found


def _refuse_unknown_number(
    facility: Facility,
    person_id: str,
    channel: Channel,
    e164: str | None,
    at: datetime,
) -> SessionRow:
    refused = Decision(allowed=False, reason=Reason.NOT_ON_LIST, rules=())
    decision = model.decision_json(refused, dialed=e164)
    return SessionRow(
        facility_id=facility.id,
        person_id=person_id,
        contact_id="",
        channel=str(channel),
        started_at=at,
        minutes=0,
        status=Status.DENIED,
        reason=str(Reason.NOT_ON_LIST),
        charged_to=None,
        governed_by=[],
        decision=decision,
        recorded_at=at,
        source="telephony",
    )


def _hold(
    session: Session,
    facility: Facility,
    explained: ExplainedDecision,
    at: datetime,
    counting: list[dict[str, object]],
) -> SessionRow:
    """The set-up as decided, its hold (if allowed) added to the ledger; on
    PostgreSQL the counters are left in ``counting`` for the set-up's INSERT to
    add (one round trip fewer)."""
    decision = explained.decision
    held = None
    reserved = None
    change = model.charged_usage(
        decision, explained.rules, at, decision.max_minutes or 0, facility.zone
    )
    if change is not None:
        held = new_hold(decision, at)
        reserved = _reserve(session, explained, change, counting).as_json()
    return decided_row(
        facility, explained.person_id, explained.contact_id, explained.channel, decision, at,
        held, reserved,
    )  # fmt: skip


def new_hold(decision: Decision, at: datetime) -> CallState:
    """The hold an allowed set-up takes at ``at``, under a new hold id."""
    return model.hold(f"h_{uuid.uuid4().hex}", at, decision.max_minutes or 0, hold_timeout())


def decided_row(
    facility: Facility,
    person_id: str,
    contact_id: str,
    channel: Channel,
    decision: Decision,
    at: datetime,
    held: CallState | None,
    reserved: dict[str, object] | None,
) -> SessionRow:
    """The set-up as decided at ``at``: with its hold, if any, and the
    reservation the hold made (``Reservation.as_json``)."""
    return SessionRow(
        facility_id=facility.id,
        person_id=person_id,
        contact_id=contact_id,
        channel=str(channel),
        started_at=at,
        minutes=0 if held is None else held.minutes,
        status=Status.DENIED if held is None else held.status,
        reason=None if decision.reason is None else str(decision.reason),
        charged_to=decision.charged_to,
        governed_by=list(decision.governed_by),
        decision=model.decision_json(decision),
        recorded_at=at,
        source="telephony",
        hold_id=None if held is None else held.hold_id,
        max_minutes=None if held is None else held.max_minutes,
        expires_at=None if held is None else held.expires_at,
        reserved=reserved,
    )


def _reserve(
    session: Session,
    explained: ExplainedDecision,
    change: UsageChange,
    counting: list[dict[str, object]],
) -> Reservation:
    """Add a hold's ``change`` to the ledger, and say where it went so that it can
    be settled: the rolling entries' ids, and each gap mark as it stood (the
    marks the decision read; the person's ledger has been locked since). On
    PostgreSQL its counter rows go to ``counting`` instead of being written."""
    assert explained.usage.ahead, "a hold is decided against the ledger as it stands"
    added = model.usage_added([(explained.person_id, change)])
    deferred = session.get_bind().dialect.name == "postgresql"
    if deferred:
        counting.extend(ledger.counter_rows(explained.facility_id, added))
    ids = ledger.write_usage(
        session, explained.facility_id, added, entry_ids=True, counters=not deferred
    )
    return model.reservation(change, explained.usage.gaps, ids)


def connect(
    db: Database, facility_id: str, hold_id: str, *, actor: str | Admit, at: datetime
) -> Call:
    """The call has connected: its hold now lasts until its last allowed minute."""
    return _step(db, facility_id, hold_id, actor, at, lambda s: model.connect(s, at, end_grace()))


def end(
    db: Database,
    facility_id: str,
    hold_id: str,
    seconds: int,
    *,
    actor: str | Admit,
    at: datetime,
) -> Call:
    """The call has ended after ``seconds``: charge whole minutes, rounded up, at
    most ``max_minutes``. An end reported without a connect connects and ends."""
    checked_seconds(seconds)
    return _step(db, facility_id, hold_id, actor, at, lambda s: model.end(s, seconds, at))


def checked_seconds(seconds: int) -> int:
    """A call's reported length, or InvalidInput naming ``seconds``."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
        raise InvalidInput("must be a whole number of seconds, zero or more", field="seconds")
    if seconds > MAX_SECONDS:
        raise InvalidInput(f"at most {MAX_SECONDS} seconds", field="seconds")
    return seconds


def release(
    db: Database, facility_id: str, hold_id: str, *, actor: str | Admit, at: datetime
) -> Call:
    """The call never connected: take its hold back, charging nothing."""
    return _step(db, facility_id, hold_id, actor, at, lambda s: model.release(s, at))


def _step(
    db: Database,
    facility_id: str,
    hold_id: str,
    actor: str | Admit,
    at: datetime,
    transition: Callable[[CallState], Step],
) -> Call:
    """One step of the call path: lock the ledger and the set-up, ask the model what
    the step does, write it back. A hold found lapsed is expired (committed),
    then answered with a conflict."""
    with db.transaction() as session:
        who = actor if isinstance(actor, str) else actor(session)
        row, head = _locked(session, facility_id, hold_id)
        if row.hold_id is None or row.max_minutes is None:
            raise NotFound(f"no call set-up {hold_id!r}", field="hold_id")
        step = transition(state_of(row))
        if step.replayed:
            return call_of(row, replayed=True)
        _apply(session, row, step, who, at, head)
        if not step.lapsed:
            return call_of(row)
    raise Conflict(f"hold {hold_id!r} expired before the call connected", field="hold_id")


@dataclass(frozen=True, slots=True)
class SweepReport:
    expired: int
    settled: int


def sweep(db: Database, *, at: datetime, actor: str = "kinline:sweep") -> SweepReport:
    """Expire holds that never connected and settle connected calls whose end
    never came, each at its ``max_minutes``; each in its own transaction."""
    with db.transaction() as session, cross_facility("call-sweep"):
        due = repository.due(session, at)
    expired = settled = 0
    for facility_id, hold_id in due:
        with db.transaction() as session:
            row, head = _locked(session, facility_id, hold_id)
            if row.hold_id is None or row.max_minutes is None:
                continue
            step = model.sweep(state_of(row), at)
            if step.replayed:
                continue
            _apply(session, row, step, actor, at, head)
            if step.state.status == Status.EXPIRED:
                expired += 1
            else:
                settled += 1
    return SweepReport(expired, settled)


def get_call(db: Database, facility_id: str, hold_id: str) -> Call:
    with db.transaction() as session:
        row = repository.by_hold_id(session, facility_id, hold_id)
        if row is None:
            raise NotFound(f"no call set-up {hold_id!r}", field="hold_id")
        return call_of(row)


def _locked(session: Session, facility_id: str, hold_id: str) -> tuple[SessionRow, Head | None]:
    """The call set-up, with its person's ledger locked, then the head of their
    audit chain (None if it has none yet)."""
    found = repository.lock_by_hold_id(session, facility_id, hold_id)
    if found is None:
        raise NotFound(f"no call set-up {hold_id!r}", field="hold_id")
    row, locked = found
    if locked is None:
        return row, None
    chain, head = locked
    # The statement names the chain as audit.chain does; a head of any other
    # name is not used (record_event then locks the right one itself).
    return row, head if chain == person_chain(row.facility_id, row.person_id) else None


def _apply(
    session: Session,
    row: SessionRow,
    step: Step,
    actor: str,
    at: datetime,
    head: Head | None = None,
) -> None:
    """Write a step back: settle the ledger if it settles, then the set-up and its event."""
    settled, extra = stepped(row, step)
    also = None
    if settled is not None:
        # On PostgreSQL the counters are settled by the set-up's own UPDATE (one
        # CTE per counter: so each must be a different row).
        deferred = (
            session.get_bind().dialect.name == "postgresql"
            and bool(settled.counters)
            and len(set(settled.counters)) == len(settled.counters)
        )
        if deferred:
            counters = ledger.settled_counters(row.facility_id, row.person_id, settled)
            also = (ledger.settling_pg(len(counters)), ledger.counter_params(counters))
        ledger.settle_usage(session, row.facility_id, row.person_id, settled, counters=not deferred)
    repository.save(session, row, also)
    assert step.tag is not None
    _event(session, row, step.tag, actor, at, extra, head)


def stepped(row: SessionRow, step: Step) -> tuple[Settlement | None, dict[str, object]]:
    """Put the step's state on ``row``; what it settles of the hold (None if
    nothing), and what its audit event says beyond the set-up's ids."""
    state = step.state
    settled = None
    extra: dict[str, object] = {}
    if step.settles:
        settled = model.settlement(
            model.Reservation.from_json(row.reserved),
            started_at=row.started_at,
            held_minutes=row.minutes,
            minutes=step.settle_to,
        )
        row.reserved = settled.reservation.as_json()
        extra = {"minutes": state.minutes, "settled_by": str(state.settled_by)}
    row.status = str(state.status)
    row.minutes = state.minutes
    row.expires_at = state.expires_at
    row.connected_at = state.connected_at
    row.ended_at = state.ended_at
    row.settled_by = None if state.settled_by is None else str(state.settled_by)
    return settled, extra


def event_of(row: SessionRow, extra: dict[str, object]) -> dict[str, object]:
    """The payload of a step's audit event."""
    return {"session_id": row.id, "hold_id": row.hold_id, **extra}


def _event(
    session: Session,
    row: SessionRow,
    tag: str,
    actor: str,
    at: datetime,
    extra: dict[str, object],
    head: Head | None,
) -> None:
    record_event(
        session,
        facility_id=row.facility_id,
        chain=person_chain(row.facility_id, row.person_id),
        actor=actor,
        tag=tag,
        payload=event_of(row, extra),
        at=at,
        head=head,
    )
