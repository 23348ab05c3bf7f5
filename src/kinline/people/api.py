"""Routes for facilities, people and contacts (approving and revoking a channel,
transfers, releases and the edits that change what a person may do:
``kinline.changes.api``).

Reading one person's record or contacts is audited (``people:person:viewed``):
who looked at whom. Privileged contacts' numbers and addresses are shown only to
callers with need (staff); others see the contact ``withheld``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter

from kinline import access
from kinline.access import Access, Params, Reach, allowed, everywhere
from kinline.db.engine import Database
from kinline.http import moment
from kinline.identity.model import Action, Record, Target
from kinline.people import service
from kinline.people.model import Facility, Person, PersonRecord
from kinline.people.schemas import (
    AdmitIn,
    ContactIn,
    ContactOut,
    FacilityOut,
    PersonOut,
    PersonPatch,
    PhoneIn,
)
from kinline.people.service import KEEP, ContactView
from kinline.rules.model import Contact
from kinline.rules.periods import local

router = APIRouter(prefix="/v1", tags=["people"])


def contact_target(db: Database, place: Facility, params: Params) -> Target:
    """The contact named in the path: whose it is, and whether it is privileged."""
    view = service.get_contact(db, place.id, params["contact_id"], at=datetime.now(UTC))
    return _contact(place, view.contact)


def _contact(place: Facility, contact: Contact) -> Target:
    return Target(
        place.id,
        Record.CONTACT,
        person_id=contact.person,
        contact_id=contact.id,
        privileged=contact.privileged,
    )


def _wall(value: datetime | None, place: Facility) -> str | None:
    return None if value is None else local(value, place.zone).isoformat()


def person_out(record: PersonRecord, place: Facility) -> PersonOut:
    return PersonOut(
        id=record.person.id,
        name=record.person.name,
        language=record.person.language,
        housing_unit=record.housing_unit,
        custody=str(record.custody),
        admitted_at=_wall(record.admitted_at, place),
        custody_changed_at=_wall(record.custody_changed_at, place),
        transferred_to=record.transferred_to,
        transferred_from=record.transferred_from,
    )


def contact_out(view: ContactView) -> ContactOut:
    return ContactOut(
        id=view.contact.id,
        person_id=view.contact.person,
        name=view.name,
        relationship=view.contact.relationship,
        privileged=view.contact.privileged,
        phones=view.phones,
        approved=sorted(str(c) for c in view.contact.approved),
        email=view.details.email,
        notify_by_email=view.details.notify_by_email,
        language=view.details.language,
        country=view.details.country,
        withheld=view.withheld,
    )


@router.get("/facilities", response_model=list[FacilityOut], summary="List the facilities")
def list_facilities(
    reach: Annotated[Reach, everywhere(Action.FACILITY_READ)],
) -> list[FacilityOut]:
    """The facilities the caller is bound to."""
    mine = reach.subject.facilities()
    return [FacilityOut(**vars_of(f)) for f in service.list_facilities(reach.db) if f.id in mine]


@router.get(
    "/people", response_model=list[PersonOut], summary="List the people held or once held here"
)
def list_people(grant: Annotated[Access, allowed(Action.PERSON_READ)]) -> list[PersonOut]:
    db, place = grant.db, grant.facility
    return [
        person_out(r, place)
        for r in service.list_person_records(db, place.id)
        if grant.sees(Target(place.id, Record.PERSON, person_id=r.person.id))
    ]


@router.get(
    "/people/{person_id}",
    response_model=PersonOut,
    summary="Read a person's record (audited: who looked at whom)",
)
def get_person(
    person_id: str, grant: Annotated[Access, allowed(Action.PERSON_READ, access.person_record)]
) -> PersonOut:
    db, place = grant.db, grant.facility
    record = service.view_person(
        db, place.id, person_id, at=datetime.now(UTC), viewed_by=grant.actor
    )
    return person_out(record, place)


@router.post(
    "/people",
    response_model=PersonOut,
    status_code=201,
    summary="Admit a person: open their record at this facility",
)
def admit(body: AdmitIn, grant: Annotated[Access, allowed(Action.PERSON_MANAGE)]) -> PersonOut:
    db, place = grant.db, grant.facility
    at = moment(body.at, place)
    person = Person(place.id, body.id, body.name, body.language)
    service.admit_person(db, person, at=at, actor=grant.actor, housing_unit=body.housing_unit)
    return person_out(service.get_person_record(db, place.id, person.id), place)


@router.patch(
    "/people/{person_id}",
    response_model=PersonOut,
    summary="Change a person's name, language or housing unit",
)
def edit_person(
    person_id: str,
    body: PersonPatch,
    grant: Annotated[Access, allowed(Action.PERSON_MANAGE, access.person_record)],
) -> PersonOut:
    db, place = grant.db, grant.facility
    record = service.edit_person(
        db,
        place.id,
        person_id,
        at=moment(body.at, place),
        actor=grant.actor,
        name=body.name,
        language=body.language,
        housing_unit=body.housing_unit if "housing_unit" in body.model_fields_set else KEEP,
    )
    return person_out(record, place)


@router.get(
    "/contacts",
    response_model=list[ContactOut],
    summary="List a person's contacts (audited), or everyone's",
)
def list_contacts(
    grant: Annotated[Access, allowed(Action.CONTACT_READ, access.person)],
    person_id: str | None = None,
) -> list[ContactOut]:
    db, place = grant.db, grant.facility
    views = service.list_contacts(
        db,
        place.id,
        person_id,
        at=datetime.now(UTC),
        include_privileged=grant.privileged(),
        viewed_by=grant.actor,
    )
    return [contact_out(v) for v in views if grant.sees(_contact(place, v.contact))]


@router.post(
    "/contacts",
    response_model=ContactOut,
    status_code=201,
    summary="Add a contact to a person's list (approve it separately)",
)
def add_contact(
    body: ContactIn, grant: Annotated[Access, allowed(Action.CONTACT_MANAGE)]
) -> ContactOut:
    db, place = grant.db, grant.facility
    grant.require(Target(place.id, Record.PERSON, person_id=body.person_id))
    contact = Contact(
        id=body.id,
        person=body.person_id,
        relationship=body.relationship,
        privileged=body.privileged,
        approved=frozenset(),
    )
    view = service.add_contact(
        db,
        place.id,
        contact,
        name=body.name,
        phones=body.phones,
        at=moment(body.at, place),
        actor=grant.actor,
        email=body.email,
        notify_by_email=body.notify_by_email,
        language=body.language,
        country=body.country,
    )
    return contact_out(view)


@router.post(
    "/contacts/{contact_id}/phones",
    response_model=ContactOut,
    status_code=201,
    summary="Add a phone number to a contact",
)
def add_phone(
    contact_id: str,
    body: PhoneIn,
    grant: Annotated[Access, allowed(Action.CONTACT_MANAGE, contact_target)],
) -> ContactOut:
    db, place = grant.db, grant.facility
    view = service.add_phone(
        db, place.id, contact_id, body.number, at=moment(body.at, place), actor=grant.actor
    )
    return contact_out(view)


def vars_of(facility: object) -> dict[str, object]:
    return {
        name: getattr(facility, name)
        for name in ("id", "name", "timezone", "country", "appeal_days", "retaliation_window_days")
    }
