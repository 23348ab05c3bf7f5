"""Routes for the rules in force (imposing and lifting one: ``kinline.changes.api``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from kinline import access
from kinline.access import Access, Params, allowed
from kinline.db.engine import Database
from kinline.http import moment
from kinline.identity.model import Action, Record, Target
from kinline.people.model import Facility, parse_channel
from kinline.policy import service
from kinline.policy.schemas import RuleOut
from kinline.rules.model import Rule
from kinline.rules.parse import rule_definition
from kinline.rules.periods import local

router = APIRouter(prefix="/v1", tags=["rules"])


def rule_target(db: Database, place: Facility, params: Params) -> Target:
    """The rule named in the path: whose it is and which court case made it."""
    return _target(service.get_rule(db, place.id, params["rule_id"]), place)


def rule_out(rule: Rule, place: Facility) -> RuleOut:
    definition = rule_definition(rule)
    return RuleOut(
        id=rule.id,
        authority=str(rule.authority),
        kind=str(rule.kind),
        channel=str(rule.channel),
        person=definition["person"],
        contacts=definition["contacts"],
        text=rule.text,
        texts=dict(rule.texts),
        starts_at=None if rule.starts_at is None else local(rule.starts_at, place.zone).isoformat(),
        ends_at=None if rule.ends_at is None else local(rule.ends_at, place.zone).isoformat(),
        definition=definition,
    )


@router.get("/rules", response_model=list[RuleOut])
def rules_in_force(
    grant: Annotated[Access, allowed(Action.RULE_READ, access.person)],
    person_id: str | None = None,
    channel: str | None = None,
    at: str | None = None,
) -> list[RuleOut]:
    """Rules in force now (or at ``at``), for one person (theirs and `all`) or everyone;
    of those, the ones the caller may see."""
    place = grant.facility
    rules = service.rules_in_force(
        grant.db,
        place.id,
        at=moment(at, place),
        person_id=person_id,
        channel=None if channel is None else parse_channel(channel),
    )
    return [rule_out(rule, place) for rule in rules if grant.sees(_target(rule, place))]


def _target(rule: Rule, place: Facility) -> Target:
    return Target(place.id, Record.RULE, person_id=rule.person, case_number=rule.case_number)
