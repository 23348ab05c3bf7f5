"""Routes for facilities, people and contacts (approving and revoking a channel,
transfers, releases and the edits that change what a person may do:
``kinline.changes.api``).

Reading one person's record or contacts is audited (``people:person:viewed``):
who looked at whom. Privileged contacts' numbers and addresses are shown only to
callers with need (staff); others see the contact ``withheld``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from kinline.http import DbDep, FacilityDep, Reader, Staff, moment
from kinline.identity.model import Kind
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


def actor_of(who: Reader) -> str:
    """How the audit log names the caller, as the other routes name it."""
    return f"token:{who.name}"


def has_need(who: Reader) -> bool:
    """Whether the caller may see how privileged contacts are reached: staff.
    (The access policy narrows this per role once routes declare their actions.)"""
    return who.kind == Kind.STAFF


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
def list_facilities(db: DbDep, _who: Reader) -> list[FacilityOut]:
    return [FacilityOut(**vars_of(f)) for f in service.list_facilities(db)]


@router.get(
    "/people", response_model=list[PersonOut], summary="List the people held or once held here"
)
def list_people(db: DbDep, place: FacilityDep, _who: Reader) -> list[PersonOut]:
    return [person_out(r, place) for r in service.list_person_records(db, place.id)]


@router.get(
    "/people/{person_id}",
    response_model=PersonOut,
    summary="Read a person's record (audited: who looked at whom)",
)
def get_person(person_id: str, db: DbDep, place: FacilityDep, who: Reader) -> PersonOut:
    record = service.view_person(
        db, place.id, person_id, at=datetime.now(UTC), viewed_by=actor_of(who)
    )
    return person_out(record, place)


@router.post(
    "/people",
    response_model=PersonOut,
    status_code=201,
    summary="Admit a person: open their record at this facility",
)
def admit(body: AdmitIn, db: DbDep, place: FacilityDep, who: Staff) -> PersonOut:
    at = moment(body.at, place)
    person = Person(place.id, body.id, body.name, body.language)
    service.admit_person(db, person, at=at, actor=actor_of(who), housing_unit=body.housing_unit)
    return person_out(service.get_person_record(db, place.id, person.id), place)


@router.patch(
    "/people/{person_id}",
    response_model=PersonOut,
    summary="Change a person's name, language or housing unit",
)
def edit_person(
    person_id: str, body: PersonPatch, db: DbDep, place: FacilityDep, who: Staff
) -> PersonOut:
    record = service.edit_person(
        db,
        place.id,
        person_id,
        at=moment(body.at, place),
        actor=actor_of(who),
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
    db: DbDep, place: FacilityDep, who: Reader, person_id: str | None = None
) -> list[ContactOut]:
    views = service.list_contacts(
        db,
        place.id,
        person_id,
        at=datetime.now(UTC),
        include_privileged=has_need(who),
        viewed_by=actor_of(who),
    )
    return [contact_out(v) for v in views]


@router.post(
    "/contacts",
    response_model=ContactOut,
    status_code=201,
    summary="Add a contact to a person's list (approve it separately)",
)
def add_contact(body: ContactIn, db: DbDep, place: FacilityDep, who: Staff) -> ContactOut:
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
        actor=actor_of(who),
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
    contact_id: str, body: PhoneIn, db: DbDep, place: FacilityDep, who: Staff
) -> ContactOut:
    view = service.add_phone(
        db, place.id, contact_id, body.number, at=moment(body.at, place), actor=actor_of(who)
    )
    return contact_out(view)


def vars_of(facility: object) -> dict[str, object]:
    return {
        name: getattr(facility, name)
        for name in ("id", "name", "timezone", "country", "appeal_days", "retaliation_window_days")
    }
