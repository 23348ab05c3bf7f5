"""Counsel and court views, and an order's compliance.

``/counsel``: the people counsel represents; ``/counsel/people/{person_id}``:
one of them (rules in force, court orders, what they may do with each contact
now, notices, appeals). ``/court``: the court orders the caller may see (a
court its cases', counsel their clients', staff every one).
``/orders/{facility_id}/{rule_id}?from=YYYY-MM&to=YYYY-MM``: what an order
entitled against what was delivered, period by period, as a chart and a
table, with a timeline and the causes of each shortfall in plain words.

Every figure comes from the services the API and the CLI use
(``courts.compliance``, ``calls.allowances``, ``policy``, ``notices``,
``appeals``); decisions are put in words by ``kinline.explain``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from babel.dates import format_date, format_skeleton
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from kinline.access import Access, Params, Reach, person_record
from kinline.appeals.service import list_appeals
from kinline.calls.allowances import allowances
from kinline.courts.compliance import OrderCompliance, RuleSpan, court_orders, order_compliance
from kinline.db.engine import Database
from kinline.errors import KinlineError, NotFound
from kinline.explain import explain
from kinline.http import in_thread
from kinline.identity.model import (
    Action,
    Kind,
    Record,
    Subject,
    Target,
    actions_of,
    visible,
)
from kinline.notices.service import list_notices
from kinline.people.model import Facility
from kinline.people.service import get_facility, get_person
from kinline.policy.service import get_rule, rules_in_force
from kinline.rules.decide import Request as Asked
from kinline.rules.model import Rule
from kinline.rules.periods import local
from kinline.web.charts import (
    PeriodFigures,
    TimelineItem,
    periods_svg,
    periods_table,
    timeline_svg,
    timeline_table,
)
from kinline.web.guard import PageGuard, field_errors, page, page_everywhere
from kinline.web.render import Templates, language_of, render

router = APIRouter(include_in_schema=False)
TEMPLATES = Templates(__file__)
MONTHS_SHOWN = 12  # the range shown when none is asked for


def who(actor: str | None) -> str:
    """An audit actor (``staff:3:J. Ortiz``) as a reader names them (``J. Ortiz``)."""
    if not actor:
        return ""
    parts = actor.split(":", 2)
    return parts[2] if len(parts) == 3 else actor


# --- counsel -------------------------------------------------------------------


@router.get("/counsel")
async def counsel_home(
    request: Request, reach: Annotated[Reach, page_everywhere(Action.NOTICE_READ)]
) -> Response:
    """The people counsel represents, at each facility. Other subjects go home."""
    subject = reach.subject
    if subject.kind is not Kind.COUNSEL:
        return RedirectResponse("/", status_code=303)
    clients = await in_thread(_clients, reach.db, subject.bindings)
    return render(request, TEMPLATES, "counsel_home.html", clients=clients)


def _clients(db: Database, bindings: Any) -> list[tuple[Facility, Any]]:
    found = []
    for binding in sorted(bindings, key=lambda b: (b.facility_id, b.person_id or "")):
        if binding.person_id is None:
            continue
        facility = get_facility(db, binding.facility_id)
        found.append((facility, get_person(db, binding.facility_id, binding.person_id)))
    return found


@router.get("/counsel/people/{person_id}")
async def counsel_person(
    request: Request,
    person_id: str,
    grant: Annotated[Access, page(Action.NOTICE_READ, person_record)],
) -> Response:
    """One person as their counsel sees them: rules in force, court orders,
    what they may do with each contact now, notices and appeals."""
    now = datetime.now(UTC)
    language = language_of(request)
    summary = await in_thread(_summary, grant, person_id, now, language)
    return render(request, TEMPLATES, "counsel_person.html", **summary)


def _summary(grant: Access, person_id: str, now: datetime, language: str) -> dict[str, Any]:
    db, place = grant.db, grant.facility
    person = get_person(db, place.id, person_id)
    rules = [
        rule
        for rule in rules_in_force(db, place.id, at=now, person_id=person_id)
        if rule.authority != "court_order"
    ]
    orders = [
        span
        for span in court_orders(db, place.id)
        if span.rule.concerns(person_id)
        and grant.sees(_rule_target(place.id, span.rule))
        and _whole_report(grant.subject, span.rule)
    ]
    shown_allowances = []
    if grant.may(Action.DECISION_READ):
        for allowance in allowances(db, place.id, person_id, at=now):
            if allowance.privileged and not grant.privileged():
                continue
            decided = allowance.decided
            words = explain(
                decided.decision,
                Asked(decided.person_id, decided.contact, decided.channel, decided.at),
                decided.rules,
                decided.usage,
                language=language,
                zone=place.zone,
            )
            shown_allowances.append((allowance, words))
    notices = list_notices(db, place.id, person_id) if grant.may(Action.NOTICE_READ) else []
    appeals = (
        list_appeals(db, place.id, at=now, person_id=person_id)
        if grant.may(Action.APPEAL_READ)
        else []
    )
    return {
        "facility": place,
        "person": person,
        "rules": rules,
        "orders": orders,
        "may_comply": grant.may(Action.COMPLIANCE_READ),
        "allowances": shown_allowances,
        "notices": notices,
        "appeals": appeals,
        "who": who,
    }


def _whole_report(subject: Subject, rule: Rule) -> bool:
    """Whether the subject may read an order's report: an order for everyone
    counts everyone's calls, which only staff and the court that made it read."""
    return rule.person is not None or subject.kind in (Kind.STAFF, Kind.COURT)


def _rule_target(facility_id: str, rule: Rule) -> Target:
    return Target(facility_id, Record.RULE, person_id=rule.person, case_number=rule.case_number)


# --- court ---------------------------------------------------------------------


@router.get("/court")
async def court_home(
    request: Request, reach: Annotated[Reach, page_everywhere(Action.COMPLIANCE_READ)]
) -> Response:
    """The court orders the caller may see, at every facility it is bound to."""
    found = await in_thread(_orders_seen, reach)
    return render(request, TEMPLATES, "court_home.html", found=found, who=who)


def _orders_seen(reach: Reach) -> list[tuple[Facility, list[RuleSpan]]]:
    subject = reach.subject
    found = []
    for facility_id in sorted(subject.facilities()):
        if Action.COMPLIANCE_READ not in actions_of(subject, facility_id):
            continue
        orders = [
            span
            for span in court_orders(reach.db, facility_id)
            if visible(subject, _rule_target(facility_id, span.rule))
            and _whole_report(subject, span.rule)
        ]
        found.append((get_facility(reach.db, facility_id), orders))
    return found


# --- an order's compliance -----------------------------------------------------


class _InPath(PageGuard):
    """The page guard, the facility named in the path (``/orders/{facility_id}/...``)."""

    async def __call__(  # type: ignore[override]
        self, request: Request, facility_id: Annotated[str, Path(max_length=64)]
    ) -> Access:
        return await PageGuard.__call__(self, request, facility_id)


def order_target(db: Database, place: Facility, params: Params) -> Target:
    """The order named in the path: whose it is and which court case made it."""
    return _rule_target(place.id, get_rule(db, place.id, params["rule_id"]))


@router.get("/orders/{facility_id}/{rule_id}")
async def order_page(
    request: Request,
    facility_id: str,
    rule_id: str,
    grant: Annotated[Access, Depends(_InPath(Action.COMPLIANCE_READ, order_target))],
    first: Annotated[str | None, Query(alias="from", max_length=20)] = None,
    last: Annotated[str | None, Query(alias="to", max_length=20)] = None,
) -> Response:
    """Entitled against delivered, period by period, with the causes of each
    shortfall; ``from`` and ``to`` are months (the last twelve by default)."""
    place = grant.facility
    order = await in_thread(get_rule, grant.db, place.id, rule_id)
    if not _whole_report(grant.subject, order):
        raise NotFound("no order with that id is known", field="rule_id")
    language = language_of(request)
    now = datetime.now(UTC)
    default_first, default_last = _default_range(now, place)
    form = {"from": first or default_first, "to": last or default_last}
    try:
        report = await in_thread(
            order_compliance, grant.db, place.id, rule_id, form["from"], form["to"], at=now
        )
    except KinlineError as error:
        if error.status not in (409, 422):
            raise
        # A range to correct is an error beside its field; a rule that is not
        # a court order with a count per period has nothing to compare.
        errors = {}
        if error.field in ("from", "to"):
            errors = field_errors(request, TEMPLATES, error, default="from")
        return render(
            request,
            TEMPLATES,
            "order.html",
            status=422,
            form=form,
            errors=errors,
            order=order,
            report=None,
            facility=place,
        )
    person = None
    if report.order.rule.person is not None:
        person = await in_thread(get_person, grant.db, place.id, report.order.rule.person)
    return render(
        request,
        TEMPLATES,
        "order.html",
        form=form,
        order=report.order.rule,
        report=report,
        person=person,
        facility=place,
        **_figures(report, language),
        causes=_causes(report, language),
        who=who,
    )


def _default_range(now: datetime, place: Facility) -> tuple[str, str]:
    today = local(now, place.zone).date()
    month = today.year * 12 + today.month - 1 - (MONTHS_SHOWN - 1)
    return f"{month // 12:04d}-{month % 12 + 1:02d}", f"{today.year:04d}-{today.month:02d}"


def period_label(key: str, language: str) -> str:
    """``2024-05`` as ``May 2024`` (``may 2024``); a week or a day as a reader writes it."""
    if len(key) == 7 and key[4] == "-":
        return format_skeleton("yMMM", date(int(key[:4]), int(key[5:]), 1), locale=language)
    if len(key) == 10:
        return format_date(date.fromisoformat(key), "medium", locale=language)
    return key


def _figures(report: OrderCompliance, language: str) -> dict[str, Any]:
    zone = report.facility.zone
    periods = [
        PeriodFigures(
            period_label(p.key, language),
            entitled=p.entitled,
            delivered=p.within_policy,
            refused=len(p.refusals),
            outside_policy=p.outside_policy,
        )
        for p in report.periods
    ]
    timeline = _timeline(report, language)
    return {
        "periods_chart": periods_svg(periods, language=language),
        "periods_table": periods_table(periods, language=language),
        "timeline_chart": timeline_svg(
            timeline,
            start=report.start,
            end=report.end,
            zone=zone,
            language=language,
        ),
        "timeline_table": timeline_table(timeline, zone=zone, language=language),
        "labels": {p.key: period_label(p.key, language) for p in report.periods},
    }


def _timeline(report: OrderCompliance, language: str) -> list[TimelineItem]:
    order = report.order.rule
    items = [
        TimelineItem(
            "order",
            order.text_in(language) or order.id,
            order.starts_at or report.start,
            order.ends_at,
        )
    ]
    for span in report.rules:
        rule = span.rule
        changed = (rule.starts_at, rule.ends_at)
        if not any(m is not None and report.start <= m < report.end for m in changed):
            continue  # in force throughout: the standing policy, not a change
        items.append(
            TimelineItem(
                "rule",
                rule.text_in(language) or rule.id,
                rule.starts_at or report.start,
                rule.ends_at,
            )
        )
    for period in report.periods:
        for call in period.sessions:
            items.append(
                TimelineItem(
                    "call", call.contact_name, call.at, call.at + timedelta(minutes=call.minutes)
                )
            )
        for refusal in period.refusals:
            items.append(TimelineItem("refusal", refusal.contact_name, refusal.at))
        for visit in period.cancelled:
            items.append(TimelineItem("visit", ", ".join(visit.visitors), visit.at))
    for activity in report.activities:
        items.append(TimelineItem("activity", activity.kind.replace("_", " "), activity.at))
    return items


def _causes(report: OrderCompliance, language: str) -> dict[str, list[list[str]]]:
    """Each refusal of each period in plain words (``kinline.explain``), by period."""
    zone = report.facility.zone
    found: dict[str, list[list[str]]] = {}
    for period in report.periods:
        found[period.key] = []
        for refusal in period.refusals:
            decided = refusal.decided
            if decided is None:
                found[period.key].append([])
                continue
            words = explain(
                decided.decision,
                Asked(decided.person_id, decided.contact, decided.channel, decided.at),
                decided.rules,
                decided.usage,
                language=language,
                zone=zone,
            )
            found[period.key].append([cause.sentence for cause in words.causes])
    return found
