"""``kinline people`` and ``kinline contacts``: admit, edit, list and show people;
add and list contacts and add numbers. Transfers, releases, contact edits and
removing a number change what a person may do and are written with their
notice: their commands are in ``kinline.changes.cli``, mounted beside these.

Showing a person or listing their contacts is audited (``people:person:viewed``)
with ``--actor``, as the API audits a staff member's read.
"""

from __future__ import annotations

from datetime import datetime
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
from kinline.people import service
from kinline.people.model import Facility, Person, PersonRecord
from kinline.people.service import KEEP, ContactView
from kinline.rules.model import Contact
from kinline.rules.periods import local

people_app = typer.Typer(no_args_is_help=True)
contacts_app = typer.Typer(no_args_is_help=True)

AtOption = Annotated[
    str | None,
    typer.Option(
        "--at", help="Local wall time in the facility (ISO 8601, no offset); default now."
    ),
]
ActorOption = Annotated[
    str, typer.Option("--actor", help="Who does this, as the audit log records it.")
]
PersonArgument = Annotated[str, typer.Argument(help="The person's id.")]
ContactArgument = Annotated[str, typer.Argument(help="The contact's id.")]
DEFAULT_ACTOR = "kinline:cli"


def _wall(value: datetime | None, place: Facility) -> str | None:
    return None if value is None else local(value, place.zone).isoformat()


def person_dict(record: PersonRecord, place: Facility) -> dict[str, Any]:
    return {
        "id": record.person.id,
        "name": record.person.name,
        "language": record.person.language,
        "housing_unit": record.housing_unit,
        "custody": str(record.custody),
        "admitted_at": _wall(record.admitted_at, place),
        "custody_changed_at": _wall(record.custody_changed_at, place),
        "transferred_to": record.transferred_to,
        "transferred_from": record.transferred_from,
    }


def contact_dict(view: ContactView) -> dict[str, Any]:
    return {
        "id": view.contact.id,
        "person_id": view.contact.person,
        "name": view.name,
        "relationship": view.contact.relationship,
        "privileged": view.contact.privileged,
        "phones": view.phones,
        "approved": sorted(str(channel) for channel in view.contact.approved),
        "email": view.details.email,
        "notify_by_email": view.details.notify_by_email,
        "language": view.details.language,
        "country": view.details.country,
    }


def print_people(records: list[PersonRecord], place: Facility, as_json: bool) -> None:
    rows = [person_dict(record, place) for record in records]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "language", "unit", "custody", "since", box=box.SIMPLE_HEAD)
    for row in rows:
        table.add_row(
            row["id"],
            row["name"],
            row["language"],
            row["housing_unit"] or "",
            row["custody"],
            row["custody_changed_at"] or row["admitted_at"] or "",
        )
    console.print(table)


def print_contacts(views: list[ContactView], as_json: bool) -> None:
    rows = [contact_dict(view) for view in views]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "person", "name", "relationship", "phones", "approved", box=box.SIMPLE_HEAD)
    for row in rows:
        table.add_row(
            row["id"],
            row["person_id"],
            row["name"],
            row["relationship"] + (" (privileged)" if row["privileged"] else ""),
            ", ".join(row["phones"]),
            ", ".join(row["approved"]),
        )
    console.print(table)


@people_app.command("admit", help="Admit a person: open their record at the facility.")
@friendly
def admit_command(
    person: PersonArgument,
    name: Annotated[str, typer.Option("--name", help="The person's name.")],
    language: Annotated[
        str, typer.Option("--language", help="ISO 639 code their notices are written in.")
    ] = "en",
    housing_unit: Annotated[
        str | None, typer.Option("--housing-unit", help="Where printed notices go.")
    ] = None,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        service.admit_person(
            db,
            Person(place.id, person, name, language),
            at=moment(at, place),
            actor=actor,
            housing_unit=housing_unit,
        )
        print_people([service.get_person_record(db, place.id, person)], place, as_json)


@people_app.command("edit", help="Change a person's name, language or housing unit.")
@friendly
def edit_command(
    person: PersonArgument,
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    language: Annotated[
        str | None, typer.Option("--language", help="A new ISO 639 language code.")
    ] = None,
    housing_unit: Annotated[
        str | None, typer.Option("--housing-unit", help="A new housing unit.")
    ] = None,
    no_housing_unit: Annotated[
        bool, typer.Option("--no-housing-unit", help="Clear the housing unit.")
    ] = False,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        record = service.edit_person(
            db,
            place.id,
            person,
            at=moment(at, place),
            actor=actor,
            name=name,
            language=language,
            housing_unit=None if no_housing_unit else (housing_unit or KEEP),
        )
        print_people([record], place, as_json)


@people_app.command("list", help="List the people held, or once held, at the facility.")
@friendly
def list_command(
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        print_people(service.list_person_records(db, place.id), place, as_json)


@people_app.command("show", help="Show a person's record and contacts (audited as a read).")
@friendly
def show_command(
    person: PersonArgument,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        at = moment(None, place)
        record = service.view_person(db, place.id, person, at=at, viewed_by=actor)
        contacts = service.list_contacts(db, place.id, person, at=at, viewed_by=actor)
        if as_json:
            print_json(
                {**person_dict(record, place), "contacts": [contact_dict(c) for c in contacts]}
            )
            return
        print_people([record], place, False)
        print_contacts(contacts, False)


@contacts_app.command("add", help="Add a contact to a person's list (approve it separately).")
@friendly
def add_command(
    contact: ContactArgument,
    person: Annotated[str, typer.Option("--person", help="Whose contact this is.")],
    name: Annotated[str, typer.Option("--name", help="The contact's name.")],
    relationship: Annotated[
        str, typer.Option("--relationship", help="spouse, child, parent, attorney, ...")
    ],
    phones: Annotated[
        list[str] | None,
        typer.Option("--phone", help="A phone number, any format; repeat for more."),
    ] = None,
    privileged: Annotated[
        bool, typer.Option("--privileged", help="Counsel: calls are never monitored.")
    ] = False,
    email: Annotated[str | None, typer.Option("--email", help="An email address.")] = None,
    notify_by_email: Annotated[
        bool, typer.Option("--notify-by-email", help="Email the person's notices to them.")
    ] = False,
    language: Annotated[
        str | None, typer.Option("--language", help="The contact's language (ISO 639).")
    ] = None,
    country: Annotated[
        str | None,
        typer.Option("--country", help="Two-letter country numbers without +code are read in."),
    ] = None,
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        view = service.add_contact(
            db,
            place.id,
            Contact(contact, person, relationship, privileged, frozenset()),
            name=name,
            phones=phones or [],
            at=moment(at, place),
            actor=actor,
            email=email,
            notify_by_email=notify_by_email,
            language=language,
            country=country,
        )
        print_contacts([view], as_json)


@contacts_app.command("list", help="List a person's contacts (audited as a read), or everyone's.")
@friendly
def contacts_list_command(
    person: Annotated[
        str | None, typer.Option("--person", help="Only this person's contacts.")
    ] = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        views = service.list_contacts(db, place.id, person, at=moment(None, place), viewed_by=actor)
        print_contacts(views, as_json)


@contacts_app.command("add-phone", help="Add a phone number to a contact.")
@friendly
def add_phone_command(
    contact: ContactArgument,
    number: Annotated[str, typer.Argument(help="The number, any format; stored as E.164.")],
    at: AtOption = None,
    actor: ActorOption = DEFAULT_ACTOR,
    facility: FacilityOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    with opened(database_url, facility) as (db, place):
        view = service.add_phone(db, place.id, contact, number, at=moment(at, place), actor=actor)
        print_contacts([view], as_json)
