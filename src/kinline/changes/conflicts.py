"""Overriding a court order, made loud.

A rule that overrides a grant of a recorded court order (a deny or limit that
names the grant in ``overrides``, or does not rank below it, reaching one of its
contacts while both are in force) is imposed only with the authority its
imposer relies on (``authority_cited``, e.g. "28 CFR 540.100(a)"), kept beside
the rule. In the same transaction the court's contact and each counsel of
record with an email are written an email in the outbox (the person is told by
their notice, as of every rule), and the override is an audit event on the
person's chain, naming the order, the grants and who was told.

Court-order rules with no order record (a scenario file's) have no one to tell
and no record to link: imposing over them asks for no citation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from kinline.audit.service import facility_chain, person_chain, record_event
from kinline.courts import orders
from kinline.courts.orders import CourtOrder
from kinline.errors import InvalidInput
from kinline.notices.delivery.outbox import enqueue_message
from kinline.people.model import Facility
from kinline.rules.model import Rule
from kinline.rules.periods import local

CITATION_CHARS = 500


@dataclass(frozen=True, slots=True)
class Override:
    """A court order a newly imposed rule overrides: its grants overridden, and
    the outbox messages written to its court and counsel."""

    order: CourtOrder
    grants: tuple[str, ...]
    deliveries: tuple[int, ...]


def check_citation(authority_cited: str | None) -> str | None:
    """The citation as kept: stripped, bounded, None when blank."""
    if authority_cited is None or not authority_cited.strip():
        return None
    text = authority_cited.strip()
    if len(text) > CITATION_CHARS:
        raise InvalidInput(f"must be at most {CITATION_CHARS} characters", field="authority_cited")
    return text


def override_orders(
    session: Session,
    facility: Facility,
    rule: Rule,
    *,
    reason: str | None,
    authority_cited: str | None,
    at: datetime,
    actor: str,
) -> list[Override]:
    """Inside the impose's transaction: refuse an override of a recorded order
    without a citation; else keep the citation, tell each order's court and
    counsel, and record it. Returns the orders overridden (none: nothing done
    but keeping a citation that was given)."""
    cited = check_citation(authority_cited)
    grants = orders.overridden_grants(session, facility.id, rule)
    if grants and cited is None:
        named = ", ".join(sorted(g.id for g in grants))
        raise InvalidInput(
            f"overrides the court-ordered {named}: name the authority relied on "
            '(e.g. "28 CFR 540.100(a)")',
            field="authority_cited",
        )
    if cited is not None:
        orders.cite(session, facility.id, rule.id, cited, reason, at=at, actor=actor)
    by_order: dict[str, tuple[CourtOrder, list[str]]] = {}
    for grant_id, order in orders.orders_of_rules(
        session, facility.id, [g.id for g in grants]
    ).items():
        by_order.setdefault(order.id, (order, []))[1].append(grant_id)
    done: list[Override] = []
    for order, granted in by_order.values():
        subject, body = override_email(
            facility, order, rule, granted, reason=reason, cited=cited or "", at=at, actor=actor
        )
        deliveries = tuple(
            enqueue_message(
                session,
                facility_id=facility.id,
                recipient=address,
                subject=subject,
                body=body,
                at=at,
            )
            for address in order.recipients
        )
        record_event(
            session,
            facility_id=facility.id,
            chain=(
                facility_chain(facility.id)
                if rule.person is None
                else person_chain(facility.id, rule.person)
            ),
            actor=actor,
            tag="courts:order:overridden",
            payload={
                "order_id": order.id,
                "case_number": order.case_number,
                "rule_id": rule.id,
                "grants": sorted(granted),
                "reason": reason,
                "authority_cited": cited,
                "told": order.recipients,
            },
            at=at,
        )
        done.append(Override(order, tuple(sorted(granted)), deliveries))
    return done


def override_email(
    facility: Facility,
    order: CourtOrder,
    rule: Rule,
    grants: list[str],
    *,
    reason: str | None,
    cited: str,
    at: datetime,
    actor: str,
) -> tuple[str, str]:
    """The subject line and plain-text body telling a court and counsel that a
    rule overrides their order: in English, the language of the court's record."""
    when = local(rule.starts_at or at, facility.zone).strftime("%Y-%m-%d %H:%M")
    subject = f"Case {order.case_number}: court order {order.id} overridden by rule {rule.id}"
    lines = [
        f"Case number: {order.case_number}",
        f"Court: {order.court}",
        f"Order: {order.id}, signed {order.signed_on.isoformat()} by {order.judge}",
        f"Facility: {facility.name} ({facility.id})",
        f"Person: {rule.person or 'everyone at the facility'}",
        "",
        f"A rule was imposed that overrides the order's {', '.join(sorted(grants))}.",
        "",
        f"Rule: {rule.id} ({rule.authority}, {rule.kind}, {rule.channel})",
        f"Text: {rule.text}",
        f"In force from: {when} ({facility.timezone})",
        f"Imposed by: {actor}",
        f"Reason: {reason or '(none given)'}",
        f"Authority cited: {cited}",
        "",
        "The person has been sent a notice of this rule, with how to appeal it.",
    ]
    return subject[:200], "\n".join(lines) + "\n"
