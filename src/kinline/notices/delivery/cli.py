"""``kinline worker``, ``kinline print batches ...`` and ``kinline deliveries``."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kinline.cli_support import (
    DatabaseOption,
    FacilityOption,
    JsonOption,
    console,
    database,
    errors,
    friendly,
    moment,
    opened,
    print_json,
)
from kinline.errors import InvalidInput
from kinline.notices.delivery.model import MAX_ATTEMPTS
from kinline.notices.delivery.service import (
    list_deliveries,
    list_print_batches,
    make_print_batches,
    print_batch_pdf,
    retry_failed,
)
from kinline.notices.delivery.smtp import SmtpSettings
from kinline.notices.delivery.worker import PassResult, WorkerSettings, run_worker

print_app = typer.Typer(no_args_is_help=True)
batches_app = typer.Typer(no_args_is_help=True)
print_app.add_typer(batches_app, name="batches", help="Daily PDFs of notices per housing unit.")


def _time_of_day(text: str, field: str) -> time_of_day | None:
    if text.lower() == "never":
        return None
    try:
        return time_of_day.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a time of day such as 06:00", field=field) from None


@friendly
def worker_command(
    once: Annotated[
        bool, typer.Option("--once", help="Deliver what is due now, then exit.")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between passes over the outbox.")
    ] = 10.0,
    batch: Annotated[
        int, typer.Option(min=1, help="Email deliveries claimed (leased) at a time.")
    ] = 20,
    lease: Annotated[
        float,
        typer.Option(
            min=1.0, help="Seconds a claim is held; a crashed worker's claims return after it."
        ),
    ] = 300.0,
    max_attempts: Annotated[
        int, typer.Option(min=1, help="Tries before an email delivery is marked failed.")
    ] = MAX_ATTEMPTS,
    print_from: Annotated[
        str,
        typer.Option(
            help="Local time of day from which each housing unit's daily print batch is "
            "made; 'never' leaves printing to `kinline print batches make`."
        ),
    ] = "06:00",
    smtp_host: Annotated[
        str | None,
        typer.Option(
            envvar="KINLINE_SMTP_HOST",
            help="SMTP server; without one, email deliveries wait in the outbox.",
        ),
    ] = None,
    smtp_port: Annotated[int, typer.Option(envvar="KINLINE_SMTP_PORT", help="SMTP port.")] = 25,
    smtp_from: Annotated[
        str,
        typer.Option(envvar="KINLINE_SMTP_FROM", help="The From address of notice emails."),
    ] = "kinline@localhost",
    smtp_starttls: Annotated[
        bool,
        typer.Option(envvar="KINLINE_SMTP_STARTTLS", help="Upgrade the connection with STARTTLS."),
    ] = False,
    smtp_user: Annotated[
        str | None,
        typer.Option(envvar="KINLINE_SMTP_USER", help="SMTP login (with KINLINE_SMTP_PASSWORD)."),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Send notice emails from the outbox and make the daily print batches."""
    db = database(database_url)
    smtp = (
        SmtpSettings(
            host=smtp_host,
            port=smtp_port,
            sender=smtp_from,
            starttls=smtp_starttls,
            user=smtp_user,
            password=os.environ.get("KINLINE_SMTP_PASSWORD") or None,
        )
        if smtp_host
        else None
    )
    if smtp is None:
        errors.print("no SMTP host (--smtp-host or KINLINE_SMTP_HOST): emails stay queued")
    settings = WorkerSettings(
        smtp=smtp,
        batch=batch,
        interval=interval,
        lease=timedelta(seconds=lease),
        max_attempts=max_attempts,
        print_from=_time_of_day(print_from, "--print-from"),
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    def report(result: PassResult) -> None:
        email = result.email
        if email.claimed or result.batches or once:
            console.print(
                f"emails: {email.sent} sent, {email.retrying} to retry, {email.failed} failed; "
                f"print batches: {len(result.batches)}"
            )

    try:
        run_worker(db, settings, once=once, report=report)
    except KeyboardInterrupt:
        pass
    finally:
        db.dispose()


@batches_app.command("make", help="Make print batches now for every unit with notices waiting.")
@friendly
def batches_make(
    facility: FacilityOption = None,
    at: Annotated[str | None, typer.Option(help="Local time (default: now).")] = None,
    again: Annotated[
        bool, typer.Option(help="Print even for units that already have today's batch.")
    ] = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        when = moment(at, place) if at else datetime.now(UTC)
        made = make_print_batches(db, at=when, facility_id=place.id, once_a_day=not again)
        for batch in made:
            console.print(
                f"batch {batch.id}: {batch.housing_unit}, {batch.notice_count} notices, "
                f"{batch.size} bytes"
            )
        console.print(f"{len(made)} print batches made")


@batches_app.command("list", help="List the print batches, oldest first.")
@friendly
def batches_list(
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        batches = list_print_batches(db, place.id)
        if as_json:
            print_json(
                [
                    {
                        "id": b.id,
                        "housing_unit": b.housing_unit,
                        "day": b.day.isoformat(),
                        "notice_count": b.notice_count,
                        "size": b.size,
                        "created_at": b.created_at.isoformat(),
                    }
                    for b in batches
                ]
            )
            return
        table = Table("id", "housing unit", "day", "notices", "bytes")
        for b in batches:
            table.add_row(
                str(b.id), b.housing_unit, b.day.isoformat(), str(b.notice_count), str(b.size)
            )
        console.print(table)
        console.print(f"{len(batches)} print batches")


@batches_app.command("get", help="Write one print batch's PDF to a file.")
@friendly
def batches_get(
    batch_id: Annotated[int, typer.Argument(help="Print batch id (see `list`).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the PDF.")],
    facility: FacilityOption = None,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        pdf = print_batch_pdf(db, place.id, batch_id)
        output.write_bytes(pdf)
        console.print(f"wrote {len(pdf)} bytes to {output}")


@friendly
def deliveries_command(
    notice_id: Annotated[int, typer.Argument(help="Notice id.")],
    retry: Annotated[
        bool,
        typer.Option(
            "--retry",
            help="First put the notice's failed deliveries back in the outbox, due now.",
        ),
    ] = False,
    actor: Annotated[str, typer.Option(help="Who retries (for the audit log).")] = "cli",
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Show how a notice was delivered: inbox, each email, print; with each attempt."""
    with opened(database_url, facility) as (db, place):
        if retry:
            count = retry_failed(db, place.id, notice_id, actor=actor, at=datetime.now(UTC))
            errors.print(f"{count} failed deliveries back in the outbox")
        deliveries = list_deliveries(db, place.id, notice_id)
        if as_json:
            print_json(
                [
                    {
                        "id": d.id,
                        "channel": d.channel,
                        "recipient": d.recipient,
                        "status": d.status,
                        "attempts": [
                            {
                                "at": a.attempted_at.isoformat(),
                                "outcome": a.outcome,
                                "error": a.error,
                            }
                            for a in d.history
                        ],
                    }
                    for d in deliveries
                ]
            )
            return
        table = Table("id", "channel", "recipient", "status", "tries", "last error")
        for d in deliveries:
            table.add_row(
                str(d.id), d.channel, d.recipient, d.status, str(d.attempts), d.last_error or ""
            )
        console.print(table)
