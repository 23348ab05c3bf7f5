"""Routes of decisions (scope ``read``) and of the call path, for the telephony
platform (scope ``telephony``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from kinline import access
from kinline.access import Access, Params, allowed
from kinline.calls.path import Call, authorize, connect, end, get_call, release
from kinline.calls.schemas import (
    AuthorizeIn,
    AuthorizeOut,
    CallOut,
    DecisionOut,
    EndIn,
    RuleExplained,
)
from kinline.calls.service import ExplainedDecision, decide_contact
from kinline.db.engine import Database
from kinline.errors import NotFound
from kinline.http import in_thread, moment
from kinline.identity.model import Action, Record, Target
from kinline.people.model import Facility
from kinline.people.service import get_contact
from kinline.rules.periods import local

decisions_router = APIRouter(prefix="/v1", tags=["decisions"])


def decision_target(db: Database, place: Facility, params: Params) -> Target:
    """A decision about a person and one of their contacts (privileged or not)."""
    person_id, contact_id = params.get("person_id"), params.get("contact_id")
    privileged = False
    if contact_id:
        try:
            found = get_contact(db, place.id, contact_id, at=datetime.now(UTC))
        except NotFound:
            pass
        else:
            privileged = found.contact.privileged
    return Target(
        place.id, Record.DECISION, person_id=person_id, contact_id=contact_id, privileged=privileged
    )


def call_target(db: Database, place: Facility, params: Params) -> Target:
    found = get_call(db, place.id, params["hold_id"])
    return Target(place.id, Record.CALL, person_id=found.person_id)


CallPath = Annotated[Access, allowed(Action.CALL_SETUP, access.calls)]


def decision_out(explained: ExplainedDecision, place: Facility) -> DecisionOut:
    decision = explained.decision
    return DecisionOut(
        person_id=explained.person_id,
        contact_id=explained.contact_id,
        channel=str(explained.channel),
        at=local(explained.at, place.zone).isoformat(),
        allowed=decision.allowed,
        reason=None if decision.reason is None else str(decision.reason),
        rules=list(decision.rules),
        charged_to=decision.charged_to,
        max_minutes=decision.max_minutes,
        monitoring=None if decision.monitoring is None else str(decision.monitoring),
        interpreter=decision.interpreter,
        setting=None if decision.setting is None else str(decision.setting),
        conflicts=list(decision.conflicts),
        explanation=[
            RuleExplained(
                id=rule.id,
                authority=str(rule.authority),
                kind=str(rule.kind),
                text=rule.text,
                role="conflict" if rule.id in decision.conflicts else "responsible",
            )
            for rule in explained.explained()
        ],
    )


@decisions_router.get("/decisions", response_model=DecisionOut)
def decide(
    person_id: Annotated[str, Query(max_length=64)],
    contact_id: Annotated[str, Query(max_length=64)],
    grant: Annotated[Access, allowed(Action.DECISION_READ, decision_target)],
    channel: Annotated[str, Query(max_length=16)] = "phone",
    at: Annotated[str | None, Query(max_length=64)] = None,
) -> DecisionOut:
    """Whether ``person_id`` may contact ``contact_id`` now (or at ``at``), and why."""
    place = grant.facility
    explained = decide_contact(
        grant.db, place.id, person_id, contact_id, channel, at=moment(at, place)
    )
    return decision_out(explained, place)


calls_router = APIRouter(prefix="/v1/calls", tags=["calls"])
HoldId = Annotated[str, Path(max_length=40, description="From the authorize answer")]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _call_out(call: Call) -> CallOut:
    assert call.hold_id is not None
    return CallOut(
        hold_id=call.hold_id,
        state=str(call.state),
        person_id=call.person_id,
        contact_id=call.contact_id,
        channel=call.channel,
        max_minutes=call.decision.max_minutes,
        minutes=call.minutes,
        connected_at=_iso(call.connected_at),
        ended_at=_iso(call.ended_at),
        expires_at=_iso(call.expires_at),
        settled_by=call.settled_by,
    )


@calls_router.post("/authorize", response_model=AuthorizeOut)
async def authorize_call(body: AuthorizeIn, place: CallPath) -> AuthorizeOut:
    """May this call connect, for how long, under what monitoring? When it may, its
    allowance is held at once; connect, end or release the hold. An unknown number
    is `allowed: false, reason: not_on_list`, not an error."""
    call = await in_thread(
        authorize,
        place.db,
        place.facility.id,
        body.person_id,
        dialed=body.dialed,
        contact_id=body.contact_id,
        channel=body.channel,
        idempotency_key=body.idempotency_key,
        actor=place.actor,
    )
    d = call.decision
    return AuthorizeOut(
        allowed=d.allowed,
        reason=None if d.reason is None else str(d.reason),
        rules=list(d.rules),
        hold_id=call.hold_id,
        max_minutes=d.max_minutes,
        monitoring=None if d.monitoring is None else str(d.monitoring),
        interpreter=d.interpreter,
        charged_to=d.charged_to,
        conflicts=list(d.conflicts),
        contact_id=call.contact_id,
        expires_at=_iso(call.expires_at) if call.hold_id else None,
        replayed=call.replayed,
    )


@calls_router.post("/{hold_id}/connect", response_model=CallOut)
async def connect_call(hold_id: HoldId, place: CallPath) -> CallOut:
    """The call has connected; it must end within its max_minutes."""
    at, actor = datetime.now(UTC), place.actor
    call = await in_thread(connect, place.db, place.facility.id, hold_id, actor=actor, at=at)
    return _call_out(call)


@calls_router.post("/{hold_id}/end", response_model=CallOut)
async def end_call(hold_id: HoldId, body: EndIn, place: CallPath) -> CallOut:
    """The call has ended: whole minutes are charged, rounded up, never above max_minutes."""
    at, actor = datetime.now(UTC), place.actor
    call = await in_thread(
        end, place.db, place.facility.id, hold_id, body.seconds, actor=actor, at=at
    )
    return _call_out(call)


@calls_router.post("/{hold_id}/release", response_model=CallOut)
async def release_call(hold_id: HoldId, place: CallPath) -> CallOut:
    """The call never connected: the hold is given back and nothing is charged."""
    at, actor = datetime.now(UTC), place.actor
    call = await in_thread(release, place.db, place.facility.id, hold_id, actor=actor, at=at)
    return _call_out(call)


@calls_router.get("/{hold_id}", response_model=CallOut)
async def read_call(
    hold_id: HoldId, place: Annotated[Access, allowed(Action.CALL_READ, call_target)]
) -> CallOut:
    """Where a call set-up stands."""
    return _call_out(await in_thread(get_call, place.db, place.facility.id, hold_id))
