"""Imposing and lifting rules, and reading the rules in force.

A rule is never edited: lifting sets its end. ``impose`` and ``lift`` work
inside the caller's transaction and write the rule and its audit event;
``kinline.changes.service`` runs them beside what must commit with them (a
notice to every person the rule concerns and, where it is adverse to one
person, the record the retaliation report weighs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from kinline.audit.service import facility_chain, person_chain, record_event
from kinline.db.engine import Database
from kinline.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from kinline.people import repository as people_repository
from kinline.people.model import Facility, Person
from kinline.people.service import require_facility, require_person
from kinline.policy import repository
from kinline.rules.model import Channel, Rule
from kinline.rules.parse import RuleError, parse_rule, rule_definition


@dataclass(frozen=True, slots=True)
class RuleChange:
    """A rule imposed or lifted, and the facility it is in force in."""

    facility: Facility
    rule: Rule


def impose(
    session: Session,
    facility_id: str,
    data: Mapping[str, Any],
    *,
    at: datetime,
    actor: str,
    reason: str | None = None,
    in_force_at_start: bool = False,
) -> RuleChange:
    """Impose a rule given as plain data (SPEC 3), with its audit event, in the
    caller's transaction. Without ``from`` it starts at ``at``;
    ``in_force_at_start`` loads a rule that was already in force (no start)."""
    facility = require_facility(session, facility_id, lock=True)
    order = repository.next_seq(session, facility_id)
    try:
        rule = parse_rule(data, facility.zone, order)
    except RuleError as error:
        raise InvalidInput(error.message, field=error.field) from None
    if rule.starts_at is None and not in_force_at_start:
        if rule.ends_at is not None and rule.ends_at <= at:
            raise InvalidInput("must be later than the time it is imposed", field="rule.until")
        rule = _starting(rule, at)
    _check_references(session, facility, rule)
    repository.add_rule(
        session, facility_id, rule, imposed_at=None if in_force_at_start else at, actor=actor
    )
    record_event(
        session,
        facility_id=facility_id,
        chain=_chain(facility_id, rule),
        actor=actor,
        tag="policy:rule:imposed",
        payload={
            "rule": rule_definition(rule),
            "starts_at": rule.starts_at,
            "ends_at": rule.ends_at,
            "in_force_at_start": in_force_at_start,
            "reason": reason,
        },
        at=at,
    )
    return RuleChange(facility, rule)


def lift(
    session: Session, facility_id: str, rule_id: str, *, reason: str, at: datetime, actor: str
) -> RuleChange:
    """End a rule at ``at``, with its audit event, in the caller's transaction;
    a reason is required (the people it concerned are told it)."""
    if not reason or not reason.strip():
        raise InvalidInput("a reason is required to lift a rule", field="reason")
    facility = require_facility(session, facility_id, lock=True)
    row = repository.get_rule_row(session, facility_id, rule_id)
    if row is None:
        raise NotFound(f"no rule {rule_id!r} in {facility_id!r}", field="rule_id")
    rule = repository.rule_from_row(row)
    if rule.ends_at is not None and rule.ends_at <= at:
        raise Conflict(f"rule {rule_id!r} has already ended", field="rule_id")
    row.lifted_at = at
    row.lifted_by = actor
    row.lift_reason = reason
    record_event(
        session,
        facility_id=facility_id,
        chain=_chain(facility_id, rule),
        actor=actor,
        tag="policy:rule:lifted",
        payload={"rule_id": rule.id, "reason": reason, "lifted_at": at},
        at=at,
    )
    return RuleChange(facility, repository.rule_from_row(row))


def concerned(session: Session, facility_id: str, rule: Rule) -> list[Person]:
    """The people a rule concerns: its person, or everyone in the facility."""
    if rule.person is None:
        return people_repository.list_people(session, facility_id)
    return [require_person(session, facility_id, rule.person)]


def rules_in_force(
    db: Database,
    facility_id: str,
    *,
    at: datetime,
    person_id: str | None = None,
    channel: Channel | None = None,
) -> list[Rule]:
    with db.transaction() as session:
        require_facility(session, facility_id)
        if person_id is not None:
            require_person(session, facility_id, person_id)
        return repository.rules_for(
            session, facility_id, person_id=person_id, channel=channel, active_at=at
        )


def get_rule(db: Database, facility_id: str, rule_id: str) -> Rule:
    with db.transaction() as session:
        row = repository.get_rule_row(session, facility_id, rule_id)
        if row is None:
            raise NotFound(f"no rule {rule_id!r} in {facility_id!r}", field="rule_id")
        return repository.rule_from_row(row)


def _starting(rule: Rule, at: datetime) -> Rule:
    return replace(rule, starts_at=at)


def _chain(facility_id: str, rule: Rule) -> str:
    if rule.person is None:
        return facility_chain(facility_id)
    return person_chain(facility_id, rule.person)


def _check_references(session: Session, facility: Facility, rule: Rule) -> None:
    if repository.get_rule_row(session, facility.id, rule.id) is not None:
        raise AlreadyExists(f"a rule {rule.id!r} already exists", field="rule.id")
    if rule.person is not None:
        person = people_repository.get_person(session, facility.id, rule.person)
        if person is None:
            raise InvalidInput(f"no person {rule.person!r}", field="rule.person")
    named = set(rule.contacts.exclude) | set(rule.contacts.ids or ())
    for contact_id in sorted(named):
        if not people_repository.contact_exists(session, facility.id, contact_id):
            raise InvalidInput(f"no contact {contact_id!r}", field="rule.contacts")
