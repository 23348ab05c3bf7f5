"""Every query about held call set-ups (sessions with a hold id).

The call path runs these on every set-up, so they are built once and run as
Core statements: a set-up's session is a plain ``SessionRow`` that the ORM
never tracks, inserted by ``add`` and written back by ``save``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Executable, bindparam, insert, select, update
from sqlalchemy.orm import Session

from kinline.db.engine import core
from kinline.db.tables import FacilityRow, PersonRow, SessionRow
from kinline.people.model import Facility
from kinline.people.repository import facility_from_row

OPEN = ("held", "connected")
_SESSIONS = SessionRow.__table__
_PEOPLE = PersonRow.__table__
_FACILITIES = FacilityRow.__table__
_COLUMNS = [column for column in _SESSIONS.c if column.key != "id"]
# What a step of the call path changes on a set-up.
_CHANGING = (
    "minutes",
    "status",
    "expires_at",
    "connected_at",
    "ended_at",
    "settled_by",
    "reserved",
)

_ADD = insert(SessionRow).returning(SessionRow.id)
_SAVE = (
    update(SessionRow)
    .where(SessionRow.id == bindparam("s_id"))
    .values({name: bindparam(f"s_{name}") for name in _CHANGING})
)
_BY_KEY = select(_SESSIONS).where(
    _SESSIONS.c.facility_id == bindparam("facility_id"),
    _SESSIONS.c.idempotency_key == bindparam("key"),
)
_BY_HOLD = select(_SESSIONS).where(
    _SESSIONS.c.facility_id == bindparam("facility_id"),
    _SESSIONS.c.hold_id == bindparam("hold_id"),
)
_LOCK_BY_HOLD = (
    select(_SESSIONS)
    .join(
        _PEOPLE,
        (_PEOPLE.c.facility_id == _SESSIONS.c.facility_id)
        & (_PEOPLE.c.id == _SESSIONS.c.person_id),
    )
    .where(
        _SESSIONS.c.facility_id == bindparam("facility_id"),
        _SESSIONS.c.hold_id == bindparam("hold_id"),
    )
    .with_for_update(of=[_PEOPLE, _SESSIONS])
)


_OPEN_LEDGER = (
    select(
        _FACILITIES.c.id,
        _FACILITIES.c.name,
        _FACILITIES.c.timezone,
        _FACILITIES.c.country,
        _FACILITIES.c.appeal_days,
        _FACILITIES.c.retaliation_window_days,
        select(_SESSIONS.c.id)
        .where(
            _SESSIONS.c.facility_id == bindparam("facility_id"),
            _SESSIONS.c.idempotency_key == bindparam("key"),
        )
        .scalar_subquery()
        .label("earlier"),
    )
    .select_from(_PEOPLE)
    .join(_FACILITIES, _FACILITIES.c.id == _PEOPLE.c.facility_id)
    .where(
        _PEOPLE.c.facility_id == bindparam("facility_id"), _PEOPLE.c.id == bindparam("person_id")
    )
    .with_for_update(of=_PEOPLE)
)


def open_ledger(
    session: Session, facility_id: str, person_id: str, key: str
) -> tuple[Facility, bool] | None:
    """Lock the person's allowance ledger (as ``people.repository.lock_person``
    does) and read, in the same statement, their facility and whether a set-up
    already used ``key``; None if the facility or the person is missing."""
    params = {"facility_id": facility_id, "person_id": person_id, "key": key}
    row = core(session).execute(_OPEN_LEDGER, params).one_or_none()
    if row is None:
        return None
    return facility_from_row(row), row.earlier is not None


def add(session: Session, row: SessionRow) -> SessionRow:
    """Insert the set-up; ``row.id`` is set from the database."""
    values = {column.key: getattr(row, column.key) for column in _COLUMNS}
    row.id = core(session).execute(_ADD, values).scalar_one()
    return row


def save(session: Session, row: SessionRow) -> None:
    """Write back what a step changed (``_CHANGING``) on a set-up read by this module."""
    values = {f"s_{name}": getattr(row, name) for name in _CHANGING}
    values["s_id"] = row.id
    core(session).execute(_SAVE, values)


def _one(session: Session, statement: Executable, params: dict[str, str]) -> SessionRow | None:
    found = core(session).execute(statement, params).mappings().one_or_none()
    return None if found is None else SessionRow(**found)


def by_idempotency_key(session: Session, facility_id: str, key: str) -> SessionRow | None:
    return _one(session, _BY_KEY, {"facility_id": facility_id, "key": key})


def by_hold_id(session: Session, facility_id: str, hold_id: str) -> SessionRow | None:
    return _one(session, _BY_HOLD, {"facility_id": facility_id, "hold_id": hold_id})


def lock_by_hold_id(session: Session, facility_id: str, hold_id: str) -> SessionRow | None:
    """The call set-up, with its person's ledger and its own row locked until the
    transaction ends, in one statement.

    On PostgreSQL, a statement that waited for the locks returns the rows as
    the transaction that held them committed them (READ COMMITTED re-reads
    locked rows); SQLite's write lock is already held (BEGIN IMMEDIATE).
    """
    return _one(session, _LOCK_BY_HOLD, {"facility_id": facility_id, "hold_id": hold_id})


def due(session: Session, at: datetime, limit: int = 10_000) -> list[tuple[str, str]]:
    """(facility id, hold id) of holds and connected calls whose time is up."""
    rows = session.execute(
        select(SessionRow.facility_id, SessionRow.hold_id)
        .where(SessionRow.status.in_(OPEN), SessionRow.expires_at <= at)
        .order_by(SessionRow.expires_at)
        .limit(limit)
    )
    return [(facility_id, hold_id) for facility_id, hold_id in rows if hold_id is not None]
