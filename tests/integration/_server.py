"""A real kinline server for tests: ``kinline serve`` as a child process on a free
port, its output kept in a file and printed when the block that uses it fails.

The server runs in its own session (process group), so ``kill()`` ends the
uvicorn supervisor and every worker at once, as a crash or an OOM kill would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

KINLINE = Path(sys.executable).parent / "kinline"
READY_SECONDS = 180.0  # a loaded 2-core machine starts two workers slowly


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _live_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are not zombies, read from ``/proc``."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended while we looked
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("Z", "X"):
            live.append(int(stat.parent.name))
    return live


class Server:
    """One ``kinline serve`` process tree on ``database_url``."""

    def __init__(self, database_url: str, *, workers: int = 2, **env: str) -> None:
        self.database_url = database_url
        self.workers = workers
        self.env = env
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in close()
            prefix="kinline-serve-", suffix=".log", delete=False
        )
        self.log_path = Path(self._log.name)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start on a fresh free port and wait until it answers HTTP."""
        assert self.process is None, "the server is already running"
        self.port = free_port()
        env = {
            **os.environ,
            "KINLINE_DATABASE_URL": self.database_url,
            # The sweep timer would settle holds behind the test's back.
            "KINLINE_SWEEP_SECONDS": "0",
            **self.env,
        }
        self._log.write(f"--- kinline serve on port {self.port}\n".encode())
        self._log.flush()
        self.process = subprocess.Popen(
            [
                str(KINLINE), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", str(self.workers), "--no-access-log",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_SECONDS
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"kinline serve exited with {self.process.returncode}:\n{self.log()}"
                    )
                try:
                    if client.get(f"{self.base_url}/openapi.json").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"kinline serve did not answer in {READY_SECONDS} s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL the whole process group (supervisor and workers) and reap it."""
        process, self.process = self.process, None
        if process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        # Workers are reparented when the supervisor dies; wait until none still runs
        # (zombies hold no socket and no database connection).
        deadline = time.monotonic() + 30
        while _live_members(process.pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"kinline serve's process group {process.pid} outlived SIGKILL")
            time.sleep(0.05)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        try:
            self.kill()
        finally:
            self._log.close()
            self.log_path.unlink(missing_ok=True)


@contextmanager
def running_server(database_url: str, *, workers: int = 2, **env: str) -> Iterator[Server]:
    """A started server, always killed at the end; its log is printed when the block
    raises (pytest shows it with the failure)."""
    server = Server(database_url, workers=workers, **env)
    try:
        server.start()
        yield server
    except BaseException:
        print(f"--- kinline serve log ({server.log_path}):\n{server.log()}", file=sys.stderr)
        raise
    finally:
        server.close()
