"""What a person may still do with each approved contact, on each channel: a read.

A kiosk or a staff page shows, per contact and channel, the decision the engine
would take right now and what each quota that bounds it has used this period.
It reads in one transaction and decides with ``decide_in`` exactly as the call
path does (against what had started by ``at``), so the page never shows an
allowance the call path would refuse, or the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from kinline.calls.service import ExplainedDecision, decide_in
from kinline.db.engine import Database
from kinline.people import repository as people_repository
from kinline.people.model import held
from kinline.people.service import require_facility, require_person
from kinline.rules.model import Channel, Kind, Period, Rule
from kinline.rules.periods import rolling_start, span_of
from kinline.rules.usage import UsageSnapshot


@dataclass(frozen=True, slots=True)
class QuotaUse:
    """One quota bounding a decision and what it has used in the period holding ``at``."""

    rule_id: str
    period: str  # "day" | "week" | "month" | "rolling:N"
    count: int | None
    minutes: int | None
    used_sessions: int
    used_minutes: int
    # When the used part next goes down: the calendar period's end, or when the
    # oldest session in a rolling window leaves it. None: nothing is used.
    resets_at: datetime | None


@dataclass(frozen=True, slots=True)
class Allowance:
    """An approved contact on one channel it is approved for, as decided at ``at``."""

    contact_id: str
    contact_name: str
    relationship: str
    privileged: bool
    channel: Channel
    decided: ExplainedDecision
    uses: tuple[QuotaUse, ...]


def allowances(db: Database, facility_id: str, person_id: str, *, at: datetime) -> list[Allowance]:
    """Every contact of the person approved at ``at`` × each channel it is approved
    for (contacts by id, channels phone, video, visit), each with its decision and
    quotas. A person no longer held here at ``at`` has none: nothing more is
    decided for a released or transferred-out record."""
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
        require_person(session, facility_id, person_id)
        record = people_repository.get_person_record(session, facility_id, person_id)
        if record is None or not held(record.custody, record.custody_changed_at, at):
            return []
        found: list[Allowance] = []
        for contact, details, _phones in people_repository.list_contacts(
            session, facility_id, at, person_id
        ):
            for channel in Channel:
                if channel not in contact.approved:
                    continue
                decided = decide_in(
                    session, facility, person_id, contact.id, channel, at, person_checked=True
                )
                found.append(
                    Allowance(
                        contact_id=contact.id,
                        contact_name=details.name,
                        relationship=contact.relationship,
                        privileged=contact.privileged,
                        channel=channel,
                        decided=decided,
                        uses=quota_uses(decided),
                    )
                )
        return found


def quota_uses(decided: ExplainedDecision) -> tuple[QuotaUse, ...]:
    """The quotas bounding a decision, once each, with what each has used at its
    moment: first those of the rules it is charged to, governed by or refused by,
    then those of the other limits in force on this contact and channel (a
    refusal names only the quota it ran out of; the weekly limit still counts)."""
    decision = decided.decision
    named = [
        decided.rules[rule_id]
        for rule_id in (decision.charged_to, *decision.governed_by, *decision.rules)
        if rule_id is not None and rule_id in decided.rules
    ]
    limits = [
        rule
        for rule in decided.rules.values()
        if rule.kind is Kind.LIMIT
        and rule.channel is decided.channel
        and rule.concerns(decided.person_id)
        and rule.is_active(decided.at)
        and rule.contacts.matches(decided.contact)
    ]
    bounding = {rule.id: rule for rule in (*named, *limits) if rule.quota is not None}
    return tuple(_use(rule, decided.usage, decided.at) for rule in bounding.values())


def _use(rule: Rule, usage: UsageSnapshot, at: datetime) -> QuotaUse:
    assert rule.quota is not None
    per = rule.quota.per
    used = usage.tally(rule.id, per, at)
    resets_at = None
    if used.sessions:
        resets_at = _frees_at(rule.id, per, usage, at) if per.is_rolling else _ends(per, usage, at)
    return QuotaUse(
        rule_id=rule.id,
        period=f"rolling:{per.days}" if per.is_rolling else per.kind,
        count=rule.quota.count,
        minutes=rule.quota.minutes,
        used_sessions=used.sessions,
        used_minutes=used.minutes,
        resets_at=resets_at,
    )


def _ends(period: Period, usage: UsageSnapshot, at: datetime) -> datetime:
    return span_of(period, at, usage.zone).end


def _frees_at(rule_id: str, period: Period, usage: UsageSnapshot, at: datetime) -> datetime | None:
    """When the oldest session still inside the rolling window ending at ``at`` leaves it."""
    after = rolling_start(period, at)
    inside = [started for started, _ in usage.rolling.get(rule_id, ()) if after < started <= at]
    return None if not inside else min(inside) + timedelta(days=period.days)
