"""Use cases for facilities, people, contacts and approvals; one transaction each.

Approving or revoking a contact for a channel changes what a person may do, so
its notice must commit with it: ``approve`` and ``revoke`` work inside the
caller's transaction, and ``kinline.changes.service`` runs them beside the
notice (and, for a revocation, the adverse action) in one. So do the other
changes that alter what a person may do: ``transfer`` and ``release`` (custody),
``change_contact`` (a relationship, which rules select contacts by) and
``remove_phone`` (a contact's last number). Admitting, adding a contact or a
number and editing a person's name, language or housing unit change nothing a
person may do: they commit here with their audit event alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from sqlalchemy.orm import Session

from kinline.audit.service import facility_chain, person_chain, record_event
from kinline.db.engine import Database
from kinline.errors import AlreadyExists, Conflict, InvalidInput, NotFound, WrongState
from kinline.people import repository
from kinline.people.model import (
    ContactDetails,
    Custody,
    Facility,
    Person,
    PersonRecord,
    check_country,
    check_email,
    check_housing_unit,
    check_language,
    check_name,
    check_timezone,
    held,
    normalize_phone,
    parse_channel,
)
from kinline.rules.model import RELATIONSHIPS, Channel, Contact
from kinline.rules.parse import RuleError, parse_id


@dataclass(frozen=True, slots=True)
class ContactView:
    """A contact as staff read it. ``withheld``: a privileged contact read without
    need, whose numbers and address are left out (``phones`` is empty)."""

    contact: Contact
    name: str
    phones: list[str]
    details: ContactDetails = field(default_factory=lambda: ContactDetails(name=""))
    withheld: bool = False


class Keep(Enum):
    """An edit's "leave this as it is", where None would mean "clear it"."""

    KEEP = "keep"


KEEP = Keep.KEEP


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
    """The contact, with the channels it is approved for at ``at``.

    With ``person_id`` (a decision about that person's call or visit, the call
    path's included) the contact must be theirs, and the person must be held
    here at ``at``: once released or transferred out, nothing more is decided
    for this record (``WrongState``, saying when and where to). Moments before
    custody ended are still decided, so a call recorded late is not refused.
    """
    found = repository.get_contact_and_custody(session, facility_id, contact_id, at)
    if found is None:
        raise NotFound(f"no contact {contact_id!r} in {facility_id!r}", field="contact_id")
    contact, custody, changed_at = found
    if person_id is not None:
        if contact.person != person_id:
            raise InvalidInput(
                f"contact {contact_id!r} is not a contact of {person_id!r}", field="contact_id"
            )
        if not held(custody, changed_at, at):
            record = repository.get_person_record(session, facility_id, person_id)
            assert record is not None  # the contact's person
            raise WrongState(_not_held(record), field="person_id")
    return contact


def _not_held(record: PersonRecord) -> str:
    person, since = record.person, record.custody_changed_at
    when = "" if since is None else f" on {since.isoformat()}"
    if record.custody is Custody.TRANSFERRED:
        return (
            f"person {person.id!r} was transferred from {person.facility_id!r} to "
            f"{record.transferred_to!r}{when}: contact is decided at {record.transferred_to!r}"
        )
    return f"person {person.id!r} was released from {person.facility_id!r}{when}: no contact"


def require_held(
    session: Session, facility_id: str, person_id: str, at: datetime, *, lock: bool = False
) -> PersonRecord:
    """The person's record here, which must be in custody at ``at``; with ``lock``,
    their row is locked until commit."""
    record = repository.get_person_record(session, facility_id, person_id, lock=lock)
    if record is None:
        raise NotFound(f"no person {person_id!r} in {facility_id!r}", field="person_id")
    if record.custody is not Custody.IN_CUSTODY or not record.held_at(at):
        raise WrongState(_not_held(record), field="person_id")
    return record


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
    """Open the person's record at their facility, in custody from ``at``.
    ``housing_unit`` is where the person's printed notices go. A person whose
    record here was closed (released, or transferred out) is readmitted by
    transfer, or under a new id: a record is never reopened by admission."""
    _checked_id(person.id, "person.id")
    check_name(person.name, "person.name")
    check_language(person.language, "person.language")
    housing_unit = check_housing_unit(housing_unit, "person.housing_unit")
    with db.transaction() as session:
        require_facility(session, person.facility_id)
        if repository.get_person(session, person.facility_id, person.id) is not None:
            raise AlreadyExists(f"person {person.id!r} already exists", field="person.id")
        repository.add_person(session, person, housing_unit=housing_unit, admitted_at=at)
        record_event(
            session,
            facility_id=person.facility_id,
            chain=person_chain(person.facility_id, person.id),
            actor=actor,
            tag="people:person:admitted",
            payload={
                "person_id": person.id,
                "name": person.name,
                "language": person.language,
                "housing_unit": housing_unit,
            },
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
    language: str | None = None,
    country: str | None = None,
) -> ContactView:
    """A contact and its approvals as first listed (a setup step: no notice).

    Counsel with an ``email`` are sent every notice; other contacts with one
    when ``notify_by_email``. ``language`` is the one the contact is written to
    in (None: the person's); numbers without a country code are read as
    ``country``'s (None: the facility's). The person must be in custody here."""
    with db.transaction() as session:
        return add_contact_in(
            session,
            facility_id,
            contact,
            name=name,
            phones=phones,
            at=at,
            actor=actor,
            email=email,
            notify_by_email=notify_by_email,
            language=language,
            country=country,
        )


def add_contact_in(
    session: Session,
    facility_id: str,
    contact: Contact,
    *,
    name: str,
    phones: Sequence[str],
    at: datetime,
    actor: str,
    email: str | None = None,
    notify_by_email: bool = False,
    language: str | None = None,
    country: str | None = None,
) -> ContactView:
    """``add_contact`` inside the caller's transaction (a family member's
    registration adds their contact record and their account at once)."""
    check_name(name, "contact.name")
    if language is not None:
        check_language(language, "contact.language")
    country = check_country(country, "contact.country")
    email = check_email(email, "contact.email")
    if notify_by_email and email is None:
        raise InvalidInput("notify_by_email needs an email address", field="contact.email")
    _checked_id(contact.id, "contact.id")
    if contact.relationship not in RELATIONSHIPS:
        raise InvalidInput(
            f"{contact.relationship!r} is not one of {', '.join(sorted(RELATIONSHIPS))}",
            field="contact.relationship",
        )
    facility = require_facility(session, facility_id)
    require_held(session, facility_id, contact.person, at)
    if repository.contact_exists(session, facility_id, contact.id):
        raise AlreadyExists(f"contact {contact.id!r} already exists", field="contact.id")
    numbers = [
        normalize_phone(text, country or facility.country, f"contact.phones[{index}]")
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
        language=language,
        country=country,
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
            "email": email,
            "language": language,
            "country": country,
        },
        at=at,
    )
    details = ContactDetails(name, email, notify_by_email, language, country)
    return ContactView(contact, name, numbers, details)


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
    db: Database,
    facility_id: str,
    person_id: str | None,
    *,
    at: datetime,
    include_privileged: bool = True,
    viewed_by: str | None = None,
) -> list[ContactView]:
    """Contacts of one person, or of everyone at the facility.

    ``include_privileged``: whether the caller may see how privileged contacts
    (counsel) are reached. Without it, each privileged contact is still listed
    (the person has counsel; that is no secret) but ``withheld``: no numbers and
    no email address, so nobody without need learns which calls are unmonitored
    legal calls. The access policy decides it per caller.

    ``viewed_by``: the staff member reading, when the read must be audited:
    ``people:person:viewed`` on the person's chain (of one person) or
    ``people:contact:listed`` on the facility's (of everyone), in the same
    transaction as the read.
    """
    with db.transaction() as session:
        require_facility(session, facility_id)
        if person_id is not None:
            require_person(session, facility_id, person_id)
        views = [
            _view(contact, details, phones, include_privileged)
            for contact, details, phones in repository.list_contacts(
                session, facility_id, at, person_id
            )
        ]
        if viewed_by is not None:
            record_event(
                session,
                facility_id=facility_id,
                chain=facility_chain(facility_id)
                if person_id is None
                else person_chain(facility_id, person_id),
                actor=viewed_by,
                tag="people:contact:listed" if person_id is None else "people:person:viewed",
                payload={
                    "person_id": person_id,
                    "read": "contacts",
                    "contact_ids": [view.contact.id for view in views],
                    "privileged_included": include_privileged,
                },
                at=at,
            )
        return views


def get_contact(
    db: Database,
    facility_id: str,
    contact_id: str,
    *,
    at: datetime,
    include_privileged: bool = True,
) -> ContactView:
    """One contact; ``include_privileged`` as for ``list_contacts``."""
    with db.transaction() as session:
        return _contact_view(session, facility_id, contact_id, at, include_privileged)


def _contact_view(
    session: Session, facility_id: str, contact_id: str, at: datetime, include_privileged: bool
) -> ContactView:
    contact = require_contact(session, facility_id, contact_id, at)
    details = repository.get_contact_details(session, facility_id, contact_id)
    assert details is not None  # the contact was just read
    phones = repository.phones_of(session, facility_id, contact_id)
    return _view(contact, details, phones, include_privileged)


def _view(
    contact: Contact, details: ContactDetails, phones: list[str], include_privileged: bool
) -> ContactView:
    if contact.privileged and not include_privileged:
        hidden = ContactDetails(details.name, None, False, details.language, details.country)
        return ContactView(contact, details.name, [], hidden, withheld=True)
    return ContactView(contact, details.name, phones, details)


def list_person_records(db: Database, facility_id: str) -> list[PersonRecord]:
    """Every record at the facility, closed ones included (their custody says so)."""
    with db.transaction() as session:
        require_facility(session, facility_id)
        return repository.list_person_records(session, facility_id)


def get_person_record(db: Database, facility_id: str, person_id: str) -> PersonRecord:
    """The person's record, not audited: for the writer reading back its own write."""
    with db.transaction() as session:
        record = repository.get_person_record(session, facility_id, person_id)
        if record is None:
            raise NotFound(f"no person {person_id!r} in {facility_id!r}", field="person_id")
        return record


def view_person(
    db: Database, facility_id: str, person_id: str, *, at: datetime, viewed_by: str
) -> PersonRecord:
    """The person's record, read by ``viewed_by``: the read is audited
    (``people:person:viewed``, who looked at whom) in the same transaction."""
    with db.transaction() as session:
        record = repository.get_person_record(session, facility_id, person_id)
        if record is None:
            raise NotFound(f"no person {person_id!r} in {facility_id!r}", field="person_id")
        record_event(
            session,
            facility_id=facility_id,
            chain=person_chain(facility_id, person_id),
            actor=viewed_by,
            tag="people:person:viewed",
            payload={"person_id": person_id, "read": "record"},
            at=at,
        )
        return record


def edit_person(
    db: Database,
    facility_id: str,
    person_id: str,
    *,
    at: datetime,
    actor: str,
    name: str | None = None,
    language: str | None = None,
    housing_unit: str | Keep | None = KEEP,
) -> PersonRecord:
    """Change a held person's name, language (of their notices from now on) or
    housing unit (where printed notices go; None clears it). None of these
    changes what the person may do, so the audit event (``people:person:changed``,
    each field's old and new value) is all that is written; nothing is written
    when nothing changes."""
    values: dict[str, object] = {}
    if name is not None:
        values["name"] = check_name(name, "name")
    if language is not None:
        values["language"] = check_language(language, "language")
    if not isinstance(housing_unit, Keep):
        values["housing_unit"] = check_housing_unit(housing_unit, "housing_unit")
    with db.transaction() as session:
        record = require_held(session, facility_id, person_id, at, lock=True)
        before = {
            "name": record.person.name,
            "language": record.person.language,
            "housing_unit": record.housing_unit,
        }
        changed = {
            key: [before[key], value] for key, value in values.items() if before[key] != value
        }
        if not changed:
            return record
        repository.update_person(
            session, facility_id, person_id, {key: new for key, (_, new) in changed.items()}
        )
        record_event(
            session,
            facility_id=facility_id,
            chain=person_chain(facility_id, person_id),
            actor=actor,
            tag="people:person:changed",
            payload={"person_id": person_id, "changed": changed},
            at=at,
        )
        found = repository.get_person_record(session, facility_id, person_id)
        assert found is not None
        return found


@dataclass(frozen=True, slots=True)
class ContactEdit:
    """A contact edited; ``relationship_changed``: rules that select contacts by
    relationship may now apply differently, so the person must be told."""

    facility: Facility
    person: Person
    view: ContactView
    changed: dict[str, list[object]]

    @property
    def relationship_changed(self) -> bool:
        return "relationship" in self.changed


def change_contact(
    session: Session,
    facility_id: str,
    contact_id: str,
    *,
    at: datetime,
    actor: str,
    name: str | None = None,
    relationship: str | None = None,
    email: str | Keep | None = KEEP,
    notify_by_email: bool | None = None,
    language: str | Keep | None = KEEP,
    country: str | Keep | None = KEEP,
) -> ContactEdit:
    """Edit a contact, with its audit event (``people:contact:changed``), in the
    caller's transaction (``kinline.changes.service.edit_contact`` adds the
    notice when the relationship changes). ``email``, ``language`` and
    ``country`` may be cleared with None. The person must be in custody here."""
    values: dict[str, object] = {}
    if name is not None:
        values["name"] = check_name(name, "name")
    if relationship is not None:
        if relationship not in RELATIONSHIPS:
            raise InvalidInput(
                f"{relationship!r} is not one of {', '.join(sorted(RELATIONSHIPS))}",
                field="relationship",
            )
        values["relationship"] = relationship
    if not isinstance(email, Keep):
        values["email"] = check_email(email, "email")
    if notify_by_email is not None:
        values["notify_by_email"] = notify_by_email
    if not isinstance(language, Keep):
        values["language"] = None if language is None else check_language(language, "language")
    if not isinstance(country, Keep):
        values["country"] = check_country(country, "country")
    facility = require_facility(session, facility_id)
    contact = require_contact(session, facility_id, contact_id, at)
    record = require_held(session, facility_id, contact.person, at, lock=True)
    details = repository.get_contact_details(session, facility_id, contact_id)
    assert details is not None
    before: dict[str, object] = {
        "name": details.name,
        "relationship": contact.relationship,
        "email": details.email,
        "notify_by_email": details.notify_by_email,
        "language": details.language,
        "country": details.country,
    }
    after = {**before, **values}
    if after["notify_by_email"] and after["email"] is None:
        raise InvalidInput("notify_by_email needs an email address", field="email")
    changed = {key: [before[key], value] for key, value in values.items() if before[key] != value}
    if changed:
        repository.update_contact(
            session, facility_id, contact_id, {key: new for key, (_, new) in changed.items()}
        )
        record_event(
            session,
            facility_id=facility_id,
            chain=person_chain(facility_id, contact.person),
            actor=actor,
            tag="people:contact:changed",
            payload={"contact_id": contact_id, "changed": changed},
            at=at,
        )
    view = _contact_view(session, facility_id, contact_id, at, True)
    return ContactEdit(facility, record.person, view, changed)


def add_phone(
    db: Database,
    facility_id: str,
    contact_id: str,
    number: str,
    *,
    at: datetime,
    actor: str,
) -> ContactView:
    """Add a number to a contact (``people:phone:added``), read as the contact's
    country's (or the facility's) when it has no country code. A number already
    the contact's, or another of the person's contacts', is a conflict: a dialed
    number must name one contact. Adding a number takes nothing away from what
    the person may do: no notice."""
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        contact = require_contact(session, facility_id, contact_id, at)
        require_held(session, facility_id, contact.person, at, lock=True)
        details = repository.get_contact_details(session, facility_id, contact_id)
        assert details is not None
        e164 = normalize_phone(number, details.country or facility.country, "number")
        holder = repository.contact_by_phone(session, facility_id, contact.person, e164)
        if holder is not None:
            raise AlreadyExists(f"{e164} is already a number of contact {holder!r}", field="number")
        repository.add_phone(session, facility_id, contact_id, e164)
        record_event(
            session,
            facility_id=facility_id,
            chain=person_chain(facility_id, contact.person),
            actor=actor,
            tag="people:phone:added",
            payload={"contact_id": contact_id, "e164": e164},
            at=at,
        )
        return _contact_view(session, facility_id, contact_id, at, True)


@dataclass(frozen=True, slots=True)
class PhoneRemoval:
    """A number removed; ``cuts_off``: it was the last number of a contact
    approved for telephone calls, who can no longer be called."""

    facility: Facility
    person: Person
    view: ContactView
    e164: str
    cuts_off: bool


def remove_phone(
    session: Session,
    facility_id: str,
    contact_id: str,
    number: str,
    *,
    at: datetime,
    actor: str,
) -> PhoneRemoval:
    """Remove a number from a contact (``people:phone:removed``) in the caller's
    transaction (``kinline.changes.service.remove_phone`` adds the notice when
    it ``cuts_off`` the contact). An unknown number is not found."""
    facility = require_facility(session, facility_id)
    contact = require_contact(session, facility_id, contact_id, at)
    record = require_held(session, facility_id, contact.person, at, lock=True)
    details = repository.get_contact_details(session, facility_id, contact_id)
    assert details is not None
    e164 = normalize_phone(number, details.country or facility.country, "e164")
    if not repository.remove_phone(session, facility_id, contact_id, e164):
        raise NotFound(f"contact {contact_id!r} has no number {e164}", field="e164")
    remaining = repository.phones_of(session, facility_id, contact_id)
    cuts_off = not remaining and Channel.PHONE in contact.approved
    record_event(
        session,
        facility_id=facility_id,
        chain=person_chain(facility_id, contact.person),
        actor=actor,
        tag="people:phone:removed",
        payload={"contact_id": contact_id, "e164": e164, "last_number": not remaining},
        at=at,
    )
    view = _contact_view(session, facility_id, contact_id, at, True)
    return PhoneRemoval(facility, record.person, view, e164, cuts_off)
