"""Commands of a call's life: ``kinline decide`` (a decision, explained by the rules
responsible), ``kinline holds`` (expire and settle call set-ups whose time is up) and
``kinline import calls`` (completed calls from a calling vendor's CSV export)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from kinline.calls.importer import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_WORKERS,
    ImportSummary,
    import_calls,
)
from kinline.calls.path import sweep
from kinline.calls.service import decide_contact
from kinline.cli_support import (
    DatabaseOption,
    FacilityOption,
    JsonOption,
    console,
    database,
    errors,
    friendly,
    moment,
    print_json,
    resolve_facility,
)
from kinline.errors import InvalidInput
from kinline.rules.parse import RuleError, parse_instant
from kinline.rules.periods import local


@friendly
def decide_command(
    person: Annotated[str, typer.Option(help="Person id.")],
    contact: Annotated[str, typer.Option(help="Contact id.")],
    channel: Annotated[str, typer.Option(help="phone, video or visit.")] = "phone",
    at: Annotated[
        str | None, typer.Option(help="Local wall time in the facility, e.g. 2024-03-04T10:00.")
    ] = None,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    db = database(database_url)
    place = resolve_facility(db, facility)
    explained = decide_contact(db, place.id, person, contact, channel, at=moment(at, place))
    decision = explained.decision
    rules = explained.explained()
    if as_json:
        body = decision.as_dict()
        body["at"] = local(explained.at, place.zone).isoformat()
        body["explanation"] = [
            {"id": r.id, "authority": str(r.authority), "kind": str(r.kind), "text": r.text}
            for r in rules
        ]
        print_json(body)
        return
    when = local(explained.at, place.zone).strftime("%Y-%m-%d %H:%M")
    verdict = (
        "[green]allowed[/green]" if decision.allowed else f"[red]refused: {decision.reason}[/red]"
    )
    console.print(
        f"{person} -> {contact} by {explained.channel} at {when} ({place.timezone}): {verdict}"
    )
    if decision.allowed:
        console.print(
            f"charged to {decision.charged_to}; at most {decision.max_minutes} minutes; "
            f"monitoring {decision.monitoring}; interpreter {decision.interpreter or 'none'}"
            + (f"; setting {decision.setting}" if decision.setting is not None else "")
        )
    table = Table("rule", "authority", "kind", "role", "text")
    for rule in rules:
        role = "conflict (outranked)" if rule.id in decision.conflicts else "responsible"
        table.add_row(rule.id, str(rule.authority), str(rule.kind), role, rule.text)
    if rules:
        console.print(table)


UTC_ZONE = ZoneInfo("UTC")

holds_app = typer.Typer(no_args_is_help=True)


@holds_app.command(
    "sweep",
    help=(
        "Release holds that never connected and settle connected calls whose end never "
        "came (at their max_minutes). The server also runs this on a timer."
    ),
)
@friendly
def sweep_command(
    at: Annotated[
        str | None,
        typer.Option(help="Sweep as of this UTC instant (ISO 8601); default now."),
    ] = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    moment = datetime.now(UTC)
    if at is not None:
        try:
            moment = parse_instant(at, UTC_ZONE, "--at")
        except RuleError as error:
            raise InvalidInput(error.message, field="--at") from None
    db = database(database_url)
    report = sweep(db, at=moment)
    if as_json:
        print_json({"expired": report.expired, "settled": report.settled})
        return
    console.print(
        f"{report.expired} holds expired (nothing charged), "
        f"{report.settled} calls settled at their max_minutes"
    )


ACTOR = "kinline:import"

import_app = typer.Typer(no_args_is_help=True)


class _Bar:
    """The service's progress, as a Rich bar on stderr."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def begin(self, total: int) -> None:
        self.task = self.progress.add_task("importing", total=total)

    def advance(self, lines: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, lines)


@import_app.command(
    "calls",
    help=(
        "Import completed calls from a CSV export (columns person, dialed, start, seconds"
        " and optionally channel; start in the facility's local time). Each call is decided"
        " as a live call would be and charged to its allowance; a call the rules would have"
        " refused is recorded as outside policy. Each batch is all-or-nothing. A call already"
        " imported (the same record_id column value, or else the same person, number, start,"
        " seconds and channel) is skipped and counted once, so importing a file again adds"
        " nothing. Exit code 0: all imported or skipped; 1: a batch failed; 2: the file"
        " cannot be read."
    ),
)
@friendly
def calls_command(
    file: Annotated[Path, typer.Argument(help="The CSV file.")],
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Rows per transaction.")
    ] = DEFAULT_BATCH_SIZE,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row; write nothing.")
    ] = False,
    workers: Annotated[
        int,
        typer.Option("--workers", min=1, help="Processes deciding each batch's calls."),
    ] = DEFAULT_WORKERS,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    db = database(database_url)
    try:
        place = resolve_facility(db, facility)
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=errors,
            transient=True,
        ) as progress:
            summary = import_calls(
                db,
                place.id,
                file,
                at=datetime.now(UTC),
                actor=ACTOR,
                batch_size=batch_size,
                dry_run=dry_run,
                progress=_Bar(progress),
                workers=workers,
            )
    finally:
        db.dispose()
    if as_json:
        print_json(summary.as_dict())
    else:
        _print(summary)
    raise typer.Exit(summary.exit_code)


def _print(summary: ImportSummary) -> None:
    if summary.file_error is not None:
        errors.print(f"[red]error[/red]: {summary.file}: {summary.file_error}")
    verb = "would import" if summary.dry_run else "imported"
    console.print(
        f"{summary.file}: {summary.rows:,} rows; {verb} {summary.imported:,} calls"
        + ("" if summary.dry_run else f" ({summary.outside_policy:,} outside policy)")
        + f"; {summary.already_imported:,} already imported, skipped"
    )
    if summary.batches_failed or summary.invalid_rows:
        console.print(
            f"failed: {summary.invalid_rows:,} invalid rows; "
            f"{summary.failed_rows:,} rows in failed batches not imported"
        )
    if summary.dry_run:
        console.print(f"batches: {summary.batches_failed:,} with errors; nothing written (dry run)")
    else:
        console.print(
            f"batches: {summary.batches_committed:,} committed, {summary.batches_failed:,} failed"
        )
    for line in summary.errors:
        console.print(line, markup=False)
    if summary.error_count > len(summary.errors):
        console.print(f"... and {summary.error_count - len(summary.errors):,} more errors")
