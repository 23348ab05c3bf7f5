"""What every command shares: the database, the facility, times, and errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from kinline.db.engine import Database, configured_url
from kinline.errors import InvalidInput, KinlineError
from kinline.people.model import Facility
from kinline.people.service import get_facility, list_facilities
from kinline.rules.parse import RuleError, parse_instant

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
    return Database(url or configured_url())


@contextmanager
def opened(url: str | None, facility_id: str | None) -> Iterator[tuple[Database, Facility]]:
    """The database for one command and the facility it acts in (``--facility``,
    or the only one); the connections are closed when the command ends."""
    db = database(url)
    try:
        yield db, resolve_facility(db, facility_id)
    finally:
        db.dispose()


def friendly(command: Callable[P, R]) -> Callable[P, R]:
    """Turn domain errors into a one-line message and the error's exit code."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except KinlineError as error:
            field = f" ({error.field})" if error.field else ""
            errors.print(f"[red]error[/red]{field}: {error.message}")
            raise typer.Exit(error.exit_code) from None

    return wrapper


def resolve_facility(db: Database, facility_id: str | None) -> Facility:
    if facility_id is not None:
        return get_facility(db, facility_id)
    facilities = list_facilities(db)
    if len(facilities) == 1:
        return facilities[0]
    if not facilities:
        raise InvalidInput(
            "the database holds no facility: load one with `kinline scenario load FILE`",
            field="--facility",
        )
    names = ", ".join(facility.id for facility in facilities)
    raise InvalidInput(
        f"several facilities ({names}): name one with --facility", field="--facility"
    )


def moment(text: str | None, facility: Facility, field: str = "--at") -> datetime:
    """A local wall time in the facility's zone, or now."""
    if text is None:
        return datetime.now(UTC)
    try:
        return parse_instant(text, facility.zone, field)
    except RuleError as error:
        raise InvalidInput(error.message, field=field) from None


def print_json(value: Any) -> None:
    console.print_json(json.dumps(value, default=str, ensure_ascii=False))
