"""Routes for decisions."""

from __future__ import annotations

from fastapi import APIRouter

from kinline.calls.schemas import DecisionOut, RuleExplained
from kinline.calls.service import ExplainedDecision, decide_contact
from kinline.http import DbDep, FacilityDep, Reader, moment
from kinline.people.model import Facility
from kinline.rules.periods import local

router = APIRouter(prefix="/v1", tags=["decisions"])


def decision_out(explained: ExplainedDecision, place: Facility) -> DecisionOut:
    decision = explained.decision
    return DecisionOut(
        person_id=explained.person_id,
        contact_id=explained.contact_id,
        channel=str(explained.channel),
        at=local(explained.at, place.zone).isoformat(),
        allowed=decision.allowed,
        reason=None if decision.reason is None else str(decision.reason),
        rules=list(decision.rules),
        charged_to=decision.charged_to,
        max_minutes=decision.max_minutes,
        monitoring=None if decision.monitoring is None else str(decision.monitoring),
        interpreter=decision.interpreter,
        conflicts=list(decision.conflicts),
        explanation=[
            RuleExplained(
                id=rule.id,
                authority=str(rule.authority),
                kind=str(rule.kind),
                text=rule.text,
                role="conflict" if rule.id in decision.conflicts else "responsible",
            )
            for rule in explained.explained()
        ],
    )


@router.get("/decisions", response_model=DecisionOut)
def decide(
    person_id: str,
    contact_id: str,
    db: DbDep,
    place: FacilityDep,
    _who: Reader,
    channel: str = "phone",
    at: str | None = None,
) -> DecisionOut:
    """Whether ``person_id`` may contact ``contact_id`` now (or at ``at``), and why."""
    explained = decide_contact(db, place.id, person_id, contact_id, channel, at=moment(at, place))
    return decision_out(explained, place)
