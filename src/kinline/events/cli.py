"""``kinline events``: publishing the outbox of domain events."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.progress import Progress

from kinline.cli_base import DatabaseOption, console, database, friendly
from kinline.events import service
from kinline.events.publisher import run, settings_from_env

app = typer.Typer(
    help=(
        "Domain events (CloudEvents 1.0) of every change, from the outbox: to NATS "
        "JetStream (stream KINLINE, subjects kinline.<facility>.<type>) and to the "
        "facilities' webhooks."
    ),
    no_args_is_help=True,
)


@app.command(
    "publish",
    help=(
        "Publish the outbox until stopped (SIGINT or SIGTERM): every event, in order per "
        "person, at least once, with its id as Nats-Msg-Id so JetStream drops a "
        "duplicate; webhook deliveries signed and retried with exponential backoff."
    ),
)
@friendly
def publish_command(
    nats_url: Annotated[
        str | None,
        typer.Option(
            "--nats-url", help="NATS server (default: KINLINE_NATS_URL or nats://127.0.0.1:4222)."
        ),
    ] = None,
    nats: Annotated[bool, typer.Option(help="Publish to NATS JetStream.")] = True,
    webhooks: Annotated[bool, typer.Option(help="Deliver to the facilities' webhooks.")] = True,
    database_url: DatabaseOption = None,
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    db = database(database_url)
    settings = settings_from_env(nats_url=nats_url, webhooks=webhooks)
    if not nats:
        settings = replace(settings, nats_url=None)
    console.print(
        f"publishing events to {settings.nats_url or 'no NATS'}"
        f"{' and webhooks' if settings.webhooks else ''}"
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run(db, settings, stop)

    try:
        asyncio.run(main())
    finally:
        db.dispose()


@app.command("pending", help="How many events NATS has not yet acknowledged.")
@friendly
def pending_command(database_url: DatabaseOption = None) -> None:
    db = database(database_url)
    try:
        console.print(str(service.count_unpublished(db)))
    finally:
        db.dispose()


@app.command(
    "prune",
    help=(
        "Delete from the outbox the events older than --days that NATS acknowledged and "
        "every webhook of their facility (suspended ones too) received. The audit log is "
        "never touched."
    ),
)
@friendly
def prune_command(
    days: Annotated[
        int, typer.Option(min=0, help="Keep the events of the last DAYS days (default 30).")
    ] = 30,
    unpublished: Annotated[
        bool,
        typer.Option(
            help="Also events NATS never acknowledged: for a deployment that publishes to "
            "webhooks only."
        ),
    ] = False,
    database_url: DatabaseOption = None,
) -> None:
    db = database(database_url)
    before = datetime.now(UTC) - timedelta(days=days)
    try:
        with Progress(transient=True, console=console) as bar:
            task = bar.add_task("pruning the outbox", total=None)
            pruned = service.prune(
                db,
                before=before,
                unpublished=unpublished,
                progress=lambda done: bar.update(task, completed=done),
            )
        console.print(f"pruned {pruned} events recorded before {before:%Y-%m-%d %H:%M} UTC")
    finally:
        db.dispose()
