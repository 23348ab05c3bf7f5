"""``kinline token``: API tokens for staff, readers and the telephony platform."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from kinline.auth.service import create_token
from kinline.cli_base import DatabaseOption, console, database, friendly

app = typer.Typer(no_args_is_help=True)


@app.command("create", help="Create a token and print its secret once (only its hash is kept).")
@friendly
def create_command(
    name: Annotated[str, typer.Option(help="Who or what uses the token.")],
    scope: Annotated[str, typer.Option(help="read, staff or telephony.")],
    database_url: DatabaseOption = None,
) -> None:
    db = database(database_url)
    caller, secret = create_token(db, name, scope, at=datetime.now(UTC))
    console.print(secret)
    typer.echo(
        f"token {caller.token_id} ({caller.name}, scope {caller.scope}): "
        "keep it; it is not shown again",
        err=True,
    )
