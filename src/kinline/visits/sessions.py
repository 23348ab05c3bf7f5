"""Visiting rooms, session templates and the sessions they offer; one transaction each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from kinline.audit.service import facility_chain, record_event
from kinline.db.engine import Database
from kinline.db.tables import VisitRoomRow, VisitSlotRow, VisitTemplateRow
from kinline.errors import AlreadyExists, InvalidInput, NotFound
from kinline.people.model import check_name
from kinline.people.service import require_facility
from kinline.visits import booking_repository as repository
from kinline.visits import slots
from kinline.visits.slots import Occurrence, SessionKind, Template

MAX_ID = 64


@dataclass(frozen=True, slots=True)
class Room:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class SlotView:
    """A session offered on a date with the places left of each kind."""

    occurrence: Occurrence
    slot_id: int | None  # None: nobody has booked it yet
    free_open: int
    free_closed: int


def template_of(row: VisitTemplateRow) -> Template:
    return Template(
        id=row.id,
        room_id=row.room_id,
        weekday=row.weekday,
        starts=row.start_time,
        ends=row.end_time,
        kind=SessionKind(row.kind),
        capacity_open=row.capacity_open,
        capacity_closed=row.capacity_closed,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        every_weeks=row.every_weeks,
        excluded=frozenset(date.fromisoformat(d) for d in row.excluded_dates),
    )


def _check_id(value: str, field: str) -> str:
    if not value or len(value) > MAX_ID or not all(c.isalnum() or c in "-_." for c in value):
        raise InvalidInput(
            f"{value!r} is not an id (letters, digits, '-', '_' or '.', at most {MAX_ID})",
            field=field,
        )
    return value


def add_room(
    db: Database, facility_id: str, room_id: str, name: str, *, actor: str, at: datetime
) -> Room:
    _check_id(room_id, "room_id")
    check_name(name)
    with db.transaction() as session:
        require_facility(session, facility_id)
        if repository.get_room(session, facility_id, room_id) is not None:
            raise AlreadyExists(f"room {room_id!r} exists", field="room_id")
        repository.add(
            session, VisitRoomRow(facility_id=facility_id, id=room_id, name=name, created_at=at)
        )
        record_event(
            session,
            facility_id=facility_id,
            chain=facility_chain(facility_id),
            actor=actor,
            tag="visits:room:added",
            payload={"room_id": room_id, "name": name},
            at=at,
        )
        return Room(room_id, name)


def list_rooms(db: Database, facility_id: str) -> list[Room]:
    with db.transaction() as session:
        require_facility(session, facility_id)
        return [Room(row.id, row.name) for row in repository.list_rooms(session, facility_id)]


def parse_kind(value: SessionKind | str, field: str = "kind") -> SessionKind:
    try:
        return SessionKind(value)
    except ValueError:
        raise InvalidInput(
            f"{value!r} is not one of contact, non_contact, video", field=field
        ) from None


def add_template(
    db: Database,
    facility_id: str,
    template_id: str,
    *,
    room_id: str,
    weekday: int,
    starts: time,
    ends: time,
    kind: SessionKind | str,
    capacity_open: int,
    capacity_closed: int,
    valid_from: date,
    valid_to: date | None = None,
    every_weeks: int = 1,
    excluded: frozenset[date] = frozenset(),
    actor: str,
    at: datetime,
) -> Template:
    """A recurring session; checked whole before anything is written."""
    _check_id(template_id, "template_id")
    kind = parse_kind(kind)
    template = Template(
        template_id,
        room_id,
        weekday,
        starts,
        ends,
        kind,
        capacity_open,
        capacity_closed,
        valid_from,
        valid_to,
        every_weeks,
        excluded,
    )
    problem = slots.template_problem(template)
    if problem is not None:
        raise InvalidInput(problem[1], field=problem[0])
    with db.transaction() as session:
        require_facility(session, facility_id)
        if repository.get_room(session, facility_id, room_id) is None:
            raise NotFound(f"no room {room_id!r}", field="room_id")
        if repository.get_template(session, facility_id, template_id) is not None:
            raise AlreadyExists(f"session template {template_id!r} exists", field="template_id")
        repository.add(
            session,
            VisitTemplateRow(
                facility_id=facility_id,
                id=template_id,
                room_id=room_id,
                weekday=weekday,
                start_time=starts,
                end_time=ends,
                capacity_open=capacity_open,
                capacity_closed=capacity_closed,
                kind=str(kind),
                valid_from=valid_from,
                valid_to=valid_to,
                every_weeks=every_weeks,
                excluded_dates=sorted(d.isoformat() for d in excluded),
                created_at=at,
                created_by=actor,
            ),
        )
        record_event(
            session,
            facility_id=facility_id,
            chain=facility_chain(facility_id),
            actor=actor,
            tag="visits:template:added",
            payload={
                "template_id": template_id,
                "room_id": room_id,
                "weekday": weekday,
                "starts": starts.isoformat(),
                "ends": ends.isoformat(),
                "kind": str(kind),
                "capacity_open": capacity_open,
                "capacity_closed": capacity_closed,
                "valid_from": valid_from,
                "valid_to": valid_to,
                "every_weeks": every_weeks,
                "excluded": sorted(d.isoformat() for d in excluded),
            },
            at=at,
        )
        return template


def list_templates(db: Database, facility_id: str) -> list[Template]:
    with db.transaction() as session:
        require_facility(session, facility_id)
        return [template_of(row) for row in repository.list_templates(session, facility_id)]


def check_range(first: date, last: date) -> None:
    if last < first:
        raise InvalidInput("must not be before the first date", field="last")
    if (last - first).days >= slots.MAX_RANGE_DAYS:
        raise InvalidInput(f"at most {slots.MAX_RANGE_DAYS} days at once", field="last")


def list_slots(
    db: Database, facility_id: str, first: date, last: date, *, kind: SessionKind | None = None
) -> list[SlotView]:
    """Sessions offered from ``first`` to ``last`` (inclusive), not blocked, with
    places left."""
    check_range(first, last)
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        templates = [template_of(row) for row in repository.list_templates(session, facility_id)]
        if kind is not None:
            templates = [t for t in templates if t.kind is kind]
        blocks = [
            slots.Block(row.on_date, row.room_id, row.reason)
            for row in repository.blocks_between(session, facility_id, first, last)
        ]
        stored = {
            (row.template_id, row.on_date): row
            for row in repository.slots_between(session, facility_id, first, last)
        }
        views = []
        for occ in slots.occurrences(templates, blocks, first, last, facility.zone):
            row = stored.get((occ.template_id, occ.day))
            if row is not None and row.blocked_at is not None:
                continue
            views.append(_view(occ, row))
        return views


def _view(occ: Occurrence, row: VisitSlotRow | None) -> SlotView:
    if row is None:
        return SlotView(occ, None, occ.capacity_open, occ.capacity_closed)
    return SlotView(
        occ,
        row.id,
        max(0, row.capacity_open - row.booked_open),
        max(0, row.capacity_closed - row.booked_closed),
    )
