"""The delivery worker: passes over the outbox, forever or once.

Run as ``kinline worker`` or inside ``kinline serve --worker`` (a thread).
Any number may run at once: claims are leased rows taken with SKIP LOCKED,
and print batches lock the rows they print.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day

from kinline.db.engine import Database
from kinline.notices.delivery.model import MAX_ATTEMPTS, EmailRun, PrintBatch
from kinline.notices.delivery.service import DEFAULT_LEASE, deliver_due_emails, make_print_batches
from kinline.notices.delivery.smtp import Mailer, SmtpSettings, smtp_mailer

log = logging.getLogger("kinline.worker")


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    smtp: SmtpSettings | None
    batch: int = 20
    interval: float = 10.0
    lease: timedelta = DEFAULT_LEASE
    max_attempts: int = MAX_ATTEMPTS
    # From this local time of day each housing unit's batch of the day is made;
    # None: the worker prints nothing (``kinline print batches make`` does).
    print_from: time_of_day | None = field(default_factory=lambda: time_of_day(6, 0))


@dataclass(frozen=True, slots=True)
class PassResult:
    email: EmailRun
    batches: list[PrintBatch]


def run_pass(db: Database, settings: WorkerSettings, now: datetime) -> PassResult:
    email = EmailRun()
    if settings.smtp is not None:
        smtp = settings.smtp
        # A lease must outlive one SMTP exchange: never wait on a socket longer
        # than a quarter of it.
        smtp = SmtpSettings(
            host=smtp.host,
            port=smtp.port,
            sender=smtp.sender,
            starttls=smtp.starttls,
            user=smtp.user,
            password=smtp.password,
            timeout=min(smtp.timeout, settings.lease.total_seconds() / 4),
        )

        @contextmanager
        def mailer() -> Iterator[Mailer]:
            with smtp_mailer(smtp) as connected:
                yield connected

        email = deliver_due_emails(
            db,
            mailer,
            now=now,
            sender=smtp.sender,
            batch=settings.batch,
            lease=settings.lease,
            max_attempts=settings.max_attempts,
        )
    batches: list[PrintBatch] = []
    if settings.print_from is not None:
        batches = make_print_batches(db, at=now, not_before=settings.print_from)
    return PassResult(email, batches)


def run_worker(
    db: Database,
    settings: WorkerSettings,
    *,
    once: bool = False,
    stop: threading.Event | None = None,
    report: Callable[[PassResult], None] | None = None,
) -> None:
    """Passes every ``interval`` seconds until ``stop`` is set (or one, with ``once``).
    A pass that fails is logged and the next one tries again: the outbox keeps
    everything that was not recorded as sent."""
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            result = run_pass(db, settings, datetime.now(UTC))
        except Exception:
            if once:
                raise
            log.exception("delivery pass failed; retrying at the next interval")
        else:
            if report is not None:
                report(result)
        if once:
            return
        stop.wait(settings.interval)


def start_in_thread(db: Database, settings: WorkerSettings) -> Callable[[], None]:
    """Run the worker in a daemon thread; returns the function that stops it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker, args=(db, settings), kwargs={"stop": stop}, daemon=True
    )
    thread.name = "kinline-delivery-worker"
    thread.start()

    def stopper() -> None:
        stop.set()
        thread.join(timeout=settings.lease.total_seconds())

    return stopper


WORKER_ENV = "KINLINE_WORKER"


def start_worker_from_env(db: Database) -> Callable[[], None]:
    """Start the worker in this server process when ``KINLINE_WORKER=1`` (set by
    ``kinline serve --worker``), with SMTP from ``KINLINE_SMTP_*``; returns the
    function that stops it (a no-op when it was not started)."""
    if os.environ.get(WORKER_ENV, "").lower() not in ("1", "true", "yes", "on"):
        return lambda: None
    return start_in_thread(db, WorkerSettings(smtp=SmtpSettings.from_env()))
