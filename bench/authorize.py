"""Call set-ups per second over HTTP, against the floor PostgreSQL sets: pgbench.

What is measured
    kinline served as in production (uvicorn, ``--workers`` = CPU count, no
    reload, no access log) on a scratch PostgreSQL database holding one
    facility, N people (10,000 by default) each with one contact approved for
    phone, and one facility-policy grant for everyone (100,000 calls a month,
    30 minutes each), so every set-up is allowed. An asyncio client (httpx,
    HTTP/1.1 keep-alive, on loopback) plays the telephony platform: for a
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

    2. Peak: after ``--warmup`` pairs, a closed loop at ``--clients``
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
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path

import httpx

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
from kinline.auth.service import create_token
from kinline.db.engine import Database
from kinline.people.model import Facility, Person
from kinline.people.service import add_contact, admit_person, register_facility
from kinline.policy.service import impose_rule
from kinline.rules.model import Channel, Contact

if importlib.util.find_spec("sniffio") is None:
    # httpcore tries ``import sniffio`` on every request; when it is not installed
    # (anyio no longer needs it) each failed import searches sys.path again, about
    # 1 ms of the load generator's CPU per request here, CPU the server then lacks.
    # A None entry makes the import fail at once, with the same outcome: asyncio.
    sys.modules["sniffio"] = None  # type: ignore[assignment]

VENV_BIN = Path(sys.executable).parent
FACILITY = Facility(id="bench", name="Benchmark facility", timezone="America/Denver")
ACTOR = "bench"
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
BALANCE_ATTEMPTS = 20  # connections opened per one kept, at most, to spread them
# Connections opened, counted when each closes. (Its transaction and row counts are
# not read: a pooled connection reports them late, up to 10 s after going idle.)
DATABASE_COUNTERS = "SELECT sessions FROM pg_stat_database WHERE "
Namespace = argparse.Namespace


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


def populate(url: str, people: int, processes: int, threads: int) -> tuple[list[Caller], str]:
    """The facility, its people, one approved contact each, the grant, and a
    telephony token, through kinline's own services (audit events and all).
    People are admitted by several processes, as the services are CPU-bound."""
    at = datetime.now(UTC) - timedelta(days=1)
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
        _caller, secret = create_token(db, "bench-telephony", "telephony", at=at)
    finally:
        db.dispose()
    return callers, secret


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


class Workload:
    """One unit of load: authorize then end a call (or, with ``read``, fetch a person)."""

    def __init__(self, callers: Sequence[Caller], args: Namespace) -> None:
        self.callers = callers
        self.kind = args.workload
        self.connect = args.connect
        self.query = {"facility_id": FACILITY.id}
        self.random = random.Random(args.seed)
        self.run = f"{os.getpid()}-{time.time_ns()}"
        self.count = 0

    async def pair(
        self, line: httpx.AsyncClient, phase: Phase, started: float | None = None
    ) -> None:
        """One pair on ``line``; the authorize latency is from ``started`` (default: now)."""
        caller = self.random.choice(self.callers)
        self.count += 1
        started = time.perf_counter() if started is None else started
        try:
            if self.kind == "read":
                await self._read(line, phase, caller, started)
            else:
                await self._call(line, phase, caller, started)
        except httpx.HTTPError as error:
            phase.error("transport", f"{type(error).__name__}: {error}")

    async def _read(
        self, line: httpx.AsyncClient, phase: Phase, caller: Caller, started: float
    ) -> None:
        response = await line.get(f"/v1/people/{caller.person_id}", params=self.query)
        phase.authorize_ms.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            phase.error(f"read {response.status_code}", response.text)

    async def _call(
        self, line: httpx.AsyncClient, phase: Phase, caller: Caller, started: float
    ) -> None:
        response = await line.post(
            "/v1/calls/authorize",
            params=self.query,
            json={
                "person_id": caller.person_id,
                "dialed": caller.dialed,
                "channel": "phone",
                "idempotency_key": f"bench-{self.run}-{self.count}",
            },
        )
        phase.authorize_ms.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            phase.error(f"authorize {response.status_code}", response.text)
            return
        answer = response.json()
        hold_id = answer.get("hold_id")
        if answer.get("allowed") is not True or not hold_id:
            phase.error(f"authorize refused ({answer.get('reason')})", response.text)
            return
        if self.connect:
            connected = await line.post(f"/v1/calls/{hold_id}/connect", params=self.query)
            if connected.status_code != 200:
                phase.error(f"connect {connected.status_code}", connected.text)
                return
        ended = await line.post(
            f"/v1/calls/{hold_id}/end",
            params=self.query,
            json={"seconds": self.random.randint(30, 1200)},
        )
        if ended.status_code != 200:
            phase.error(f"end {ended.status_code}", ended.text)


async def closed_loop(
    work: Workload, lines: Sequence[httpx.AsyncClient], phase: Phase, pairs: int, seconds: float
) -> None:
    """One loop per line, each starting a pair when its last one is answered."""
    deadline = time.perf_counter() + seconds
    remaining = pairs

    async def loop(line: httpx.AsyncClient) -> None:
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
    lines: Sequence[httpx.AsyncClient],
    phase: Phase,
    rate: float,
    pairs: int,
    seconds: float,
) -> None:
    """Pairs arriving every ``1 / rate`` seconds, whether or not earlier ones are done;
    each takes the line idle longest, or waits for one (that wait counts as latency)."""
    count = max(1, min(pairs, int(rate * seconds)))
    interval = 1.0 / rate
    idle: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
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
    """The load generator's HTTP connections: one client with one keep-alive
    connection each, like the telephony platform's lines to kinline."""

    clients: list[httpx.AsyncClient]
    by_worker: list[int]
    opened: int

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


async def open_lines(base_url: str, secret: str, args: Namespace, meters: Meters) -> Lines:
    """Open ``--clients`` connections, spread evenly over the workers.

    uvicorn's workers share one listening socket and asyncio accepts every
    pending connection at once, so connections opened in a burst tend to land
    on one worker and stay there (keep-alive), leaving the others idle; which
    worker accepts even a lone connection is up to the kernel. Unless
    ``--unbalanced``, connections are opened one at a time, and one that lands
    on a worker already holding its share is closed and opened again.
    """
    workers = meters.workers()
    wanted: int = args.clients
    base, extra = divmod(wanted, len(workers))  # `extra` workers hold one more
    kept: list[httpx.AsyncClient] = []
    holds: Counter[int] = Counter()

    def has_room(worker: int) -> bool:
        above = sum(1 for pid in workers if holds[pid] > base)
        return holds[worker] < base or (holds[worker] == base and above < extra)

    def line() -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {secret}"},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=args.timeout,
        )

    if args.unbalanced:
        clients = [line() for _ in range(args.clients)]
        for answer in await asyncio.gather(*(client.get("/v1/facilities") for client in clients)):
            answer.raise_for_status()
        held = connections_by_process(meters.port, workers)
        return Lines(clients, [len(held[pid]) for pid in workers], len(clients))
    seen = set().union(*connections_by_process(meters.port, workers).values())
    opened = 0
    while len(kept) < args.clients and opened < BALANCE_ATTEMPTS * args.clients:
        client = line()
        (await client.get("/v1/facilities")).raise_for_status()
        opened += 1
        now = connections_by_process(meters.port, workers)
        landed = [pid for pid in workers if now[pid] - seen]
        seen.update(*now.values())
        if not landed or has_room(landed[0]):
            kept.append(client)
            holds.update(landed[:1])
        else:
            await client.aclose()
    held = connections_by_process(meters.port, workers)
    return Lines(kept, [len(held[pid]) for pid in workers], opened)


@dataclass
class Run:
    warm: Phase
    peak: Phase
    half: Phase
    lines: list[int]
    opened: int


async def drive(
    base_url: str, secret: str, callers: Sequence[Caller], args: Namespace, meters: Meters
) -> Run:
    """Warm up, then the peak phase, then the open loop at half the peak rate."""
    run = Run(Phase("warm-up"), Phase("peak"), Phase("half peak"), [], 0)
    lines = await open_lines(base_url, secret, args, meters)
    run.lines, run.opened = lines.by_worker, lines.opened
    work = Workload(callers, args)
    try:
        await closed_loop(work, lines.clients, run.warm, args.warmup, seconds=120)
        if run.warm.errors:
            return run
        load = closed_loop(work, lines.clients, run.peak, args.pairs, args.seconds)
        await measured(run.peak, load, meters)
        if run.peak.errors or not run.peak.pairs:
            return run
        rate = run.peak.rate / 2
        load = open_loop(work, lines.clients, run.half, rate, args.pairs, args.seconds)
        await measured(run.half, load, meters)
    finally:
        await lines.close()
    return run


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
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    env = {**os.environ, "KINLINE_DATABASE_URL": url}
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def server_ready(base_url: str, secret: str) -> bool:
    try:
        response = httpx.get(
            f"{base_url}/v1/facilities",
            headers={"Authorization": f"Bearer {secret}"},
            timeout=2,
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


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
        " kinline.api:create_app); another one, on PYTHONPATH, can try a change without"
        " editing kinline",
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
    return parser.parse_args(argv)


def report(args: Namespace, run: Run, bench: PgbenchResult, rss_mb: float, server_log: str) -> int:
    """Print the figures, the ratio last; 1 if any answer was an error."""
    warm, peak, half = run.warm, run.peak, run.half
    what = "authorize" if args.workload == "calls" else "read"
    done = "authorizations" if args.workload == "calls" else "reads"
    unit = "pair" if args.workload == "calls" else "read"
    how = "opened together" if args.unbalanced else f"{run.opened} opened to spread them"
    print(f"HTTP connections per worker: {' + '.join(map(str, run.lines))} ({how})")
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
        callers, secret = populate(url, args.people, args.setup_processes, args.setup_threads)
        prepare_allowance(pg, database, args.people, cap=2_000_000_000)
        pg.psql(database, "VACUUM ANALYZE", "CHECKPOINT")
        print(
            f"setup: database {database}, {len(callers)} people with one approved phone"
            f" contact each, one facility grant, in {time.perf_counter() - started:.1f} s"
        )

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

        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        log = workdir / "server.log"
        server = start_server(args.app, url, port, args.workers, log)
        try:
            if not wait_for(lambda: server_ready(base_url, secret), timeout=60):
                print(f"the server did not start:\n{log.read_text()[-3000:]}", file=sys.stderr)
                return 1
            meters = Meters(pg, database, server.pid, port)
            with RssSampler(server.pid) as rss:
                run = asyncio.run(drive(base_url, secret, callers, args, meters))
        finally:
            stop_server(server)
        server_log = log.read_text()

    return report(args, run, bench, rss.peak / 1e6, server_log)


if __name__ == "__main__":
    sys.exit(main())
