"""``kinline import calls``: completed calls from a calling vendor's CSV export."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

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

from kinline.cli_support import (
    DatabaseOption,
    FacilityOption,
    JsonOption,
    console,
    database,
    errors,
    friendly,
    print_json,
    resolve_facility,
)
from kinline.imports.service import DEFAULT_BATCH_SIZE, ImportSummary, import_calls

ACTOR = "kinline:import"

app = typer.Typer(no_args_is_help=True)


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


@app.command(
    "calls",
    help=(
        "Import completed calls from a CSV export (columns person, dialed, start, seconds"
        " and optionally channel; start in the facility's local time). Each call is decided"
        " as a live call would be and charged to its allowance; a call the rules would have"
        " refused is recorded as outside policy. Each batch is all-or-nothing. Exit code 0:"
        " all imported; 1: a batch failed; 2: the file cannot be read."
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
