"""What a court order entitled, period by period, against what was delivered,
and why each shortfall happened: a read for courts, counsel and staff.

For a court-order grant and a range of months, each period of the order's
quota (SPEC 7: ``entitled``, ``delivered``, ``shortfall`` exactly as
``courts.service.compliance_report`` counts them) with the causes found in the
record:

* refused attempts: the person's sessions on the order's channel, with the
  contacts the order names, that the engine refused (status ``denied``), each
  with the decision as stored and, where the contact can still be read, the
  rules and usage it was decided against (``calls.service.decide_in`` at that
  moment), so a page can explain it in the reader's language;
* overrides: each deny or limit on the order's channel concerning the person,
  that applies over the order (it names the order in ``overrides``, or ranks
  as high) and could match one of its contacts, with the days of the period it
  was in force, who imposed it and why, and who lifted it;
* holds released or expired: calls allowed but never connected;
* visits cancelled (for an order on ``visit`` or ``video``), with why and by whom.

Calls imported from a vendor's export that the engine would have refused
(``calls.importer``: completed, ``source`` "import", charged to nothing) are
part of ``delivered``, as SPEC 7 counts every completed session, and are also
counted in ``outside_policy``: the call happened, but not as the rules allow.

Also, for a timeline: every rule on the channel concerning the person in the
range (imposed and lifted), and the person's protected activities.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from operator import itemgetter

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from kinline.audit.checkpoint import make_checkpoint
from kinline.audit.service import facility_chain, record_event
from kinline.calls.model import decision_from_json
from kinline.calls.service import ExplainedDecision, decide_in
from kinline.courts import report_repository, repository
from kinline.courts.gc_pause import collector_paused
from kinline.courts.orders import CourtOrder, order_in
from kinline.courts.report import (
    ComplianceReport,
    Evidence,
    Mark,
    Requirement,
    RequirementPeriod,
    Signature,
    StatusRule,
    StatusRuleError,
    reason_words,
    requirement_period,
)
from kinline.courts.report_repository import SessionFacts
from kinline.db.engine import Database
from kinline.db.tables import RuleRow
from kinline.errors import InvalidInput, KinlineError, NotFound
from kinline.people import repository as people_repository
from kinline.people.model import Facility
from kinline.people.service import require_facility
from kinline.policy import repository as policy_repository
from kinline.rules.compliance import (
    ComplianceError,
    DeliveredSession,
    RangeError,
    compliance,
    days_in_force,
    periods_between,
)
from kinline.rules.model import Channel, Contact, Kind, Rule
from kinline.rules.periods import PeriodSpan
from kinline.rules.retaliation import ProtectedActivity

# The visiting sessions each visit channel is delivered in.
SLOT_KINDS: dict[Channel, tuple[str, ...]] = {
    Channel.VISIT: ("contact", "non_contact"),
    Channel.VIDEO: ("video",),
}


@dataclass(frozen=True, slots=True)
class Delivered:
    """A completed session the order counts. ``outside_policy``: imported, and
    the engine would have refused it (``reason`` says why)."""

    at: datetime
    contact_id: str
    contact_name: str
    minutes: int
    charged_to: str | None
    outside_policy: bool
    reason: str | None


@dataclass(frozen=True, slots=True)
class Refusal:
    """An attempt the engine refused. ``decided``: the stored decision with the
    rules and usage it was made against, for ``kinline.explain``; None when it
    can no longer be rebuilt (the contact is gone)."""

    at: datetime
    contact_id: str
    contact_name: str
    reason: str | None
    rule_ids: tuple[str, ...]
    decided: ExplainedDecision | None


@dataclass(frozen=True, slots=True)
class RuleSpan:
    """A rule as imposed and lifted: who did each and why."""

    rule: Rule
    imposed_at: datetime | None
    imposed_by: str
    lifted_at: datetime | None
    lifted_by: str | None
    lift_reason: str | None


@dataclass(frozen=True, slots=True)
class Override:
    """A rule that stood over the order on ``days`` days of a period."""

    span: RuleSpan
    first_day: date
    last_day: date

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1


@dataclass(frozen=True, slots=True)
class Lapsed:
    """A call allowed and held that never connected: released or expired."""

    at: datetime
    contact_id: str
    contact_name: str
    status: str
    settled_by: str | None


@dataclass(frozen=True, slots=True)
class CancelledVisit:
    at: datetime
    booking_id: int
    visitors: tuple[str, ...]
    reason: str | None
    cancelled_at: datetime | None
    cancelled_by: str | None


@dataclass(frozen=True, slots=True)
class PeriodReport:
    key: str
    start: datetime
    end: datetime
    entitled: int
    delivered: int
    outside_policy: int
    shortfall: int
    sessions: tuple[Delivered, ...]
    refusals: tuple[Refusal, ...]
    overrides: tuple[Override, ...]
    lapsed: tuple[Lapsed, ...]
    cancelled: tuple[CancelledVisit, ...]

    @property
    def within_policy(self) -> int:
        return self.delivered - self.outside_policy


@dataclass(frozen=True, slots=True)
class OrderCompliance:
    facility: Facility
    order: RuleSpan
    start: datetime
    end: datetime
    periods: tuple[PeriodReport, ...]
    rules: tuple[RuleSpan, ...]  # every rule on the channel concerning the person
    activities: tuple[ProtectedActivity, ...]

    @property
    def entitled(self) -> int:
        return sum(p.entitled for p in self.periods)

    @property
    def delivered(self) -> int:
        return sum(p.delivered for p in self.periods)

    @property
    def shortfall(self) -> int:
        return sum(p.shortfall for p in self.periods)


def court_orders(db: Database, facility_id: str) -> list[RuleSpan]:
    """Every court-order grant of the facility, lifted or not, in listing order."""
    with db.transaction() as session:
        require_facility(session, facility_id)
        return [_span(row) for row in repository.court_order_rows(session, facility_id)]


def order_compliance(
    db: Database,
    facility_id: str,
    order_id: str,
    first: str,
    last: str,
    *,
    at: datetime,
    explained: bool = True,
    calls: bool = True,
) -> OrderCompliance:
    """The order's periods from the month ``first`` to the month ``last``
    (``YYYY-MM``), each with what it entitled, what was delivered and the
    causes of any shortfall. NotFound for no such rule; InvalidInput for a
    rule that is not a court order with a count per calendar period (field
    ``rule_id``), or a range that is not one (``from`` or ``to``). Contacts
    are named as they are at ``at``. ``explained`` False: refusals carry
    their stored reason and rules but not the rules and usage they were
    decided against (``Refusal.decided`` None), which a report in figures
    does not need and which costs a decision per refusal. ``calls`` False:
    the completed sessions are counted by the database, period by period, and
    ``PeriodReport.sessions`` holds only the calls imported outside policy
    (evidence); a report without a timeline needs no more, and over years of
    calls reading each one is most of its cost."""
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        return _order_compliance(
            session, facility, order_id, first, last, at=at, explained=explained, calls=calls
        )


def _order_compliance(
    session: Session,
    facility: Facility,
    order_id: str,
    first: str,
    last: str,
    *,
    at: datetime,
    explained: bool,
    calls: bool,
    activities: bool = True,
) -> OrderCompliance:
    """``order_compliance`` in the caller's transaction. ``activities`` False:
    the person's protected activities (for a timeline) are not read."""
    order, spans = _order_periods(session, facility, order_id, first, last)
    rule = order.rule
    start, end = spans[0].start, spans[-1].end
    reader = _Reader(session, facility, rule, at, explained)
    channel = str(rule.channel)
    counted: list[int] | None = None
    if calls:
        rows = report_repository.session_facts_between(
            session, facility.id, rule.person, channel, start, end, governed_by=explained
        )
    else:
        # One pass over the sessions: the completed ones counted per period by
        # the database, the evidence read row by row.
        found = _order_sessions(session, reader, spans)
        rows = found.evidence
        counted = _counted(reader, found.counts, len(spans))
    starts = [r.started_at for r in rows]
    concerning, standing = _rules_around(session, reader, start, end)
    periods = tuple(
        _period(
            session,
            reader,
            span,
            rows[bisect_left(starts, span.start) : bisect_left(starts, span.end)],
            standing,
            None if counted is None else counted[index],
        )
        for index, span in enumerate(spans)
    )
    read = repository.activities(session, facility.id) if activities else ()
    found_activities = tuple(
        a for a in read if (rule.person is None or a.person == rule.person) and start <= a.at < end
    )
    return OrderCompliance(facility, order, start, end, periods, concerning, found_activities)


def _order_periods(
    session: Session, facility: Facility, order_id: str, first: str, last: str
) -> tuple[RuleSpan, list[PeriodSpan]]:
    """The court-order grant and its periods from the month ``first`` to
    ``last``; errors as ``order_compliance``'s."""
    row = policy_repository.get_rule_row(session, facility.id, order_id)
    if row is None:
        raise NotFound(f"no order {order_id!r} in {facility.id!r}", field="rule_id")
    order = _span(row)
    rule = order.rule
    if rule.kind is not Kind.GRANT or rule.authority != "court_order":
        raise InvalidInput(f"{order_id} is not a court-order grant", field="rule_id")
    try:
        spans = periods_between(rule, first, last, facility.zone)
    except RangeError as error:
        raise InvalidInput(str(error), field=error.field) from None
    except ComplianceError as error:
        raise InvalidInput(str(error), field="rule_id") from None
    return order, spans


def _order_sessions(
    session: Session, reader: _Reader, spans: list[PeriodSpan]
) -> report_repository.OrderSessions:
    """The order's completed sessions counted per period, and its evidence,
    in one pass (the order's person's contacts read first)."""
    order = reader.order
    reader.read_contacts()
    return report_repository.order_sessions(
        session,
        reader.facility.id,
        order.person,
        str(order.channel),
        None if order.contacts.ids is None else sorted(order.contacts.ids),
        [(span.start, span.end) for span in spans],
    )


def _counted(
    reader: _Reader, counts: list[report_repository.PeriodCount], periods: int
) -> list[int]:
    """Per period, the completed sessions the order counts, as
    ``rules.compliance.compliance`` counts them (the person's, with a contact of
    theirs the order names), from the database's counts per person and contact."""
    counted = [0] * periods
    for count in counts:
        if reader.ordered(count.person_id, count.contact_id):
            counted[count.period] += count.completed
    return counted


def _rules_around(
    session: Session, reader: _Reader, start: datetime, end: datetime
) -> tuple[tuple[RuleSpan, ...], list[RuleSpan]]:
    """Every other rule on the order's channel concerning its person in force
    in ``[start, end)``, and of those, the ones that stand over the order."""
    rows = repository.rule_rows_between(
        session, reader.facility.id, str(reader.order.channel), start, end
    )
    return _concerning(reader, [_span(r) for r in rows])


def _concerning(
    reader: _Reader, ruled: list[RuleSpan]
) -> tuple[tuple[RuleSpan, ...], list[RuleSpan]]:
    """Of the rules ``ruled`` on the order's channel, the others concerning its
    person, and of those, the ones that stand over the order."""
    order = reader.order
    concerning = tuple(
        s for s in ruled if s.rule.id != order.id and _concerns_order_person(s.rule, order)
    )
    return concerning, [s for s in concerning if _stands_over(s.rule, order, reader)]


def _span_of(facts: report_repository.RuleFacts) -> RuleSpan:
    """A rule read as plain values, as ``_span`` makes it of its row."""
    row = RuleRow(
        seq=facts.seq,
        definition=facts.definition,
        starts_at=facts.starts_at,
        ends_at=facts.ends_at,
        lifted_at=facts.lifted_at,
    )
    return RuleSpan(
        rule=policy_repository.rule_from_row(row),
        imposed_at=facts.imposed_at,
        imposed_by=facts.imposed_by,
        lifted_at=facts.lifted_at,
        lifted_by=facts.lifted_by,
        lift_reason=facts.lift_reason,
    )


def _span(row: RuleRow) -> RuleSpan:
    return RuleSpan(
        rule=policy_repository.rule_from_row(row),
        imposed_at=row.imposed_at,
        imposed_by=row.imposed_by,
        lifted_at=row.lifted_at,
        lifted_by=row.lifted_by,
        lift_reason=row.lift_reason,
    )


def _concerns_order_person(rule: Rule, order: Rule) -> bool:
    return order.person is None or rule.concerns(order.person)


def _stands_over(rule: Rule, order: Rule, reader: _Reader) -> bool:
    """A deny or limit that applies over the order and may match its contacts."""
    if rule.kind not in (Kind.DENY, Kind.LIMIT) or not rule.applies_to(order):
        return False
    named = order.contacts.ids
    if named is None:
        return True
    return any(
        (contact := reader.contact(contact_id)) is not None and rule.contacts.matches(contact)
        for contact_id in sorted(named)
    )


class _Reader:
    """Contacts and their names, read once per report."""

    def __init__(
        self, session: Session, facility: Facility, order: Rule, at: datetime, explained: bool
    ) -> None:
        self.session = session
        self.explained = explained
        self.at = at
        self.facility = facility
        self.order = order
        self._contacts: dict[str, Contact | None] = {}
        self._names: dict[str, str] | None = None
        self._ordered: dict[tuple[str, str], bool] = {}
        self._everyone = False  # every contact of the facility is in _contacts

    def read_contacts(self) -> None:
        """The contacts of the order's person (of everyone, for an order that
        names no person) with their names, by one statement, rather than one
        by one as they are asked for."""
        self.know_contacts(
            report_repository.contacts_of(
                self.session, self.facility.id, self.order.person, self.at
            )
        )

    def know_contacts(self, contacts: list[tuple[Contact, str]]) -> None:
        """``contacts``: every contact of the order's person (of everyone, for
        an order that names no person) with its name, read by the caller."""
        self._names = {}
        for contact, name in contacts:
            self._contacts[contact.id] = contact
            self._names[contact.id] = name
        self._everyone = self.order.person is None

    def contact(self, contact_id: str) -> Contact | None:
        """The contact (who, relationship, privilege: what a selector reads)."""
        if contact_id not in self._contacts:
            self._contacts[contact_id] = (
                None
                if self._everyone
                else people_repository.get_contact(
                    self.session, self.facility.id, contact_id, self.at
                )
            )
        return self._contacts[contact_id]

    def name(self, contact_id: str) -> str:
        if self._names is None:
            self._names = {}
            for contact, details, _phones in people_repository.list_contacts(
                self.session, self.facility.id, self.at, self.order.person
            ):
                self._names[contact.id] = details.name
        return self._names.get(contact_id, contact_id)

    def ordered(self, person_id: str, contact_id: str) -> bool:
        """Whether a session with this contact is one the order is about
        (asked once per person and contact: a report asks it of every row)."""
        key = (person_id, contact_id)
        found = self._ordered.get(key)
        if found is None:
            contact = self.contact(contact_id)
            found = self._ordered[key] = (
                contact is not None
                and contact.person == person_id
                and self.order.concerns(person_id)
                and self.order.contacts.matches(contact)
            )
        return found


def _period(
    session: Session,
    reader: _Reader,
    span: PeriodSpan,
    mine: list[SessionFacts],
    standing: list[RuleSpan],
    delivered: int | None = None,
) -> PeriodReport:
    """``mine``: the sessions started in the period, in time order.
    ``delivered``: the completed sessions the order counts, when counted by the
    database (``mine`` then holds only the evidence)."""
    order = reader.order
    if delivered is None:
        completed = [r for r in mine if r.status == "completed"]
        delivered_sessions = [
            DeliveredSession(r.person_id, contact, r.channel, r.started_at)
            for r in completed
            if (contact := reader.contact(r.contact_id)) is not None
        ]
        counted = compliance(order, span, delivered_sessions)
    else:
        counted = compliance(order, span, ())
        counted = replace(
            counted,
            delivered=delivered,
            shortfall=max(0, counted.entitled - delivered),
        )
    # One pass over the period's rows, each kind kept in time order.
    sessions: list[Delivered] = []
    refusals: list[Refusal] = []
    lapsed: list[Lapsed] = []
    ordered, name = reader.ordered, reader.name
    for r in mine:
        if not ordered(r.person_id, r.contact_id):
            continue
        status = r.status
        if status == "completed":
            sessions.append(
                Delivered(
                    at=r.started_at,
                    contact_id=r.contact_id,
                    contact_name=name(r.contact_id),
                    minutes=r.minutes,
                    charged_to=r.charged_to,
                    outside_policy=r.source == "import" and r.charged_to is None,
                    reason=r.reason,
                )
            )
        elif status == "denied":
            refusals.append(_refusal(session, reader, r))
        elif status in ("released", "expired"):
            lapsed.append(
                Lapsed(r.started_at, r.contact_id, name(r.contact_id), status, r.settled_by)
            )
    overrides = tuple(
        Override(s, *days)
        for s in standing
        if (days := days_in_force(s.rule, span, reader.facility.zone)) is not None
    )
    return PeriodReport(
        key=span.key,
        start=span.start,
        end=span.end,
        entitled=counted.entitled,
        delivered=counted.delivered,
        outside_policy=sum(1 for s in sessions if s.outside_policy),
        shortfall=counted.shortfall,
        sessions=tuple(sessions),
        refusals=tuple(refusals),
        overrides=overrides,
        lapsed=tuple(lapsed),
        cancelled=_cancelled(session, reader, span),
    )


def _refusal(session: Session, reader: _Reader, row: SessionFacts) -> Refusal:
    decided: ExplainedDecision | None = None
    if not reader.explained:
        # Only the rules named: a report may list a thousand refusals, and the
        # whole decision is rebuilt only to be explained.
        return Refusal(
            at=row.started_at,
            contact_id=row.contact_id,
            contact_name=reader.name(row.contact_id),
            reason=row.reason,
            rule_ids=_named_rules(row),
            decided=None,
        )
    stored = decision_from_json(row.decision or {}, row.governed_by or ())
    try:
        decided = decide_in(
            session,
            reader.facility,
            row.person_id,
            row.contact_id,
            reader.order.channel,
            row.started_at,
        )
    except KinlineError:
        decided = None
    if decided is not None:
        decided = replace(decided, decision=stored)
    return Refusal(
        at=row.started_at,
        contact_id=row.contact_id,
        contact_name=reader.name(row.contact_id),
        reason=row.reason,
        rule_ids=stored.rules,
        decided=decided,
    )


def _named_rules(row: SessionFacts) -> tuple[str, ...]:
    """The rules a refusal's stored decision names."""
    if row.rule_ids is not None:
        return row.rule_ids
    named = (row.decision or {}).get("rules")
    return tuple(map(str, named)) if isinstance(named, list) else ()


def _cancelled(session: Session, reader: _Reader, span: PeriodSpan) -> tuple[CancelledVisit, ...]:
    kinds = SLOT_KINDS.get(reader.order.channel)
    if kinds is None:
        return ()
    found = repository.cancelled_visits(
        session, reader.facility.id, reader.order.person, kinds, span.start, span.end
    )
    visitors = repository.visitors_of(session, reader.facility.id, [b.id for b, _ in found])
    return tuple(
        CancelledVisit(
            at=slot.starts_at,
            booking_id=booking.id,
            visitors=tuple(reader.name(c) for c in visitors.get(booking.id, [])),
            reason=booking.cancel_reason,
            cancelled_at=booking.cancelled_at,
            cancelled_by=booking.cancelled_by,
        )
        for booking, slot in found
        if any(reader.ordered(booking.person_id, c) for c in visitors.get(booking.id, []))
    )


# --- the report in the monitors' form (courts.report) ----------------------------


def compliance_settings(db: Database, facility_id: str) -> StatusRule:
    """The facility's rule for a period's status (the defaults where it set none)."""
    with db.transaction() as session:
        require_facility(session, facility_id)
        stored = report_repository.status_rule(session, facility_id)
    return StatusRule() if stored is None else StatusRule(*stored)


def configure_compliance_settings(
    db: Database, facility_id: str, rule: StatusRule, *, at: datetime, actor: str
) -> StatusRule:
    """Set the facility's status rule, audited on its chain; InvalidInput naming
    the setting that is not one."""
    try:
        rule.check()
    except StatusRuleError as error:
        raise InvalidInput(str(error), field=error.field) from None
    with db.transaction() as session:
        require_facility(session, facility_id, lock=True)
        report_repository.store_status_rule(
            session,
            facility_id,
            rule.compliant_percent,
            rule.partial_percent,
            at=at,
            actor=actor,
        )
        record_event(
            session,
            facility_id=facility_id,
            chain=facility_chain(facility_id),
            actor=actor,
            tag="courts:compliance_settings:configured",
            payload={
                "compliant_percent": rule.compliant_percent,
                "partial_percent": rule.partial_percent,
            },
            at=at,
        )
    return rule


@dataclass(frozen=True, slots=True)
class ReportSubject:
    """What a report is about: an order record (``record`` set) and its
    court-order grants with a count per period, or one court-order rule."""

    order_id: str
    rule_ids: tuple[str, ...]
    person_id: str | None
    case_number: str | None
    record: CourtOrder | None


def report_subject(db: Database, facility_id: str, order_id: str) -> ReportSubject:
    """The order record named ``order_id`` and the rules it reports on, or else
    the court-order rule of that id. NotFound (field ``order_id``) for neither;
    InvalidInput when the record has no grant with a count per period."""
    with db.transaction() as session:
        require_facility(session, facility_id)
        return _report_subject(session, facility_id, order_id)


def _report_subject(
    session: Session, facility_id: str, order_id: str, *, has_record: bool = True
) -> ReportSubject:
    """``report_subject`` in the caller's transaction; ``has_record`` False:
    the caller knows that no order record has that id."""
    record = None
    if has_record:
        try:
            record = order_in(session, facility_id, order_id)
        except NotFound:
            record = None
    if record is None:
        row = policy_repository.get_rule_row(session, facility_id, order_id)
        if row is None or row.authority != "court_order":
            raise NotFound(f"no order {order_id!r} in {facility_id!r}", field="order_id")
        rule = policy_repository.rule_from_row(row)
        return ReportSubject(order_id, (order_id,), rule.person, rule.case_number, None)
    counted = []
    for rule_id in record.rules:
        row = policy_repository.get_rule_row(session, facility_id, rule_id)
        if row is None:
            continue
        rule = policy_repository.rule_from_row(row)
        quota = rule.quota
        if (
            rule.kind is Kind.GRANT
            and quota is not None
            and quota.count is not None
            and not quota.per.is_rolling
        ):
            counted.append(rule_id)
    if not counted:
        raise InvalidInput(
            f"order {order_id} grants no count of sessions per period to report on",
            field="order_id",
        )
    return ReportSubject(order_id, tuple(counted), record.person, record.case_number, record)


def order_report(
    db: Database,
    facility_id: str,
    order_id: str,
    first: str,
    last: str,
    *,
    at: datetime,
    key: Ed25519PrivateKey | None = None,
    timeline: bool = True,
) -> ComplianceReport:
    """The order's compliance report from the month ``first`` to ``last``: each
    requirement (each court-order grant of the order record, or the one
    court-order rule named) with its periods, their status by the facility's
    rule and their evidence; a timeline; and, with a signing ``key``, a fresh
    signed checkpoint of the audit log it was built on. Errors as
    ``report_subject``'s and ``order_compliance``'s. ``timeline`` False: no
    timeline (JSON and CSV draw none), and the completed calls are counted by
    the database rather than read one by one. The order, the facility's rule
    and every requirement are read in one transaction, so they agree.

    Built with the cyclic garbage collector paused (``gc_pause``): a report
    over years makes thousands of objects, none in a reference cycle, and
    collections would walk them again and again while they are made."""
    with collector_paused():
        return _order_report(db, facility_id, order_id, first, last, at, key, timeline)


def _order_report(
    db: Database,
    facility_id: str,
    order_id: str,
    first: str,
    last: str,
    at: datetime,
    key: Ed25519PrivateKey | None,
    timeline: bool,
) -> ComplianceReport:
    with db.transaction() as session:
        # The facility, its status rule, the rule of that id and whether a
        # record has it: one statement, not one each.
        context = report_repository.report_context(session, facility_id, order_id)
        if context is None:
            raise NotFound(f"no facility {facility_id!r}", field="facility_id")
        facility = people_repository.facility_from_row(context.facility)
        subject = _report_subject(session, facility_id, order_id, has_record=context.has_record)
        stored = context.status_rule
        rule = StatusRule() if stored is None else StatusRule(*stored)
        marks: dict[Mark, None] = {}
        if timeline:
            parts = []
            for rule_id in subject.rule_ids:
                one = _order_compliance(
                    session, facility, rule_id, first, last, at=at, explained=False, calls=True
                )
                marks.update(dict.fromkeys(_marks(one)))
                parts.append(_Part(one.order, one.start, one.end, _requirement(one, rule)))
        else:
            parts = [
                _figures(session, facility, rule_id, first, last, at=at, statuses=rule)
                for rule_id in subject.rule_ids
            ]
    record = subject.record
    title = parts[0].order.rule.text_in("en") or order_id
    if record is not None:
        title = record.text
    signature = _signature(make_checkpoint(db, key, at=at)) if key is not None else None
    return ComplianceReport(
        facility_id=facility.id,
        facility_name=facility.name,
        zone=facility.zone.key,
        order_id=order_id,
        title=title,
        case_number=subject.case_number,
        person_id=subject.person_id,
        first=first,
        last=last,
        start=min(part.start for part in parts),
        end=max(part.end for part in parts),
        built_at=at,
        rule=rule,
        requirements=tuple(part.requirement for part in parts),
        timeline=tuple(marks),
        signature=signature,
        court=record.court if record is not None else None,
        judge=record.judge if record is not None else None,
        signed_on=record.signed_on if record is not None else None,
    )


@dataclass(frozen=True, slots=True)
class _Part:
    """One requirement of a report, with its order and the span it covers."""

    order: RuleSpan
    start: datetime
    end: datetime
    requirement: Requirement


def _figures(
    session: Session,
    facility: Facility,
    order_id: str,
    first: str,
    last: str,
    *,
    at: datetime,
    statuses: StatusRule,
) -> _Part:
    """A requirement of a report without a timeline, stated as ``_requirement``
    states it from ``order_compliance(..., explained=False, calls=False)``, by
    two statements: the person's contacts with the rules on the channel, then
    one pass over the order's sessions (its completed calls counted by the
    database, its evidence read as plain tuples). Each piece of evidence is
    made straight from its row, without the period records in between: a
    report over years names thousands of refusals, and each object made costs
    as much as the row read."""
    order, spans = _order_periods(session, facility, order_id, first, last)
    rule = order.rule
    start, end = spans[0].start, spans[-1].end
    reader = _Reader(session, facility, rule, at, explained=False)
    channel = str(rule.channel)
    around = report_repository.order_surroundings(
        session, facility.id, rule.person, at, channel, start, end
    )
    reader.know_contacts(around.contacts)
    _, standing = _concerning(reader, [_span_of(facts) for facts in around.rules])
    found = report_repository.order_evidence(
        session,
        facility.id,
        rule.person,
        channel,
        None if rule.contacts.ids is None else sorted(rule.contacts.ids),
        [(span.start, span.end) for span in spans],
    )
    counted = _counted(reader, found.counts, len(spans))
    rows, taken, total = found.evidence, 0, len(found.evidence)
    ordered, name = reader.ordered, reader.name
    # Per person and contact: the contact's name when the order is about
    # their sessions, else None (asked once each, looked up once per row).
    named: dict[tuple[str, str], str | None] = {}
    refused: dict[str | None, str] = {}  # each reason code in words, once
    none: tuple[str, ...] = ()
    periods = []
    for index, span in enumerate(spans):
        evidence: list[Evidence] = []
        outside = 0
        while taken < total and rows[taken][0] < span.start:
            taken += 1  # before the period (never, for consecutive periods)
        while taken < total and rows[taken][0] < span.end:
            when, _, person, contact, status, reason, outside_policy, by, rules = rows[taken]
            taken += 1
            pair = (person, contact)
            who = named.get(pair, _UNASKED)
            if who is _UNASKED:
                who = named[pair] = name(contact) if ordered(person, contact) else None
            if who is None:
                continue
            if status == "denied":
                words = refused.get(reason)
                if words is None:
                    words = refused[reason] = reason_words(reason)
                evidence.append(Evidence("refusal", when, who, words, rules))
            elif status == "released" or status == "expired":
                evidence.append(Evidence("lapsed", when, who, status, none, by))
            elif outside_policy:
                outside += 1
                evidence.append(_outside_policy_evidence(when, who, reason))
        for over in standing:
            days = days_in_force(over.rule, span, facility.zone)
            if days is not None:
                evidence.append(_override_evidence(Override(over, *days), span.start, span.end))
        evidence.extend(_cancelled_evidence(v) for v in _cancelled(session, reader, span))
        evidence.sort(key=_WHEN_AND_KIND)
        periods.append(
            requirement_period(
                statuses,
                key=span.key,
                start=span.start,
                end=span.end,
                entitled=compliance(rule, span, ()).entitled,
                delivered=counted[index],
                outside_policy=outside,
                evidence=tuple(evidence),
            )
        )
    return _Part(order, start, end, _requirement_of(rule, tuple(periods)))


_UNASKED = "\0"  # no contact's name: names are text without NUL


def _requirement(found: OrderCompliance, rule: StatusRule) -> Requirement:
    periods = tuple(
        requirement_period(
            rule,
            key=p.key,
            start=p.start,
            end=p.end,
            entitled=p.entitled,
            delivered=p.delivered,
            outside_policy=p.outside_policy,
            evidence=_evidence(p, found.facility),
        )
        for p in found.periods
    )
    return _requirement_of(found.order.rule, periods)


def _requirement_of(order: Rule, periods: tuple[RequirementPeriod, ...]) -> Requirement:
    assert order.quota is not None and order.quota.count is not None
    return Requirement(
        rule_id=order.id,
        text=order.text_in("en") or order.id,
        channel=str(order.channel),
        count=order.quota.count,
        per=str(order.quota.per.kind),
        contacts=_contacts_words(order),
        periods=periods,
    )


def _contacts_words(order: Rule) -> str:
    ids = order.contacts.ids
    if ids is not None:
        return ", ".join(sorted(ids))
    return "any approved contact"


# Evidence by its instant, then its kind: by position (``at`` is second and
# ``kind`` first), which a named tuple reads faster than by name.
_WHEN_AND_KIND = itemgetter(1, 0)


def _evidence(period: PeriodReport, facility: Facility) -> tuple[Evidence, ...]:
    found: list[Evidence] = []
    for refusal in period.refusals:
        found.append(
            _refusal_evidence(refusal.at, refusal.contact_name, refusal.reason, refusal.rule_ids)
        )
    for override in period.overrides:
        found.append(_override_evidence(override, period.start, period.end))
    for lapsed in period.lapsed:
        found.append(
            _lapsed_evidence(lapsed.at, lapsed.contact_name, lapsed.status, lapsed.settled_by)
        )
    for visit in period.cancelled:
        found.append(_cancelled_evidence(visit))
    for call in period.sessions:
        if call.outside_policy:
            found.append(_outside_policy_evidence(call.at, call.contact_name, call.reason))
    found.sort(key=_WHEN_AND_KIND)
    return tuple(found)


# Each piece of evidence as a report states it, from a period's record
# (``_evidence``) or straight from the rows read (``_figures``).


def _refusal_evidence(
    at: datetime, who: str, reason: str | None, rules: tuple[str, ...]
) -> Evidence:
    return Evidence("refusal", at, who, reason_words(reason), rules=rules)


def _lapsed_evidence(at: datetime, who: str, status: str, settled_by: str | None) -> Evidence:
    return Evidence("lapsed", at, who, status, by=settled_by)


def _outside_policy_evidence(at: datetime, who: str, reason: str | None) -> Evidence:
    detail = "imported; the rules would have refused it: " + reason_words(reason)
    return Evidence("outside_policy", at, who, detail)


def _cancelled_evidence(visit: CancelledVisit) -> Evidence:
    return Evidence(
        "cancelled",
        visit.at,
        ", ".join(visit.visitors),
        visit.reason or "cancelled",
        by=visit.cancelled_by,
    )


def _override_evidence(override: Override, start: datetime, end: datetime) -> Evidence:
    """A rule that stood over the order in the period ``[start, end)``."""
    span = override.span
    over = span.rule
    begin = start if over.starts_at is None else max(over.starts_at, start)
    finish = end if over.ends_at is None else min(over.ends_at, end)
    lifted = ""
    if span.lifted_at is not None:
        lifted = f"; lifted by {span.lifted_by or 'unknown'}"
        if span.lift_reason:
            lifted += f": {span.lift_reason}"
    return Evidence(
        "override",
        begin,
        "",
        f"{over.authority} {over.kind} on {over.channel}: {over.text_in('en') or over.id}{lifted}",
        rules=(over.id,),
        by=span.imposed_by,
        until=finish,
        days=override.days,
    )


def _marks(found: OrderCompliance) -> tuple[Mark, ...]:
    """The timeline: the order's band, rules imposed or lifted in the range,
    completed calls, refusals, cancelled visits and protected activities."""
    order = found.order.rule
    marks = [
        Mark(
            "order", order.text_in("en") or order.id, order.starts_at or found.start, order.ends_at
        )
    ]
    for span in found.rules:
        rule = span.rule
        changed = (rule.starts_at, rule.ends_at)
        if not any(m is not None and found.start <= m < found.end for m in changed):
            continue  # in force throughout: standing policy, not a change
        marks.append(
            Mark("rule", rule.text_in("en") or rule.id, rule.starts_at or found.start, rule.ends_at)
        )
    for period in found.periods:
        for call in period.sessions:
            marks.append(
                Mark("call", call.contact_name, call.at, call.at + timedelta(minutes=call.minutes))
            )
        for refusal in period.refusals:
            marks.append(Mark("refusal", refusal.contact_name, refusal.at))
        for visit in period.cancelled:
            marks.append(Mark("visit", ", ".join(visit.visitors), visit.at))
    for activity in found.activities:
        marks.append(Mark("activity", activity.kind.replace("_", " "), activity.at))
    return tuple(marks)


def _signature(checkpoint: bytes) -> Signature:
    header = json.loads(checkpoint.decode("utf-8"))["header"]
    return Signature(
        taken_at=str(header["taken_at"]),
        key_id=str(header["key"]),
        digest=str(header["digest"]),
        file_sha256=hashlib.sha256(checkpoint).hexdigest(),
        chains=int(header["chains"]),
        checkpoint=checkpoint,
    )
