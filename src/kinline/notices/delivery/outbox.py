"""Putting a notice's deliveries in the outbox, inside the notice's own transaction.

``write_notices`` calls ``enqueue_deliveries`` for each notice it writes, so a
notice and its deliveries commit together or not at all (invariants 1 and 3):
a notice can never be written and then forgotten by the mailer, and a
delivery never points at a notice that was rolled back. Sending happens
later, in ``kinline.notices.delivery.service``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from kinline.notices.delivery import repository
from kinline.notices.delivery.model import KIOSK, Channel, print_recipient
from kinline.people.model import Facility, Person


def enqueue_deliveries(
    session: Session, facility: Facility, person: Person, notice_id: int, at: datetime
) -> None:
    """The kiosk inbox (delivered now: the notice is in the store), one email to
    each address that gets the person's notices, and one printed copy for the
    person's housing unit (``unassigned`` when they have none)."""
    repository.add_delivery(
        session,
        facility_id=facility.id,
        notice_id=notice_id,
        channel=Channel.INBOX,
        recipient=KIOSK,
        at=at,
        sent=True,
    )
    seen: set[str] = set()
    for address in repository.email_addresses(session, facility.id, person.id):
        if address.lower() in seen:
            continue
        seen.add(address.lower())
        repository.add_delivery(
            session,
            facility_id=facility.id,
            notice_id=notice_id,
            channel=Channel.EMAIL,
            recipient=address,
            at=at,
            sent=False,
        )
    repository.add_delivery(
        session,
        facility_id=facility.id,
        notice_id=notice_id,
        channel=Channel.PRINT,
        recipient=print_recipient(repository.housing_unit(session, facility.id, person.id)),
        at=at,
        sent=False,
    )
    session.flush()


def enqueue_message(
    session: Session,
    *,
    facility_id: str,
    recipient: str,
    subject: str,
    body: str,
    at: datetime,
) -> int:
    """An email of its own (a password reset link) in the outbox, inside the
    caller's transaction: it is sent by the same worker, with the same retries,
    as a plain-text email without a PDF. Returns the delivery's id."""
    return repository.add_message(
        session, facility_id=facility_id, recipient=recipient, subject=subject, body=body, at=at
    )
