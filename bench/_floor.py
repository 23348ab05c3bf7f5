"""The floor: what a Python HTTP service reaches on this machine when it does
almost nothing but one batched, durable statement per round.

Serve it in place of kinline with ``bench/authorize.py --app _floor:create_app``
(the bench puts ``bench/`` on the server's ``PYTHONPATH``). It is a raw ASGI
application, no framework, that answers exactly what the load generator asks,
under the same uvicorn (same workers, HTTP parser and event loop) and over the
same database, so the bench's figures for it are the floor a call set-up
service written in Python can stand on here; kinline's figures are to be read
against it. It has no rules and makes no decisions: everyone may call anyone,
up to an allowance.

What it does for a call, and no less, is what a correct allowance ledger must:
reserve atomically (two set-ups racing for the last of an allowance cannot both
win), durably (a hold the platform was told about survives a crash), and leave
an audit row for each request. Each uvicorn worker keeps ``FLOOR_ROUNDS`` (3)
asyncpg connections, each with a batcher task: a batcher takes every request
queued since it last looked and runs them all in ONE SQL statement, committed on
its own (a single statement outside a transaction block is one transaction,
one WAL flush), then answers each request of the round; with several rounds in
flight the worker is not idle while one waits for its commit:

* ``POST /v1/calls/authorize?facility_id=...`` (body ``person_id``,
  ``dialed``, ``channel``, ``idempotency_key``): the statement locks the
  people's allowance rows ``FOR UPDATE`` in id order (so two workers' rounds
  cannot deadlock), reserves ``MAX_MINUTES`` of each person's allowance for
  each of their calls where it fits under the cap, inserts the holds, and one
  audit row per request whose hash is a sha256 of the hold. It answers
  ``200 {"allowed": true, "hold_id": ..., "max_minutes": 30, ...}``, or
  ``allowed: false, reason: quota_exhausted``.
* ``POST /v1/calls/{hold_id}/end`` (body ``seconds``): in the same statement,
  sets the hold's minutes (``ceil(seconds / 60)``, at most ``MAX_MINUTES``)
  unless it was ended already, gives back to the allowance the part of the
  reservation not used, and inserts an audit row; ``200 {"hold_id": ...,
  "minutes": ...}``, or 404 for a hold unknown or already ended.

Everything else is answered from memory, with no database work:
``GET /v1/facilities`` (the bench's readiness check and how it learns which
worker a connection landed on), ``GET /v1/people/{id}`` (``--workload read``:
HTTP alone) and ``POST /v1/calls/{hold_id}/connect`` (``--connect``; not
recorded). The bearer token must be present but is not checked, idempotency
keys are hashed into the audit row but not enforced, and ``facility_id`` is
ignored.

Its tables (``floor_allowance``, ``floor_holds``, ``floor_audit``) are created
at start-up if missing, under an advisory lock as both workers start at once,
and every person in kinline's ``people`` table gets an allowance of
``CAP`` minutes. The database is the one kinline is given, from
``KINLINE_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Answer = tuple[int, bytes]

MAX_MINUTES = 30
CAP = 1_000_000_000  # minutes of allowance per person: never reached in a bench run
SETUP_LOCK = 0x6B696E6C  # pg_advisory_xact_lock key held while creating the tables
RETRIES = 3  # a round that hits a deadlock or serialization failure is run again
# Rounds in flight per worker, each on its own connection (FLOOR_ROUNDS, default 3).
ROUNDS = max(1, int(os.environ.get("FLOOR_ROUNDS", "3")))

SCHEMA = """
CREATE TABLE IF NOT EXISTS floor_allowance (
    person_id text PRIMARY KEY,
    used int NOT NULL,
    cap int NOT NULL
);
CREATE TABLE IF NOT EXISTS floor_holds (
    hold_id text PRIMARY KEY,
    person_id text NOT NULL,
    minutes int  -- null while the call is open
);
CREATE TABLE IF NOT EXISTS floor_audit (
    id bigserial PRIMARY KEY,
    person_id text NOT NULL,
    tag text NOT NULL,
    hash text NOT NULL
);
"""
FILL = """
INSERT INTO floor_allowance (person_id, used, cap)
SELECT DISTINCT id, 0, $1::int FROM people
ON CONFLICT DO NOTHING
"""

# One round: $1-$3 the authorizations (hold id, person, audit hash), $4-$6 the
# ends (hold id, minutes, audit hash), $7 the minutes a hold reserves. Every
# row of floor_allowance it changes is locked first, in id order, by `locked`;
# `moved` then updates only rows it holds. The outcome: one row per hold taken,
# per hold ended, and per person whose authorizations were refused.
ROUND = """
WITH auth AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS t (hold_id, person_id, hash)
), ending AS (
    SELECT * FROM unnest($4::text[], $5::int[], $6::text[]) AS t (hold_id, minutes, hash)
), ended AS (
    UPDATE floor_holds AS h SET minutes = e.minutes
    FROM ending AS e
    WHERE h.hold_id = e.hold_id AND h.minutes IS NULL
    RETURNING h.hold_id, h.person_id, e.minutes, e.hash
), per AS (
    SELECT person_id, sum(calls)::int AS calls, sum(back)::int AS back
    FROM (
        SELECT person_id, 1 AS calls, 0 AS back FROM auth
        UNION ALL
        SELECT person_id, 0, $7::int - minutes FROM ended
    ) AS moves
    GROUP BY person_id
), locked AS MATERIALIZED (
    SELECT a.person_id, a.used, a.cap
    FROM floor_allowance AS a
    WHERE a.person_id IN (SELECT person_id FROM per)
    ORDER BY a.person_id
    FOR UPDATE
), decided AS (
    SELECT l.person_id, p.calls, p.back,
           l.used - p.back + $7::int * p.calls <= l.cap AS taken
    FROM locked AS l JOIN per AS p USING (person_id)
), moved AS (
    UPDATE floor_allowance AS a
    SET used = a.used - d.back + CASE WHEN d.taken THEN $7::int * d.calls ELSE 0 END
    FROM decided AS d
    WHERE a.person_id = d.person_id
), held AS (
    INSERT INTO floor_holds (hold_id, person_id, minutes)
    SELECT r.hold_id, r.person_id, NULL
    FROM auth AS r JOIN decided AS d USING (person_id)
    WHERE d.taken
    RETURNING hold_id
), audited AS (
    INSERT INTO floor_audit (person_id, tag, hash)
    SELECT r.person_id,
           CASE WHEN d.taken THEN 'authorize:allowed' ELSE 'authorize:refused' END,
           r.hash
    FROM auth AS r LEFT JOIN decided AS d USING (person_id)
    UNION ALL
    SELECT person_id, 'end', hash FROM ended
)
SELECT 'held' AS outcome, hold_id AS id FROM held
UNION ALL SELECT 'ended', hold_id FROM ended
UNION ALL SELECT 'refused', person_id FROM decided WHERE NOT taken
"""

CALL_PATH = re.compile(r"/v1/calls/([A-Za-z0-9_-]{1,40})/(end|connect)")
PERSON_PATH = re.compile(r"/v1/people/([^/]{1,64})")


def database_dsn(url: str) -> str:
    """asyncpg's DSN for a SQLAlchemy URL (``postgresql+psycopg://`` to ``postgresql://``)."""
    return re.sub(r"^postgres(?:ql)?(?:\+\w+)?://", "postgresql://", url)


def answer(status: int, body: object) -> Answer:
    return status, json.dumps(body, separators=(",", ":")).encode()


def problem(status: int, detail: str) -> Answer:
    return answer(status, {"status": status, "detail": detail})


def minutes_of(seconds: int) -> int:
    """Whole minutes charged for a call: rounded up, never above ``MAX_MINUTES``."""
    return min(math.ceil(seconds / 60), MAX_MINUTES)


@dataclass
class Authorize:
    hold_id: str
    person_id: str
    hash: str
    done: asyncio.Future[Answer]


@dataclass
class End:
    hold_id: str
    minutes: int
    hash: str
    done: asyncio.Future[Answer]


@dataclass
class Ledger:
    """One worker's connections to the database and the batchers that use them:
    ``ROUNDS`` rounds in flight at once, each on its own connection, so the
    worker is not left idle while one round waits for its commit."""

    dsn: str
    queued: list[Authorize | End] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    batchers: list[asyncio.Task[None]] = field(default_factory=list)
    tag: str = field(default_factory=lambda: secrets.token_hex(4))  # this worker's hold ids
    count: int = 0

    async def start(self) -> None:
        connection = await asyncpg.connect(self.dsn)
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", SETUP_LOCK)
            await connection.execute(SCHEMA)
            await connection.execute(FILL, CAP)
        self.batchers.append(asyncio.create_task(self._rounds(connection)))
        for _ in range(ROUNDS - 1):
            other = await asyncpg.connect(self.dsn)
            self.batchers.append(asyncio.create_task(self._rounds(other)))

    async def stop(self) -> None:
        for batcher in self.batchers:
            batcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await batcher

    def new_hold_id(self) -> str:
        self.count += 1
        return f"h{self.tag}{self.count:x}"

    def submit(self, job: Authorize | End) -> asyncio.Future[Answer]:
        self.queued.append(job)
        self.wake.set()
        return job.done

    async def _rounds(self, connection: asyncpg.Connection) -> None:
        try:
            while True:
                await self.wake.wait()
                batch, self.queued = self.queued, []
                self.wake.clear()
                if not batch:  # another batcher took what was queued
                    continue
                # A hold ended twice in one round: the second waits for the next one.
                ending: set[str] = set()
                now: list[Authorize | End] = []
                for job in batch:
                    if isinstance(job, End) and job.hold_id in ending:
                        self.queued.append(job)
                        self.wake.set()
                        continue
                    if isinstance(job, End):
                        ending.add(job.hold_id)
                    now.append(job)
                try:
                    connection, outcome = await self._run(connection, now)
                except Exception as error:  # answer the round, keep serving the next ones
                    failed = problem(503, f"the round failed: {type(error).__name__}: {error}")
                    for job in now:
                        if not job.done.done():
                            job.done.set_result(failed)
                    continue
                for job in now:
                    if not job.done.done():
                        job.done.set_result(self._answer(job, outcome))
        finally:
            await connection.close()

    async def _run(
        self, connection: asyncpg.Connection, jobs: list[Authorize | End]
    ) -> tuple[asyncpg.Connection, dict[str, set[str]]]:
        auth = [job for job in jobs if isinstance(job, Authorize)]
        ends = [job for job in jobs if isinstance(job, End)]
        arguments = (
            [job.hold_id for job in auth],
            [job.person_id for job in auth],
            [job.hash for job in auth],
            [job.hold_id for job in ends],
            [job.minutes for job in ends],
            [job.hash for job in ends],
            MAX_MINUTES,
        )
        for attempt in range(RETRIES + 1):
            if connection.is_closed():
                connection = await asyncpg.connect(self.dsn)
            try:
                rows = await connection.fetch(ROUND, *arguments)
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                if attempt == RETRIES:
                    raise
                continue
            outcome: dict[str, set[str]] = {"held": set(), "ended": set(), "refused": set()}
            for row in rows:
                outcome[row["outcome"]].add(row["id"])
            return connection, outcome
        raise AssertionError("unreachable")

    @staticmethod
    def _answer(job: Authorize | End, outcome: dict[str, set[str]]) -> Answer:
        if isinstance(job, End):
            if job.hold_id in outcome["ended"]:
                return answer(
                    200, {"hold_id": job.hold_id, "state": "completed", "minutes": job.minutes}
                )
            return problem(404, f"no open hold {job.hold_id}")
        if job.hold_id in outcome["held"]:
            return answer(
                200,
                {
                    "allowed": True,
                    "reason": None,
                    "hold_id": job.hold_id,
                    "max_minutes": MAX_MINUTES,
                    "replayed": False,
                },
            )
        if job.person_id in outcome["refused"]:
            return answer(
                200,
                {"allowed": False, "reason": "quota_exhausted", "hold_id": None, "replayed": False},
            )
        return problem(404, f"no person {job.person_id}")


class Floor:
    """The ASGI application: routes, validation, and the ledger's batcher."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.ledger: Ledger | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            status, body = await self._route(scope, receive)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.ledger = Ledger(self.dsn)
                    await self.ledger.start()
                except Exception as error:
                    await send({"type": "lifespan.startup.failed", "message": repr(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.ledger is not None:
                    await self.ledger.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _route(self, scope: Scope, receive: Receive) -> Answer:
        if not any(
            name == b"authorization" and value.startswith(b"Bearer ")
            for name, value in scope["headers"]
        ):
            return problem(401, "a bearer token is required")
        method, path = scope["method"], scope["path"]
        if method == "GET":
            if path == "/v1/facilities":
                return answer(200, [{"id": "floor", "name": "The floor"}])
            person = PERSON_PATH.fullmatch(path)
            if person:
                return answer(200, {"id": person[1], "name": "", "language": "en"})
            return problem(404, "not found")
        if method != "POST":
            return problem(405, "method not allowed")
        ledger = self.ledger
        if ledger is None:
            return problem(503, "not started")
        if path == "/v1/calls/authorize":
            body = await read_json(receive)
            person_id = body.get("person_id")
            if not isinstance(person_id, str) or not person_id:
                return problem(422, "person_id is required")
            hold_id = ledger.new_hold_id()
            held = "|".join(
                (
                    hold_id,
                    person_id,
                    str(body.get("dialed")),
                    str(body.get("channel")),
                    str(body.get("idempotency_key")),
                )
            )
            digest = hashlib.sha256(held.encode()).hexdigest()
            return await ledger.submit(
                Authorize(hold_id, person_id, digest, asyncio.get_running_loop().create_future())
            )
        call = CALL_PATH.fullmatch(path)
        if call is None:
            return problem(404, "not found")
        hold_id, action = call[1], call[2]
        if action == "connect":
            return answer(200, {"hold_id": hold_id, "state": "connected"})
        body = await read_json(receive)
        seconds = body.get("seconds")
        if not isinstance(seconds, int) or isinstance(seconds, bool) or not 0 <= seconds <= 86_400:
            return problem(422, "seconds must be a whole number from 0 to 86400")
        minutes = minutes_of(seconds)
        digest = hashlib.sha256(f"{hold_id}|end|{seconds}|{minutes}".encode()).hexdigest()
        return await ledger.submit(
            End(hold_id, minutes, digest, asyncio.get_running_loop().create_future())
        )


async def read_json(receive: Receive) -> dict[str, Any]:
    """The request's body as a JSON object; an empty one when it is not one."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return {}  # the client went away
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    try:
        body = json.loads(b"".join(chunks))
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def create_app() -> Floor:
    """The factory uvicorn calls in each worker (``--factory``)."""
    url = os.environ.get("KINLINE_DATABASE_URL")
    if not url:
        raise RuntimeError("the floor needs KINLINE_DATABASE_URL, a PostgreSQL URL")
    return Floor(database_dsn(url))
