"""What the server benchmarks share: a scratch PostgreSQL database, pgbench, a free
port, and the memory and CPU of a process tree read from ``/proc``.

psutil is not a dependency of kinline, and ``/proc`` tells all a benchmark on
Linux needs, so these read it directly.
"""

from __future__ import annotations

import math
import os
import re
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class PostgresServer:
    """A PostgreSQL server reached over TCP with trust authentication."""

    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"

    def url(self, database: str) -> str:
        """A SQLAlchemy URL for kinline (psycopg 3)."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def client_args(self) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-U", self.user]

    def psql(self, database: str, *statements: str) -> str:
        """Run each statement in its own transaction (so VACUUM and CHECKPOINT work)."""
        command = ["psql", *self.client_args(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        for statement in statements:
            command += ["-c", statement]
        done = subprocess.run(
            [*command, database], check=True, capture_output=True, text=True, timeout=600
        )
        return done.stdout

    @contextmanager
    def scratch_database(self, prefix: str) -> Iterator[str]:
        """A new, empty database, dropped (connections and all) when the block ends."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        subprocess.run(["createdb", *self.client_args(), name], check=True, timeout=60)
        try:
            yield name
        finally:
            subprocess.run(
                ["dropdb", *self.client_args(), "--force", "--if-exists", name],
                check=False,
                timeout=120,
            )


@dataclass(frozen=True)
class PgbenchResult:
    tps: float
    transactions: int
    failed: int
    latency_ms: float


PGBENCH_SCRIPT = (
    "\\set id random(1, {rows})\n"
    "UPDATE allowance SET used = used + 1 WHERE id = :id AND used < cap;\n"
)


def prepare_allowance(server: PostgresServer, database: str, rows: int, cap: int) -> None:
    """The table pgbench reserves from: ``rows`` allowances, each with room to spare."""
    server.psql(
        database,
        "DROP TABLE IF EXISTS allowance",
        "CREATE TABLE allowance (id int PRIMARY KEY, used int NOT NULL, cap int NOT NULL)",
        # Both are ints, so formatting them in is safe.
        f"INSERT INTO allowance SELECT g, 0, {cap:d} FROM generate_series(1, {rows:d}) AS g",  # noqa: S608
        "VACUUM ANALYZE allowance",
    )


def run_pgbench(
    server: PostgresServer,
    database: str,
    *,
    clients: int,
    threads: int,
    seconds: int,
    rows: int,
    protocol: str,
    workdir: Path,
    pgbench: str = "pgbench",
) -> PgbenchResult:
    """pgbench with the one-statement conditional UPDATE; tps without connection time."""
    script = workdir / "reserve.sql"
    script.write_text(PGBENCH_SCRIPT.format(rows=rows))
    command = [
        pgbench,
        *server.client_args(),
        "-n",  # no vacuum of pgbench's own tables: there are none
        "-M",
        protocol,
        "-c",
        str(clients),
        "-j",
        str(threads),
        "-T",
        str(seconds),
        "-f",
        str(script),
        database,
    ]
    done = subprocess.run(
        command, check=True, capture_output=True, text=True, timeout=seconds + 120
    )
    out = done.stdout
    return PgbenchResult(
        tps=float(_field(out, r"tps = ([0-9.]+) \(without initial connection time\)")),
        transactions=int(_field(out, r"number of transactions actually processed: (\d+)")),
        failed=int(_field(out, r"number of failed transactions: (\d+)", default="0")),
        latency_ms=float(_field(out, r"latency average = ([0-9.]+) ms")),
    )


def _field(text: str, pattern: str, default: str | None = None) -> str:
    found = re.search(pattern, text)
    if found is None:
        if default is not None:
            return default
        raise RuntimeError(f"pgbench printed no {pattern!r}:\n{text}")
    return found.group(1)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` after the command name (which may hold spaces)."""
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    return text[text.rindex(")") + 2 :].split()


def _all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def process_tree(root: int) -> list[int]:
    """``root`` and every process descended from it, alive now."""
    parents: dict[int, list[int]] = {}
    for pid in _all_pids():
        fields = _stat_fields(pid)
        if fields is not None:
            parents.setdefault(int(fields[1]), []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, ()))
    return tree


def is_spawned_worker(pid: int) -> bool:
    """Whether the process was started by ``multiprocessing`` to serve (uvicorn's workers)."""
    return "multiprocessing.spawn" in (_read(f"/proc/{pid}/cmdline") or "")


def connections_by_process(port: int, pids: Iterable[int]) -> dict[int, set[str]]:
    """The established TCP connections to local ``port`` (socket inodes) each process holds."""
    inodes = set()
    for line in (_read("/proc/net/tcp") or "").splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "01":  # ESTABLISHED
            inodes.add(fields[9])
    return {pid: {link[8:-1] for link in _fd_links(pid)} & inodes for pid in pids}


def _fd_links(pid: int) -> list[str]:
    """Where a process's file descriptors point (``socket:[INODE]`` for sockets)."""
    links = []
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except (FileNotFoundError, ProcessLookupError):
        return []
    for fd in fds:
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return [link for link in links if link.startswith("socket:[")]


def backends_of(database: str) -> list[int]:
    """PostgreSQL's server processes for connections to ``database``
    (their titles read ``postgres: ... USER DATABASE HOST(PORT) STATE``)."""
    found = []
    for pid in _all_pids():
        if (_read(f"/proc/{pid}/comm") or "").strip() != "postgres":
            continue
        title = (_read(f"/proc/{pid}/cmdline") or "").replace("\0", " ").split()
        if database in title:
            found.append(pid)
    return found


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have been busy since boot (from
    ``/proc/stat``: everything but idle and iowait)."""
    fields = [int(value) for value in (_read("/proc/stat") or "").splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def rss_bytes(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        status = _read(f"/proc/{pid}/status")
        found = re.search(r"^VmRSS:\s+(\d+) kB", status or "", re.MULTILINE)
        if found:
            total += int(found.group(1)) * 1024
    return total


def cpu_seconds(pids: Iterable[int]) -> float:
    """User plus system CPU time the processes have used so far."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLOCK_TICKS


class CpuMeter:
    """CPU seconds used between ``start`` and ``stop`` by the processes ``pids()`` names.

    A process that appears in between counts from zero; one that exits in
    between is lost (the pool connections and workers measured here do not).
    """

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self._pids = pids
        self._first: dict[int, float] = {}

    def start(self) -> None:
        self._first = {pid: cpu_seconds([pid]) for pid in self._pids()}

    def stop(self) -> dict[int, float]:
        """CPU seconds per process since ``start``."""
        return {pid: cpu_seconds([pid]) - self._first.get(pid, 0.0) for pid in self._pids()}


class RssSampler:
    """The peak, over time, of the summed resident memory of a process tree."""

    def __init__(self, root: int, interval: float = 0.1) -> None:
        self.root = root
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> int:
        current = rss_bytes(process_tree(self.root))
        self.peak = max(self.peak, current)
        return current

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in [0, 1]) of unsorted values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
