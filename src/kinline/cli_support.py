"""What a feature's commands share: ``kinline.cli_base`` (consoles, options, the
database, errors) and the facility a command acts in, with its times.

Resolving a facility reads ``people``, so the commands of ``audit`` and
``auth``, which ``people`` stands on, import ``kinline.cli_base`` instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from kinline.cli_base import (
    DatabaseOption,
    FacilityOption,
    JsonOption,
    console,
    database,
    errors,
    friendly,
    print_json,
)
from kinline.db.engine import Database
from kinline.errors import InvalidInput
from kinline.people.model import Facility
from kinline.people.service import get_facility, list_facilities
from kinline.rules.parse import RuleError, parse_instant

__all__ = [
    "DatabaseOption",
    "FacilityOption",
    "JsonOption",
    "console",
    "database",
    "errors",
    "friendly",
    "moment",
    "opened",
    "print_json",
    "resolve_facility",
]


@contextmanager
def opened(url: str | None, facility_id: str | None) -> Iterator[tuple[Database, Facility]]:
    """The database for one command and the facility it acts in (``--facility``,
    or the only one); the connections are closed when the command ends."""
    db = database(url)
    try:
        yield db, resolve_facility(db, facility_id)
    finally:
        db.dispose()


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
