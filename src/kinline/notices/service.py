"""Writing notices beside the change they announce, and reading them back.

``write_notices`` runs inside the caller's transaction: a change and its
notices commit together or not at all (invariant 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from kinline.audit.service import facility_chain, person_chain, record_event
from kinline.db.engine import Database
from kinline.db.tables import NoticeRow
from kinline.errors import InvalidInput, NotFound
from kinline.identity import repository as identity_repository
from kinline.notices import repository
from kinline.notices.delivery.outbox import enqueue_deliveries
from kinline.notices.document import (
    AUTOMATIC_ISSUER,
    COMMAND_LINE_ISSUER,
    NoticeDocument,
    OverriddenOrder,
)
from kinline.notices.model import Addressee, ChangeFacts, compose_notice
from kinline.people import repository as people_repository
from kinline.people.model import Facility, Person
from kinline.policy import repository as policy_repository
from kinline.rules.model import Authority, Rule
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
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    reference: str | None = None  # none on a notice written before references


def write_notices(
    session: Session,
    facility: Facility,
    people: Sequence[Person],
    change: ChangeFacts,
    *,
    at: datetime,
    actor: str,
    deadline: date | None = None,
) -> list[int]:
    """One notice to each person, in their language, with its audit event.

    ``deadline``: the last day to appeal, when it is not the facility's
    ``appeal_days`` from the change (an appeal denied by silence: the last day
    to take it to the next level)."""
    deadline = deadline or facility.appeal_deadline(change.effective_at)
    issued_by, issuer_role = issuer(session, facility.id, actor)
    ids: list[int] = []
    for person in people:
        to = Addressee(
            facility_name=facility.name,
            person_name=person.name,
            effective_local=local(change.effective_at, facility.zone),
            appeal_deadline=deadline,
        )
        facts = change.in_language(person.language)
        content = compose_notice(facts, to, person.language)
        row = repository.add_notice(
            session,
            facility_id=facility.id,
            person_id=person.id,
            language=content.language,
            change=str(change.change),
            subject=change.subject,
            authority=change.authority,
            rule_text=facts.rule_text,
            reason=change.reason,
            effective_at=change.effective_at,
            appeal_deadline=deadline,
            title=content.title,
            body=content.body,
            at=at,
        )
        reference = notice_reference(facility.id, local(at, facility.zone).year, row.id)
        repository.add_issue(
            session,
            facility_id=facility.id,
            notice_id=row.id,
            reference=reference,
            issued_by=issued_by,
            issuer_role=issuer_role,
        )
        record_event(
            session,
            facility_id=facility.id,
            chain=person_chain(facility.id, person.id),
            actor=actor,
            tag="notices:notice:written",
            payload={
                "notice_id": row.id,
                "reference": reference,
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
        enqueue_deliveries(session, facility, person, row.id, at)
        ids.append(row.id)
    return ids


# --- What makes a notice official: its reference and who issued it ----------

AUTOMATIC = AUTOMATIC_ISSUER
# A staff member holding several roles at the facility signs with the highest.
_ROLE_PRECEDENCE = ("warden", "admin", "security", "records", "visiting", "observer")


def notice_reference(facility_id: str, year: int, notice_id: int) -> str:
    """A reference a person can read out on the phone: the facility, the year it
    was written and the notice's number (``USP-RED-MESA-2026-000123``). Stable:
    it is fixed when the notice is written and never recomputed."""
    return f"{facility_id.upper()}-{year}-{notice_id:06d}"


def issuer(session: Session, facility_id: str, actor: str) -> tuple[str, str | None]:
    """Who issued a change, as a notice names them: a subject's name and their
    role at the facility; kinline itself (a sweep, an import) as automatic; any
    other actor (a script, the command line) as it named itself."""
    kind, _, rest = actor.partition(":")
    if actor == "kinline:cli":
        return COMMAND_LINE_ISSUER, None
    if kind == "kinline" or actor == "scenario":  # a sweep, an import, a loaded file
        return AUTOMATIC, None
    subject_id, _, name = rest.partition(":")
    if not subject_id.isdigit() or not name:
        return actor[:200], None
    row = identity_repository.get_subject_row(session, int(subject_id))
    if row is None:
        return name[:200], None
    roles = {
        str(binding.role)
        for binding in identity_repository.bindings_of(session, [row.id])[row.id]
        if binding.facility_id == facility_id and binding.role is not None
    }
    role = next((r for r in _ROLE_PRECEDENCE if r in roles), None)
    return row.name[:200], role if role is not None else (kind if kind != "staff" else None)


def list_notices(db: Database, facility_id: str, person_id: str | None = None) -> list[Notice]:
    with db.transaction() as session:
        if (
            person_id is not None
            and people_repository.get_person(session, facility_id, person_id) is None
        ):
            raise NotFound(f"no person {person_id!r} in {facility_id!r}", field="person_id")
        return _notices(
            session, facility_id, repository.list_notices(session, facility_id, person_id)
        )


def notice_counts(db: Database, facility_id: str) -> dict[str, int]:
    with db.transaction() as session:
        return repository.count_by_person(session, facility_id)


# --- Notices as documents, acknowledged, and overdue -------------------------

ACKNOWLEDGER_MAX = 200  # notices.acknowledged_by


def notice_document(
    session: Session, facility_id: str, notice_id: int, *, language: str | None = None
) -> NoticeDocument:
    """The notice as a document, inside the caller's transaction; in ``language``,
    else the language it was written in. Facts the notice row does not keep
    (the rule's channel, kind and case number; the contact's name) are read
    from the rule or contact it names."""
    row = repository.get_notice(session, facility_id, notice_id)
    if row is None:
        raise NotFound(f"no notice {notice_id} in {facility_id!r}", field="notice_id")
    return _document(session, row, language)


def get_notice_document(
    db: Database, facility_id: str, notice_id: int, *, language: str | None = None
) -> NoticeDocument:
    with db.transaction() as session:
        return notice_document(session, facility_id, notice_id, language=language)


def get_notice(db: Database, facility_id: str, notice_id: int) -> Notice:
    with db.transaction() as session:
        row = repository.get_notice(session, facility_id, notice_id)
        if row is None:
            raise NotFound(f"no notice {notice_id} in {facility_id!r}", field="notice_id")
        return _notices(session, facility_id, [row])[0]


def acknowledge_notice(
    db: Database,
    facility_id: str,
    notice_id: int,
    *,
    by: str,
    at: datetime,
    actor: str | None = None,
) -> Notice:
    """Record that the person (or someone for them) has read the notice.

    Idempotent: a notice already acknowledged is returned as it is, with its
    first acknowledgement and no second audit event. The row is locked so two
    kiosks acknowledging at once write one event. ``actor`` (default ``by``) is
    who recorded it: the kiosk's token, a staff member.
    """
    who = _acknowledger(by)
    with db.transaction() as session:
        row = repository.get_notice(session, facility_id, notice_id, lock=True)
        if row is None:
            raise NotFound(f"no notice {notice_id} in {facility_id!r}", field="notice_id")
        if row.acknowledged_at is None:
            row.acknowledged_at = at
            row.acknowledged_by = who
            record_event(
                session,
                facility_id=facility_id,
                chain=person_chain(facility_id, row.person_id),
                actor=actor or who,
                tag="notices:notice:acknowledged",
                payload={"notice_id": row.id, "person_id": row.person_id, "by": who},
                at=at,
            )
            session.flush()
        return _notices(session, facility_id, [row])[0]


def overdue_notices(db: Database, facility_id: str, *, days: int, now: datetime) -> list[Notice]:
    """Notices written more than ``days`` days before ``now`` and still not
    acknowledged, oldest first: the ones staff should follow up in person."""
    if days < 0:
        raise InvalidInput("days must be zero or more", field="days")
    with db.transaction() as session:
        if people_repository.get_facility(session, facility_id) is None:
            raise NotFound(f"no facility {facility_id!r}", field="facility_id")
        rows = repository.list_unacknowledged(
            session, facility_id, created_before=now - timedelta(days=days)
        )
        return _notices(session, facility_id, rows)


def _acknowledger(by: str) -> str:
    who = by.strip()
    if not who:
        raise InvalidInput("say who acknowledges the notice", field="by")
    if len(who) > ACKNOWLEDGER_MAX:
        raise InvalidInput(f"at most {ACKNOWLEDGER_MAX} characters", field="by")
    if "\x00" in who:
        raise InvalidInput("must not contain a NUL character", field="by")
    return who


def _notices(session: Session, facility_id: str, rows: Sequence[NoticeRow]) -> list[Notice]:
    issues = repository.issues_of(session, facility_id, [row.id for row in rows])
    return [
        _notice(row, None if row.id not in issues else issues[row.id].reference) for row in rows
    ]


def _notice(row: NoticeRow, reference: str | None) -> Notice:
    return Notice(
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
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        reference=reference,
    )


def _document(session: Session, row: NoticeRow, language: str | None) -> NoticeDocument:
    facility = people_repository.get_facility(session, row.facility_id)
    if facility is None:
        raise NotFound(f"no facility {row.facility_id!r}", field="facility_id")
    person = people_repository.get_person(session, row.facility_id, row.person_id)
    channel: str | None = None
    rule_kind: str | None = None
    case_number: str | None = None
    contact_name: str | None = None
    overridden: list[OverriddenOrder] = []
    rule_text = row.rule_text
    if row.authority is not None:
        rule_row = policy_repository.get_rule_row(session, row.facility_id, row.subject)
        if rule_row is not None:
            rule = policy_repository.rule_from_row(rule_row)
            channel, rule_kind, case_number = str(rule.channel), str(rule.kind), rule.case_number
            overridden = _overridden_orders(
                session, row.facility_id, rule, language or row.language
            )
            if language is not None and rule.texts:
                # Asked in another language: the rule's own text in it, where written.
                rule_text = rule.text_in(language)
    else:
        contact_id, _, channel_name = row.subject.rpartition(":")
        channel = channel_name or None
        name = people_repository.contact_name(session, row.facility_id, contact_id)
        contact_name = name or contact_id or None
    zone = facility.zone
    effective = row.effective_at.astimezone(zone)
    issue = repository.get_issue(session, row.facility_id, row.id)
    letterhead = repository.get_letterhead(session, row.facility_id)
    return NoticeDocument(
        notice_id=row.id,
        language=language or row.language,
        facility_id=facility.id,
        facility_name=facility.name,
        timezone=facility.timezone,
        person_id=row.person_id,
        person_name=person.name if person is not None else row.person_id,
        change=row.change,
        subject=row.subject,
        effective_at=effective,
        appeal_deadline=row.appeal_deadline,
        # As the notice was written, even if the facility's setting changed since.
        appeal_days=(row.appeal_deadline - effective.date()).days,
        channel=channel,
        authority=row.authority,
        rule_kind=rule_kind,
        rule_text=rule_text,
        case_number=case_number,
        contact_name=contact_name,
        reason=row.reason,
        acknowledged_at=(
            None if row.acknowledged_at is None else row.acknowledged_at.astimezone(zone)
        ),
        acknowledged_by=row.acknowledged_by,
        facility_address=None if letterhead is None else letterhead.address,
        issued_at=row.created_at.astimezone(zone),
        reference=None if issue is None else issue.reference,
        issued_by=None if issue is None else issue.issued_by,
        issuer_role=None if issue is None else issue.issuer_role,
        overridden_orders=tuple(overridden),
    )


def _overridden_orders(
    session: Session, facility_id: str, rule: Rule, language: str
) -> list[OverriddenOrder]:
    """The court orders among the rules ``rule`` overrides, in the reader's language."""
    found: list[OverriddenOrder] = []
    for rule_id in sorted(rule.overrides):
        other_row = policy_repository.get_rule_row(session, facility_id, rule_id)
        if other_row is None:
            continue
        other = policy_repository.rule_from_row(other_row)
        if other.authority == Authority.COURT_ORDER:
            found.append(OverriddenOrder(other.case_number, other.text_in(language)))
    return found


# --- The letterhead ------------------------------------------------------------

ADDRESS_MAX = 500


def set_letterhead(
    db: Database, facility_id: str, address: str, *, at: datetime, actor: str
) -> str:
    """Set the facility's postal address, printed atop its notices (lines kept;
    each stripped). Audited on the facility's chain; returns the address stored."""
    lines = [line.strip() for line in address.strip().splitlines()]
    cleaned = "\n".join(line for line in lines if line)
    if not cleaned:
        raise InvalidInput("give the facility's postal address", field="address")
    if len(cleaned) > ADDRESS_MAX:
        raise InvalidInput(f"at most {ADDRESS_MAX} characters", field="address")
    if any(ord(char) < 32 and char != "\n" for char in cleaned):
        raise InvalidInput("must not contain control characters", field="address")
    with db.transaction() as session:
        if people_repository.get_facility(session, facility_id, lock=True) is None:
            raise NotFound(f"no facility {facility_id!r}", field="facility_id")
        repository.set_letterhead(session, facility_id, cleaned, at=at, by=actor)
        record_event(
            session,
            facility_id=facility_id,
            chain=facility_chain(facility_id),
            actor=actor,
            tag="notices:letterhead:set",
            payload={"address": cleaned},
            at=at,
        )
    return cleaned


def get_letterhead(db: Database, facility_id: str) -> str | None:
    with db.transaction() as session:
        row = repository.get_letterhead(session, facility_id)
        return None if row is None else row.address
