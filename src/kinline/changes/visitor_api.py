"""Routes for decisions about visitors that write notices (``changes.visitors``):
approving or refusing an application, restricting a visitor and lifting it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter

from kinline.access import Access, allowed
from kinline.changes import visitors as changes
from kinline.http import moment
from kinline.identity.model import Action
from kinline.rules.model import Channel
from kinline.visits import visitors as service
from kinline.visits.api import RestrictionId, VisitorId, restriction_out, view_of, visitor_target
from kinline.visits.model import RestrictionKind, Verdict, choice
from kinline.visits.schemas import (
    DecisionIn,
    DecisionOut,
    LiftIn,
    RestrictionDecisionOut,
    RestrictionIn,
)

router = APIRouter(tags=["visitors"])


@router.post("/v1/visitors/{visitor_id}/decision", response_model=DecisionOut)
def decide_visitor(
    visitor_id: VisitorId,
    body: DecisionIn,
    grant: Annotated[Access, allowed(Action.VISITOR_DECIDE, visitor_target)],
) -> DecisionOut:
    """Approve or refuse, with a reason told to the person and the applicant. A
    former co-defendant is decided by the warden (403 for anyone else)."""
    place = grant.facility
    decision = changes.decide_visitor(
        grant.db,
        place.id,
        visitor_id,
        verdict=choice(Verdict, body.verdict, "verdict"),
        reason=body.reason,
        channels=[choice(Channel, c, f"channels[{i}]") for i, c in enumerate(body.channels)],
        warden=grant.may(Action.VISITOR_FLAGGED),
        at=moment(body.at, place),
        actor=grant.actor,
    )
    return DecisionOut(
        visitor=view_of(grant, visitor_id), notice_id=decision.notice_id, emailed=decision.emailed
    )


@router.post(
    "/v1/visitors/{visitor_id}/restrictions",
    response_model=RestrictionDecisionOut,
    status_code=201,
)
def restrict_visitor(
    visitor_id: VisitorId,
    body: RestrictionIn,
    grant: Annotated[Access, allowed(Action.VISITOR_DECIDE, visitor_target)],
) -> RestrictionDecisionOut:
    """Ban a visitor or hold them to closed or non-contact visits, with dates and a reason."""
    place = grant.facility
    decision = changes.restrict_visitor(
        grant.db,
        place.id,
        visitor_id,
        kind=choice(RestrictionKind, body.kind, "kind"),
        reason=body.reason,
        starts_on=body.starts_on,
        until=body.until,
        at=moment(body.at, place),
        actor=grant.actor,
    )
    return RestrictionDecisionOut(
        restriction=restriction_out(decision.restriction, place, "en"),
        notice_id=decision.notice_id,
        emailed=decision.emailed,
    )


@router.post(
    "/v1/visitors/{visitor_id}/restrictions/{restriction_id}/lift",
    response_model=RestrictionDecisionOut,
)
def lift_restriction(
    visitor_id: VisitorId,
    restriction_id: RestrictionId,
    body: LiftIn,
    grant: Annotated[Access, allowed(Action.VISITOR_DECIDE, visitor_target)],
) -> RestrictionDecisionOut:
    """Lift a visitor's restriction before its end, with a reason."""
    place = grant.facility
    view = service.get_visitor(grant.db, place.id, visitor_id, at=datetime.now(UTC))
    if restriction_id not in {r.id for r in view.restrictions}:
        raise service.no_restriction(place.id, restriction_id)
    decision = changes.lift_visitor_restriction(
        grant.db,
        place.id,
        restriction_id,
        reason=body.reason,
        at=moment(body.at, place),
        actor=grant.actor,
    )
    return RestrictionDecisionOut(
        restriction=restriction_out(decision.restriction, place, "en"),
        notice_id=decision.notice_id,
        emailed=decision.emailed,
    )
