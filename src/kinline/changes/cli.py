"""The commands that change what a person may do through ``people``, each
written with its notice: ``kinline people transfer|release`` and ``kinline
contacts edit|remove-phone|approve|revoke`` (mounted beside ``kinline.people.cli``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from kinline.changes import service
from kinline.changes.password_reset import request_password_reset
from kinline.cli_support import (
    DatabaseOption,
    FacilityOption,
    JsonOption,
    console,
    database,
    friendly,
    moment,
    opened,
    print_json,
)
from kinline.errors import InvalidInput, NotFound
from kinline.people.cli import (
    DEFAULT_ACTOR,
    ActorOption,
    AtOption,
    ContactArgument,
    PersonArgument,
    contact_dict,
    print_contacts,
)
from kinline.people.service import KEEP

ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why; the person reads it in their notice.")
]


def _noticed(notice_id: int | None, as_json: bool) -> None:
    if not as_json:
        console.print(
            "no notice: nothing the person may do changed"
            if notice_id is None
            else f"notice {notice_id} written to the person"
        )


@friendly
def transfer_command(
    person: PersonArgument,
    to: Annotated[str, typer.Option("--to", help="The facility the person moves to.")],
    reason: ReasonOption,
    housing_unit: Annotated[
        str | None, typer.Option("--housing-unit", help="The unit at the new facility.")
    ] = None,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        moved, notice = service.transfer_person(
            db,
            place.id,
            person,
            to,
            reason=reason,
            at=moment(at, place),
            actor=actor,
            housing_unit=housing_unit,
        )
    result = {
        "person_id": person,
        "from": place.id,
        "to": to,
        "approvals_ended": moved.source.approvals_ended,
        "contacts": moved.contacts,
        "notice_id": notice,
    }
    if as_json:
        print_json(result)
        return
    console.print(f"{person} transferred from {place.id} to {to}; notice {notice}")
    ended = ", ".join(moved.source.approvals_ended) or "none"
    console.print(f"approvals ended at {place.id}: {ended} (approve them again at {to})")


@friendly
def release_command(
    person: PersonArgument,
    reason: ReasonOption,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        released, notice = service.release_person(
            db, place.id, person, reason=reason, at=moment(at, place), actor=actor
        )
    if as_json:
        print_json(
            {
                "person_id": person,
                "approvals_ended": released.approvals_ended,
                "notice_id": notice,
            }
        )
        return
    console.print(f"{person} released from {place.id}; notice {notice}")


@friendly
def edit_contact_command(
    contact: ContactArgument,
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    relationship: Annotated[
        str | None,
        typer.Option("--relationship", help="A new relationship (the person is told)."),
    ] = None,
    email: Annotated[str | None, typer.Option("--email", help="A new email address.")] = None,
    no_email: Annotated[bool, typer.Option("--no-email", help="Remove the email address.")] = False,
    notify_by_email: Annotated[
        bool | None,
        typer.Option(
            "--notify-by-email/--no-notify-by-email", help="Email the person's notices to them."
        ),
    ] = None,
    language: Annotated[
        str | None, typer.Option("--language", help="The contact's language (ISO 639).")
    ] = None,
    country: Annotated[
        str | None, typer.Option("--country", help="Two-letter country for their numbers.")
    ] = None,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        edit, notice = service.edit_contact(
            db,
            place.id,
            contact,
            at=moment(at, place),
            actor=actor,
            name=name,
            relationship=relationship,
            email=None if no_email else (email or KEEP),
            notify_by_email=notify_by_email,
            language=language or KEEP,
            country=country or KEEP,
        )
    if as_json:
        print_json({**contact_dict(edit.view), "notice_id": notice})
        return
    print_contacts([edit.view], False)
    _noticed(notice, as_json)


@friendly
def remove_phone_command(
    contact: ContactArgument,
    number: Annotated[str, typer.Argument(help="The number to remove, any format.")],
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        removal, notice = service.remove_phone(
            db, place.id, contact, number, at=moment(at, place), actor=actor
        )
    if as_json:
        print_json({**contact_dict(removal.view), "notice_id": notice})
        return
    print_contacts([removal.view], False)
    _noticed(notice, as_json)


ChannelArgument = Annotated[str, typer.Argument(help="phone, video or visit.")]


@friendly
def approve_command(
    contact: ContactArgument,
    channel: ChannelArgument,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why; the person reads it in their notice.")
    ] = None,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        notice = service.approve_contact(
            db, place.id, contact, channel, at=moment(at, place), actor=actor, reason=reason
        )
    if notice is None:
        console.print(f"{contact} was already approved for {channel}: nothing changed")
    else:
        console.print(f"{contact} approved for {channel}; notice {notice}")


@friendly
def revoke_command(
    contact: ContactArgument,
    channel: ChannelArgument,
    reason: ReasonOption,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        notice = service.revoke_contact(
            db, place.id, contact, channel, reason=reason, at=moment(at, place), actor=actor
        )
    console.print(f"{contact} no longer approved for {channel}; notice {notice}")


@friendly
def reset_command(
    login: Annotated[str, typer.Argument(help="The subject's login (or email).")],
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            envvar="KINLINE_PUBLIC_URL",
            help="Where kinline's pages are served; the link is BASE/reset?token=...",
        ),
    ] = None,
    actor: ActorOption = DEFAULT_ACTOR,
    database_url: DatabaseOption = None,
) -> None:
    """Queue a password reset email for a subject, as the sign-in page does."""
    if not base_url:
        raise InvalidInput("give --base-url or set KINLINE_PUBLIC_URL", field="--base-url")
    db = database(database_url)
    try:
        queued = request_password_reset(
            db, login, at=datetime.now(UTC), base_url=base_url, actor=actor
        )
    finally:
        db.dispose()
    if not queued:
        raise NotFound(
            f"no subject with login or email {login!r} that has an email and is not disabled",
            field="login",
        )
    console.print(f"a password reset link for {login} is queued; the worker emails it")
