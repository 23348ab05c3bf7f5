"""Use cases for facilities, people, contacts and approvals; one transaction each.

Approving or revoking a contact for a channel changes what a person may do, so
its notice must commit with it: ``approve`` and ``revoke`` work inside the
caller's transaction, and ``kinline.changes.service`` runs them beside the
notice (and, for a revocation, the adverse action) in one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from kinline.audit.service import facility_chain, person_chain, record_event
from kinline.db.engine import Database
from kinline.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from kinline.people import repository
from kinline.people.model import (
    Facility,
    Person,
    check_email,
    check_housing_unit,
    check_language,
    check_timezone,
    normalize_phone,
    parse_channel,
)
from kinline.rules.model import RELATIONSHIPS, Channel, Contact
from kinline.rules.parse import RuleError, parse_id


@dataclass(frozen=True, slots=True)
class ContactView:
    contact: Contact
    name: str
    phones: list[str]


@dataclass(frozen=True, slots=True)
class ApprovalChange:
    """An approval granted or ended, with what its notice says about it."""

    facility: Facility
    person: Person
    contact: Contact
    contact_name: str
    channel: Channel


def require_facility(session: Session, facility_id: str, *, lock: bool = False) -> Facility:
    facility = repository.get_facility(session, facility_id, lock=lock)
    if facility is None:
        raise NotFound(f"no facility {facility_id!r}", field="facility_id")
    return facility


def require_person(
    session: Session, facility_id: str, person_id: str, *, lock: bool = False
) -> Person:
    """The person; with ``lock``, their allowance ledger is locked until commit."""
    if lock:
        person = repository.lock_person(session, facility_id, person_id)
    else:
        person = repository.get_person(session, facility_id, person_id)
    if person is None:
        raise NotFound(f"no person {person_id!r} in {facility_id!r}", field="person_id")
    return person


def require_contact(
    session: Session, facility_id: str, contact_id: str, at: datetime, person_id: str | None = None
) -> Contact:
    contact = repository.get_contact(session, facility_id, contact_id, at)
    if contact is None:
        raise NotFound(f"no contact {contact_id!r} in {facility_id!r}", field="contact_id")
    if person_id is not None and contact.person != person_id:
        raise InvalidInput(
            f"contact {contact_id!r} is not a contact of {person_id!r}", field="contact_id"
        )
    return contact


def _checked_id(value: str, field: str) -> str:
    try:
        return parse_id(value, field)
    except RuleError as error:
        raise InvalidInput(error.message, field=field) from None


def register_facility(db: Database, facility: Facility, *, at: datetime, actor: str) -> Facility:
    _checked_id(facility.id, "facility.id")
    check_timezone(facility.timezone, "facility.timezone")
    if facility.appeal_days < 0:
        raise InvalidInput("must be zero or more", field="facility.appeal_days")
    if facility.retaliation_window_days < 0:
        raise InvalidInput("must be zero or more", field="facility.retaliation_window_days")
    if len(facility.country) != 2 or not facility.country.isalpha():
        raise InvalidInput("must be a two-letter country code", field="facility.country")
    with db.transaction() as session:
        if repository.get_facility(session, facility.id) is not None:
            raise AlreadyExists(f"facility {facility.id!r} already exists", field="facility.id")
        repository.add_facility(session, facility, at)
        record_event(
            session,
            facility_id=facility.id,
            chain=facility_chain(facility.id),
            actor=actor,
            tag="people:facility:registered",
            payload={
                "facility_id": facility.id,
                "name": facility.name,
                "timezone": facility.timezone,
                "country": facility.country,
                "appeal_days": facility.appeal_days,
                "retaliation_window_days": facility.retaliation_window_days,
            },
            at=at,
        )
    return facility


def admit_person(
    db: Database, person: Person, *, at: datetime, actor: str, housing_unit: str | None = None
) -> Person:
    """``housing_unit`` is where the person's printed notices go."""
    _checked_id(person.id, "person.id")
    check_language(person.language, "person.language")
    housing_unit = check_housing_unit(housing_unit, "person.housing_unit")
    with db.transaction() as session:
        require_facility(session, person.facility_id)
        if repository.get_person(session, person.facility_id, person.id) is not None:
            raise AlreadyExists(f"person {person.id!r} already exists", field="person.id")
        repository.add_person(session, person, housing_unit=housing_unit)
        record_event(
            session,
            facility_id=person.facility_id,
            chain=person_chain(person.facility_id, person.id),
            actor=actor,
            tag="people:person:admitted",
            payload={"person_id": person.id, "name": person.name, "language": person.language},
            at=at,
        )
    return person


def add_contact(
    db: Database,
    facility_id: str,
    contact: Contact,
    *,
    name: str,
    phones: Sequence[str],
    at: datetime,
    actor: str,
    email: str | None = None,
    notify_by_email: bool = False,
) -> ContactView:
    """A contact and its approvals as first listed (a setup step: no notice).

    Counsel with an ``email`` are sent every notice; other contacts with one
    when ``notify_by_email``."""
    email = check_email(email, "contact.email")
    if notify_by_email and email is None:
        raise InvalidInput("notify_by_email needs an email address", field="contact.email")
    _checked_id(contact.id, "contact.id")
    if contact.relationship not in RELATIONSHIPS:
        raise InvalidInput(
            f"{contact.relationship!r} is not one of {', '.join(sorted(RELATIONSHIPS))}",
            field="contact.relationship",
        )
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        require_person(session, facility_id, contact.person)
        if repository.contact_exists(session, facility_id, contact.id):
            raise AlreadyExists(f"contact {contact.id!r} already exists", field="contact.id")
        numbers = [
            normalize_phone(text, facility.country, f"contact.phones[{index}]")
            for index, text in enumerate(phones)
        ]
        repository.add_contact(
            session,
            facility_id,
            contact,
            name,
            numbers,
            at,
            email=email,
            notify_by_email=notify_by_email,
        )
        record_event(
            session,
            facility_id=facility_id,
            chain=person_chain(facility_id, contact.person),
            actor=actor,
            tag="people:contact:added",
            payload={
                "contact_id": contact.id,
                "name": name,
                "relationship": contact.relationship,
                "privileged": contact.privileged,
                "phones": numbers,
                "approved": sorted(str(channel) for channel in contact.approved),
            },
            at=at,
        )
    return ContactView(contact, name, numbers)


def approve(
    session: Session,
    facility_id: str,
    contact_id: str,
    channel: Channel | str,
    *,
    at: datetime,
    actor: str,
    reason: str | None = None,
) -> ApprovalChange | None:
    """Approve a contact for a channel, with its audit event, in the caller's
    transaction; None when it already was approved (nothing changes, so
    nothing is written)."""
    channel = parse_channel(channel)
    facility = require_facility(session, facility_id)
    contact = require_contact(session, facility_id, contact_id, at)
    if repository.open_approval(session, facility_id, contact_id, channel, at) is not None:
        return None
    repository.add_approval(session, facility_id, contact_id, channel, at)
    return _recorded(session, facility, contact, channel, "approved", reason, at=at, actor=actor)


def revoke(
    session: Session,
    facility_id: str,
    contact_id: str,
    channel: Channel | str,
    *,
    reason: str,
    at: datetime,
    actor: str,
) -> ApprovalChange:
    """End a contact's approval for a channel, with its audit event, in the
    caller's transaction; a reason is required (the person is told it)."""
    channel = parse_channel(channel)
    if not reason or not reason.strip():
        raise InvalidInput("a reason is required to revoke an approval", field="reason")
    facility = require_facility(session, facility_id)
    contact = require_contact(session, facility_id, contact_id, at)
    approval = repository.open_approval(session, facility_id, contact_id, channel, at)
    if approval is None:
        raise Conflict(f"contact {contact_id!r} is not approved for {channel}", field="channel")
    repository.end_approval(approval, at, reason)
    return _recorded(session, facility, contact, channel, "revoked", reason, at=at, actor=actor)


def _recorded(
    session: Session,
    facility: Facility,
    contact: Contact,
    channel: Channel,
    change: str,
    reason: str | None,
    *,
    at: datetime,
    actor: str,
) -> ApprovalChange:
    person = require_person(session, facility.id, contact.person)
    record_event(
        session,
        facility_id=facility.id,
        chain=person_chain(facility.id, person.id),
        actor=actor,
        tag=f"people:approval:{change}",
        payload={"contact_id": contact.id, "channel": str(channel), "reason": reason},
        at=at,
    )
    name = repository.contact_name(session, facility.id, contact.id)
    return ApprovalChange(facility, person, contact, name, channel)


def get_facility(db: Database, facility_id: str) -> Facility:
    with db.transaction() as session:
        return require_facility(session, facility_id)


def list_facilities(db: Database) -> list[Facility]:
    with db.transaction() as session:
        return repository.list_facilities(session)


def list_people(db: Database, facility_id: str) -> list[Person]:
    with db.transaction() as session:
        require_facility(session, facility_id)
        return repository.list_people(session, facility_id)


def get_person(db: Database, facility_id: str, person_id: str) -> Person:
    with db.transaction() as session:
        return require_person(session, facility_id, person_id)


def list_contacts(
    db: Database, facility_id: str, person_id: str | None, *, at: datetime
) -> list[ContactView]:
    with db.transaction() as session:
        require_facility(session, facility_id)
        if person_id is not None:
            require_person(session, facility_id, person_id)
        return [
            ContactView(contact, name, phones)
            for contact, name, phones in repository.list_contacts(
                session, facility_id, at, person_id
            )
        ]
