"""Routes for facilities, people and contacts (approving and revoking a channel:
``kinline.changes.api``)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from kinline.http import DbDep, FacilityDep, Reader
from kinline.people import service
from kinline.people.schemas import ContactOut, FacilityOut, PersonOut

router = APIRouter(prefix="/v1", tags=["people"])


@router.get("/facilities", response_model=list[FacilityOut])
def list_facilities(db: DbDep, _who: Reader) -> list[FacilityOut]:
    return [FacilityOut(**vars_of(f)) for f in service.list_facilities(db)]


@router.get("/people", response_model=list[PersonOut])
def list_people(db: DbDep, place: FacilityDep, _who: Reader) -> list[PersonOut]:
    return [
        PersonOut(id=p.id, name=p.name, language=p.language)
        for p in service.list_people(db, place.id)
    ]


@router.get("/people/{person_id}", response_model=PersonOut)
def get_person(person_id: str, db: DbDep, place: FacilityDep, _who: Reader) -> PersonOut:
    p = service.get_person(db, place.id, person_id)
    return PersonOut(id=p.id, name=p.name, language=p.language)


@router.get("/contacts", response_model=list[ContactOut])
def list_contacts(
    db: DbDep, place: FacilityDep, _who: Reader, person_id: str | None = None
) -> list[ContactOut]:
    views = service.list_contacts(db, place.id, person_id, at=datetime.now(UTC))
    return [
        ContactOut(
            id=v.contact.id,
            person_id=v.contact.person,
            name=v.name,
            relationship=v.contact.relationship,
            privileged=v.contact.privileged,
            phones=v.phones,
            approved=sorted(str(c) for c in v.contact.approved),
        )
        for v in views
    ]


def vars_of(facility: object) -> dict[str, object]:
    return {
        name: getattr(facility, name)
        for name in ("id", "name", "timezone", "country", "appeal_days", "retaliation_window_days")
    }
