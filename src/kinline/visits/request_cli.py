"""``kinline visits request|requests|withdraw-request|allocate``: the weekly request
window from the command line (mounted on ``kinline visits``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
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
from kinline.people.model import Facility
from kinline.rules.periods import local
from kinline.visits.allocation import MOST_PREFERENCES, RequestStatus
from kinline.visits.model import choice
from kinline.visits.requests import (
    AllocationRun,
    Preferred,
    VisitRequest,
    allocate_closed,
    list_requests,
    submit_request,
    withdraw_request,
)

DEFAULT_ACTOR = "kinline:cli"
ActorOption = Annotated[
    str, typer.Option("--actor", help="Who does this, as the audit log records it.")
]
AtOption = Annotated[
    str | None,
    typer.Option(
        "--at", help="Local wall time in the facility (ISO 8601, no offset); default now."
    ),
]


def _preference(text: str) -> Preferred:
    template_id, _, day = text.rpartition("@")
    try:
        return Preferred(template_id, date.fromisoformat(day))
    except ValueError:
        raise InvalidInput(f"{text!r} is not TEMPLATE@YYYY-MM-DD", field="--prefer") from None


def request_dict(found: VisitRequest, facility: Facility) -> dict[str, object]:
    return {
        "id": found.id,
        "person_id": found.person_id,
        "requested_by": found.requested_by,
        "visitors": list(found.visitors),
        "preferences": [
            {"template_id": p.template_id, "date": p.day.isoformat()} for p in found.preferences
        ],
        "window_closes": local(found.window_closes_at, facility.zone).isoformat(timespec="minutes"),
        "status": str(found.status),
        "reason": found.reason,
        "booking_id": found.booking_id,
    }


def _print(found: list[VisitRequest], facility: Facility) -> None:
    table = Table("id", "person", "visitors", "preferences", "window closes", "status", "booking")
    for r in found:
        outcome = str(r.status) if r.reason is None else f"{r.status}: {r.reason}"
        table.add_row(
            str(r.id),
            r.person_id,
            ", ".join(r.visitors),
            " > ".join(f"{p.template_id}@{p.day}" for p in r.preferences),
            f"{local(r.window_closes_at, facility.zone):%Y-%m-%d %H:%M}",
            outcome,
            "" if r.booking_id is None else str(r.booking_id),
        )
    console.print(table)


@friendly
def request_command(
    person: Annotated[str, typer.Option("--person", help="The person to be visited.")],
    visitor: Annotated[
        list[str], typer.Option("--visitor", help="A visitor's contact id; repeat for each.")
    ],
    prefer: Annotated[
        list[str],
        typer.Option(
            "--prefer",
            help=f"A session as TEMPLATE@YYYY-MM-DD, most wanted first; up to {MOST_PREFERENCES}, "
            "all in one week.",
        ),
    ],
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        found = submit_request(
            db,
            place.id,
            person,
            visitor,
            [_preference(p) for p in prefer],
            actor=actor,
            now=moment(at, place),
        )
        if as_json:
            print_json(request_dict(found, place))
            return
        closes = local(found.window_closes_at, place.zone)
        console.print(
            f"request {found.id} for {person}: allocated when the window closes at "
            f"{closes:%Y-%m-%d %H:%M} facility time"
        )


@friendly
def requests_command(
    person: Annotated[str | None, typer.Option("--person", help="Only this person's.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="pending, met, unmet or withdrawn.")
    ] = None,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    wanted = None if status is None else choice(RequestStatus, status, "--status")
    with opened(database_url, facility) as (db, place):
        found = list_requests(db, place.id, person_id=person, status=wanted)
        if as_json:
            print_json([request_dict(r, place) for r in found])
        else:
            _print(found, place)


@friendly
def withdraw_request_command(
    request_id: Annotated[int, typer.Argument(help="The request's id.")],
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        found = withdraw_request(db, place.id, request_id, actor=actor, now=moment(at, place))
        if as_json:
            print_json(request_dict(found, place))
        else:
            console.print(f"request {found.id} withdrawn")


def _run_dict(run: AllocationRun, facility: Facility) -> dict[str, object]:
    return {
        "met": run.met,
        "unmet": run.unmet,
        "fcfs_met": run.fcfs_met,
        "solver_status": run.solver_status,
        "gap": run.gap,
        "seconds": round(run.seconds, 3),
        "requests": [request_dict(r, facility) for r in run.requests],
    }


@friendly
def allocate_command(
    seconds: Annotated[
        float, typer.Option("--seconds", min=0.1, max=60, help="The solver's time limit.")
    ] = 10.0,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        run = allocate_closed(db, place.id, actor=actor, now=moment(at, place), seconds=seconds)
        if as_json:
            print_json(_run_dict(run, place))
            return
        if not run.requests:
            console.print("no request window has closed with requests pending")
            return
        _print(list(run.requests), place)
        console.print(
            f"met {run.met}, unmet {run.unmet} (first come, first served would meet "
            f"{run.fcfs_met}); solver {run.solver_status}, gap {run.gap:.2%}"
        )
