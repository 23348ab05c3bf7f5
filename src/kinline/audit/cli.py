"""``kinline audit``: checking the audit log from the command line."""

from __future__ import annotations

import typer
from rich.markup import escape

from kinline.audit.service import verify_log
from kinline.cli_base import DatabaseOption, console, database, errors

app = typer.Typer(
    help="The tamper-evident audit log: per-person hash chains with their heads.",
    no_args_is_help=True,
)


@app.callback()
def audit() -> None:
    """The tamper-evident audit log."""
    # A callback keeps ``verify`` a subcommand even while it is the only one.


@app.command(
    "verify",
    help=(
        "Recompute every audit chain and compare it with its stored head. Exits 0 when "
        "nothing was changed, deleted or reordered; otherwise prints where the first "
        "problem is and exits 1."
    ),
)
def verify(database_url: DatabaseOption = None) -> None:
    db = database(database_url)
    try:
        report = verify_log(db)
    finally:
        db.dispose()
    problem = report.problem
    if problem is None:
        console.print(f"{report.events} events in {report.chains} chains verified", soft_wrap=True)
        return
    event_id = "none (missing)" if problem.row_id is None else str(problem.row_id)
    errors.print(
        f"[red]audit log {problem.what}[/red]: chain {escape(problem.chain)}, "
        f"seq {problem.seq}, event id {event_id}: {escape(problem.detail)}",
        soft_wrap=True,
    )
    errors.print(
        f"({report.events} events in {report.chains} chains checked)",
        soft_wrap=True,
    )
    raise typer.Exit(1)
