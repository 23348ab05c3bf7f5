"""Every query about rules."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from kinline.db.tables import RuleRow
from kinline.rules.model import Channel, Rule
from kinline.rules.parse import rule_definition, rule_from_definition


def rule_from_row(row: RuleRow) -> Rule:
    ends = row.ends_at
    if row.lifted_at is not None and (ends is None or row.lifted_at < ends):
        ends = row.lifted_at
    return rule_from_definition(
        json.loads(row.definition), starts_at=row.starts_at, ends_at=ends, order=row.seq
    )


def next_seq(session: Session, facility_id: str) -> int:
    current = session.scalar(
        select(func.max(RuleRow.seq)).where(RuleRow.facility_id == facility_id)
    )
    return (current or 0) + 1


def get_rule_row(session: Session, facility_id: str, rule_id: str) -> RuleRow | None:
    return session.get(RuleRow, (facility_id, rule_id))


def add_rule(
    session: Session, facility_id: str, rule: Rule, *, imposed_at: datetime | None, actor: str
) -> RuleRow:
    row = RuleRow(
        facility_id=facility_id,
        id=rule.id,
        seq=rule.order,
        authority=str(rule.authority),
        kind=str(rule.kind),
        channel=str(rule.channel),
        person_id=rule.person,
        starts_at=rule.starts_at,
        ends_at=rule.ends_at,
        definition=json.dumps(rule_definition(rule), sort_keys=True),
        imposed_at=imposed_at,
        imposed_by=actor,
    )
    session.add(row)
    session.flush()
    return row


def rules_for(
    session: Session,
    facility_id: str,
    *,
    person_id: str | None = None,
    channel: Channel | None = None,
    active_at: datetime | None = None,
) -> list[Rule]:
    """Rules concerning ``person_id`` (their own and ``all``), in listing order."""
    query = select(RuleRow).where(RuleRow.facility_id == facility_id)
    if person_id is not None:
        query = query.where(or_(RuleRow.person_id.is_(None), RuleRow.person_id == person_id))
    if channel is not None:
        query = query.where(RuleRow.channel == str(channel))
    if active_at is not None:
        query = query.where(
            or_(RuleRow.starts_at.is_(None), RuleRow.starts_at <= active_at),
            or_(RuleRow.ends_at.is_(None), RuleRow.ends_at > active_at),
            or_(RuleRow.lifted_at.is_(None), RuleRow.lifted_at > active_at),
        )
    return [rule_from_row(row) for row in session.scalars(query.order_by(RuleRow.seq))]
