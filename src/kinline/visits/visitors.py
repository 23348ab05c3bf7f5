"""Visitors: applications, the ID check, the supervising officer's consent, the
decision's checks, restrictions, and a facility's visit settings.

A visitor is a contact of the person (``people``) plus a visitor record here.
What changes what a person may do (a decision, a restriction) also writes
notices: ``kinline.changes.visitors`` runs those, calling the session-level
functions below in its transaction. Booking reads ``standings`` and
``settings_in`` inside its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from kinline.audit.service import facility_chain, person_chain, record_event
from kinline.bounds import REASON_CHARS
from kinline.db.engine import Database
from kinline.db.tables import VisitorRestrictionRow, VisitorRow
from kinline.errors import AlreadyExists, Conflict, Forbidden, InvalidInput, NotFound, WrongState
from kinline.people import service as people
from kinline.people.model import Facility, Person, check_country, check_name, check_timezone
from kinline.rules.periods import local
from kinline.visits import repository
from kinline.visits.model import (
    REASON_REQUIRED,
    Blocker,
    Restriction,
    RestrictionKind,
    Standing,
    Supervision,
    Verdict,
    Visitor,
    VisitorStatus,
    VisitSettings,
    approval_blockers,
    check_restriction_dates,
    check_settings,
    shown,
    standing,
)

ID_DOCUMENTS = frozenset(
    {"passport", "driving_licence", "national_id", "state_id", "consular_id", "birth_certificate"}
)


@dataclass(frozen=True, slots=True)
class Application:
    """What a visitor declares when applying (SPEC of the visits issue, item 1)."""

    contact_id: str
    date_of_birth: date
    address: str
    country: str
    criminal_record_declared: bool
    criminal_record: str | None = None
    id_document_type: str | None = None
    id_document_number: str | None = None
    timezone: str | None = None
    supervision: Supervision | None = None
    supervising_officer: str | None = None
    supervising_office: str | None = None
    co_defendant: bool = False
    accompanying_contact_id: str | None = None


@dataclass(frozen=True, slots=True)
class VisitorView:
    """A visitor with their restrictions, what the family is shown, and what
    still stands between the application and approval."""

    visitor: Visitor
    restrictions: list[Restriction]
    shown: list[str]
    blockers: list[Blocker]
    flagged: bool


@dataclass(frozen=True, slots=True)
class Addressed:
    """A change about a visitor, with everyone its notices go to."""

    facility: Facility
    person: Person
    visitor: Visitor
    email: str | None
    language: str


def _text(value: str | None, field: str, *, limit: int = REASON_CHARS) -> str | None:
    if value is None:
        return None
    if not value.strip():
        raise InvalidInput("must not be blank", field=field)
    if len(value) > limit:
        raise InvalidInput(f"must be at most {limit} characters", field=field)
    return value


def _reason(reason: str | None) -> str:
    if reason is None or not reason.strip():
        raise InvalidInput(REASON_REQUIRED, field="reason")
    checked = _text(reason, "reason")
    assert checked is not None
    return checked


def _document_type(value: str | None) -> str | None:
    if value is not None and value not in ID_DOCUMENTS:
        raise InvalidInput(
            f"{value!r} is not one of {', '.join(sorted(ID_DOCUMENTS))}", field="id_document_type"
        )
    return value


def check_application(application: Application, today: date) -> Application:
    """The application, or ``InvalidInput`` naming its first bad field."""
    if application.date_of_birth > today:
        raise InvalidInput("must not be in the future", field="date_of_birth")
    if application.date_of_birth.year < 1900:
        raise InvalidInput("must be after 1900", field="date_of_birth")
    _text(application.address, "address", limit=500)
    check_country(application.country, "country")
    if application.timezone is not None:
        check_timezone(application.timezone, "timezone")
    _document_type(application.id_document_type)
    _text(application.id_document_number, "id_document_number", limit=64)
    if application.criminal_record_declared:
        if application.criminal_record is None:
            raise InvalidInput("say what the declared record is", field="criminal_record")
    elif application.criminal_record is not None:
        raise InvalidInput("given without declaring a record", field="criminal_record")
    _text(application.criminal_record, "criminal_record")
    if application.supervision is None:
        for field in ("supervising_officer", "supervising_office"):
            if getattr(application, field) is not None:
                raise InvalidInput("given without a supervision kind", field=field)
    elif application.supervising_officer is None:
        raise InvalidInput(
            f"a visitor under {application.supervision} names the supervising officer",
            field="supervising_officer",
        )
    if application.supervising_officer is not None:
        check_name(application.supervising_officer, "supervising_officer")
    if application.supervising_office is not None:
        check_name(application.supervising_office, "supervising_office")
    if application.accompanying_contact_id == application.contact_id:
        raise InvalidInput("a visitor cannot accompany themselves", field="accompanying_contact_id")
    return application


# -- settings ------------------------------------------------------------------


def settings_in(session: Session, facility_id: str) -> VisitSettings:
    """The facility's visit settings, in the caller's transaction."""
    return repository.get_settings(session, facility_id) or VisitSettings()


def get_settings(db: Database, facility_id: str) -> VisitSettings:
    with db.transaction() as session:
        people.require_facility(session, facility_id)
        return settings_in(session, facility_id)


def set_settings(
    db: Database, facility_id: str, settings: VisitSettings, *, at: datetime, actor: str
) -> VisitSettings:
    check_settings(settings)
    with db.transaction() as session:
        people.require_facility(session, facility_id)
        repository.store_settings(session, facility_id, settings, at=at, by=actor)
        record_event(
            session,
            facility_id=facility_id,
            chain=facility_chain(facility_id),
            actor=actor,
            tag="visits:settings:changed",
            payload={name: getattr(settings, name) for name in VisitSettings.__dataclass_fields__},
            at=at,
        )
    return settings


# -- applications --------------------------------------------------------------


def apply(
    db: Database, facility_id: str, application: Application, *, at: datetime, actor: str
) -> Visitor:
    """A contact applies to visit their person; one standing application each."""
    with db.transaction() as session:
        facility = people.require_facility(session, facility_id)
        check_application(application, local(at, facility.zone).date())
        contact = people.require_contact(session, facility_id, application.contact_id, at)
        people.require_held(session, facility_id, contact.person, at)
        if application.accompanying_contact_id is not None:
            try:
                adult = people.require_contact(
                    session, facility_id, application.accompanying_contact_id, at
                )
            except NotFound as error:
                raise NotFound(error.message, field="accompanying_contact_id") from None
            if adult.person != contact.person:
                raise InvalidInput(
                    f"{adult.id!r} is not a contact of {contact.person!r}",
                    field="accompanying_contact_id",
                )
        standing_id = repository.open_visitor_id(session, facility_id, contact.id)
        if standing_id is not None:
            raise AlreadyExists(
                f"contact {contact.id!r} already has visitor application {standing_id}",
                field="contact_id",
            )
        visitor = repository.add_visitor(
            session,
            VisitorRow(
                facility_id=facility_id,
                person_id=contact.person,
                contact_id=contact.id,
                date_of_birth=application.date_of_birth,
                address=application.address,
                country=application.country.upper(),
                timezone=application.timezone,
                id_document_type=application.id_document_type,
                id_document_number=application.id_document_number,
                criminal_record_declared=application.criminal_record_declared,
                criminal_record=application.criminal_record,
                supervision_kind=None
                if application.supervision is None
                else str(application.supervision),
                supervising_officer=application.supervising_officer,
                supervising_office=application.supervising_office,
                co_defendant=application.co_defendant,
                accompanying_contact_id=application.accompanying_contact_id,
                status=str(VisitorStatus.APPLIED),
                applied_at=at,
                applied_by=actor,
            ),
        )
        _audit(
            session,
            visitor,
            "applied",
            actor,
            at,
            date_of_birth=visitor.date_of_birth,
            country=visitor.country,
            criminal_record_declared=visitor.criminal_record_declared,
            supervision=visitor.supervision,
            co_defendant=visitor.co_defendant,
            accompanying_contact_id=visitor.accompanying_contact_id,
        )
        return visitor


def _audit(
    session: Session, visitor: Visitor, action: str, actor: str, at: datetime, **payload: object
) -> None:
    record_event(
        session,
        facility_id=visitor.facility_id,
        chain=person_chain(visitor.facility_id, visitor.person_id),
        actor=actor,
        tag=f"visits:visitor:{action}",
        payload={
            "visitor_id": visitor.id,
            "contact_id": visitor.contact_id,
            **{k: None if v is None else str(v) for k, v in payload.items()},
        },
        at=at,
    )


def _locked(session: Session, facility_id: str, visitor_id: int) -> VisitorRow:
    row = repository.visitor_row(session, facility_id, visitor_id, lock=True)
    if row is None:
        raise NotFound(f"no visitor {visitor_id} in {facility_id!r}", field="visitor_id")
    return row


def _reread(session: Session, row: VisitorRow) -> Visitor:
    session.flush()
    visitor = repository.get_visitor(session, row.facility_id, row.id)
    assert visitor is not None
    return visitor


def check_id(
    db: Database,
    facility_id: str,
    visitor_id: int,
    *,
    document_type: str,
    document_number: str,
    at: datetime,
    actor: str,
) -> Visitor:
    """Staff saw the visitor's ID document: its type and number are recorded as checked."""
    _document_type(document_type)
    _text(document_number, "id_document_number", limit=64)
    with db.transaction() as session:
        row = _locked(session, facility_id, visitor_id)
        if not VisitorStatus(row.status).open:
            raise WrongState(f"visitor {visitor_id} is {row.status}", field="visitor_id")
        row.id_document_type, row.id_document_number = document_type, document_number
        row.id_checked_by, row.id_checked_at = actor, at
        visitor = _reread(session, row)
        _audit(session, visitor, "id_checked", actor, at, document_type=document_type)
        return visitor


def record_consent(
    db: Database,
    facility_id: str,
    visitor_id: int,
    *,
    officer: str,
    note: str | None,
    at: datetime,
    actor: str,
) -> Visitor:
    """The supervising officer's consent to the visits: the first of the two keys."""
    check_name(officer, "officer")
    _text(note, "note")
    with db.transaction() as session:
        row = _locked(session, facility_id, visitor_id)
        if row.supervision_kind is None:
            raise Conflict(
                f"visitor {visitor_id} declared no court supervision: no consent is needed",
                field="visitor_id",
            )
        if row.status != VisitorStatus.APPLIED:
            raise WrongState(f"visitor {visitor_id} is {row.status}", field="visitor_id")
        row.officer_consent_at, row.officer_consent_by = at, officer
        row.officer_consent_note = note
        visitor = _reread(session, row)
        _audit(session, visitor, "consented", actor, at, officer=officer, note=note)
        return visitor


def withdraw(
    db: Database, facility_id: str, visitor_id: int, *, at: datetime, actor: str
) -> Visitor:
    """The applicant withdraws an application not yet decided."""
    with db.transaction() as session:
        row = _locked(session, facility_id, visitor_id)
        if row.status != VisitorStatus.APPLIED:
            raise WrongState(
                f"visitor {visitor_id} is {row.status}: only an application not yet "
                "decided is withdrawn",
                field="visitor_id",
            )
        row.status = str(VisitorStatus.WITHDRAWN)
        row.decided_at, row.decided_by = at, actor
        visitor = _reread(session, row)
        _audit(session, visitor, "withdrawn", actor, at)
        return visitor


def _addressed(session: Session, visitor: Visitor) -> Addressed:
    facility = people.require_facility(session, visitor.facility_id)
    person = people.require_person(session, visitor.facility_id, visitor.person_id)
    contact = repository.contact_row(session, visitor.facility_id, visitor.contact_id)
    assert contact is not None  # a visitor's contact (a foreign key)
    return Addressed(facility, person, visitor, contact.email, contact.language or person.language)


def record_decision(
    session: Session,
    facility_id: str,
    visitor_id: int,
    *,
    verdict: Verdict,
    reason: str | None,
    warden: bool,
    at: datetime,
    actor: str,
) -> Addressed:
    """Approve or refuse an application, in the caller's transaction (which also
    approves the contact for visits and writes the notices). A reason is always
    required; a former co-defendant is decided by the warden; approval needs
    every check of ``approval_blockers`` met."""
    reason = _reason(reason)
    row = _locked(session, facility_id, visitor_id)
    visitor = _reread(session, row)
    settings = settings_in(session, facility_id)
    if visitor.status is not VisitorStatus.APPLIED:
        raise WrongState(f"visitor {visitor_id} is {visitor.status}", field="visitor_id")
    if visitor.flagged(settings) and not warden:
        raise Forbidden(
            f"visitor {visitor_id} is a former co-defendant: the warden decides",
            field="visitor_id",
        )
    if verdict is Verdict.APPROVE:
        facility = people.require_facility(session, facility_id)
        today = local(at, facility.zone).date()
        blockers = approval_blockers(
            visitor, settings, today=today, adult_approved=_adult_approved(session, visitor)
        )
        if blockers:
            first = blockers[0]
            raise Conflict("; ".join(blocker.message for blocker in blockers), field=first.field)
    row.status = str(
        VisitorStatus.APPROVED if verdict is Verdict.APPROVE else VisitorStatus.REFUSED
    )
    row.decided_at, row.decided_by, row.decision_reason = at, actor, reason
    visitor = _reread(session, row)
    _audit(session, visitor, str(visitor.status), actor, at, reason=reason, warden=warden)
    return _addressed(session, visitor)


def _adult_approved(session: Session, visitor: Visitor) -> bool:
    if visitor.accompanying_contact_id is None:
        return False
    adults = repository.list_visitors(
        session,
        visitor.facility_id,
        contact_ids=[visitor.accompanying_contact_id],
        statuses=[VisitorStatus.APPROVED],
    )
    return bool(adults)


# -- restrictions --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestrictionChange:
    addressed: Addressed
    restriction: Restriction
    shown: str


def impose_restriction(
    session: Session,
    facility_id: str,
    visitor_id: int,
    *,
    kind: RestrictionKind,
    reason: str | None,
    starts_on: date | None,
    until: date | None,
    at: datetime,
    actor: str,
) -> RestrictionChange:
    """Ban a visitor, or hold them to closed or non-contact visits, from
    ``starts_on`` (default: today) until the day before ``until`` (None: until
    lifted); in the caller's transaction, which writes the notices."""
    reason = _reason(reason)
    row = _locked(session, facility_id, visitor_id)
    visitor = _reread(session, row)
    addressed = _addressed(session, visitor)
    today = local(at, addressed.facility.zone).date()
    first = today if starts_on is None else starts_on
    check_restriction_dates(first, until)
    if until is not None and until <= today:
        raise InvalidInput(f"must be after today {today.isoformat()}", field="until")
    restriction = repository.add_restriction(
        session,
        VisitorRestrictionRow(
            facility_id=facility_id,
            visitor_id=visitor.id,
            contact_id=visitor.contact_id,
            kind=str(kind),
            reason=reason,
            starts_on=first,
            until=until,
            imposed_at=at,
            imposed_by=actor,
        ),
    )
    text = shown(restriction, "en", today)
    _audit(
        session,
        visitor,
        "restricted",
        actor,
        at,
        restriction_id=restriction.id,
        kind=kind,
        starts_on=first,
        until=until,
        reason=reason,
    )
    return RestrictionChange(addressed, restriction, text)


def no_restriction(facility_id: str, restriction_id: int) -> NotFound:
    return NotFound(
        f"no visitor restriction {restriction_id} in {facility_id!r}", field="restriction_id"
    )


def lift_restriction(
    session: Session,
    facility_id: str,
    restriction_id: int,
    *,
    reason: str | None,
    at: datetime,
    actor: str,
) -> RestrictionChange:
    reason = _reason(reason)
    row = repository.restriction_row(session, facility_id, restriction_id)
    if row is None:
        raise no_restriction(facility_id, restriction_id)
    if row.lifted_at is not None:
        raise WrongState(f"restriction {restriction_id} is lifted already", field="restriction_id")
    restriction = repository.lift_restriction(row, at=at, by=actor, reason=reason)
    visitor = repository.get_visitor(session, facility_id, row.visitor_id)
    assert visitor is not None
    addressed = _addressed(session, visitor)
    _audit(
        session, visitor, "unrestricted", actor, at, restriction_id=restriction_id, reason=reason
    )
    today = local(at, addressed.facility.zone).date()
    return RestrictionChange(addressed, restriction, shown(restriction, "en", today))


# -- reading -------------------------------------------------------------------


def _view(session: Session, visitor: Visitor, at: datetime) -> VisitorView:
    facility = people.require_facility(session, visitor.facility_id)
    settings = settings_in(session, visitor.facility_id)
    today = local(at, facility.zone).date()
    restrictions = repository.restrictions_of(session, visitor.facility_id, [visitor.contact_id])
    contact = repository.contact_row(session, visitor.facility_id, visitor.contact_id)
    language = "en" if contact is None or contact.language is None else contact.language
    current = [
        r for r in restrictions if r.lifted_at is None and (r.until is None or r.until > today)
    ]
    blockers = (
        approval_blockers(
            visitor, settings, today=today, adult_approved=_adult_approved(session, visitor)
        )
        if visitor.status is VisitorStatus.APPLIED
        else []
    )
    return VisitorView(
        visitor=visitor,
        restrictions=restrictions,
        shown=[shown(r, language, today) for r in current],
        blockers=blockers,
        flagged=visitor.flagged(settings),
    )


def get_visitor(db: Database, facility_id: str, visitor_id: int, *, at: datetime) -> VisitorView:
    with db.transaction() as session:
        visitor = repository.get_visitor(session, facility_id, visitor_id)
        if visitor is None:
            raise NotFound(f"no visitor {visitor_id} in {facility_id!r}", field="visitor_id")
        return _view(session, visitor, at)


def list_visitors(
    db: Database,
    facility_id: str,
    *,
    at: datetime,
    person_id: str | None = None,
    contact_id: str | None = None,
    status: VisitorStatus | None = None,
) -> list[VisitorView]:
    with db.transaction() as session:
        people.require_facility(session, facility_id)
        visitors = repository.list_visitors(
            session,
            facility_id,
            person_id=person_id,
            contact_ids=None if contact_id is None else [contact_id],
            statuses=None if status is None else [status],
        )
        return [_view(session, visitor, at) for visitor in visitors]


def visitor_owner(db: Database, facility_id: str, visitor_id: int) -> tuple[str, str]:
    """Whose a visitor record is: (person id, contact id), for access checks."""
    with db.transaction() as session:
        visitor = repository.get_visitor(session, facility_id, visitor_id)
        if visitor is None:
            raise NotFound(f"no visitor {visitor_id} in {facility_id!r}", field="visitor_id")
        return visitor.person_id, visitor.contact_id


def restriction_owner(db: Database, facility_id: str, restriction_id: int) -> tuple[str, str]:
    with db.transaction() as session:
        found = repository.restrictions_by_id(session, facility_id, restriction_id)
        if found is None:
            raise NotFound(
                f"no visitor restriction {restriction_id} in {facility_id!r}",
                field="restriction_id",
            )
        visitor = repository.get_visitor(session, facility_id, found.visitor_id)
        assert visitor is not None
        return visitor.person_id, visitor.contact_id


# -- for booking ---------------------------------------------------------------


def standings(
    session: Session, facility_id: str, contact_ids: Sequence[str], day: date, *, at: datetime
) -> list[Standing]:
    """Whether each contact may visit on ``day`` and in what setting at least, in
    the caller's transaction (a booking's): approved, not banned, and the least
    restrictive setting their restrictions leave."""
    visitors = repository.list_visitors(
        session, facility_id, contact_ids=contact_ids, statuses=[VisitorStatus.APPROVED]
    )
    latest = {visitor.contact_id: visitor for visitor in visitors}
    restrictions = repository.restrictions_of(session, facility_id, contact_ids)
    result: list[Standing] = []
    for contact_id in contact_ids:
        visitor = latest.get(contact_id)
        if visitor is None:
            others = repository.list_visitors(session, facility_id, contact_ids=[contact_id])
            visitor = others[-1] if others else None
        mine = [r for r in restrictions if r.contact_id == contact_id]
        result.append(standing(contact_id, visitor, mine, day, at=at))
    return result


def visitor_timezone(session: Session, facility_id: str, contact_id: str) -> str | None:
    """The zone a visitor's times are shown in, when they gave one."""
    visitors = repository.list_visitors(session, facility_id, contact_ids=[contact_id])
    return visitors[-1].timezone if visitors else None
