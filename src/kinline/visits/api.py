"""Routes for visitors: a visitor applies and withdraws their own application;
staff check the ID, record the supervising officer's consent, decide (the
warden for a former co-defendant) and restrict; and a facility's visit settings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from kinline import access
from kinline.access import Access, Params, allowed, whole
from kinline.db.engine import Database
from kinline.errors import Forbidden
from kinline.http import moment
from kinline.identity.model import Action, Record, Target
from kinline.people import service as people
from kinline.people.model import Facility
from kinline.rules.periods import local
from kinline.visits import visitors as service
from kinline.visits.model import (
    Restriction,
    Supervision,
    VisitorStatus,
    VisitSettings,
    choice,
    shown,
)
from kinline.visits.schemas import (
    ApplicationIn,
    BlockerOut,
    ConsentIn,
    IdCheckIn,
    RestrictionOut,
    VisitorOut,
    VisitSettingsIO,
    WithdrawIn,
)

router = APIRouter(tags=["visitors"])
VisitorId = Annotated[int, Path(ge=1, lt=2**31, description="The visitor record's id")]
RestrictionId = Annotated[int, Path(ge=1, lt=2**31, description="The restriction's id")]


def visitor_target(db: Database, place: Facility, params: Params) -> Target:
    """The visitor record named in the path, as its contact's and person's."""
    person_id, contact_id = service.visitor_owner(db, place.id, whole(params, "visitor_id"))
    return Target(place.id, Record.VISITOR, person_id=person_id, contact_id=contact_id)


def _staff_only_at(grant: Access, at: str | None) -> None:
    """Only staff may date an application or a withdrawal: anyone else acts now."""
    if at is not None and not grant.may(Action.VISITOR_DECIDE):
        raise Forbidden("only staff may set at", field="at")


def _wall(value: datetime | None, place: Facility) -> str | None:
    return None if value is None else local(value, place.zone).isoformat()


def restriction_out(restriction: Restriction, place: Facility, language: str) -> RestrictionOut:
    today = local(datetime.now(UTC), place.zone).date()
    return RestrictionOut(
        id=restriction.id,
        kind=str(restriction.kind),
        reason=restriction.reason,
        starts_on=restriction.starts_on,
        until=restriction.until,
        shown=shown(restriction, language, today),
        imposed_at=local(restriction.imposed_at, place.zone).isoformat(),
        imposed_by=restriction.imposed_by,
        lifted_at=_wall(restriction.lifted_at, place),
        lift_reason=restriction.lift_reason,
    )


def visitor_out(view: service.VisitorView, place: Facility) -> VisitorOut:
    v = view.visitor
    return VisitorOut(
        id=v.id,
        person_id=v.person_id,
        contact_id=v.contact_id,
        name=v.name,
        relationship=v.relationship,
        date_of_birth=v.date_of_birth,
        address=v.address,
        country=v.country,
        timezone=v.timezone,
        id_document_type=v.id_document_type,
        id_document_number=v.id_document_number,
        id_checked_by=v.id_checked_by,
        id_checked_at=_wall(v.id_checked_at, place),
        criminal_record_declared=v.criminal_record_declared,
        criminal_record=v.criminal_record,
        supervision=None if v.supervision is None else str(v.supervision),
        supervising_officer=v.supervising_officer,
        supervising_office=v.supervising_office,
        officer_consent_at=_wall(v.officer_consent_at, place),
        officer_consent_by=v.officer_consent_by,
        co_defendant=v.co_defendant,
        flagged_for_warden=view.flagged,
        accompanying_contact_id=v.accompanying_contact_id,
        status=str(v.status),
        applied_at=local(v.applied_at, place.zone).isoformat(),
        decided_at=_wall(v.decided_at, place),
        decided_by=v.decided_by,
        decision_reason=v.decision_reason,
        restrictions=[restriction_out(r, place, "en") for r in view.restrictions],
        shown=view.shown,
        blockers=[BlockerOut(code=b.code, field=b.field, message=b.message) for b in view.blockers],
    )


def view_of(grant: Access, visitor_id: int) -> VisitorOut:
    place = grant.facility
    view = service.get_visitor(grant.db, place.id, visitor_id, at=datetime.now(UTC))
    return visitor_out(view, place)


@router.get("/v1/visitors", response_model=list[VisitorOut])
def list_visitors(
    grant: Annotated[Access, allowed(Action.VISITOR_READ, access.person)],
    person_id: Annotated[str | None, Query(max_length=64, description="One person's")] = None,
    contact_id: Annotated[str | None, Query(max_length=64, description="One contact's")] = None,
    status: Annotated[
        str | None, Query(max_length=32, description="applied, approved, refused or withdrawn")
    ] = None,
) -> list[VisitorOut]:
    """Visitor records the caller may read, oldest first."""
    place = grant.facility
    views = service.list_visitors(
        grant.db,
        place.id,
        at=datetime.now(UTC),
        person_id=person_id,
        contact_id=contact_id,
        status=None if status is None else choice(VisitorStatus, status, "status"),
    )
    return [
        visitor_out(view, place)
        for view in views
        if grant.sees(
            Target(
                place.id,
                Record.VISITOR,
                person_id=view.visitor.person_id,
                contact_id=view.visitor.contact_id,
            )
        )
    ]


@router.post("/v1/visitors", response_model=VisitorOut, status_code=201)
def apply_to_visit(
    body: ApplicationIn, grant: Annotated[Access, allowed(Action.VISITOR_APPLY)]
) -> VisitorOut:
    """A contact applies to visit their person: identity, relationship (the
    contact's), address and country, declared record, court supervision."""
    place = grant.facility
    _staff_only_at(grant, body.at)
    at = moment(body.at, place)
    contact = people.get_contact(grant.db, place.id, body.contact_id, at=at)
    grant.require(
        Target(
            place.id, Record.VISITOR, person_id=contact.contact.person, contact_id=body.contact_id
        )
    )
    visitor = service.apply(
        grant.db,
        place.id,
        service.Application(
            contact_id=body.contact_id,
            date_of_birth=body.date_of_birth,
            address=body.address,
            country=body.country,
            criminal_record_declared=body.criminal_record_declared,
            criminal_record=body.criminal_record,
            id_document_type=body.id_document_type,
            id_document_number=body.id_document_number,
            timezone=body.timezone,
            supervision=None
            if body.supervision is None
            else choice(Supervision, body.supervision, "supervision"),
            supervising_officer=body.supervising_officer,
            supervising_office=body.supervising_office,
            co_defendant=body.co_defendant,
            accompanying_contact_id=body.accompanying_contact_id,
        ),
        at=at,
        actor=grant.actor,
    )
    return view_of(grant, visitor.id)


@router.get("/v1/visitors/{visitor_id}", response_model=VisitorOut)
def get_visitor(
    visitor_id: VisitorId,
    grant: Annotated[Access, allowed(Action.VISITOR_READ, visitor_target)],
) -> VisitorOut:
    """One visitor record, with its restrictions and what still stands before approval."""
    return view_of(grant, visitor_id)


@router.post("/v1/visitors/{visitor_id}/id-check", response_model=VisitorOut)
def check_id(
    visitor_id: VisitorId,
    body: IdCheckIn,
    grant: Annotated[Access, allowed(Action.VISITOR_DECIDE, visitor_target)],
) -> VisitorOut:
    """Staff saw the visitor's ID document."""
    place = grant.facility
    service.check_id(
        grant.db,
        place.id,
        visitor_id,
        document_type=body.document_type,
        document_number=body.document_number,
        at=moment(body.at, place),
        actor=grant.actor,
    )
    return view_of(grant, visitor_id)


@router.post("/v1/visitors/{visitor_id}/consent", response_model=VisitorOut)
def record_consent(
    visitor_id: VisitorId,
    body: ConsentIn,
    grant: Annotated[Access, allowed(Action.VISITOR_DECIDE, visitor_target)],
) -> VisitorOut:
    """The supervising officer's consent, the first of two keys for a supervised visitor."""
    place = grant.facility
    service.record_consent(
        grant.db,
        place.id,
        visitor_id,
        officer=body.officer,
        note=body.note,
        at=moment(body.at, place),
        actor=grant.actor,
    )
    return view_of(grant, visitor_id)


@router.post("/v1/visitors/{visitor_id}/withdraw", response_model=VisitorOut)
def withdraw_application(
    visitor_id: VisitorId,
    body: WithdrawIn,
    grant: Annotated[Access, allowed(Action.VISITOR_APPLY, visitor_target)],
) -> VisitorOut:
    """The applicant withdraws an application not yet decided."""
    place = grant.facility
    _staff_only_at(grant, body.at)
    service.withdraw(grant.db, place.id, visitor_id, at=moment(body.at, place), actor=grant.actor)
    return view_of(grant, visitor_id)


@router.get("/v1/visit-settings", response_model=VisitSettingsIO)
def get_visit_settings(
    grant: Annotated[Access, allowed(Action.VISIT_READ)],
) -> VisitSettingsIO:
    """The facility's visit settings (the defaults where it set none)."""
    settings = service.get_settings(grant.db, grant.facility.id)
    return VisitSettingsIO(**{n: getattr(settings, n) for n in VisitSettings.__dataclass_fields__})


@router.put("/v1/visit-settings", response_model=VisitSettingsIO)
def set_visit_settings(
    body: VisitSettingsIO,
    grant: Annotated[Access, allowed(Action.VISIT_MANAGE)],
) -> VisitSettingsIO:
    """Set every visit setting at once: adult age, group limits, booking windows
    per kind of booker, reservation minutes, auto-refusal hours, the checks."""
    settings = service.set_settings(
        grant.db,
        grant.facility.id,
        VisitSettings(**body.model_dump()),
        at=datetime.now(UTC),
        actor=grant.actor,
    )
    return VisitSettingsIO(**{n: getattr(settings, n) for n in VisitSettings.__dataclass_fields__})
