"""The reads a staff page is built from, each through the service the API calls.

``person_view`` gathers the person's page in one place: the record (an audited
read), contacts and approvals, rules in force, this period's allowances with
their explanations, conflicts with court orders, visits, notices with their
delivery, appeals, retaliation flags and a timeline. What the reader may not
see is left out here (privileged contacts, deliveries without the right).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup

from kinline.access import Access
from kinline.appeals.service import Appeal, list_appeals
from kinline.calls.allowances import Allowance, allowances
from kinline.courts.service import retaliation_report
from kinline.explain import Explanation
from kinline.identity.model import Action
from kinline.notices.delivery.model import Delivery
from kinline.notices.delivery.service import list_deliveries
from kinline.notices.service import Notice, list_notices
from kinline.people.model import PersonRecord
from kinline.people.service import ContactView, list_contacts, view_person
from kinline.policy.service import rules_in_force
from kinline.rules.model import Authority, Kind, Rule
from kinline.rules.retaliation import RetaliationFlag
from kinline.visits.booking import Booking, list_bookings
from kinline.web.charts import TimelineItem, timeline_svg, timeline_table
from kinline.web.staff.common import words

PAST = timedelta(days=180)
AHEAD = timedelta(days=60)
LONGEST = timedelta(days=3 * 365)


@dataclass(frozen=True, slots=True)
class Metered:
    """An allowance with its explanation in the reader's language."""

    allowance: Allowance
    words: Explanation


@dataclass(frozen=True, slots=True)
class OrderConflict:
    """A rule in force set against a court order: ``overrides`` when the rule
    names the order in its ``overrides``; otherwise the order outranks the rule
    for one contact (the decision's ``conflicts``)."""

    rule: Rule
    order: Rule
    overrides: bool
    contact_name: str | None = None


@dataclass(frozen=True, slots=True)
class PersonView:
    record: PersonRecord
    contacts: list[ContactView]
    rules: list[Rule]
    metered: list[Metered]
    conflicts: list[OrderConflict]
    visits: list[Booking]
    names: dict[str, str]  # contact id -> name, of the contacts shown
    notices: list[tuple[Notice, list[Delivery] | None]]
    appeals: list[Appeal]
    flags: list[RetaliationFlag]
    timeline: Markup
    timeline_table: Markup


def person_view(grant: Access, person_id: str, language: str, at: datetime) -> PersonView:
    db, place = grant.db, grant.facility
    record = view_person(db, place.id, person_id, at=at, viewed_by=grant.actor)
    privileged = grant.privileged()
    contacts = [
        c
        for c in list_contacts(db, place.id, person_id, at=at, include_privileged=privileged)
        if privileged or not c.contact.privileged
    ]
    rules = rules_in_force(db, place.id, at=at, person_id=person_id)
    metered = [
        Metered(a, words(a.decided, language, place.zone))
        for a in allowances(db, place.id, person_id, at=at)
        if privileged or not a.privileged
    ]
    visits = list_bookings(db, place.id, person_id=person_id, first=(at - PAST).date())
    deliveries = grant.may(Action.DELIVERY_READ)
    notices = [
        (n, list_deliveries(db, place.id, n.id) if deliveries else None)
        for n in sorted(list_notices(db, place.id, person_id), key=lambda n: n.created_at)
    ]
    appeals = list_appeals(db, place.id, at=at, person_id=person_id)
    flags = [f for f in retaliation_report(db, place.id) if f.person == person_id]
    names = {c.contact.id: c.name for c in contacts}
    items = _timeline(rules, visits, flags, names)
    start, end = _span(items, at)
    return PersonView(
        record=record,
        contacts=contacts,
        rules=rules,
        metered=metered,
        conflicts=_conflicts(rules, metered),
        visits=visits,
        names=names,
        notices=notices,
        appeals=appeals,
        flags=flags,
        timeline=Markup(  # noqa: S704 (SVG drawn on the server from escaped labels)
            timeline_svg(items, start=start, end=end, zone=place.zone, language=language)
        ),
        timeline_table=timeline_table(items, zone=place.zone, language=language),
    )


def _conflicts(rules: list[Rule], metered: list[Metered]) -> list[OrderConflict]:
    by_id = {rule.id: rule for rule in rules}
    orders = {
        r.id: r for r in rules if r.authority is Authority.COURT_ORDER and r.kind is Kind.GRANT
    }
    found = [
        OrderConflict(rule, orders[order_id], overrides=True)
        for rule in rules
        for order_id in sorted(rule.overrides)
        if order_id in orders
    ]
    for item in metered:
        decision = item.allowance.decided.decision
        order = orders.get(decision.charged_to or "")
        if order is None:
            continue
        for rule_id in decision.conflicts:
            if rule_id in by_id:
                found.append(
                    OrderConflict(
                        by_id[rule_id], order, overrides=False,
                        contact_name=item.allowance.contact_name,
                    )
                )  # fmt: skip
    return found


def _timeline(
    rules: list[Rule], visits: list[Booking], flags: list[RetaliationFlag], names: dict[str, str]
) -> list[TimelineItem]:
    """Rules and orders as spans (from their start; one in force from the
    facility's start is left out of the chart's start), visits, and the
    protected activities the retaliation report weighs."""
    items = [
        TimelineItem(
            "order" if rule.authority is Authority.COURT_ORDER else "rule",
            f"{rule.text} ({rule.channel})",
            rule.starts_at,
            rule.ends_at,
        )
        for rule in rules
        if rule.starts_at is not None
    ]
    items += [
        TimelineItem(
            "visit",
            f"{', '.join(names.get(c, c) for c in b.visitors)}, {b.room_id} ({b.status})",
            b.starts_at,
            b.ends_at,
        )
        for b in visits
    ]
    seen: set[str] = set()
    for flag in flags:
        if flag.activity not in seen:
            seen.add(flag.activity)
            items.append(TimelineItem("activity", flag.activity, flag.activity_at))
    return items


def _span(items: list[TimelineItem], at: datetime) -> tuple[datetime, datetime]:
    """From the earliest item (at most ``LONGEST`` back, at least ``PAST``) to ``AHEAD``."""
    earliest = min((item.start for item in items), default=at - PAST)
    start = max(min(earliest - timedelta(days=14), at - PAST), at - LONGEST)
    latest = max((item.end or item.start for item in items), default=at)
    return start, max(at + AHEAD, latest + timedelta(days=7))
