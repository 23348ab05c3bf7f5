"""Call set-ups per second over HTTP, against the floor PostgreSQL sets: pgbench.

What is measured
    kinline served as in production (uvicorn, ``--workers`` = CPU count, no
    reload, no access log) on a scratch PostgreSQL database holding one
    facility, N people (10,000 by default) each with one contact approved for
    phone, and one facility-policy grant for everyone (100,000 calls a month,
    30 minutes each), so every set-up is allowed. An asyncio client (one
    process, on uvloop when installed; a lean HTTP/1.1 keep-alive client of its
    own, ``Line``, over loopback) plays the telephony platform: for a
    random person it asks ``POST /v1/calls/authorize`` with the number dialed,
    and, once answered, ``POST /v1/calls/{hold_id}/end`` with the seconds
    talked. Every authorize must answer ``allowed: true`` with a ``hold_id``
    and every end 200, or the run exits 1. The client keeps ``--clients``
    keep-alive connections, spread evenly over the workers (see ``open_lines``:
    uvicorn's workers share one listening socket, and a burst of connections
    tends to land on one of them; ``--unbalanced`` shows that case).

    1. pgbench, on the same server, before kinline starts, with as many
       clients as the load generator (``--clients``) for ``--pgbench-seconds``:
       one single-row conditional UPDATE per transaction, on a table of N
       allowances::

           UPDATE allowance SET used = used + 1 WHERE id = :id AND used < cap;

    2. Peak: after ``--warmup`` pairs and an ANALYZE (the setup analyzed the
       tables before any session was written; a live database's statistics
       are kept current by autovacuum), a closed loop at ``--clients``
       concurrent pairs, bounded by ``--pairs`` and ``--seconds``.
       Authorizations per second is pairs completed over the time taken (each
       pair is one authorization; its end is part of the cost, as in
       production every hold is settled). Latency is of the authorize request
       alone.
    3. Half the peak: an open loop, arrivals at fixed intervals at half the
       rate just measured; latency is counted from each arrival's scheduled
       time, so a stall delays the whole queue behind it and shows in p99
       (no coordinated omission).

    The server's peak resident memory (master and workers summed, from
    ``/proc``) is sampled throughout. To show where time goes, the CPU time
    used per pair by the server, by the database's PostgreSQL backends and by
    the load generator is printed, with how busy the whole machine was (other
    work on it skews every figure) and each worker's share. The last line is
    ``ratio ours/pgbench: X.XXX``: authorizations per second over pgbench's
    transactions per second. The issue's targets: ratio >= 0.25, authorize
    p99 <= 25 ms at half the peak rate, RSS <= 400 MB.

Why pgbench's conditional UPDATE is the floor
    A call set-up must reserve allowance atomically (two set-ups racing for
    the last call of a quota must not both win) and durably (a hold the
    platform was told about survives a crash). The least work that does both
    on PostgreSQL is one statement that checks and takes the allowance in one
    row, committed on its own: one round trip, one row lock, one WAL flush.
    Anything that also decides by rules, keeps an audit trail and speaks HTTP
    does at least that per set-up, so the cost of that statement is the floor
    of the cost of a set-up, and pgbench's rate for it (a C client, on the
    same server, at the same concurrency) the ceiling of any service's rate on
    this database; the ratio says what fraction of it kinline reaches. Two
    things weigh against kinline and are part of what is measured: a call is
    two requests (authorize and end), hence at least two commits where
    pgbench has one, and the load generator is Python sharing the CPUs with
    the server where pgbench's client is lean C; the CPU figures show how much
    of the machine each side took.

The load generator
    It is kept lean because it shares the CPUs with the server: httpx, used
    before, took about 2.5 ms of CPU per pair on a 2-CPU machine, which would
    saturate it at the rates now measured. ``Line`` writes each request in one
    piece with its fixed headers (host, ``authorization: Bearer``) encoded once
    and reads the answer by ``content-length`` (or chunks); an answer with
    ``connection: close``, a broken or refused connection, a timeout or a
    malformed answer is counted as a ``transport`` error and the line opens a
    new connection for its next request. Its CPU is still charged per pair
    ("load generator").

The floor, served over the same HTTP
    ``--app _floor:create_app`` serves ``bench/_floor.py`` instead of kinline:
    a raw ASGI app that answers the same requests doing nothing but the
    durable, atomic ledger work, batched (one SQL statement and commit per
    round per worker, for every request that arrived meanwhile), with no
    rules, decisions or idempotency. What it reaches is about what any Python
    HTTP service doing that much durable work reaches on this machine, with
    this load generator; kinline's figure is best read against it as well as
    against pgbench::

        .venv/bin/python bench/authorize.py --app _floor:create_app
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Coroutine, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from _population import copy_people, libpq
from _scale import (
    HISTORY_DAYS,
    Explained,
    add_history,
    check_copy,
    explain,
    report_plans,
    rolling_limit,
    statements,
    table_sizes,
)
from _statements import ENVIRONMENT as STATEMENTS_FILE
from _support import (
    CpuMeter,
    PgbenchResult,
    PostgresServer,
    RssSampler,
    backends_of,
    connections_by_process,
    free_port,
    is_spawned_worker,
    machine_busy_seconds,
    percentile,
    prepare_allowance,
    process_tree,
    run_pgbench,
    wait_for,
)
from kinline.changes.service import impose_rule
from kinline.db.engine import Database
from kinline.identity.service import create_token
from kinline.people.model import Facility, Person
from kinline.people.service import add_contact, admit_person, register_facility
from kinline.rules.model import Channel, Contact

VENV_BIN = Path(sys.executable).parent
BENCH_DIR = Path(__file__).resolve().parent  # on the server's PYTHONPATH, for --app
HOST = "127.0.0.1"
FACILITY = Facility(id="bench", name="Benchmark facility", timezone="America/Denver")
ACTOR = "bench"
FLOOR_APP = "_floor:create_app"
GRANT = {
    "id": "bench-phone",
    "authority": "facility_policy",
    "kind": "grant",
    "channel": "phone",
    "person": "all",
    "contacts": "any",
    "quota": {"count": 100_000, "per": "month"},
    "max_minutes": 30,
    "text": "Phone calls to approved contacts, 30 minutes each.",
}
TARGET_RATIO = 0.25
TARGET_P99_MS = 25.0
TARGET_RSS_MB = 400.0
TARGET_DROP = 0.20  # the rate on the large setup, against the base, in --scale
BALANCE_ATTEMPTS = 20  # connections opened per one kept, at most, to spread them
# Connections opened, counted when each closes. (Its transaction and row counts are
# not read: a pooled connection reports them late, up to 10 s after going idle.)
DATABASE_COUNTERS = "SELECT sessions FROM pg_stat_database WHERE "
Namespace = argparse.Namespace
T = TypeVar("T")


@dataclass(frozen=True)
class Caller:
    """Someone the load generator calls for: a person and the number they dial."""

    person_id: str
    dialed: str


def phone_of(index: int) -> tuple[str, str]:
    """The contact's number as stored and as a caller might dial it."""
    exchange, line = 200 + index // 10_000, index % 10_000
    return f"+1 303 {exchange:03d} {line:04d}", f"(303) {exchange:03d}-{line:04d}"


def admit(db: Database, index: int, at: datetime) -> Caller:
    """Person ``index`` and their one contact, approved for phone."""
    person_id = f"p{index:05d}"
    admit_person(db, Person(FACILITY.id, person_id, f"Person {index}", "en"), at=at, actor=ACTOR)
    stored, dialed = phone_of(index)
    contact = Contact(
        id=f"c{index:05d}",
        person=person_id,
        relationship="parent",
        approved=frozenset({Channel.PHONE}),
    )
    add_contact(
        db, FACILITY.id, contact, name=f"Parent of {index}", phones=[stored], at=at, actor=ACTOR
    )
    return Caller(person_id, dialed)


def admit_many(url: str, indices: range, at: datetime, threads: int) -> list[Caller]:
    """Admit people ``indices`` on ``threads`` threads (run in a process of its own)."""
    db = Database(url, pool_size=threads, max_overflow=0)
    try:
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(lambda index: admit(db, index, at), indices))
    finally:
        db.dispose()


def setup_at() -> datetime:
    """When the facility, its people and rules were set up: before any history."""
    return datetime.now(UTC) - timedelta(days=HISTORY_DAYS + 2)


def populate(
    url: str, people: int, processes: int, threads: int, history_person: str | None = None
) -> tuple[list[Caller], str]:
    """The facility, its people, one approved contact each, the grant, and a
    telephony token, through kinline's own services (audit events and all).
    People are admitted by several processes, as the services are CPU-bound.
    With ``history_person``, that person's calls are also governed by a rolling
    limit (``_scale.rolling_limit``), so their history has rolling entries."""
    at = setup_at()
    db = Database(url)
    try:
        register_facility(db, FACILITY, at=at, actor=ACTOR)
        chunks = [range(first, people, processes) for first in range(processes)]
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(processes, mp_context=spawn) as pool:
            parts = [pool.submit(admit_many, url, chunk, at, threads) for chunk in chunks]
            callers = sorted(
                chain.from_iterable(part.result() for part in parts),
                key=lambda caller: caller.person_id,
            )
        impose_rule(db, FACILITY.id, GRANT, at=at, actor=ACTOR, in_force_at_start=True)
        if history_person is not None:
            limit = rolling_limit(history_person)
            impose_rule(db, FACILITY.id, limit, at=at, actor=ACTOR, in_force_at_start=True)
        token_at = datetime.now(UTC) - timedelta(days=1)
        _caller, secret = create_token(db, "bench-telephony", "telephony", at=token_at)
    finally:
        db.dispose()
    return callers, secret


def weighted(callers: list[Caller], args: Namespace) -> list[Caller]:
    """The callers the load picks from: with ``--history``, the history person
    (the first) repeated so as to be ``--history-share`` of the calls."""
    if not args.history or not callers:
        return callers
    share = min(max(args.history_share, 0.0), 0.5)
    extra = round(share * len(callers) / (1 - share))
    return callers + [callers[0]] * extra


def grow(
    url: str, pg: PostgresServer, database: str, callers: list[Caller], args: Namespace
) -> None:
    """The large setup on top of the base: people ``--people`` to ``--population``
    written by COPY (``_population``), while the first caller's ``--history``
    calls go through the call path (``_scale.add_history``); then VACUUM ANALYZE."""
    if args.population <= args.people and not args.history:
        return
    started = time.perf_counter()
    at = setup_at()
    with ThreadPoolExecutor(1) as pool:
        history = None
        if args.history:
            until = datetime.now(UTC) - timedelta(days=1)
            first = callers[0]
            history = pool.submit(
                add_history,
                url,
                FACILITY.id,
                first.person_id,
                first.dialed,
                args.history,
                until,
                ACTOR,
            )
        copied = 0
        if args.population > args.people:
            people = range(args.people, args.population)
            copied = copy_people(
                libpq(url),
                FACILITY.id,
                FACILITY.country,
                people,
                at,
                ACTOR,
                phone_of,
                args.copy_processes,
            )
            print(f"COPY: {copied:,} more people in {time.perf_counter() - started:.1f} s")
        if history is not None:
            seconds = history.result()
            print(
                f"history: {args.history:,} calls of {callers[0].person_id} over"
                f" {HISTORY_DAYS} days through the call path, in {seconds:.1f} s"
            )
    pg.psql(database, "VACUUM ANALYZE", "CHECKPOINT")
    print(
        f"large setup: {max(args.population, args.people):,} people,"
        f" {args.history:,} sessions of history, in {time.perf_counter() - started:.1f} s"
    )


def check_copy_rows(pg: PostgresServer, args: Namespace, people: int = 3) -> bool:
    """Set ``people`` up through the services and by COPY in two scratch databases
    and compare every table; print the verdict; True if they differ."""
    at = setup_at()
    with (
        pg.scratch_database("kinline_bench_made") as made,
        pg.scratch_database("kinline_bench_copied") as copied,
    ):
        for name in (made, copied):
            migrate(pg.url(name))
            db = Database(pg.url(name))
            try:
                register_facility(db, FACILITY, at=at, actor=ACTOR)
            finally:
                db.dispose()
        found = check_copy(
            pg.url(made),
            pg.url(copied),
            FACILITY.id,
            FACILITY.country,
            range(people),
            at,
            ACTOR,
            phone_of,
            admit,
        )
    if found:
        print("COPY's rows differ from the services':", *found, sep="\n  ", file=sys.stderr)
        return True
    print(f"COPY's rows: the same as the services' for {people} people, every table")
    return False


@dataclass
class Phase:
    """What one phase of load saw."""

    name: str
    pairs: int = 0
    seconds: float = 0.0
    authorize_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    postgres_cpu: float = 0.0
    machine_cpu: float = 0.0
    worker_cpu: list[float] = field(default_factory=list)
    connections: int = 0

    @property
    def rate(self) -> float:
        return self.pairs / self.seconds if self.seconds else 0.0

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        self.examples.setdefault(kind, detail[:300])

    def p(self, fraction: float) -> float:
        return percentile(self.authorize_ms, fraction)


class TransportError(Exception):
    """A request got no proper answer: the connection could not be opened, broke,
    timed out or was closed by the server, or the answer was not HTTP/1.x."""


class Line:
    """One HTTP/1.1 keep-alive connection to the server, like one of the telephony
    platform's lines to kinline: requests go one at a time, each answer read in
    full before the next request is sent.

    A lean client, so the load generator takes as little as it can of the CPUs it
    shares with the server: the fixed headers are encoded once, a request is one
    write, and an answer is read with two or three calls on an asyncio stream.
    It understands ``content-length`` and ``transfer-encoding: chunked`` bodies.
    Whenever the exchange fails (refused, reset, timed out, malformed) or the
    server answers with ``connection: close``, the request raises
    :class:`TransportError` and the connection is dropped; the next request opens
    a new one. A connection the server closed while it was idle (its keep-alive
    timeout) is opened again before the next request without an error, and
    counted in ``reopened``.
    """

    def __init__(self, host: str, port: int, token: str, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._fixed = f"host: {host}:{port}\r\nauthorization: Bearer {token}\r\n".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.reopened = 0

    async def request(
        self, method: str, target: str, json_body: object = None
    ) -> tuple[int, bytes]:
        """Send ``method target`` (path and query), with ``json_body`` as JSON if
        given; the answer's status and body."""
        head = f"{method} {target} HTTP/1.1\r\n".encode() + self._fixed
        if json_body is not None:
            payload = json.dumps(json_body, separators=(",", ":")).encode()
            message = b"%scontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
                head,
                len(payload),
                payload,
            )
        elif method in ("POST", "PUT", "PATCH"):
            message = head + b"content-length: 0\r\n\r\n"
        else:
            message = head + b"\r\n"
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await self._ready()
                writer.write(message)
                status, body, close = await self._answer(reader, method)
        except TransportError:
            self._drop()
            raise
        except (OSError, EOFError, asyncio.LimitOverrunError, ValueError) as error:
            # TimeoutError is an OSError; IncompleteReadError an EOFError.
            self._drop()
            kind = "timed out" if isinstance(error, TimeoutError) else type(error).__name__
            raise TransportError(f"{kind}: {error}") from error
        except BaseException:  # cancelled mid-exchange: the connection's state is unknown
            self._drop()
            raise
        if close:
            self._drop()
            raise TransportError(
                f"the server closed the connection after answering {status}: {body[:200]!r}"
            )
        return status, body

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()

    async def _ready(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is not None and self._writer is not None:
            if not self._reader.at_eof():
                return self._reader, self._writer
            self._drop()  # closed by the server while idle
            self.reopened += 1
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    def _drop(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()

    @staticmethod
    async def _answer(reader: asyncio.StreamReader, method: str) -> tuple[int, bytes, bool]:
        """Status, body, and whether the server will close the connection."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")  # ends with two empty items
        version, _, rest = lines[0].partition(b" ")
        if not version.startswith(b"HTTP/1."):
            raise TransportError(f"not an HTTP/1.x answer: {lines[0][:100]!r}")
        status = int(rest[:3])
        if status < 200:
            raise TransportError(f"unexpected interim answer: {lines[0][:100]!r}")
        length, chunked, close = -1, False, version == b"HTTP/1.0"
        for line in lines[1:-2]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                value = value.lower()
                close = b"close" in value or (close and b"keep-alive" not in value)
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif chunked:
            body = await Line._chunks(reader)
        elif length >= 0:
            body = await reader.readexactly(length)
        else:  # delimited by the end of the connection
            body, close = await reader.read(), True
        return status, body, close

    @staticmethod
    async def _chunks(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            parts.append((await reader.readexactly(size + 2))[:-2])


class Workload:
    """One unit of load: authorize then end a call (or, with ``read``, fetch a person)."""

    def __init__(self, callers: Sequence[Caller], args: Namespace) -> None:
        self.callers = callers
        self.kind = args.workload
        self.connect = args.connect
        self.query = "?" + urlencode({"facility_id": FACILITY.id})
        self.random = random.Random(args.seed)
        self.run = f"{os.getpid()}-{time.time_ns()}"
        self.count = 0

    async def pair(self, line: Line, phase: Phase, started: float | None = None) -> None:
        """One pair on ``line``; the authorize latency is from ``started`` (default: now)."""
        caller = self.random.choice(self.callers)
        self.count += 1
        started = time.perf_counter() if started is None else started
        try:
            if self.kind == "read":
                await self._read(line, phase, caller, started)
            else:
                await self._call(line, phase, caller, started)
        except TransportError as error:
            phase.error("transport", str(error))

    async def _read(self, line: Line, phase: Phase, caller: Caller, started: float) -> None:
        status, body = await line.request("GET", f"/v1/people/{caller.person_id}{self.query}")
        phase.authorize_ms.append((time.perf_counter() - started) * 1000)
        if status != 200:
            phase.error(f"read {status}", text(body))

    async def _call(self, line: Line, phase: Phase, caller: Caller, started: float) -> None:
        status, body = await line.request(
            "POST",
            f"/v1/calls/authorize{self.query}",
            {
                "person_id": caller.person_id,
                "dialed": caller.dialed,
                "channel": "phone",
                "idempotency_key": f"bench-{self.run}-{self.count}",
            },
        )
        phase.authorize_ms.append((time.perf_counter() - started) * 1000)
        if status != 200:
            phase.error(f"authorize {status}", text(body))
            return
        answer = json_object(body)
        hold_id = answer.get("hold_id")
        if answer.get("allowed") is not True or not hold_id:
            phase.error(f"authorize refused ({answer.get('reason')})", text(body))
            return
        if self.connect:
            status, body = await line.request("POST", f"/v1/calls/{hold_id}/connect{self.query}")
            if status != 200:
                phase.error(f"connect {status}", text(body))
                return
        status, body = await line.request(
            "POST",
            f"/v1/calls/{hold_id}/end{self.query}",
            {"seconds": self.random.randint(30, 1200)},
        )
        if status != 200:
            phase.error(f"end {status}", text(body))


def text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def json_object(body: bytes) -> dict[str, Any]:
    """The answer's JSON object; an empty one when the body is not one (counted as
    refused by the caller, with the body as the example)."""
    try:
        answer = json.loads(body)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


async def closed_loop(
    work: Workload, lines: Sequence[Line], phase: Phase, pairs: int, seconds: float
) -> None:
    """One loop per line, each starting a pair when its last one is answered."""
    deadline = time.perf_counter() + seconds
    remaining = pairs

    async def loop(line: Line) -> None:
        nonlocal remaining
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            await work.pair(line, phase)
            phase.pairs += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(line) for line in lines))
    phase.seconds = time.perf_counter() - started


async def open_loop(
    work: Workload,
    lines: Sequence[Line],
    phase: Phase,
    rate: float,
    pairs: int,
    seconds: float,
) -> None:
    """Pairs arriving every ``1 / rate`` seconds, whether or not earlier ones are done;
    each takes the line idle longest, or waits for one (that wait counts as latency)."""
    count = max(1, min(pairs, int(rate * seconds)))
    interval = 1.0 / rate
    idle: asyncio.Queue[Line] = asyncio.Queue()
    for line in lines:
        idle.put_nowait(line)
    tasks: set[asyncio.Task[None]] = set()

    async def one(scheduled: float) -> None:
        line = await idle.get()
        try:
            await work.pair(line, phase, started=scheduled)
        finally:
            idle.put_nowait(line)
        phase.pairs += 1

    started = time.perf_counter()
    for index in range(count):
        scheduled = started + index * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    phase.seconds = time.perf_counter() - started


@dataclass(frozen=True)
class Meters:
    """What is read around each phase: the server's processes, the scratch
    database's backends, and how many connections to it were opened."""

    pg: PostgresServer
    database: str
    server_root: int
    port: int

    def server(self) -> list[int]:
        return process_tree(self.server_root)

    def workers(self) -> list[int]:
        """The uvicorn worker processes (the master itself when it serves alone)."""
        spawned = [pid for pid in self.server() if is_spawned_worker(pid)]
        return spawned or [self.server_root]

    def connections_opened(self) -> int:
        named = f"datname = '{self.database}'"  # a name we made: kinline_bench_<hex>
        return int(self.pg.psql("postgres", DATABASE_COUNTERS + named).strip())


async def measured(phase: Phase, load: Awaitable[None], meters: Meters) -> Phase:
    """Run one phase's load, charging to it the CPU time each side used and the
    connections to the database opened meanwhile."""
    server, postgres = CpuMeter(meters.server), CpuMeter(lambda: backends_of(meters.database))
    server.start()
    postgres.start()
    connections = meters.connections_opened()
    client_start, machine_start = time.process_time(), machine_busy_seconds()
    await load
    phase.client_cpu = time.process_time() - client_start
    phase.machine_cpu = machine_busy_seconds() - machine_start
    by_process = server.stop()
    phase.server_cpu = sum(by_process.values())
    phase.worker_cpu = [by_process.get(pid, 0.0) for pid in meters.workers()]
    phase.postgres_cpu = sum(postgres.stop().values())
    phase.connections = meters.connections_opened() - connections
    return phase


@dataclass
class Lines:
    """The load generator's HTTP connections: one keep-alive connection per line,
    like the telephony platform's lines to kinline."""

    clients: list[Line]
    by_worker: list[int]
    opened: int

    async def close(self) -> None:
        for line in self.clients:
            await line.close()


async def greet(line: Line) -> None:
    """Open ``line``'s connection with one request, so the worker that accepted it holds it."""
    status, body = await line.request("GET", "/v1/facilities")
    if status not in (200, 403):  # a telephony token authenticates but may not list them
        raise RuntimeError(f"GET /v1/facilities answered {status}: {text(body)[:300]}")


async def open_lines(secret: str, args: Namespace, meters: Meters) -> Lines:
    """Open ``--clients`` connections, spread evenly over the workers.

    uvicorn's workers share one listening socket and asyncio accepts every
    pending connection at once, so connections opened in a burst tend to land
    on one worker and stay there (keep-alive), leaving the others idle; which
    worker accepts even a lone connection is up to the kernel. Unless
    ``--unbalanced``, connections are opened one at a time, and one that lands
    on a worker already holding its share is closed and opened again. Where a
    connection landed is read from ``/proc``: the worker holding a server-side
    socket of the port that none held before the connection's first answer.
    """
    workers = meters.workers()
    wanted: int = args.clients
    base, extra = divmod(wanted, len(workers))  # `extra` workers hold one more
    kept: list[Line] = []
    holds: Counter[int] = Counter()

    def has_room(worker: int) -> bool:
        above = sum(1 for pid in workers if holds[pid] > base)
        return holds[worker] < base or (holds[worker] == base and above < extra)

    def line() -> Line:
        return Line(HOST, meters.port, secret, args.timeout)

    if args.unbalanced:
        kept = [line() for _ in range(args.clients)]
        await asyncio.gather(*(greet(client) for client in kept))
        held = connections_by_process(meters.port, workers)
        return Lines(kept, [len(held[pid]) for pid in workers], len(kept))
    seen = set().union(*connections_by_process(meters.port, workers).values())
    opened = 0
    try:
        while len(kept) < args.clients and opened < BALANCE_ATTEMPTS * args.clients:
            client = line()
            await greet(client)
            opened += 1
            now = connections_by_process(meters.port, workers)
            landed = [pid for pid in workers if now[pid] - seen]
            seen.update(*now.values())
            if not landed or has_room(landed[0]):
                kept.append(client)
                holds.update(landed[:1])
            else:
                await client.close()
    except BaseException:
        await Lines(kept, [], opened).close()
        raise
    held = connections_by_process(meters.port, workers)
    return Lines(kept, [len(held[pid]) for pid in workers], opened)


@dataclass
class Run:
    warm: Phase
    peak: Phase
    half: Phase
    lines: list[int]
    opened: int
    reopened: int = 0
    event_loop: str = ""


async def drive(secret: str, callers: Sequence[Caller], args: Namespace, meters: Meters) -> Run:
    """Warm up, then the peak phase, then the open loop at half the peak rate."""
    run = Run(Phase("warm-up"), Phase("peak"), Phase("half peak"), [], 0)
    lines = await open_lines(secret, args, meters)
    run.lines, run.opened = lines.by_worker, lines.opened
    work = Workload(callers, args)
    try:
        await closed_loop(work, lines.clients, run.warm, args.warmup, seconds=120)
        if run.warm.errors:
            return run
        # The setup analyzed the tables while the sessions were none; the
        # warm-up wrote some. Statistics as autovacuum keeps them in service
        # (it analyzes a table within a minute of such growth), so that the
        # measured phases run on the plans a live database runs on.
        await asyncio.to_thread(meters.pg.psql, meters.database, "ANALYZE")
        load = closed_loop(work, lines.clients, run.peak, args.pairs, args.seconds)
        await measured(run.peak, load, meters)
        if run.peak.errors or not run.peak.pairs:
            return run
        rate = run.peak.rate / 2
        load = open_loop(work, lines.clients, run.half, rate, args.pairs, args.seconds)
        await measured(run.half, load, meters)
    finally:
        run.reopened = sum(line.reopened for line in lines.clients)
        await lines.close()
    return run


def run_load(main: Coroutine[Any, Any, T]) -> tuple[T, str]:
    """Run the load generator's event loop: uvloop's when it is installed (it
    takes less CPU per request than asyncio's), else asyncio's; and which."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main), "asyncio"
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main), "uvloop"


def migrate(url: str) -> None:
    subprocess.run(
        [str(VENV_BIN / "kinline"), "db", "upgrade", "--database-url", url],
        check=True,
        capture_output=True,
        timeout=300,
    )


def start_server(app: str, url: str, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    """uvicorn as in production: several workers, no reload, no access log."""
    command = [
        str(VENV_BIN / "uvicorn"),
        app,
        "--factory",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    # bench/ goes on the path too, so ``--app _floor:create_app`` can be found.
    path = os.pathsep.join(filter(None, (os.environ.get("PYTHONPATH"), str(BENCH_DIR))))
    env = {**os.environ, "KINLINE_DATABASE_URL": url, "PYTHONPATH": path}
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def server_ready(base_url: str, secret: str) -> bool:
    ask = urllib.request.Request(  # noqa: S310 (our own http:// URL)
        f"{base_url}/v1/facilities", headers={"Authorization": f"Bearer {secret}"}
    )
    # Up once it authenticates the token: a telephony token may not list the
    # facilities (403), which still says the worker answered and read the token.
    try:
        with urllib.request.urlopen(ask, timeout=2) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except urllib.error.HTTPError as error:
        return error.code == 403
    except (urllib.error.URLError, OSError):
        return False


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def report_phase(phase: Phase, unit: str) -> None:
    """Where the CPU went: per pair, and how busy the machine was (others included)."""
    pairs, seconds = max(phase.pairs, 1), max(phase.seconds, 1e-9)
    ours = phase.server_cpu + phase.postgres_cpu + phase.client_cpu
    print(
        f"  cpu per {unit}: server {phase.server_cpu / pairs * 1000:.2f} ms,"
        f" postgres backends {phase.postgres_cpu / pairs * 1000:.2f} ms,"
        f" load generator {phase.client_cpu / pairs * 1000:.2f} ms;"
        f" CPUs busy: these {ours / seconds:.2f}, whole machine"
        f" {phase.machine_cpu / seconds:.2f} of {os.cpu_count()}"
    )
    if len(phase.worker_cpu) > 1:
        shares = " / ".join(f"{cpu / seconds:.2f}" for cpu in phase.worker_cpu)
        print(f"  CPUs used by each worker: {shares}")
    if phase.connections:
        print(
            f"  connections to PostgreSQL opened during the phase: {phase.connections}"
            " (the server's pool churns; their backends' CPU is not counted above)"
        )


def report_errors(phases: Sequence[Phase]) -> int:
    total = 0
    for phase in phases:
        total += sum(phase.errors.values())
        for kind, count in phase.errors.most_common():
            print(f"  {phase.name}: {count} x {kind}, e.g. {phase.examples[kind]}", file=sys.stderr)
    return total


def parse_args(argv: Sequence[str] | None) -> Namespace:
    cpus = os.cpu_count() or 1
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="Needs a PostgreSQL server with trust authentication and pgbench on PATH.",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=16,
        help="concurrent pairs at the peak, HTTP connections, and pgbench clients (default 16)",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=20_000,
        help="most authorize+end pairs per phase (default 20000)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=30.0,
        help="most seconds per phase, peak and half peak each (default 30)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=500,
        help="pairs run before measuring, to open connections and warm caches (default 500)",
    )
    parser.add_argument(
        "--people",
        type=int,
        default=10_000,
        help="people set up, each with one approved phone contact; also pgbench's rows"
        " (default 10000)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=cpus,
        help=f"uvicorn worker processes (default: the CPU count, {cpus})",
    )
    parser.add_argument(
        "--app",
        default="kinline.api:create_app",
        help="the app factory uvicorn serves, as module:function (default"
        " kinline.api:create_app); another one, on PYTHONPATH or in bench/, can try a"
        " change without editing kinline; _floor:create_app serves the floor (see"
        " bench/_floor.py)",
    )
    parser.add_argument(
        "--no-floor",
        action="store_true",
        help=f"serve only --app; by default {FLOOR_APP} is served after it, in the same"
        " run, and the last line is the ratio of their rates",
    )
    parser.add_argument(
        "--pgbench-seconds",
        type=int,
        default=10,
        help="how long pgbench runs (-T; default 10)",
    )
    parser.add_argument(
        "--pgbench-protocol",
        choices=("simple", "extended", "prepared"),
        default="simple",
        help="pgbench's query protocol (-M; default simple, pgbench's own default)",
    )
    parser.add_argument(
        "--pg-host", default="127.0.0.1", help="PostgreSQL host (default 127.0.0.1)"
    )
    parser.add_argument("--pg-port", type=int, default=5432, help="PostgreSQL port (default 5432)")
    parser.add_argument(
        "--pg-user", default="postgres", help="PostgreSQL user, trust auth (default postgres)"
    )
    parser.add_argument(
        "--setup-processes",
        type=int,
        default=cpus,
        help=f"processes that set the people up through the services (default {cpus})",
    )
    parser.add_argument(
        "--setup-threads",
        type=int,
        default=4,
        help="threads in each of those processes (default 4)",
    )
    parser.add_argument(
        "--workload",
        choices=("calls", "read"),
        default="calls",
        help="calls: authorize+end pairs (the benchmark); read: GET /v1/people/{id} instead,"
        " the cost of HTTP, auth and one lookup alone (default calls)",
    )
    parser.add_argument(
        "--connect",
        action="store_true",
        help="also POST /v1/calls/{hold_id}/connect between authorize and end",
    )
    parser.add_argument(
        "--unbalanced",
        action="store_true",
        help="open the HTTP connections all at once and keep whatever split over the"
        " workers results (by default they are spread evenly; see open_lines)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds before a request fails (default 30)"
    )
    parser.add_argument(
        "--seed", type=int, default=20240301, help="seed of the people called and call lengths"
    )
    parser.add_argument(
        "--population",
        type=int,
        default=0,
        help="people in the database in all: those beyond --people are written by COPY"
        " (as the services write them) and not called (default: --people only)",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="sessions of two years' history given to the first person, through the call"
        " path, with a rolling limit on their calls (default 0)",
    )
    parser.add_argument(
        "--history-share",
        type=float,
        default=0.01,
        help="the share of the calls made for the history person (default 0.01)",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="measure kinline on the base setup (--people), then grow it to --population"
        " (default 1000000) with --history (default 20000) and measure again; print both"
        " rates, the drop and the large database's plans of the call path's statements",
    )
    parser.add_argument(
        "--copy-processes",
        type=int,
        default=cpus,
        help=f"processes making the COPY'd people's rows (default {cpus})",
    )
    parser.add_argument(
        "--explain-pairs",
        type=int,
        default=200,
        help="pairs of the short run whose statements are counted and EXPLAINed (--scale;"
        " 0: none; default 200)",
    )
    args = parser.parse_args(argv)
    if args.scale:
        args.population = args.population or 1_000_000
        args.history = args.history or 20_000
    return args


def report(args: Namespace, run: Run, bench: PgbenchResult, rss_mb: float, server_log: str) -> int:
    """Print the figures, the ratio last; 1 if any answer was an error."""
    warm, peak, half = run.warm, run.peak, run.half
    what = "authorize" if args.workload == "calls" else "read"
    done = "authorizations" if args.workload == "calls" else "reads"
    unit = "pair" if args.workload == "calls" else "read"
    how = "opened together" if args.unbalanced else f"{run.opened} opened to spread them"
    print(f"HTTP connections per worker: {' + '.join(map(str, run.lines))} ({how})")
    print(f"load generator: one process, {run.event_loop} event loop, lean HTTP/1.1 client")
    if run.reopened:
        print(
            f"  connections the server closed while idle, opened again: {run.reopened}"
            " (each landed on whichever worker accepted it)"
        )
    if peak.pairs:
        print(
            f"peak: closed loop, {args.clients} clients: {peak.pairs} {unit}s"
            f" in {peak.seconds:.1f} s"
        )
        print(f"{done} per second (peak): {peak.rate:,.1f}")
        print(f"{what} latency at peak: p50 {peak.p(0.5):.1f} ms, p99 {peak.p(0.99):.1f} ms")
        report_phase(peak, unit)
    else:
        print("peak: not measured, the warm-up had errors")
    if half.pairs:
        print(
            f"half peak: open loop at {half.rate:,.1f}/s, {half.pairs} {unit}s"
            f" in {half.seconds:.1f} s"
        )
        print(
            f"{what} latency at half peak: p50 {half.p(0.5):.1f} ms, p99 {half.p(0.99):.1f} ms"
            f" (target <= {TARGET_P99_MS:.0f} ms)"
        )
        report_phase(half, unit)
    else:
        print("half peak: not measured, after errors")
    print(
        f"server peak RSS: {rss_mb:.1f} MB (uvicorn master + {args.workers} workers;"
        f" target <= {TARGET_RSS_MB:.0f} MB)"
    )
    print(f"pgbench tps: {bench.tps:,.1f}")
    errors = report_errors((warm, peak, half))
    if "Traceback" in server_log:
        print(f"server log:\n{server_log[-3000:]}", file=sys.stderr)
    print(f"errors: {errors}")
    ratio = peak.rate / bench.tps if bench.tps else 0.0
    met = {
        f"ratio >= {TARGET_RATIO}": ratio >= TARGET_RATIO,
        f"p99 at half peak <= {TARGET_P99_MS:.0f} ms": half.p(0.99) <= TARGET_P99_MS,
        f"RSS <= {TARGET_RSS_MB:.0f} MB": rss_mb <= TARGET_RSS_MB,
    }
    print(
        "targets: " + "; ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in met.items())
    )
    print(f"ratio ours/pgbench: {ratio:.3f}")
    return 1 if errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pg = PostgresServer(args.pg_host, args.pg_port, args.pg_user)
    with (
        tempfile.TemporaryDirectory(prefix="kinline-bench-") as tmp,
        pg.scratch_database("kinline_bench") as database,
    ):
        workdir = Path(tmp)
        url = pg.url(database)
        started = time.perf_counter()
        migrate(url)
        if args.population > args.people or args.scale:
            failed = check_copy_rows(pg, args)
            if failed:
                return 1
        history_person = "p00000" if args.history else None
        callers, secret = populate(
            url, args.people, args.setup_processes, args.setup_threads, history_person
        )
        prepare_allowance(pg, database, args.people, cap=2_000_000_000)
        pg.psql(database, "VACUUM ANALYZE", "CHECKPOINT")
        print(
            f"setup: database {database}, {len(callers)} people with one approved phone"
            f" contact each, one facility grant, in {time.perf_counter() - started:.1f} s"
        )
        load = weighted(callers, args)
        if not args.scale:
            grow(url, pg, database, callers, args)

        bench = run_pgbench(
            pg,
            database,
            clients=args.clients,
            threads=min(args.clients, os.cpu_count() or 1),
            seconds=args.pgbench_seconds,
            rows=args.people,
            protocol=args.pgbench_protocol,
            workdir=workdir,
        )
        print(
            f"pgbench: {bench.tps:,.0f} tps ({args.clients} clients, {args.pgbench_seconds} s,"
            f" -M {args.pgbench_protocol}; {bench.transactions} transactions, {bench.failed}"
            f" failed, {bench.latency_ms:.2f} ms average)"
        )
        pg.psql(database, "CHECKPOINT")
        if args.scale:
            return scale(args, pg, database, secret, callers, bench, workdir)

        runs: dict[str, tuple[Run, float, str]] = {}
        apps = [args.app] if args.app == FLOOR_APP or args.no_floor else [args.app, FLOOR_APP]
        for app in apps:
            served = serve_and_load(app, url, pg, database, secret, load, args, workdir)
            if served is None:
                return 1
            runs[app] = served
            pg.psql(database, "CHECKPOINT")

    status = 0
    for app, (run, rss_mb, server_log) in runs.items():
        print(f"--- {app} ---")
        status |= report(args, run, bench, rss_mb, server_log)
    if len(runs) == 2:
        ours, floor = runs[args.app][0].peak.rate, runs[FLOOR_APP][0].peak.rate
        print(f"{args.app}: {ours:,.1f} pairs/s; {FLOOR_APP}: {floor:,.1f} pairs/s (same run)")
        print(f"ratio kinline/floor: {ours / floor if floor else 0.0:.3f}")
    return status


def scale(
    args: Namespace,
    pg: PostgresServer,
    database: str,
    secret: str,
    callers: list[Caller],
    bench: PgbenchResult,
    workdir: Path,
) -> int:
    """``--scale``: kinline on the base setup, then on the large one, in one run; the
    plans of the call path's statements on the large database; both rates and the
    drop, the ratio large/base last."""
    url = pg.url(database)
    load = weighted(callers, args)
    base = serve_and_load(args.app, url, pg, database, secret, load, args, workdir)
    if base is None:
        return 1
    grow(url, pg, database, callers, args)
    large = serve_and_load(args.app, url, pg, database, secret, load, args, workdir)
    if large is None:
        return 1
    sampled = sample_statements(url, secret, load, args, workdir) if args.explain_pairs else None
    status = 0
    for name, (run, rss_mb, server_log) in (("base", base), ("large", large)):
        print(f"--- {args.app}, {name} ---")
        status |= report(args, run, bench, rss_mb, server_log)
    plans_ok = True
    if sampled is not None:
        plans_ok = report_plans(*sampled)
    base_rate, large_rate = base[0].peak.rate, large[0].peak.rate
    ratio = large_rate / base_rate if base_rate else 0.0
    share = f"{args.history_share:.0%} of calls" if args.history else "no calls"
    print(f"base: {args.people:,} people: {base_rate:,.1f} pairs/s")
    print(
        f"large: {args.population:,} people, {callers[0].person_id} with {args.history:,}"
        f" sessions of history ({share}): {large_rate:,.1f} pairs/s"
    )
    print(
        f"drop: {1 - ratio:.1%} (target <= {TARGET_DROP:.0%});"
        f" plans: {'index scans only' if plans_ok else 'SEQUENTIAL SCANS'}"
    )
    print(f"ratio large/base: {ratio:.3f}")
    return status


def sample_statements(
    url: str, secret: str, callers: Sequence[Caller], args: Namespace, workdir: Path
) -> tuple[list[Explained], int, dict[str, int]] | None:
    """Serve ``_statements:create_app`` (kinline writing down its SQL), warm it up,
    run ``--explain-pairs`` pairs, and EXPLAIN each distinct statement they ran."""
    prefix = workdir / "statements"
    port = free_port()
    os.environ[STATEMENTS_FILE] = str(prefix)
    server = start_server(
        "_statements:create_app", url, port, args.workers, workdir / "statements.log"
    )
    phase = Phase("statements")
    try:
        if not wait_for(lambda: server_ready(f"http://{HOST}:{port}", secret), timeout=60):
            print("the statements' server did not start", file=sys.stderr)
            return None

        async def run() -> None:
            lines = [Line(HOST, port, secret, args.timeout) for _ in range(4)]
            work = Workload(callers, args)
            try:
                await closed_loop(work, lines, Phase("warm-up"), 100, seconds=60)
                for path in prefix.parent.glob(prefix.name + ".*"):
                    path.write_text("")  # the workers append: only the run's statements stay
                await closed_loop(work, lines, phase, args.explain_pairs, seconds=120)
            finally:
                for line in lines:
                    await line.close()

        run_load(run())
    finally:
        stop_server(server)
        del os.environ[STATEMENTS_FILE]
    runs, first = statements(prefix)
    found = explain(libpq(url), runs, first)
    return found, phase.pairs, table_sizes(libpq(url), found)


def serve_and_load(
    app: str,
    url: str,
    pg: PostgresServer,
    database: str,
    secret: str,
    callers: Sequence[Caller],
    args: Namespace,
    workdir: Path,
) -> tuple[Run, float, str] | None:
    """Serve ``app``, drive the load against it, stop it: the run, the server's
    peak RSS in MB and its log; None if it did not start."""
    port = free_port()
    base_url = f"http://{HOST}:{port}"
    log = workdir / "server.log"
    server = start_server(app, url, port, args.workers, log)
    try:
        if not wait_for(lambda: server_ready(base_url, secret), timeout=60):
            print(f"the server did not start:\n{log.read_text()[-3000:]}", file=sys.stderr)
            return None
        meters = Meters(pg, database, server.pid, port)
        with RssSampler(server.pid) as rss:
            run, event_loop = run_load(drive(secret, callers, args, meters))
            run.event_loop = event_loop
    finally:
        stop_server(server)
    return run, rss.peak / 1e6, log.read_text()


if __name__ == "__main__":
    sys.exit(main())
