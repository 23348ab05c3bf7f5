"""What imposing or lifting a rule would change, before it is saved.

Staff imposing a rule see first whom it reaches: for each person it concerns,
each contact approved for its channel that it selects is decided now, with the
rules in force and with them changed as the rule would change them; each of
those people's upcoming visit bookings on its channel is decided at its start
the same two ways; and the court orders it names in ``overrides`` are listed.

Read only: one transaction that writes nothing. The rule is checked as
``policy.service.impose`` checks it (the same parse, start, id and references),
so a preview that succeeds is a rule the save accepts, and the decisions are
made as ``calls.service.decide_in`` makes them after the save: the same rules
(read the same way, plus or minus this one), the same usage snapshot, the same
engine. tests/integration/test_rule_preview.py holds it to that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from kinline.calls import ledger
from kinline.calls.service import ExplainedDecision
from kinline.db.engine import Database
from kinline.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from kinline.people import repository as people_repository
from kinline.people.model import Facility, Person
from kinline.people.service import require_facility
from kinline.policy import repository as policy_repository
from kinline.policy import service as policy
from kinline.rules.decide import Request, decide
from kinline.rules.model import Authority, Channel, Contact, Kind, Rule
from kinline.rules.parse import RuleError, parse_rule
from kinline.visits import booking_repository
from kinline.visits.slots import SessionKind
from kinline.visits.statuses import VisitStatus


@dataclass(frozen=True, slots=True)
class Outcome:
    """One contact of one person on the rule's channel, decided before and after."""

    person: Person
    contact: Contact
    contact_name: str
    before: ExplainedDecision
    after: ExplainedDecision

    @property
    def changed(self) -> bool:
        return _differs(self.before, self.after)


@dataclass(frozen=True, slots=True)
class BookingOutcome:
    """An upcoming visit booking, decided at its start for one of its visitors."""

    booking_id: int
    person: Person
    contact_id: str
    contact_name: str
    room_id: str
    starts_at: datetime
    status: str
    before: ExplainedDecision
    after: ExplainedDecision

    @property
    def changed(self) -> bool:
        return _differs(self.before, self.after)


@dataclass(frozen=True, slots=True)
class Preview:
    """What a change would do. ``rule``: the rule as it would be saved (imposing:
    starting at ``at`` unless it names its start; lifting: ending at ``at``).
    ``overridden``: the court-order grants the imposed rule overrides (lifting:
    those it stops overriding). ``hidden``: outcomes left out because they
    concern privileged contacts the reader may not see (``visible_to``)."""

    lifting: bool
    at: datetime
    facility: Facility
    rule: Rule
    people: tuple[Person, ...]
    outcomes: tuple[Outcome, ...]
    bookings: tuple[BookingOutcome, ...]
    overridden: tuple[Rule, ...]
    hidden: int = 0

    @property
    def changed(self) -> tuple[Outcome, ...]:
        return tuple(outcome for outcome in self.outcomes if outcome.changed)

    def visible_to(self, privileged: bool) -> Preview:
        """The preview as a reader who does (or does not) see privileged contacts reads it."""
        if privileged:
            return self
        kept = tuple(o for o in self.outcomes if not o.contact.privileged)
        return replace(self, outcomes=kept, hidden=len(self.outcomes) - len(kept))


def preview_impose(
    db: Database, facility_id: str, data: Mapping[str, Any], *, at: datetime
) -> Preview:
    """What ``changes.service.impose_rule(db, facility_id, data, at=at)`` would do."""
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        rule = _new_rule(session, facility, data, at)
        return _preview(session, facility, rule, at, lifting=False)


def preview_lift(db: Database, facility_id: str, rule_id: str, *, at: datetime) -> Preview:
    """What ``changes.service.lift_rule(db, facility_id, rule_id, at=at)`` would do."""
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        row = policy_repository.get_rule_row(session, facility_id, rule_id)
        if row is None:
            raise NotFound(f"no rule {rule_id!r} in {facility_id!r}", field="rule_id")
        rule = policy_repository.rule_from_row(row)
        if rule.ends_at is not None and rule.ends_at <= at:
            raise Conflict(f"rule {rule_id!r} has already ended", field="rule_id")
        return _preview(session, facility, replace(rule, ends_at=at), at, lifting=True)


def _new_rule(session: Session, facility: Facility, data: Mapping[str, Any], at: datetime) -> Rule:
    """The rule as ``policy.service.impose`` would store it, checked the same way."""
    order = policy_repository.next_seq(session, facility.id)
    try:
        rule = parse_rule(data, facility.zone, order)
    except RuleError as error:
        raise InvalidInput(error.message, field=error.field) from None
    if rule.starts_at is None:
        if rule.ends_at is not None and rule.ends_at <= at:
            raise InvalidInput("must be later than the time it is imposed", field="rule.until")
        rule = replace(rule, starts_at=at)
    if policy_repository.get_rule_row(session, facility.id, rule.id) is not None:
        raise AlreadyExists(f"a rule {rule.id!r} already exists", field="rule.id")
    if (
        rule.person is not None
        and people_repository.get_person(session, facility.id, rule.person) is None
    ):
        raise InvalidInput(f"no person {rule.person!r}", field="rule.person")
    named = set(rule.contacts.exclude) | set(rule.contacts.ids or ())
    for contact_id in sorted(named):
        if not people_repository.contact_exists(session, facility.id, contact_id):
            raise InvalidInput(f"no contact {contact_id!r}", field="rule.contacts")
    return rule


def _preview(
    session: Session, facility: Facility, rule: Rule, at: datetime, *, lifting: bool
) -> Preview:
    people = tuple(policy.concerned(session, facility.id, rule))
    outcomes: list[Outcome] = []
    bookings: list[BookingOutcome] = []
    for person in people:
        names: dict[str, str] = {}
        contacts: dict[str, Contact] = {}
        for contact, details, _phones in people_repository.list_contacts(
            session, facility.id, at, person.id
        ):
            names[contact.id] = details.name
            contacts[contact.id] = contact
        for contact in contacts.values():
            if rule.channel in contact.approved and rule.contacts.matches(contact):
                before, after = _both(session, facility, person.id, contact, rule, at, lifting)
                outcomes.append(Outcome(person, contact, names[contact.id], before, after))
        bookings.extend(
            _bookings(session, facility, person, contacts, names, rule, at, lifting=lifting)
        )
    in_force = policy_repository.rules_for(session, facility.id, active_at=at)
    overridden = tuple(
        r
        for r in in_force
        if r.id in rule.overrides and r.authority is Authority.COURT_ORDER and r.kind is Kind.GRANT
    )
    return Preview(
        lifting, at, facility, rule, people, tuple(outcomes), tuple(bookings), overridden
    )


def _bookings(
    session: Session,
    facility: Facility,
    person: Person,
    contacts: Mapping[str, Contact],
    names: Mapping[str, str],
    rule: Rule,
    at: datetime,
    *,
    lifting: bool,
) -> list[BookingOutcome]:
    """The person's upcoming bookings on the rule's channel, each visitor it
    selects decided at the booking's start, before and after. Both sides read
    the same usage, which holds the booking itself (a visit counts from when it
    is booked), so what differs is the rule's doing."""
    found: list[BookingOutcome] = []
    for row, slot in booking_repository.list_bookings(
        session, facility.id, person_id=person.id, first=None, last=None, status=None
    ):
        status = VisitStatus(row.status)
        if not status.upcoming or slot.starts_at < at:
            continue
        if SessionKind(slot.kind).channel is not rule.channel:
            continue
        for contact_id in booking_repository.booking_visitors(session, facility.id, row.id):
            contact = contacts.get(contact_id)
            if contact is None or not rule.contacts.matches(contact):
                continue
            before, after = _both(
                session, facility, person.id, contact, rule, slot.starts_at, lifting
            )
            found.append(
                BookingOutcome(
                    row.id,
                    person,
                    contact_id,
                    names.get(contact_id, contact_id),
                    slot.room_id,
                    slot.starts_at,
                    str(status),
                    before,
                    after,
                )
            )
    return found


def _both(
    session: Session,
    facility: Facility,
    person_id: str,
    contact: Contact,
    rule: Rule,
    at: datetime,
    lifting: bool,
) -> tuple[ExplainedDecision, ExplainedDecision]:
    """The decision at ``at`` with the rules in force, and with the change made."""
    current = policy_repository.rules_for(
        session, facility.id, person_id=person_id, channel=rule.channel, active_at=at
    )
    if lifting:  # lifted at the preview's moment: in force at no moment from then on
        changed = [r for r in current if r.id != rule.id]
    else:
        changed = [*current, rule] if rule.concerns(person_id) and rule.is_active(at) else current
        changed.sort(key=lambda r: r.order)
    return (
        _decided(session, facility, person_id, contact, rule.channel, at, current),
        _decided(session, facility, person_id, contact, rule.channel, at, changed),
    )


def _decided(
    session: Session,
    facility: Facility,
    person_id: str,
    contact: Contact,
    channel: Channel,
    at: datetime,
    rules: Sequence[Rule],
) -> ExplainedDecision:
    """As ``calls.service.decide_in`` decides, against ``rules``."""
    usage = ledger.load_usage(session, facility.id, person_id, rules, at, facility.zone)
    decision = decide(Request(person_id, contact, channel, at), rules, usage, facility.zone)
    return ExplainedDecision(
        facility_id=facility.id,
        person_id=person_id,
        contact_id=contact.id,
        channel=channel,
        at=at,
        decision=decision,
        rules={r.id: r for r in rules},
        usage=usage,
        contact=contact,
    )


def _differs(before: ExplainedDecision, after: ExplainedDecision) -> bool:
    """Whether the person would be told something else: allowed or not, why,
    under which rules, for how long, how monitored."""
    one, two = before.decision, after.decision
    return (
        one.allowed,
        one.reason,
        one.rules,
        one.charged_to,
        one.max_minutes,
        one.monitoring,
    ) != (
        two.allowed,
        two.reason,
        two.rules,
        two.charged_to,
        two.max_minutes,
        two.monitoring,
    )
