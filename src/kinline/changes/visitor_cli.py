"""``kinline visitors``: apply, check an ID, record the supervising officer's
consent, decide (with notices), restrict and lift, withdraw, list and show
visitors; show and set a facility's visit settings.

Here, beside ``changes``, because deciding and restricting write notices in
the same transaction (``kinline.changes.visitors``)."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer

from kinline.changes import visitors as changes
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
from kinline.rules.model import Channel
from kinline.visits import visitors as service
from kinline.visits.api import restriction_out, visitor_out
from kinline.visits.model import (
    RestrictionKind,
    Supervision,
    Verdict,
    VisitorStatus,
    VisitSettings,
    choice,
)

app = typer.Typer(no_args_is_help=True)
settings_app = typer.Typer(help="A facility's visit settings.", no_args_is_help=True)
app.add_typer(settings_app, name="settings")

AtOption = Annotated[
    str | None,
    typer.Option(
        "--at", help="Local wall time in the facility (ISO 8601, no offset); default now."
    ),
]
ActorOption = Annotated[
    str, typer.Option("--actor", help="Who does this, as the audit log records it.")
]
VisitorArgument = Annotated[int, typer.Argument(help="The visitor record's id.", min=1)]
ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why: told to the person and the applicant.")
]
DEFAULT_ACTOR = "kinline:cli"


def _day(text: str | None, field: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date such as 2024-09-01", field=field) from None


def _show(db: Any, place: Facility, visitor_id: int, as_json: bool, said: str) -> None:
    view = service.get_visitor(db, place.id, visitor_id, at=datetime.now(UTC))
    if as_json:
        print_json(visitor_out(view, place).model_dump(mode="json"))
        return
    v = view.visitor
    console.print(f"visitor {v.id} ({v.contact_id}, {v.name}) {said}: {v.status}")
    for line in view.shown:
        console.print(f"  {line}")
    for blocker in view.blockers:
        console.print(f"  before approval: {blocker.message}")


@app.command("apply", help="A contact applies to visit their person.")
@friendly
def apply_command(
    contact: Annotated[str, typer.Option("--contact", help="The contact applying.")],
    born: Annotated[str, typer.Option("--born", help="Date of birth, YYYY-MM-DD.")],
    address: Annotated[str, typer.Option("--address", help="Home address.")],
    country: Annotated[str, typer.Option("--country", help="Two-letter country code.")],
    record: Annotated[
        str | None,
        typer.Option("--record", help="The criminal record declared; leave out for none."),
    ] = None,
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="The visitor's IANA time zone.")
    ] = None,
    document_type: Annotated[
        str | None, typer.Option("--id-type", help="passport, driving_licence, national_id, ...")
    ] = None,
    document_number: Annotated[
        str | None, typer.Option("--id-number", help="The ID document's number.")
    ] = None,
    supervision: Annotated[
        str | None,
        typer.Option("--supervision", help="probation, supervised_release or parole."),
    ] = None,
    officer: Annotated[
        str | None, typer.Option("--officer", help="The supervising officer's name.")
    ] = None,
    office: Annotated[str | None, typer.Option("--office", help="The supervising office.")] = None,
    co_defendant: Annotated[
        bool, typer.Option("--co-defendant", help="A former co-defendant of the person.")
    ] = False,
    adult: Annotated[
        str | None, typer.Option("--adult", help="A minor's accompanying adult (a contact id).")
    ] = None,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    birth = _day(born, "--born")
    assert birth is not None
    with opened(url, facility) as (db, place):
        visitor = service.apply(
            db,
            place.id,
            service.Application(
                contact_id=contact,
                date_of_birth=birth,
                address=address,
                country=country,
                criminal_record_declared=record is not None,
                criminal_record=record,
                id_document_type=document_type,
                id_document_number=document_number,
                timezone=timezone,
                supervision=None
                if supervision is None
                else choice(Supervision, supervision, "--supervision"),
                supervising_officer=officer,
                supervising_office=office,
                co_defendant=co_defendant,
                accompanying_contact_id=adult,
            ),
            at=moment(at, place),
            actor=actor,
        )
        _show(db, place, visitor.id, as_json, "applied")


@app.command("list", help="List visitor records, oldest first.")
@friendly
def list_command(
    person: Annotated[str | None, typer.Option("--person", help="One person's.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="applied, approved, refused or withdrawn.")
    ] = None,
    facility: FacilityOption = None,
    url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    with opened(url, facility) as (db, place):
        views = service.list_visitors(
            db,
            place.id,
            at=datetime.now(UTC),
            person_id=person,
            status=None if status is None else choice(VisitorStatus, status, "--status"),
        )
    if as_json:
        print_json([visitor_out(view, place).model_dump(mode="json") for view in views])
        return
    for view in views:
        v = view.visitor
        extra = "; ".join(view.shown)
        console.print(
            f"{v.id}\t{v.person_id}\t{v.contact_id}\t{v.name}\t{v.status}"
            + (f"\t{extra}" if extra else "")
        )
    console.print(f"{len(views)} visitors")


@app.command("show", help="One visitor record, its restrictions and what stands before approval.")
@friendly
def show_command(
    visitor: VisitorArgument,
    facility: FacilityOption = None,
    url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    with opened(url, facility) as (db, place):
        _show(db, place, visitor, as_json, "is")


@app.command("check-id", help="Record that staff saw the visitor's ID document.")
@friendly
def check_id_command(
    visitor: VisitorArgument,
    document_type: Annotated[str, typer.Option("--id-type", help="The document's type.")],
    document_number: Annotated[str, typer.Option("--id-number", help="Its number.")],
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    with opened(url, facility) as (db, place):
        service.check_id(
            db,
            place.id,
            visitor,
            document_type=document_type,
            document_number=document_number,
            at=moment(at, place),
            actor=actor,
        )
        _show(db, place, visitor, as_json, "ID checked")


@app.command("consent", help="Record the supervising officer's consent (the first key).")
@friendly
def consent_command(
    visitor: VisitorArgument,
    officer: Annotated[str, typer.Option("--officer", help="The officer who consented.")],
    note: Annotated[str | None, typer.Option("--note", help="What the officer said.")] = None,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    with opened(url, facility) as (db, place):
        service.record_consent(
            db, place.id, visitor, officer=officer, note=note, at=moment(at, place), actor=actor
        )
        _show(db, place, visitor, as_json, "consent recorded")


@app.command("decide", help="Approve or refuse an application, with a reason (a notice).")
@friendly
def decide_command(
    visitor: VisitorArgument,
    verdict: Annotated[str, typer.Argument(help="approve or refuse.")],
    reason: ReasonOption,
    channel: Annotated[
        list[str] | None,
        typer.Option("--channel", help="On approval: visit (default); add video for video visits."),
    ] = None,
    warden: Annotated[
        bool, typer.Option("--warden", help="The warden decides (needed for a co-defendant).")
    ] = False,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    with opened(url, facility) as (db, place):
        decision = changes.decide_visitor(
            db,
            place.id,
            visitor,
            verdict=choice(Verdict, verdict, "verdict"),
            reason=reason,
            channels=[choice(Channel, c, "--channel") for c in channel or ["visit"]],
            warden=warden,
            at=moment(at, place),
            actor=actor,
        )
        if not as_json:
            console.print(f"notice {decision.notice_id} written")
        _show(db, place, visitor, as_json, "decided")


@app.command("restrict", help="Ban a visitor or hold them to closed or non-contact visits.")
@friendly
def restrict_command(
    visitor: VisitorArgument,
    kind: Annotated[str, typer.Argument(help="banned, closed or non_contact.")],
    reason: ReasonOption,
    starts: Annotated[
        str | None, typer.Option("--from", help="The first day, YYYY-MM-DD; default today.")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="The first day without it; leave out: until lifted."),
    ] = None,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    with opened(url, facility) as (db, place):
        decision = changes.restrict_visitor(
            db,
            place.id,
            visitor,
            kind=choice(RestrictionKind, kind, "kind"),
            reason=reason,
            starts_on=_day(starts, "--from"),
            until=_day(until, "--until"),
            at=moment(at, place),
            actor=actor,
        )
    if as_json:
        print_json(restriction_out(decision.restriction, place, "en").model_dump(mode="json"))
        return
    console.print(
        f"restriction {decision.restriction.id}: {decision.shown} (notice {decision.notice_id})"
    )


@app.command("lift", help="Lift a visitor's restriction before its end, with a reason.")
@friendly
def lift_command(
    restriction: Annotated[int, typer.Argument(help="The restriction's id.", min=1)],
    reason: ReasonOption,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    url: DatabaseOption = None,
) -> None:
    with opened(url, facility) as (db, place):
        decision = changes.lift_visitor_restriction(
            db, place.id, restriction, reason=reason, at=moment(at, place), actor=actor
        )
    console.print(f"restriction {restriction} lifted (notice {decision.notice_id})")


@app.command("withdraw", help="Withdraw an application not yet decided.")
@friendly
def withdraw_command(
    visitor: VisitorArgument,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    with opened(url, facility) as (db, place):
        service.withdraw(db, place.id, visitor, at=moment(at, place), actor=actor)
        _show(db, place, visitor, as_json, "withdrawn")


def _print_settings(settings: VisitSettings, as_json: bool) -> None:
    values = {f.name: getattr(settings, f.name) for f in fields(VisitSettings)}
    if as_json:
        print_json(values)
        return
    for name, value in values.items():
        console.print(f"{name}\t{value}")


@settings_app.command("show", help="The facility's visit settings (defaults where unset).")
@friendly
def settings_show(
    facility: FacilityOption = None, url: DatabaseOption = None, as_json: JsonOption = False
) -> None:
    with opened(url, facility) as (db, place):
        _print_settings(service.get_settings(db, place.id), as_json)


@settings_app.command("set", help="Change visit settings: NAME=VALUE pairs, the rest kept.")
@friendly
def settings_set(
    pairs: Annotated[
        list[str], typer.Argument(help="e.g. adult_age=16 public_max_notice_days=21.")
    ],
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    known = {f.name: f for f in fields(VisitSettings)}
    with opened(url, facility) as (db, place):
        settings = service.get_settings(db, place.id)
        for pair in pairs:
            name, _, text = pair.partition("=")
            if name not in known or not text:
                raise InvalidInput(f"{pair!r} is not NAME=VALUE of a setting", field=name or pair)
            if isinstance(getattr(settings, name), bool):
                if text not in ("true", "false"):
                    raise InvalidInput("must be true or false", field=name)
                value: Any = text == "true"
            else:
                try:
                    value = int(text)
                except ValueError:
                    raise InvalidInput(f"{text!r} is not a whole number", field=name) from None
            settings = replace(settings, **{name: value})
        saved = service.set_settings(db, place.id, settings, at=datetime.now(UTC), actor=actor)
    _print_settings(saved, as_json)
