"""Every query about rules."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm import Session

from kinline.db.engine import core
from kinline.db.tables import RuleRow
from kinline.rules.model import Channel, Rule
from kinline.rules.parse import rule_definition, rule_from_definition


def rule_from_row(row: RuleRow) -> Rule:
    return stored_rule(row.definition, row.starts_at, row.ends_at, row.lifted_at, row.seq)


@lru_cache(maxsize=8192)
def stored_rule(
    definition: str,
    starts_at: datetime | None,
    ends_at: datetime | None,
    lifted_at: datetime | None,
    seq: int,
) -> Rule:
    """A stored rule, parsed; the same stored values always give the same (frozen)
    rule, so each is parsed once and kept."""
    ends = ends_at
    if lifted_at is not None and (ends is None or lifted_at < ends):
        ends = lifted_at
    return rule_from_definition(
        json.loads(definition), starts_at=starts_at, ends_at=ends, order=seq
    )


_RULES = RuleRow.__table__
# The rules a decision reads, built once: it runs on every call set-up.
_IN_FORCE = (
    select(
        _RULES.c.definition, _RULES.c.starts_at, _RULES.c.ends_at, _RULES.c.lifted_at, _RULES.c.seq
    )
    .where(
        _RULES.c.facility_id == bindparam("facility_id"),
        or_(_RULES.c.person_id.is_(None), _RULES.c.person_id == bindparam("person_id")),
        _RULES.c.channel == bindparam("channel"),
        or_(_RULES.c.starts_at.is_(None), _RULES.c.starts_at <= bindparam("at")),
        or_(_RULES.c.ends_at.is_(None), _RULES.c.ends_at > bindparam("at")),
        or_(_RULES.c.lifted_at.is_(None), _RULES.c.lifted_at > bindparam("at")),
    )
    .order_by(_RULES.c.seq)
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
    if person_id is not None and channel is not None and active_at is not None:
        params = {
            "facility_id": facility_id,
            "person_id": person_id,
            "channel": str(channel),
            "at": active_at,
        }
        return [stored_rule(*row) for row in core(session).execute(_IN_FORCE, params)]
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
