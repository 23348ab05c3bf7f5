"""Routes of the call path, for the telephony platform (scope ``telephony``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path

from kinline.holds.schemas import AuthorizeIn, AuthorizeOut, CallOut, EndIn
from kinline.holds.service import Call, authorize, connect, end, get_call, release
from kinline.http import Place, ReaderPlace, TelephonyPlace, in_thread

router = APIRouter(prefix="/v1/calls", tags=["calls"])
HoldId = Annotated[str, Path(max_length=40, description="From the authorize answer")]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _actor(place: Place) -> str:
    return f"token:{place.who.token_id}:{place.who.name}"


def _call_out(call: Call) -> CallOut:
    assert call.hold_id is not None
    max_minutes = call.decision.get("max_minutes")
    return CallOut(
        hold_id=call.hold_id,
        state=str(call.state),
        person_id=call.person_id,
        contact_id=call.contact_id,
        channel=call.channel,
        max_minutes=max_minutes if isinstance(max_minutes, int) else None,
        minutes=call.minutes,
        connected_at=_iso(call.connected_at),
        ended_at=_iso(call.ended_at),
        expires_at=_iso(call.expires_at),
        settled_by=call.settled_by,
    )


@router.post("/authorize", response_model=AuthorizeOut)
async def authorize_call(body: AuthorizeIn, place: TelephonyPlace) -> AuthorizeOut:
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
        actor=_actor(place),
        at=datetime.now(UTC),
    )
    d = call.decision
    return AuthorizeOut.model_validate(
        {
            "allowed": call.allowed,
            "reason": d.get("reason"),
            "rules": d.get("rules", []),
            "hold_id": call.hold_id,
            "max_minutes": d.get("max_minutes"),
            "monitoring": d.get("monitoring"),
            "interpreter": d.get("interpreter"),
            "charged_to": d.get("charged_to"),
            "conflicts": d.get("conflicts", []),
            "contact_id": call.contact_id,
            "expires_at": _iso(call.expires_at) if call.hold_id else None,
            "replayed": call.replayed,
        }
    )


@router.post("/{hold_id}/connect", response_model=CallOut)
async def connect_call(hold_id: HoldId, place: TelephonyPlace) -> CallOut:
    """The call has connected; it must end within its max_minutes."""
    at, actor = datetime.now(UTC), _actor(place)
    call = await in_thread(connect, place.db, place.facility.id, hold_id, actor=actor, at=at)
    return _call_out(call)


@router.post("/{hold_id}/end", response_model=CallOut)
async def end_call(hold_id: HoldId, body: EndIn, place: TelephonyPlace) -> CallOut:
    """The call has ended: whole minutes are charged, rounded up, never above max_minutes."""
    at, actor = datetime.now(UTC), _actor(place)
    call = await in_thread(
        end, place.db, place.facility.id, hold_id, body.seconds, actor=actor, at=at
    )
    return _call_out(call)


@router.post("/{hold_id}/release", response_model=CallOut)
async def release_call(hold_id: HoldId, place: TelephonyPlace) -> CallOut:
    """The call never connected: the hold is given back and nothing is charged."""
    at, actor = datetime.now(UTC), _actor(place)
    call = await in_thread(release, place.db, place.facility.id, hold_id, actor=actor, at=at)
    return _call_out(call)


@router.get("/{hold_id}", response_model=CallOut)
async def read_call(hold_id: HoldId, place: ReaderPlace) -> CallOut:
    """Where a call set-up stands."""
    return _call_out(await in_thread(get_call, place.db, place.facility.id, hold_id))
