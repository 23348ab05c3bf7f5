"""Writing notices beside the change they announce, and reading them back.

``write_notices`` runs inside the caller's transaction: a change and its
notices commit together or not at all (invariant 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from kinline.audit.service import person_chain, record_event
from kinline.db.engine import Database
from kinline.errors import NotFound
from kinline.notices import repository
from kinline.notices.model import Addressee, ChangeFacts, compose_notice
from kinline.people import repository as people_repository
from kinline.people.model import Facility, Person
from kinline.rules.periods import local


@dataclass(frozen=True, slots=True)
class Notice:
    id: int
    facility_id: str
    person_id: str
    language: str
    change: str
    subject: str
    authority: str | None
    rule_text: str | None
    reason: str | None
    effective_at: datetime
    appeal_deadline: date
    title: str
    body: str
    created_at: datetime


def write_notices(
    session: Session,
    facility: Facility,
    people: Sequence[Person],
    change: ChangeFacts,
    *,
    at: datetime,
    actor: str,
) -> list[int]:
    """One notice to each person, in their language, with its audit event."""
    deadline = facility.appeal_deadline(change.effective_at)
    ids: list[int] = []
    for person in people:
        to = Addressee(
            facility_name=facility.name,
            person_name=person.name,
            effective_local=local(change.effective_at, facility.zone),
            appeal_deadline=deadline,
        )
        content = compose_notice(change, to, person.language)
        row = repository.add_notice(
            session,
            facility_id=facility.id,
            person_id=person.id,
            language=content.language,
            change=str(change.change),
            subject=change.subject,
            authority=change.authority,
            rule_text=change.rule_text,
            reason=change.reason,
            effective_at=change.effective_at,
            appeal_deadline=deadline,
            title=content.title,
            body=content.body,
            at=at,
        )
        record_event(
            session,
            facility_id=facility.id,
            chain=person_chain(facility.id, person.id),
            actor=actor,
            tag="notices:notice:written",
            payload={
                "notice_id": row.id,
                "person_id": person.id,
                "change": str(change.change),
                "subject": change.subject,
                "language": content.language,
                "effective_at": change.effective_at,
                "appeal_deadline": deadline,
                "title": content.title,
                "body": content.body,
            },
            at=at,
        )
        ids.append(row.id)
    return ids


def list_notices(db: Database, facility_id: str, person_id: str | None = None) -> list[Notice]:
    with db.transaction() as session:
        if (
            person_id is not None
            and people_repository.get_person(session, facility_id, person_id) is None
        ):
            raise NotFound(f"no person {person_id!r} in {facility_id!r}", field="person_id")
        return [
            Notice(
                id=row.id,
                facility_id=row.facility_id,
                person_id=row.person_id,
                language=row.language,
                change=row.change,
                subject=row.subject,
                authority=row.authority,
                rule_text=row.rule_text,
                reason=row.reason,
                effective_at=row.effective_at,
                appeal_deadline=row.appeal_deadline,
                title=row.title,
                body=row.body,
                created_at=row.created_at,
            )
            for row in repository.list_notices(session, facility_id, person_id)
        ]


def notice_counts(db: Database, facility_id: str) -> dict[str, int]:
    with db.transaction() as session:
        return repository.count_by_person(session, facility_id)
