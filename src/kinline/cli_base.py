"""What every command shares, whatever feature it belongs to: the consoles, the
common options, the database, and the one place a domain error becomes a
message and an exit code.

It imports no feature, so the commands of the features everything else stands
on (``audit``, ``auth``) can use it; the facility a command acts in is
resolved in ``kinline.cli_support``, above ``people``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from kinline.db.engine import Database, configured_url
from kinline.errors import KinlineError

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")

FacilityOption = Annotated[
    str | None,
    typer.Option("--facility", help="Facility id; may be left out when the database holds one."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DatabaseOption = Annotated[
    str | None,
    typer.Option("--database-url", help="Database URL (default: KINLINE_DATABASE_URL or sqlite)."),
]


def database(url: str | None = None) -> Database:
    """The command's database, once it answers (else ``ServiceUnavailable``, one line)."""
    db = Database(url or configured_url())
    try:
        db.ensure_reachable()
    except BaseException:
        db.dispose()
        raise
    return db


def friendly(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a domain error into ``error (field): message`` on standard error and
    the error's exit code."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except KinlineError as error:
            report(error)
            raise typer.Exit(error.exit_code) from None

    return wrapper


def report(error: KinlineError) -> None:
    """Print ``error (field): message`` on standard error."""
    field = f" ({escape(error.field)})" if error.field else ""
    errors.print(f"[red]error[/red]{field}: {escape(error.message)}")


def print_json(value: Any) -> None:
    console.print_json(json.dumps(value, default=str, ensure_ascii=False))
