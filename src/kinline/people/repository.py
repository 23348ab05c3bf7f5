"""Every query about facilities, people, contacts, phones and approvals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from kinline.db.engine import core
from kinline.db.tables import (
    ApprovalRow,
    ContactPhoneRow,
    ContactRow,
    FacilityRow,
    PersonRow,
)
from kinline.people.model import ContactDetails, Custody, Facility, Person, PersonRecord
from kinline.rules.model import Channel, Contact


class FacilityFields(Protocol):
    """What a facility is read from: its row, or a row of a query selecting its columns."""

    id: str
    name: str
    timezone: str
    country: str
    appeal_days: int
    retaliation_window_days: int


def facility_from_row(row: FacilityFields) -> Facility:
    return Facility(
        id=row.id,
        name=row.name,
        timezone=row.timezone,
        country=row.country,
        appeal_days=row.appeal_days,
        retaliation_window_days=row.retaliation_window_days,
    )


def get_facility(session: Session, facility_id: str, *, lock: bool = False) -> Facility | None:
    query = select(FacilityRow).where(FacilityRow.id == facility_id)
    if lock:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    return None if row is None else facility_from_row(row)


def list_facilities(session: Session) -> list[Facility]:
    rows = session.scalars(select(FacilityRow).order_by(FacilityRow.id))
    return [facility_from_row(row) for row in rows]


def add_facility(session: Session, facility: Facility, at: datetime) -> None:
    session.add(
        FacilityRow(
            id=facility.id,
            name=facility.name,
            timezone=facility.timezone,
            country=facility.country,
            appeal_days=facility.appeal_days,
            retaliation_window_days=facility.retaliation_window_days,
            created_at=at,
        )
    )
    session.flush()


def get_person(session: Session, facility_id: str, person_id: str) -> Person | None:
    row = session.get(PersonRow, (facility_id, person_id))
    if row is None:
        return None
    return Person(row.facility_id, row.id, row.name, row.language)


def lock_person(session: Session, facility_id: str, person_id: str) -> Person | None:
    """The person, with their row locked until the transaction ends.

    This is the lock on a person's allowance ledger: every transaction that
    reads usage to decide and then changes it takes it first, so two call
    set-ups for one person run one after the other. On PostgreSQL it is a row
    lock (``SELECT ... FOR UPDATE``); on SQLite every transaction already holds
    the database's write lock from its first statement (BEGIN IMMEDIATE).
    """
    row = session.scalars(
        select(PersonRow)
        .where(PersonRow.facility_id == facility_id, PersonRow.id == person_id)
        .with_for_update()
    ).one_or_none()
    if row is None:
        return None
    return Person(row.facility_id, row.id, row.name, row.language)


_CONTACTS = ContactRow.__table__
_PHONES = ContactPhoneRow.__table__
_APPROVALS = ApprovalRow.__table__
_PEOPLE = PersonRow.__table__
# Statements on the call path, built once.
_CONTACT = (
    select(
        _CONTACTS.c.id,
        _CONTACTS.c.person_id,
        _CONTACTS.c.relationship,
        _CONTACTS.c.privileged,
        _APPROVALS.c.channel,
        _PEOPLE.c.custody_status,
        _PEOPLE.c.custody_changed_at,
    )
    .join(
        _PEOPLE,
        (_PEOPLE.c.facility_id == _CONTACTS.c.facility_id)
        & (_PEOPLE.c.id == _CONTACTS.c.person_id),
    )
    .outerjoin(
        _APPROVALS,
        (_APPROVALS.c.facility_id == _CONTACTS.c.facility_id)
        & (_APPROVALS.c.contact_id == _CONTACTS.c.id)
        & (_APPROVALS.c.approved_at <= bindparam("at"))
        & or_(_APPROVALS.c.revoked_at.is_(None), _APPROVALS.c.revoked_at > bindparam("at")),
    )
    .where(_CONTACTS.c.facility_id == bindparam("facility_id"), _CONTACTS.c.id == bindparam("id"))
)
_APPROVED = select(_APPROVALS.c.contact_id, _APPROVALS.c.channel).where(
    _APPROVALS.c.facility_id == bindparam("facility_id"),
    _APPROVALS.c.contact_id.in_(bindparam("ids", expanding=True)),
    _APPROVALS.c.approved_at <= bindparam("at"),
    or_(_APPROVALS.c.revoked_at.is_(None), _APPROVALS.c.revoked_at > bindparam("at")),
)
_BY_PHONE = (
    select(_CONTACTS.c.id)
    .join(
        _PHONES,
        (_PHONES.c.facility_id == _CONTACTS.c.facility_id)
        & (_PHONES.c.contact_id == _CONTACTS.c.id),
    )
    .where(
        _CONTACTS.c.facility_id == bindparam("facility_id"),
        _CONTACTS.c.person_id == bindparam("person_id"),
        _PHONES.c.e164 == bindparam("e164"),
    )
    .limit(1)
)


def list_people(session: Session, facility_id: str) -> list[Person]:
    rows = session.scalars(
        select(PersonRow).where(PersonRow.facility_id == facility_id).order_by(PersonRow.id)
    )
    return [Person(row.facility_id, row.id, row.name, row.language) for row in rows]


def add_person(
    session: Session,
    person: Person,
    *,
    housing_unit: str | None = None,
    admitted_at: datetime | None = None,
    transferred_from: str | None = None,
) -> None:
    session.add(
        PersonRow(
            facility_id=person.facility_id,
            id=person.id,
            name=person.name,
            language=person.language,
            housing_unit=housing_unit,
            custody_status=str(Custody.IN_CUSTODY),
            admitted_at=admitted_at,
            transferred_from=transferred_from,
        )
    )
    session.flush()


def _record(row: PersonRow) -> PersonRecord:
    return PersonRecord(
        person=Person(row.facility_id, row.id, row.name, row.language),
        housing_unit=row.housing_unit,
        custody=Custody(row.custody_status),
        admitted_at=row.admitted_at,
        custody_changed_at=row.custody_changed_at,
        transferred_to=row.transferred_to,
        transferred_from=row.transferred_from,
    )


def get_person_record(
    session: Session, facility_id: str, person_id: str, *, lock: bool = False
) -> PersonRecord | None:
    """The person's record at this facility; with ``lock``, their row (the
    allowance ledger's lock) is held until the transaction ends."""
    query = select(PersonRow).where(PersonRow.facility_id == facility_id, PersonRow.id == person_id)
    if lock:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    return None if row is None else _record(row)


def list_person_records(session: Session, facility_id: str) -> list[PersonRecord]:
    rows = session.scalars(
        select(PersonRow).where(PersonRow.facility_id == facility_id).order_by(PersonRow.id)
    )
    return [_record(row) for row in rows]


def update_person(
    session: Session, facility_id: str, person_id: str, values: Mapping[str, object]
) -> None:
    """Set columns of the person's row (``name``, ``language``, ``housing_unit``,
    the custody columns)."""
    session.execute(
        update(PersonRow)
        .where(PersonRow.facility_id == facility_id, PersonRow.id == person_id)
        .values(**values)
    )


def open_approvals_of_person(
    session: Session, facility_id: str, person_id: str, at: datetime
) -> list[ApprovalRow]:
    """Every approval of the person's contacts in force at ``at`` or later."""
    contact_ids = select(ContactRow.id).where(
        ContactRow.facility_id == facility_id, ContactRow.person_id == person_id
    )
    return list(
        session.scalars(
            select(ApprovalRow)
            .where(
                ApprovalRow.facility_id == facility_id,
                ApprovalRow.contact_id.in_(contact_ids),
                or_(ApprovalRow.revoked_at.is_(None), ApprovalRow.revoked_at > at),
            )
            .order_by(ApprovalRow.contact_id, ApprovalRow.channel, ApprovalRow.id)
        )
    )


def contact_exists(session: Session, facility_id: str, contact_id: str) -> bool:
    return session.get(ContactRow, (facility_id, contact_id)) is not None


def add_contact(
    session: Session,
    facility_id: str,
    contact: Contact,
    name: str,
    phones: Sequence[str],
    at: datetime,
    *,
    email: str | None = None,
    notify_by_email: bool = False,
    language: str | None = None,
    country: str | None = None,
) -> None:
    session.add(
        ContactRow(
            facility_id=facility_id,
            id=contact.id,
            person_id=contact.person,
            name=name,
            relationship=contact.relationship,
            privileged=contact.privileged,
            email=email,
            notify_by_email=notify_by_email,
            language=language,
            country=country,
        )
    )
    session.flush()
    for e164 in dict.fromkeys(phones):
        session.add(ContactPhoneRow(facility_id=facility_id, contact_id=contact.id, e164=e164))
    for channel in sorted(contact.approved):
        add_approval(session, facility_id, contact.id, channel, at)
    session.flush()


def add_approval(
    session: Session, facility_id: str, contact_id: str, channel: Channel, at: datetime
) -> None:
    session.add(
        ApprovalRow(
            facility_id=facility_id,
            contact_id=contact_id,
            channel=str(channel),
            approved_at=at,
        )
    )
    session.flush()


def open_approval(
    session: Session, facility_id: str, contact_id: str, channel: Channel, at: datetime
) -> ApprovalRow | None:
    """The approval of this contact for this channel in force at ``at``, if any."""
    return session.scalars(
        select(ApprovalRow)
        .where(
            ApprovalRow.facility_id == facility_id,
            ApprovalRow.contact_id == contact_id,
            ApprovalRow.channel == str(channel),
            ApprovalRow.approved_at <= at,
            or_(ApprovalRow.revoked_at.is_(None), ApprovalRow.revoked_at > at),
        )
        .order_by(ApprovalRow.id.desc())
        .limit(1)
    ).one_or_none()


def end_approval(row: ApprovalRow, at: datetime, reason: str) -> None:
    row.revoked_at = at
    row.revoke_reason = reason


def _approved_channels(
    session: Session, facility_id: str, contact_ids: Sequence[str], at: datetime
) -> dict[str, frozenset[Channel]]:
    params = {"facility_id": facility_id, "ids": list(contact_ids), "at": at}
    rows = core(session).execute(_APPROVED, params)
    approved: dict[str, set[Channel]] = {contact_id: set() for contact_id in contact_ids}
    for contact_id, channel in rows:
        approved[contact_id].add(Channel(channel))
    return {key: frozenset(value) for key, value in approved.items()}


def _contact(row: ContactRow, approved: frozenset[Channel]) -> Contact:
    return Contact(
        id=row.id,
        person=row.person_id,
        relationship=row.relationship,
        privileged=row.privileged,
        approved=approved,
    )


def get_contact(
    session: Session, facility_id: str, contact_id: str, at: datetime
) -> Contact | None:
    """The contact with the channels it is approved for at ``at``."""
    found = get_contact_and_custody(session, facility_id, contact_id, at)
    return None if found is None else found[0]


def get_contact_and_custody(
    session: Session, facility_id: str, contact_id: str, at: datetime
) -> tuple[Contact, Custody, datetime | None] | None:
    """The contact with the channels it is approved for at ``at``, and its
    person's custody here and when it last changed (one statement: a row per
    approval in force, or one with no channel)."""
    params = {"facility_id": facility_id, "id": contact_id, "at": at}
    rows = core(session).execute(_CONTACT, params).all()
    if not rows:
        return None
    first = rows[0]
    contact = Contact(
        id=first.id,
        person=first.person_id,
        relationship=first.relationship,
        privileged=first.privileged,
        approved=frozenset(Channel(row.channel) for row in rows if row.channel is not None),
    )
    return contact, Custody(first.custody_status), first.custody_changed_at


def _details(row: ContactRow) -> ContactDetails:
    return ContactDetails(
        name=row.name,
        email=row.email,
        notify_by_email=row.notify_by_email,
        language=row.language,
        country=row.country,
    )


def get_contact_details(
    session: Session, facility_id: str, contact_id: str
) -> ContactDetails | None:
    row = session.get(ContactRow, (facility_id, contact_id))
    return None if row is None else _details(row)


def update_contact(
    session: Session, facility_id: str, contact_id: str, values: Mapping[str, object]
) -> None:
    """Set columns of the contact's row (``name``, ``relationship``, ``email``,
    ``notify_by_email``, ``language``, ``country``)."""
    session.execute(
        update(ContactRow)
        .where(ContactRow.facility_id == facility_id, ContactRow.id == contact_id)
        .values(**values)
    )


def phones_of(session: Session, facility_id: str, contact_id: str) -> list[str]:
    return list(
        session.scalars(
            select(ContactPhoneRow.e164)
            .where(
                ContactPhoneRow.facility_id == facility_id,
                ContactPhoneRow.contact_id == contact_id,
            )
            .order_by(ContactPhoneRow.e164)
        )
    )


def add_phone(session: Session, facility_id: str, contact_id: str, e164: str) -> None:
    session.add(ContactPhoneRow(facility_id=facility_id, contact_id=contact_id, e164=e164))
    session.flush()


def remove_phone(session: Session, facility_id: str, contact_id: str, e164: str) -> bool:
    """Whether the number was there to remove."""
    removed = session.execute(
        delete(ContactPhoneRow).where(
            ContactPhoneRow.facility_id == facility_id,
            ContactPhoneRow.contact_id == contact_id,
            ContactPhoneRow.e164 == e164,
        )
    )
    return bool(getattr(removed, "rowcount", 0))


def contacts_of_person(
    session: Session, facility_id: str, person_id: str
) -> list[tuple[Contact, ContactDetails, list[str]]]:
    """The person's contacts with their details and numbers, approvals left out."""
    rows = list(
        session.scalars(
            select(ContactRow)
            .where(ContactRow.facility_id == facility_id, ContactRow.person_id == person_id)
            .order_by(ContactRow.id)
        )
    )
    return [
        (_contact(row, frozenset()), _details(row), phones_of(session, facility_id, row.id))
        for row in rows
    ]


def contact_owner(session: Session, facility_id: str, contact_id: str) -> str | None:
    """The id of the person whose contact this id is, if it is taken."""
    row = session.get(ContactRow, (facility_id, contact_id))
    return None if row is None else row.person_id


def contact_name(session: Session, facility_id: str, contact_id: str) -> str:
    row = session.get(ContactRow, (facility_id, contact_id))
    return "" if row is None else row.name


def list_contacts(
    session: Session, facility_id: str, at: datetime, person_id: str | None = None
) -> list[tuple[Contact, ContactDetails, list[str]]]:
    """Contacts (of one person, or all), each with its details and E.164 numbers."""
    query = select(ContactRow).where(ContactRow.facility_id == facility_id)
    if person_id is not None:
        query = query.where(ContactRow.person_id == person_id)
    rows = list(session.scalars(query.order_by(ContactRow.id)))
    ids = [row.id for row in rows]
    approved = _approved_channels(session, facility_id, ids, at) if ids else {}
    phones: dict[str, list[str]] = {contact_id: [] for contact_id in ids}
    if ids:
        for contact_id, e164 in session.execute(
            select(ContactPhoneRow.contact_id, ContactPhoneRow.e164)
            .where(
                ContactPhoneRow.facility_id == facility_id,
                ContactPhoneRow.contact_id.in_(ids),
            )
            .order_by(ContactPhoneRow.e164)
        ):
            phones[contact_id].append(e164)
    return [(_contact(row, approved[row.id]), _details(row), phones[row.id]) for row in rows]


def contact_by_phone(session: Session, facility_id: str, person_id: str, e164: str) -> str | None:
    """The id of the person's contact with this number, if any."""
    params = {"facility_id": facility_id, "person_id": person_id, "e164": e164}
    found: str | None = core(session).execute(_BY_PHONE, params).scalar_one_or_none()
    return found
