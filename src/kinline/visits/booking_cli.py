"""``kinline visits``: visiting rooms, session templates, blocks, the sessions
offered, and booking visits through their whole life."""

from __future__ import annotations

from datetime import date, time
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from kinline.cli_support import (
    DatabaseOption,
    FacilityOption,
    JsonOption,
    console,
    friendly,
    moment,
    opened,
    print_json,
)
from kinline.errors import InvalidInput
from kinline.visits import booking, sessions, upkeep
from kinline.visits.booking import Answer, Booking
from kinline.visits.statuses import VisitStatus

app = typer.Typer(no_args_is_help=True)
rooms_app = typer.Typer(help="Visiting rooms: add, list.", no_args_is_help=True)
templates_app = typer.Typer(
    help="Session templates: a room on a weekday, weekly or fortnightly.", no_args_is_help=True
)
app.add_typer(rooms_app, name="rooms")
app.add_typer(templates_app, name="templates")

AtOption = Annotated[
    str | None,
    typer.Option(
        "--at", help="Local wall time in the facility (ISO 8601, no offset); default now."
    ),
]
ActorOption = Annotated[
    str, typer.Option("--actor", help="Who does this, as the audit log records it.")
]
BookingArgument = Annotated[int, typer.Argument(help="The booking's id.", min=1)]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why, in words people read.")]
DEFAULT_ACTOR = "kinline:cli"


def _date(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date such as 2026-03-07", field=field) from None


def _time(text: str, field: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a time such as 09:30", field=field) from None


def _as_dict(b: Booking) -> dict[str, Any]:
    return {
        "id": b.id,
        "person_id": b.person_id,
        "visitors": list(b.visitors),
        "template_id": b.template_id,
        "room_id": b.room_id,
        "date": b.day.isoformat(),
        "kind": str(b.kind),
        "setting": b.setting,
        "status": str(b.status),
        "booker": str(b.booker),
        "facility_time": b.facility_time.shown(),
        "visitor_times": {t.contact_id: t.local.shown() for t in b.visitor_times},
        "expires_at": None if b.expires_at is None else b.expires_at.isoformat(),
        "cancel_reason": b.cancel_reason,
        "cancelled_by": b.cancelled_by,
        "session_id": b.session_id,
    }


def _print_bookings(found: list[Booking], as_json: bool) -> None:
    if as_json:
        print_json([_as_dict(b) for b in found])
        return
    table = Table(
        "id", "person", "visitors", "when", "room", "setting", "status", box=box.SIMPLE_HEAD
    )
    for b in found:
        table.add_row(
            str(b.id),
            b.person_id,
            ", ".join(b.visitors),
            b.facility_time.shown(),
            b.room_id,
            b.setting,
            str(b.status),
        )
    console.print(table)
    console.print(f"{len(found)} visits")


def _one(b: Booking, as_json: bool, said: str) -> None:
    if as_json:
        print_json(_as_dict(b))
        return
    console.print(f"visit {b.id} {said}: {b.status}, {b.facility_time.shown()}, room {b.room_id}")
    for t in b.visitor_times:
        console.print(f"  {t.name} ({t.contact_id}): {t.local.shown()}")
    if b.cancel_reason:
        console.print(f"  cancelled by {b.cancelled_by}: {b.cancel_reason}")


def _answer(answer: Answer, as_json: bool) -> None:
    if answer.booking is not None:
        _one(answer.booking, as_json, "booked" if answer.allowed else "unchanged")
        return
    if as_json:
        print_json(
            {
                "allowed": False,
                "reason": answer.reason,
                "detail": answer.detail,
                "contact_id": answer.contact_id,
                "rules": list(answer.rules),
            }
        )
    else:
        console.print(f"refused: {answer.reason} ({answer.detail})")
    raise typer.Exit(1)


# -- rooms and templates ---------------------------------------------------------


@rooms_app.command("add", help="Add a visiting room.")
@friendly
def room_add(
    room_id: Annotated[str, typer.Argument(help="The room's id, e.g. hall-a.")],
    name: Annotated[str, typer.Option("--name", help="The room's name.")],
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        room = sessions.add_room(db, place.id, room_id, name, actor=actor, at=moment(at, place))
        console.print(f"room {room.id} added: {room.name}")


@rooms_app.command("list", help="List the visiting rooms.")
@friendly
def room_list(
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        rooms = sessions.list_rooms(db, place.id)
        if as_json:
            print_json([{"id": r.id, "name": r.name} for r in rooms])
            return
        for room in rooms:
            console.print(f"{room.id}\t{room.name}")


@templates_app.command("add", help="Add a session template.")
@friendly
def template_add(
    template_id: Annotated[str, typer.Argument(help="The template's id, e.g. sat-am.")],
    room: Annotated[str, typer.Option("--room", help="The room's id.")],
    weekday: Annotated[int, typer.Option("--weekday", help="0 Monday .. 6 Sunday.", min=0, max=6)],
    starts: Annotated[str, typer.Option("--starts", help="Local start, HH:MM.")],
    ends: Annotated[str, typer.Option("--ends", help="Local end, HH:MM.")],
    valid_from: Annotated[str, typer.Option("--from", help="First date it runs (YYYY-MM-DD).")],
    kind: Annotated[str, typer.Option("--kind", help="contact, non_contact or video.")] = "contact",
    open_places: Annotated[int, typer.Option("--open", help="Places for open visits.", min=0)] = 0,
    closed_places: Annotated[
        int, typer.Option("--closed", help="Places for closed visits.", min=0)
    ] = 0,
    valid_to: Annotated[
        str | None, typer.Option("--to", help="Last date it runs (YYYY-MM-DD); default none.")
    ] = None,
    every_weeks: Annotated[int, typer.Option("--every-weeks", help="1 weekly, 2 fortnightly.")] = 1,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="A date it does not run (repeat the option)."),
    ] = None,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        template = sessions.add_template(
            db,
            place.id,
            template_id,
            room_id=room,
            weekday=weekday,
            starts=_time(starts, "--starts"),
            ends=_time(ends, "--ends"),
            kind=kind,
            capacity_open=open_places,
            capacity_closed=closed_places,
            valid_from=_date(valid_from, "--from"),
            valid_to=None if valid_to is None else _date(valid_to, "--to"),
            every_weeks=every_weeks,
            excluded=frozenset(_date(d, "--exclude") for d in exclude or ()),
            actor=actor,
            at=moment(at, place),
        )
        console.print(f"session template {template.id} added")


@templates_app.command("list", help="List the session templates.")
@friendly
def template_list(
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        found = sessions.list_templates(db, place.id)
        rows = [
            {
                "id": t.id,
                "room_id": t.room_id,
                "weekday": t.weekday,
                "starts": t.starts.isoformat("minutes"),
                "ends": t.ends.isoformat("minutes"),
                "kind": str(t.kind),
                "open": t.capacity_open,
                "closed": t.capacity_closed,
                "valid_from": t.valid_from.isoformat(),
                "valid_to": None if t.valid_to is None else t.valid_to.isoformat(),
                "every_weeks": t.every_weeks,
                "excluded": sorted(d.isoformat() for d in t.excluded),
            }
            for t in found
        ]
        if as_json:
            print_json(rows)
            return
        table = Table(
            "id", "room", "weekday", "time", "kind", "open", "closed", box=box.SIMPLE_HEAD
        )
        for row in rows:
            table.add_row(
                str(row["id"]),
                str(row["room_id"]),
                str(row["weekday"]),
                f"{row['starts']}-{row['ends']}",
                str(row["kind"]),
                str(row["open"]),
                str(row["closed"]),
            )
        console.print(table)


# -- blocks and slots ------------------------------------------------------------


@app.command(
    "block", help="Block a date (one room, or all): its visits are cancelled, visitors told."
)
@friendly
def block_command(
    on: Annotated[str, typer.Argument(help="The date (YYYY-MM-DD).")],
    reason: ReasonOption,
    room: Annotated[
        str | None, typer.Option("--room", help="Only this room; default every room.")
    ] = None,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        result = upkeep.block(
            db,
            place.id,
            _date(on, "date"),
            room_id=room,
            reason=reason,
            actor=actor,
            now=moment(at, place),
        )
        console.print(f"block {result.block_id}: {len(result.cancelled)} visits cancelled")


@app.command("slots", help="Sessions offered between two dates, with places left.")
@friendly
def slots_command(
    first: Annotated[str, typer.Argument(help="First date (YYYY-MM-DD).")],
    last: Annotated[str, typer.Argument(help="Last date (YYYY-MM-DD).")],
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only contact, non_contact or video.")
    ] = None,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        found = sessions.list_slots(
            db,
            place.id,
            _date(first, "first"),
            _date(last, "last"),
            kind=None if kind is None else sessions.parse_kind(kind),
        )
        rows = [
            {
                "template_id": v.occurrence.template_id,
                "room_id": v.occurrence.room_id,
                "date": v.occurrence.day.isoformat(),
                "kind": str(v.occurrence.kind),
                "starts": v.occurrence.starts_at.astimezone(place.zone).isoformat(),
                "ends": v.occurrence.ends_at.astimezone(place.zone).isoformat(),
                "free_open": v.free_open,
                "free_closed": v.free_closed,
            }
            for v in found
        ]
        if as_json:
            print_json(rows)
            return
        table = Table(
            "template", "date", "time", "room", "kind", "open", "closed", box=box.SIMPLE_HEAD
        )
        for row in rows:
            table.add_row(
                str(row["template_id"]),
                str(row["date"]),
                f"{str(row['starts'])[11:16]}-{str(row['ends'])[11:16]}",
                str(row["room_id"]),
                str(row["kind"]),
                str(row["free_open"]),
                str(row["free_closed"]),
            )
        console.print(table)


# -- booking ---------------------------------------------------------------------

PersonOption = Annotated[str, typer.Option("--person", help="The person visited.")]
TemplateOption = Annotated[str, typer.Option("--template", help="The session template's id.")]
DateOption = Annotated[str, typer.Option("--date", help="The session's date (YYYY-MM-DD).")]
VisitorsOption = Annotated[
    list[str], typer.Option("--visitor", help="A visitor's contact id (repeat; the first leads).")
]
BookerOption = Annotated[
    str, typer.Option("--booker", help="staff (booked at once) or public (requested).")
]


def _book(
    reserve_only: bool,
    person: str,
    template: str,
    on: str,
    visitors: list[str],
    booker: str,
    at: str | None,
    actor: str,
    facility: str | None,
    as_json: bool,
    database_url: str | None,
) -> None:
    with opened(database_url, facility) as (db, place):
        answer = booking.book(
            db,
            place.id,
            person,
            template,
            _date(on, "--date"),
            visitors,
            booker=booker,
            actor=actor,
            now=moment(at, place),
            reserve_only=reserve_only,
        )
        _answer(answer, as_json)


@app.command("book", help="Book a visit (staff) or request one (public); exit 1 if refused.")
@friendly
def book_command(
    person: PersonOption,
    template: TemplateOption,
    on: DateOption,
    visitor: VisitorsOption,
    booker: BookerOption = "staff",
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    _book(False, person, template, on, visitor, booker, at, actor, facility, as_json, database_url)


@app.command("reserve", help="Hold a visit's place for the reservation minutes; confirm to book.")
@friendly
def reserve_command(
    person: PersonOption,
    template: TemplateOption,
    on: DateOption,
    visitor: VisitorsOption,
    booker: BookerOption = "staff",
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    _book(True, person, template, on, visitor, booker, at, actor, facility, as_json, database_url)


@app.command("confirm", help="Complete a reservation before it lapses.")
@friendly
def confirm_command(
    booking_id: BookingArgument,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        done = booking.confirm(db, place.id, booking_id, actor=actor, now=moment(at, place))
        _one(done, as_json, "confirmed")


@app.command("answer", help="Accept a requested visit, or refuse it with --refuse and a reason.")
@friendly
def answer_command(
    booking_id: BookingArgument,
    refuse: Annotated[bool, typer.Option("--refuse", help="Refuse instead of accepting.")] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (required to refuse).")
    ] = None,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        done = booking.answer_request(
            db,
            place.id,
            booking_id,
            accept=not refuse,
            reason=reason,
            actor=actor,
            now=moment(at, place),
        )
        _one(done, as_json, "refused" if refuse else "accepted")


@app.command("cancel", help="Cancel an upcoming visit, saying why; its visitors are told.")
@friendly
def cancel_command(
    booking_id: BookingArgument,
    reason: ReasonOption,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        done = booking.cancel(
            db, place.id, booking_id, reason=reason, actor=actor, now=moment(at, place)
        )
        _one(done, as_json, "cancelled")


@app.command("reschedule", help="Move a visit to another session, or change nothing if refused.")
@friendly
def reschedule_command(
    booking_id: BookingArgument,
    template: TemplateOption,
    on: DateOption,
    reason: ReasonOption,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        answer = booking.reschedule(
            db,
            place.id,
            booking_id,
            template,
            _date(on, "--date"),
            reason=reason,
            actor=actor,
            now=moment(at, place),
        )
        _answer(answer, as_json)


@app.command("check-in", help="The visitors arrived.")
@friendly
def check_in_command(
    booking_id: BookingArgument,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        done = booking.check_in(db, place.id, booking_id, actor=actor, now=moment(at, place))
        _one(done, as_json, "checked in")


@app.command("complete", help="The visit happened: it counts against visit quotas as a session.")
@friendly
def complete_command(
    booking_id: BookingArgument,
    minutes: Annotated[
        int | None, typer.Option("--minutes", help="How long it lasted; default the session.")
    ] = None,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        done = booking.complete(
            db, place.id, booking_id, minutes=minutes, actor=actor, now=moment(at, place)
        )
        _one(done, as_json, "completed")


@app.command("no-show", help="Nobody came: the visit counts against no quota.")
@friendly
def no_show_command(
    booking_id: BookingArgument,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        done = booking.no_show(db, place.id, booking_id, actor=actor, now=moment(at, place))
        _one(done, as_json, "marked a no-show")


@app.command("list", help="List visits, earliest first.")
@friendly
def list_command(
    person: Annotated[str | None, typer.Option("--person", help="Only this person's.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only visits in this status.")
    ] = None,
    first: Annotated[str | None, typer.Option("--from", help="From this date.")] = None,
    last: Annotated[str | None, typer.Option("--to", help="To this date.")] = None,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    try:
        wanted = None if status is None else VisitStatus(status)
    except ValueError:
        raise InvalidInput(f"{status!r} is not a visit status", field="--status") from None
    with opened(database_url, facility) as (db, place):
        found = booking.list_bookings(
            db,
            place.id,
            person_id=person,
            first=None if first is None else _date(first, "--from"),
            last=None if last is None else _date(last, "--to"),
            status=wanted,
        )
        _print_bookings(found, as_json)


@app.command("show", help="One visit, with each visitor's own time.")
@friendly
def show_command(
    booking_id: BookingArgument,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        _one(booking.get_booking(db, place.id, booking_id), as_json, "is")


@app.command("sweep", help="Free lapsed reservations; refuse requests left unanswered too long.")
@friendly
def sweep_command(
    at: AtOption = None,
    facility: FacilityOption = None,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        done = upkeep.sweep_visits(db, now=moment(at, place))
        console.print(f"{done.lapsed} reservations freed, {done.refused} requests refused")


@app.command("non-associate", help="Keep two people out of the same visiting session, saying why.")
@friendly
def non_associate_command(
    person: Annotated[str, typer.Argument(help="One person's id.")],
    other: Annotated[str, typer.Argument(help="The other person's id.")],
    reason: ReasonOption,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        found = upkeep.record_non_association(
            db, place.id, person, other, reason=reason, actor=actor, at=moment(at, place)
        )
        console.print(f"non-association {found}: {person} and {other} are kept apart")


@app.command(
    "available", help="Sessions a person and visitors could book now, or the reason why not."
)
@friendly
def available_command(
    person: PersonOption,
    visitor: VisitorsOption,
    first: Annotated[str, typer.Argument(help="First date (YYYY-MM-DD).")],
    last: Annotated[str, typer.Argument(help="Last date (YYYY-MM-DD).")],
    booker: BookerOption = "staff",
    at: AtOption = None,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        found = booking.available_slots(
            db,
            place.id,
            person,
            visitor,
            _date(first, "first"),
            _date(last, "last"),
            booker=booker,
            now=moment(at, place),
        )
        rows = [
            {
                "template_id": a.template_id,
                "date": a.day.isoformat(),
                "starts": a.starts_at.astimezone(place.zone).isoformat(),
                "kind": str(a.kind),
                "allowed": a.allowed,
                "reason": a.reason,
                "detail": a.detail,
            }
            for a in found
        ]
        if as_json:
            print_json(rows)
            return
        table = Table("template", "starts", "kind", "bookable", box=box.SIMPLE_HEAD)
        for row in rows:
            table.add_row(
                str(row["template_id"]),
                str(row["starts"])[:16],
                str(row["kind"]),
                "yes" if row["allowed"] else f"no: {row['reason']}",
            )
        console.print(table)
