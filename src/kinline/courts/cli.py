"""``kinline report``: retaliation flags (court-order compliance: ``courts.report_cli``)."""

from __future__ import annotations

import typer
from rich.table import Table

from kinline.cli_support import (
    DatabaseOption,
    FacilityOption,
    JsonOption,
    console,
    database,
    friendly,
    print_json,
    resolve_facility,
)
from kinline.courts.service import retaliation_report
from kinline.rules.periods import local

app = typer.Typer(no_args_is_help=True)


@app.command("retaliation", help="Adverse actions that closely follow a protected activity.")
@friendly
def retaliation_command(
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    db = database(database_url)
    place = resolve_facility(db, facility)
    flags = retaliation_report(db, place.id)
    rows = [
        {
            "person": flag.person,
            "action": flag.action,
            "action_at": local(flag.action_at, place.zone).isoformat(),
            "activity": flag.activity,
            "activity_at": local(flag.activity_at, place.zone).isoformat(),
            "days": flag.days,
        }
        for flag in flags
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("person", "action", "when", "after activity", "filed", "days")
    for row in rows:
        table.add_row(
            str(row["person"]),
            str(row["action"]),
            str(row["action_at"]),
            str(row["activity"]),
            str(row["activity_at"]),
            str(row["days"]),
        )
    console.print(table)
    console.print(f"{len(rows)} flags (window {place.retaliation_window_days} days)")
