"""``kinline holds``: expire and settle call set-ups whose time is up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from kinline.cli_support import DatabaseOption, JsonOption, console, database, friendly, print_json
from kinline.holds.service import sweep
from kinline.rules.parse import RuleError, parse_instant

UTC_ZONE = ZoneInfo("UTC")

app = typer.Typer(no_args_is_help=True)


@app.command(
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
            raise typer.BadParameter(error.message, param_hint="--at") from None
    db = database(database_url)
    report = sweep(db, at=moment)
    if as_json:
        print_json({"expired": report.expired, "settled": report.settled})
        return
    console.print(
        f"{report.expired} holds expired (nothing charged), "
        f"{report.settled} calls settled at their max_minutes"
    )
