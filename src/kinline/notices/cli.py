"""``kinline notices``: the notices written to a person."""

from __future__ import annotations

from typing import Annotated

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
from kinline.notices.service import list_notices
from kinline.rules.periods import local

app = typer.Typer(no_args_is_help=True)


@app.command("list", help="List a person's notices, oldest first.")
@friendly
def list_command(
    person: Annotated[str, typer.Option(help="Person id.")],
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    db = database(database_url)
    place = resolve_facility(db, facility)
    notices = list_notices(db, place.id, person)
    if as_json:
        print_json(
            [
                {
                    "id": n.id,
                    "person_id": n.person_id,
                    "language": n.language,
                    "change": n.change,
                    "subject": n.subject,
                    "authority": n.authority,
                    "effective_at": local(n.effective_at, place.zone).isoformat(),
                    "appeal_deadline": n.appeal_deadline.isoformat(),
                    "title": n.title,
                    "body": n.body,
                }
                for n in notices
            ]
        )
        return
    table = Table("id", "change", "subject", "effective", "appeal by", "title")
    for n in notices:
        effective = local(n.effective_at, place.zone).strftime("%Y-%m-%d %H:%M")
        table.add_row(
            str(n.id), n.change, n.subject, effective, n.appeal_deadline.isoformat(), n.title
        )
    console.print(table)
    console.print(f"{len(notices)} notices")
