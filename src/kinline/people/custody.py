"""Custody: releasing a person, and transferring them to another facility.

Both close the person's record at a facility, and with it everything the
person could do there, so each works inside the caller's transaction and
``kinline.changes.service`` writes its notice (and, for a transfer, the
adverse action) beside it (invariant 1).

A transfer, from facility A to facility B, in one transaction:

- The record at A is closed as ``transferred`` (``transferred_to`` B, from the
  transfer's instant); nothing more is decided for it (``require_contact``
  refuses every call set-up and visit), so A's rules no longer reach the
  person. Those rules are not lifted: they stay in A's history exactly as
  imposed, and a court order that follows the person is entered at B.
- Every approval at A still open is ended at that instant, with the transfer as
  its reason, so A's records say exactly when each stopped.
- A record at B is opened with the same person id (``transferred_from`` A), or
  the person's closed record at B reopened if they were held there before.
- The person's contacts are copied to B with their numbers, email, language
  and country, keeping their ids where B has no other person's contact by that
  id (otherwise ``PERSON:CONTACT``, then a numbered suffix). Approvals are not
  carried: each contact is approved again at B, under B's checks.
- Open appeals stay with A, which issued the notices they are against and
  answers them; held call set-ups at A connect or expire as any hold does
  (within minutes), and no new one is authorized there.

Release closes the record as ``released`` and ends the open approvals the
same way; the person's history stays, and a later custody is a new admission.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from kinline.audit.service import person_chain, record_event
from kinline.errors import Conflict, InvalidInput
from kinline.people import repository
from kinline.people.model import Custody, Facility, Person, check_housing_unit
from kinline.people.service import require_facility, require_held
from kinline.rules.model import Contact


@dataclass(frozen=True, slots=True)
class CustodyChange:
    """A record closed: where, who, and the approvals that ended with it
    (``contact:channel``)."""

    facility: Facility
    person: Person
    approvals_ended: list[str]


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer: the record closed at ``source``, the one opened at
    ``target`` (``person`` is the person there), and each contact's id there."""

    source: CustodyChange
    target: Facility
    person: Person
    contacts: dict[str, str]


def _stated(reason: str) -> str:
    if not reason or not reason.strip():
        raise InvalidInput("a reason is required: the person is told it", field="reason")
    return reason


def _end_approvals(
    session: Session, facility_id: str, person_id: str, at: datetime, reason: str
) -> list[str]:
    ended: list[str] = []
    for approval in repository.open_approvals_of_person(session, facility_id, person_id, at):
        # An approval starting later than ``at`` never comes into force.
        repository.end_approval(approval, max(at, approval.approved_at), reason)
        ended.append(f"{approval.contact_id}:{approval.channel}")
    session.flush()
    return ended


def release(
    session: Session, facility_id: str, person_id: str, *, reason: str, at: datetime, actor: str
) -> CustodyChange:
    """Close the person's custody here from ``at`` (``people:person:released``)."""
    reason = _stated(reason)
    facility = require_facility(session, facility_id)
    record = require_held(session, facility_id, person_id, at, lock=True)
    ended = _end_approvals(session, facility_id, person_id, at, f"released: {reason}")
    repository.update_person(
        session,
        facility_id,
        person_id,
        {"custody_status": str(Custody.RELEASED), "custody_changed_at": at},
    )
    record_event(
        session,
        facility_id=facility_id,
        chain=person_chain(facility_id, person_id),
        actor=actor,
        tag="people:person:released",
        payload={"person_id": person_id, "reason": reason, "approvals_ended": ended},
        at=at,
    )
    return CustodyChange(facility, record.person, ended)


def transfer(
    session: Session,
    facility_id: str,
    person_id: str,
    to_facility_id: str,
    *,
    reason: str,
    at: datetime,
    actor: str,
    housing_unit: str | None = None,
) -> Transfer:
    """Transfer the person to ``to_facility_id`` from ``at``, as the module says:
    ``people:person:transferred`` on the old facility's chain and
    ``people:person:admitted`` (with ``transferred_from``) on the new one's.
    ``housing_unit`` is the person's unit at the new facility."""
    reason = _stated(reason)
    housing_unit = check_housing_unit(housing_unit, "housing_unit")
    if to_facility_id == facility_id:
        raise InvalidInput("the person is already held at this facility", field="to_facility_id")
    source = require_facility(session, facility_id)
    record = require_held(session, facility_id, person_id, at, lock=True)
    target = require_facility(session, to_facility_id)
    person = record.person
    there = repository.get_person_record(session, to_facility_id, person_id, lock=True)
    if there is not None and there.custody is Custody.IN_CUSTODY:
        raise Conflict(
            f"person {person_id!r} is already held at {to_facility_id!r}", field="to_facility_id"
        )
    ended = _end_approvals(session, facility_id, person_id, at, f"transferred: {reason}")
    repository.update_person(
        session,
        facility_id,
        person_id,
        {
            "custody_status": str(Custody.TRANSFERRED),
            "custody_changed_at": at,
            "transferred_to": to_facility_id,
        },
    )
    moved = Person(to_facility_id, person_id, person.name, person.language)
    if there is None:
        repository.add_person(
            session, moved, housing_unit=housing_unit, admitted_at=at, transferred_from=facility_id
        )
    else:
        repository.update_person(
            session,
            to_facility_id,
            person_id,
            {
                "name": person.name,
                "language": person.language,
                "housing_unit": housing_unit,
                "custody_status": str(Custody.IN_CUSTODY),
                "admitted_at": at,
                "custody_changed_at": at,
                "transferred_to": None,
                "transferred_from": facility_id,
            },
        )
    contacts = _copy_contacts(session, facility_id, to_facility_id, person_id, at)
    record_event(
        session,
        facility_id=facility_id,
        chain=person_chain(facility_id, person_id),
        actor=actor,
        tag="people:person:transferred",
        payload={
            "person_id": person_id,
            "to_facility_id": to_facility_id,
            "reason": reason,
            "approvals_ended": ended,
        },
        at=at,
    )
    record_event(
        session,
        facility_id=to_facility_id,
        chain=person_chain(to_facility_id, person_id),
        actor=actor,
        tag="people:person:admitted",
        payload={
            "person_id": person_id,
            "name": person.name,
            "language": person.language,
            "housing_unit": housing_unit,
            "transferred_from": facility_id,
            "contacts": contacts,
        },
        at=at,
    )
    return Transfer(CustodyChange(source, person, ended), target, moved, contacts)


def _copy_contacts(
    session: Session, source_id: str, target_id: str, person_id: str, at: datetime
) -> dict[str, str]:
    """The person's contacts at the source copied to the target, unapproved;
    returns each contact's id there."""
    ids: dict[str, str] = {}
    for contact, details, phones in repository.contacts_of_person(session, source_id, person_id):
        new_id = _free_id(session, target_id, person_id, contact.id)
        values = {
            "name": details.name,
            "relationship": contact.relationship,
            "privileged": contact.privileged,
            "email": details.email,
            "notify_by_email": details.notify_by_email,
            "language": details.language,
            "country": details.country,
        }
        if repository.contact_owner(session, target_id, new_id) == person_id:
            # Held there before: the contact kept there is brought up to date.
            repository.update_contact(session, target_id, new_id, values)
            for e164 in repository.phones_of(session, target_id, new_id):
                repository.remove_phone(session, target_id, new_id, e164)
            for e164 in phones:
                repository.add_phone(session, target_id, new_id, e164)
        else:
            moved = Contact(
                id=new_id,
                person=person_id,
                relationship=contact.relationship,
                privileged=contact.privileged,
                approved=frozenset(),
            )
            repository.add_contact(
                session,
                target_id,
                moved,
                details.name,
                phones,
                at,
                email=details.email,
                notify_by_email=details.notify_by_email,
                language=details.language,
                country=details.country,
            )
        ids[contact.id] = new_id
    return ids


def _free_id(session: Session, facility_id: str, person_id: str, contact_id: str) -> str:
    """``contact_id`` unless another person's contact has it at the facility."""
    candidates = [contact_id, f"{person_id}:{contact_id}"[:64]]
    candidates += [f"{candidates[1][:58]}-{n}" for n in range(2, 1000)]
    for candidate in candidates:
        owner = repository.contact_owner(session, facility_id, candidate)
        if owner is None or owner == person_id:
            return candidate
    raise Conflict(f"no free id for contact {contact_id!r}", field="contact_id")
