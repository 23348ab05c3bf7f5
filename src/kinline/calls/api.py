"""Routes of decisions (scope ``read``) and of the call path, for the telephony
platform (scope ``telephony``)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Path, Query
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse

from kinline import access
from kinline.access import Access, Params, allowed, check
from kinline.bounds import CODE_CHARS, ID_CHARS, NAME_CHARS
from kinline.calls.path import Admit, Call, authorize, connect, end, get_call, release
from kinline.calls.rounds import Ending, SetUp, run_round
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
from kinline.errors import KinlineError, NotFound
from kinline.http import database_unavailable, domain_problem, in_thread, moment
from kinline.identity.model import Action, Record, Target
from kinline.identity.service import authenticate_in
from kinline.limits import BodyCaps, replay
from kinline.people.model import Facility
from kinline.people.service import get_contact
from kinline.rules.periods import local

log = logging.getLogger("kinline.api")
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


def _call_json(call: Call) -> dict[str, Any]:
    """A call set-up as ``CallOut`` shows it."""
    assert call.hold_id is not None
    return {
        "hold_id": call.hold_id,
        "state": str(call.state),
        "person_id": call.person_id,
        "contact_id": call.contact_id,
        "channel": call.channel,
        "max_minutes": call.decision.max_minutes,
        "minutes": call.minutes,
        "connected_at": _iso(call.connected_at),
        "ended_at": _iso(call.ended_at),
        "expires_at": _iso(call.expires_at),
        "settled_by": call.settled_by,
    }


def _call_out(call: Call) -> CallOut:
    return CallOut(**_call_json(call))


def _authorized_json(call: Call) -> dict[str, Any]:
    """An authorize answer as ``AuthorizeOut`` shows it."""
    answer = call.decision.as_dict()
    del answer["setting"]  # a visit's; a call has none
    answer["hold_id"] = call.hold_id
    answer["contact_id"] = call.contact_id
    answer["expires_at"] = _iso(call.expires_at) if call.hold_id else None
    answer["replayed"] = call.replayed
    return answer


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
    return AuthorizeOut(**_authorized_json(call))


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


# --- the lean route of the two hot operations ---------------------------------
#
# ``POST /v1/calls/authorize`` and ``POST /v1/calls/{hold_id}/end`` are the
# telephony platform's every call. ``LeanCallPath`` answers a plain request to
# either (a bearer token, ``facility_id`` in the query, a small JSON body of the
# documented shape) without the framework's routing, dependencies and models,
# and reads the token inside the call's own transaction: one thread hand-off
# and one transaction per request instead of two. It is the same operation, by
# the same functions (``authorize``, ``end``, ``access.check``), answered as the
# routes above answer it (their OpenAPI stays the contract), and a domain error
# is problem+json by ``http.domain_problem``. Anything else (no token or one
# refused, another facility, a body the models would refuse, a token whose use
# is due to be recorded) is handed to the routes above, with the body as read,
# so every refusal is worded by the one place that words it.

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LEAN_BODY_BYTES = 16 * 1024
_PREFIX = "/v1/calls/"
_AUTHORIZE = "/v1/calls/authorize"
_END = "/end"
_HOLD_CHARS = 40  # HoldId's max_length
_AUTHORIZE_FIELDS = {
    # name: (required, nullable, min length, max length), as AuthorizeIn says
    "person_id": (True, False, 1, ID_CHARS),
    "dialed": (False, True, 1, ID_CHARS),
    "contact_id": (False, True, 1, ID_CHARS),
    "channel": (False, False, 0, CODE_CHARS),
    "idempotency_key": (True, False, 1, NAME_CHARS),
}


class Declined(Exception):
    """The lean route leaves this request to the full route."""


def _admit(secret: str, facility_id: str, at: datetime) -> Admit:
    """Admit a bearer token to the facility's call path inside the step's
    transaction, as ``access.Guard`` with ``access.calls`` admits it; the token's
    use is never written here (``authenticate_in``)."""

    def admit(session: Session) -> str:
        subject = authenticate_in(session, secret, at=at, record_use=False)
        if subject is None or facility_id not in subject.facilities():
            raise Declined
        try:
            # What ``access.calls`` locates for a set-up: the facility's call path.
            check(subject, Action.CALL_SETUP, Target(facility_id, Record.CALL))
        except KinlineError:
            raise Declined from None
        return subject.actor

    return admit


def _text(body: dict[str, Any], name: str) -> str | None:
    """A field of the authorize body as ``AuthorizeIn`` would take it; Declined
    where the model would refuse it (or coerce it)."""
    required, nullable, shortest, longest = _AUTHORIZE_FIELDS[name]
    if name not in body:
        if required:
            raise Declined
        return None
    value = body[name]
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not shortest <= len(value) <= longest or "\x00" in value:
        raise Declined
    return value


def _lean_authorize(
    db: Database, secret: str, facility_id: str, body: dict[str, Any], at: datetime
) -> dict[str, Any]:
    setup = _setup_of(facility_id, body, _admit(secret, facility_id, at))
    call = authorize(
        db,
        facility_id,
        setup.person_id,
        dialed=setup.dialed,
        contact_id=setup.contact_id,
        channel=setup.channel,
        idempotency_key=setup.idempotency_key,
        actor=setup.actor,
    )
    return _authorized_json(call)


def _setup_of(facility_id: str, body: dict[str, Any], admit: Admit) -> SetUp:
    """The authorize body as a set-up; Declined where the model would refuse it."""
    if not body.keys() <= _AUTHORIZE_FIELDS.keys():
        raise Declined
    person_id = _text(body, "person_id")
    key = _text(body, "idempotency_key")
    assert person_id is not None and key is not None
    return SetUp(
        facility_id,
        person_id,
        _text(body, "dialed"),
        _text(body, "contact_id"),
        _text(body, "channel") or "phone",
        key,
        actor=admit,
    )


Queued = tuple[str, str, str | None, dict[str, Any], datetime]
"""A request queued for a round: the token, the facility, the hold id (None:
an authorize; else the end of that hold), the body and when it arrived."""


def _lean_round(db: Database, queued: list[Queued]) -> list[dict[str, Any] | BaseException]:
    """Each queued request's answer (or what it raised), in order: those a round
    takes in one transaction (``calls.rounds``), the rest one at a time after
    it, as ``_lean_authorize`` and ``_lean_end`` answer them.

    A token is admitted once a round per facility, at the latest instant any of
    its requests arrived: admitted then, it was at every earlier one."""
    latest: dict[tuple[str, str], datetime] = {}
    for secret, facility_id, _hold, _body, at in queued:
        latest[(secret, facility_id)] = max(at, latest.get((secret, facility_id), at))
    admits = {place: _once(_admit(*place, at)) for place, at in latest.items()}
    setups: list[tuple[int, SetUp]] = []
    endings: list[tuple[int, Ending]] = []
    for index, (secret, facility_id, hold_id, body, at) in enumerate(queued):
        admit = admits[(secret, facility_id)]
        try:
            if hold_id is None:
                setups.append((index, _setup_of(facility_id, body, admit)))
            else:
                seconds = _seconds(body)
                endings.append((index, Ending(facility_id, hold_id, seconds, admit, at)))
        except Declined:
            continue
    decided, ended = run_round(db, [s for _, s in setups], [e for _, e in endings])
    answers: list[dict[str, Any] | BaseException | None] = [None] * len(queued)
    for (index, _setup), call in zip(setups, decided, strict=True):
        answers[index] = None if call is None else _authorized_json(call)
    for (index, _ending), call in zip(endings, ended, strict=True):
        answers[index] = None if call is None else _call_json(call)
    done: list[dict[str, Any] | BaseException] = []
    for (secret, facility_id, hold_id, body, at), answer in zip(queued, answers, strict=True):
        if answer is None:
            try:
                if hold_id is None:
                    answer = _lean_authorize(db, secret, facility_id, body, at)
                else:
                    answer = _lean_end(db, secret, facility_id, hold_id, body, at)
            except Exception as error:
                answer = error
        done.append(answer)
    return done


def _once(admit: Admit) -> Admit:
    """``admit`` run once per session (a round's transaction), its answer or
    refusal kept for the round's other set-ups on the same token."""
    seen: dict[int, str | BaseException] = {}

    def admitted(session: Session) -> str:
        key = id(session)
        if key not in seen:
            try:
                seen[key] = admit(session)
            except Exception as error:
                seen[key] = error
        answer = seen[key]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return admitted


class Rounds:
    """A worker's rounds of authorize and end requests: each request is queued and awaits
    its answer; up to ``tasks`` rounds run at once, each taking everything
    queued when it starts and running it as one round (``_lean_round``) in a
    database thread, so requests collect while a round commits. A round's task
    starts when a request finds fewer running and ends when nothing is queued:
    nothing outlives the requests. One event loop's: its futures and tasks
    are that loop's."""

    def __init__(self, db: Database, tasks: int) -> None:
        self.db = db
        self.tasks = tasks
        self.queued: list[tuple[Queued, asyncio.Future[dict[str, Any]]]] = []
        self.running: set[asyncio.Task[None]] = set()

    async def answer(self, queued: Queued) -> dict[str, Any]:
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.queued.append((queued, answer))
        self.running = {task for task in self.running if not task.done()}
        if len(self.running) < self.tasks:
            task = asyncio.create_task(self._run())
            self.running.add(task)
            task.add_done_callback(self.running.discard)
        return await answer

    async def _run(self) -> None:
        while self.queued:
            items, self.queued = self.queued, []
            try:
                done = await in_thread(_lean_round, self.db, [queued for queued, _ in items])
            except Exception as error:
                done = [error] * len(items)
            for (_queued, answer), result in zip(items, done, strict=True):
                if answer.done():
                    continue  # its client went away
                if isinstance(result, BaseException):
                    answer.set_exception(result)
                else:
                    answer.set_result(result)


def round_tasks() -> int:
    """How many rounds of set-ups and ends a worker runs at once
    (``KINLINE_CALL_ROUNDS``, 1: while one commits, the next collects); 0:
    each request in its own transaction."""
    return max(0, int(os.environ.get("KINLINE_CALL_ROUNDS", "1")))


def switch_interval() -> float:
    """How long, in seconds, a thread holds the GIL while another waits for it
    (``KINLINE_GIL_SWITCH_MS``, 0.5; CPython's own is 5). A round's thread waits
    for the GIL each time a statement answers, while the event loop's thread
    parses requests: with CPython's 5 ms, a round of ten statements could wait
    longer for the GIL than for PostgreSQL. Measured in bench/authorize.py:
    267.9 pairs/s at 5 ms, 317.8 at 0.5 ms, in one session."""
    return float(os.environ.get("KINLINE_GIL_SWITCH_MS", "0.5")) / 1000


def _seconds(body: dict[str, Any]) -> int:
    """The end body's seconds as ``EndIn`` takes them; Declined where it would refuse."""
    seconds = body.get("seconds")
    if body.keys() != {"seconds"} or type(seconds) is not int or not 0 <= seconds <= 86_400:
        raise Declined
    return seconds


def _lean_end(
    db: Database, secret: str, facility_id: str, hold_id: str, body: dict[str, Any], at: datetime
) -> dict[str, Any]:
    seconds = _seconds(body)
    call = end(db, facility_id, hold_id, seconds, actor=_admit(secret, facility_id, at), at=at)
    return _call_json(call)


class LeanCallPath:
    """ASGI middleware: the lean route of authorize and end (see above); every
    other request goes to ``app`` untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.body_bytes = min(LEAN_BODY_BYTES, BodyCaps.from_env().signed_in)
        self.round_tasks = round_tasks()
        # One worker serves one event loop; a test client may run several, one
        # after another or at once, each with its own rounds.
        self.rounds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Rounds] = (
            weakref.WeakKeyDictionary()
        )
        if self.round_tasks:
            sys.setswitchinterval(switch_interval())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        path: str = scope["path"]
        hold_id = None
        if path != _AUTHORIZE:
            if not (path.startswith(_PREFIX) and path.endswith(_END)):
                return await self.app(scope, receive, send)
            hold_id = path[len(_PREFIX) : -len(_END)]
            if not 0 < len(hold_id) <= _HOLD_CHARS or "/" in hold_id or "\x00" in hold_id:
                return await self.app(scope, receive, send)
        secret, length, json_body = None, None, False
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                secret = token.strip() if scheme.lower() == "bearer" else None
            elif name == b"content-length":
                length = int(value) if value.isdigit() else None
            elif name == b"content-type":
                json_body = value.lower().startswith(b"application/json")
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        if (
            not secret
            or not json_body
            or length is None
            or length > self.body_bytes
            or len(query) != 1
            or query[0][0] != "facility_id"
            or not 0 < len(query[0][1]) <= ID_CHARS
            or "\x00" in query[0][1]
        ):
            return await self.app(scope, receive, send)
        facility_id = query[0][1]
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        try:
            body = json.loads(raw) if len(raw) == length else None
        except (ValueError, RecursionError):  # not JSON, or nested past reading
            body = None
        if not isinstance(body, dict):
            return await self.app(scope, replay(raw, receive), send)
        try:
            db = scope["app"].state.db
            at = datetime.now(UTC)
            if self.round_tasks and db.dialect == "postgresql":
                loop = asyncio.get_running_loop()
                rounds = self.rounds.get(loop)
                if rounds is None:
                    rounds = self.rounds[loop] = Rounds(db, self.round_tasks)
                answer = await rounds.answer((secret, facility_id, hold_id, body, at))
            elif hold_id is None:
                answer = await in_thread(_lean_authorize, db, secret, facility_id, body, at)
            else:
                answer = await in_thread(_lean_end, db, secret, facility_id, hold_id, body, at)
        except Declined:
            return await self.app(scope, replay(raw, receive), send)
        except KinlineError as error:
            return await domain_problem(error)(scope, receive, send)
        except (OperationalError, PoolTimeout) as error:
            log.warning("database unavailable: %s", str(error).splitlines()[0])
            return await domain_problem(database_unavailable(error))(scope, receive, send)
        await JSONResponse(answer)(scope, receive, send)
