"""Every query of the compliance reports' own: the facility's status rule, and
the sessions an order's report counts, read as plain values.

Beside ``courts.repository`` rather than in it: a separate module keeps the
reports' store apart from the orders' (the two grew at the same time), and
services reach both the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    and_,
    case,
    func,
    literal_column,
    null,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from kinline.db.tables import ApprovalRow, ComplianceSettingsRow, ContactRow, SessionRow
from kinline.rules.model import Channel, Contact


def status_rule(session: Session, facility_id: str) -> tuple[int, int] | None:
    """The facility's (compliant_percent, partial_percent), or None for the defaults."""
    row = session.get(ComplianceSettingsRow, facility_id)
    if row is None:
        return None
    return row.compliant_percent, row.partial_percent


def store_status_rule(
    session: Session,
    facility_id: str,
    compliant_percent: int,
    partial_percent: int,
    *,
    at: datetime,
    actor: str,
) -> None:
    row = session.get(ComplianceSettingsRow, facility_id)
    if row is None:
        row = ComplianceSettingsRow(facility_id=facility_id)
        session.add(row)
    row.compliant_percent = compliant_percent
    row.partial_percent = partial_percent
    row.updated_at = at
    row.updated_by = actor
    session.flush()


class SessionFacts(NamedTuple):
    """What a compliance report reads of a session. ``decision`` and
    ``governed_by`` are read for refused sessions only (a report explains its
    refusals; the rest it counts). A named tuple: a report reads thousands, and
    a tuple is made several times faster than a frozen dataclass."""

    id: int
    person_id: str
    contact_id: str
    channel: str
    started_at: datetime
    minutes: int
    status: str
    reason: str | None
    charged_to: str | None
    source: str
    settled_by: str | None
    decision: dict[str, object] | None
    governed_by: list[str] | None


_FACTS = (
    SessionRow.id,
    SessionRow.person_id,
    SessionRow.contact_id,
    SessionRow.channel,
    SessionRow.started_at,
    SessionRow.minutes,
    SessionRow.status,
    SessionRow.reason,
    SessionRow.charged_to,
    SessionRow.source,
    SessionRow.settled_by,
)


def session_facts_between(
    session: Session,
    facility_id: str,
    person_id: str | None,
    channel: str,
    start: datetime,
    end: datetime,
    *,
    evidence_only: bool = False,
    governed_by: bool = True,
) -> list[SessionFacts]:
    """Every session of the person, or of everyone, on ``channel``, started in
    ``[start, end)``, in time order: plain columns by one Core statement, and the
    stored decisions of the refused ones by a second. ``evidence_only``: only
    the sessions a report names one by one (refused, released, expired, and
    completed calls imported outside policy), which are few; the completed
    ones it counts (``completed_counts``). ``governed_by`` False: the refused
    sessions' rules that governed them are not read (None), for a report that
    does not rebuild their decisions."""
    where = [
        SessionRow.facility_id == facility_id,
        SessionRow.channel == channel,
        SessionRow.started_at >= start,
        SessionRow.started_at < end,
    ]
    if person_id is not None:
        where.append(SessionRow.person_id == person_id)
    if evidence_only:
        where.append(
            or_(
                SessionRow.status.in_(("denied", "released", "expired")),
                and_(
                    SessionRow.status == "completed",
                    SessionRow.source == "import",
                    SessionRow.charged_to.is_(None),
                ),
            )
        )
    # The connection, not the ORM session: plain rows, without the ORM's
    # per-row loading (most of the cost of a large read).
    connection = session.connection()
    if evidence_only:
        # Few rows, most of them refused: their decisions in the same pass.
        denied = SessionRow.status == "denied"
        decision = type_coerce(case((denied, SessionRow.decision)), SessionRow.decision.type)
        governed = (
            type_coerce(case((denied, SessionRow.governed_by)), SessionRow.governed_by.type)
            if governed_by
            else null()
        )
        statement = select(*_FACTS, decision, governed).where(*where)
        return [
            SessionFacts._make(row)
            for row in connection.execute(
                statement.order_by(SessionRow.started_at, SessionRow.id)
            ).all()
        ]
    rows = connection.execute(
        select(*_FACTS).where(*where).order_by(SessionRow.started_at, SessionRow.id)
    ).all()
    refused = {
        row.id: (row.decision, row.governed_by)
        for row in connection.execute(
            select(SessionRow.id, SessionRow.decision, SessionRow.governed_by).where(
                *where, SessionRow.status == "denied"
            )
        ).all()
    }
    none = (None, None)
    return [SessionFacts(*row, *refused.get(row[0], none)) for row in rows]


class PeriodCount(NamedTuple):
    """How many completed sessions a person had with a contact in one period
    (``period``: its index in the bounds given)."""

    period: int
    person_id: str
    contact_id: str
    completed: int


# Periods one counting statement sorts sessions into; a longer range (a daily
# order over years) takes one statement per this many periods.
PERIODS_PER_STATEMENT = 64


def completed_counts(
    session: Session,
    facility_id: str,
    person_id: str | None,
    channel: str,
    bounds: Sequence[tuple[datetime, datetime]],
) -> list[PeriodCount]:
    """The completed sessions of the person, or of everyone, on ``channel``,
    counted per period, person and contact. ``bounds``: consecutive periods
    ``[start, end)``, computed by the caller in the facility's zone. Counted by
    the database (one range on ``ix_sessions_person_start`` when the person is
    known), so a report over years reads a few rows, not every call."""
    connection = session.connection()
    found: list[PeriodCount] = []
    for first in range(0, len(bounds), PERIODS_PER_STATEMENT):
        chunk = bounds[first : first + PERIODS_PER_STATEMENT]
        where = [
            SessionRow.facility_id == facility_id,
            SessionRow.channel == channel,
            SessionRow.status == "completed",
            SessionRow.started_at >= chunk[0][0],
            SessionRow.started_at < chunk[-1][1],
        ]
        if person_id is not None:
            where.append(SessionRow.person_id == person_id)
        # The period's index is a number made here, never input: a literal,
        # so the outer GROUP BY names the inner column, not a second CASE.
        period = case(
            *(
                (SessionRow.started_at < end, literal_column(str(first + index)))
                for index, (_, end) in enumerate(chunk)
            ),
        ).label("period")
        inner = select(period, SessionRow.person_id, SessionRow.contact_id).where(*where)
        sub = inner.subquery()
        statement = select(sub.c.period, sub.c.person_id, sub.c.contact_id, func.count()).group_by(
            sub.c.period, sub.c.person_id, sub.c.contact_id
        )
        found.extend(
            PeriodCount(int(p), str(person), str(contact), int(n))
            for p, person, contact, n in connection.execute(statement).all()
        )
    return found


def contacts_of(
    session: Session, facility_id: str, person_id: str | None, at: datetime
) -> list[tuple[Contact, str]]:
    """The person's contacts (everyone's when None), each with the channels it
    is approved for at ``at`` (as ``people.repository.get_contact`` reads them)
    and its name, in id order: one statement, a row per approval in force."""
    approved = and_(
        ApprovalRow.facility_id == ContactRow.facility_id,
        ApprovalRow.contact_id == ContactRow.id,
        ApprovalRow.approved_at <= at,
        or_(ApprovalRow.revoked_at.is_(None), ApprovalRow.revoked_at > at),
    )
    statement = (
        select(
            ContactRow.id,
            ContactRow.person_id,
            ContactRow.relationship,
            ContactRow.privileged,
            ContactRow.name,
            ApprovalRow.channel,
        )
        .outerjoin(ApprovalRow, approved)
        .where(ContactRow.facility_id == facility_id)
    )
    if person_id is not None:
        statement = statement.where(ContactRow.person_id == person_id)
    found: dict[str, tuple[tuple[str, str, str, bool, str], set[Channel]]] = {}
    for contact_id, person, relationship, privileged, name, channel in session.connection().execute(
        statement.order_by(ContactRow.id)
    ):
        one = found.get(contact_id)
        if one is None:
            one = found[contact_id] = ((contact_id, person, relationship, privileged, name), set())
        if channel is not None:
            one[1].add(Channel(channel))
    return [
        (Contact(id=c, person=p, relationship=r, privileged=v, approved=frozenset(channels)), n)
        for (c, p, r, v, n), channels in found.values()
    ]


class OrderSessions(NamedTuple):
    """What one statement reads of the sessions an order's report is about:
    the completed ones counted per period, person and contact, and the few it
    names one by one (``evidence``, in time order; completed calls imported
    outside policy are both counted and named)."""

    counts: list[PeriodCount]
    evidence: list[SessionFacts]


def order_sessions(
    session: Session,
    facility_id: str,
    person_id: str | None,
    channel: str,
    contact_ids: Sequence[str] | None,
    bounds: Sequence[tuple[datetime, datetime]],
) -> OrderSessions:
    """The sessions of the person, or of everyone, on ``channel``, with one of
    ``contact_ids`` (any contact when None), started in the periods ``bounds``
    (consecutive ``[start, end)``), by one statement per
    ``PERIODS_PER_STATEMENT`` periods: the completed ones counted per period,
    person and contact by the database, followed by the evidence (refused,
    released, expired, and completed calls imported outside policy) row by
    row. Refusals carry only the rules their stored decision names
    (``decision`` is ``{"rules": [...]}``, read as text and parsed once per
    distinct value) and no ``governed_by``: a report in figures rebuilds no
    decision."""
    connection = session.connection()
    counts: list[PeriodCount] = []
    evidence: list[SessionFacts] = []
    parsed: dict[str, dict[str, object]] = {}
    for first in range(0, len(bounds), PERIODS_PER_STATEMENT):
        chunk = bounds[first : first + PERIODS_PER_STATEMENT]
        statement = _one_pass(facility_id, person_id, channel, contact_ids, chunk, first)
        for row in connection.execute(statement):
            period, person, contact, n, evidence_id, *_, rules = row
            if evidence_id is None:
                counts.append(PeriodCount(period, person, contact, n))
                continue
            decision = None
            if rules is not None:
                decision = parsed.get(rules)
                if decision is None:
                    decision = parsed[rules] = {"rules": json.loads(rules)}
            evidence.append(
                SessionFacts(
                    evidence_id,
                    person,
                    contact,
                    channel,
                    row.started_at,
                    row.minutes,
                    row.status,
                    row.reason,
                    row.charged_to,
                    row.source,
                    row.settled_by,
                    decision,
                    None,
                )
            )
    return OrderSessions(counts, evidence)


def _one_pass(
    facility_id: str,
    person_id: str | None,
    channel: str,
    contact_ids: Sequence[str] | None,
    chunk: Sequence[tuple[datetime, datetime]],
    first: int,
) -> Select[Any]:
    """Counts (``evidence_id`` NULL) and evidence (``period`` NULL) in one
    statement, in the same columns: period, person, contact, count, then the
    evidence's id, its facts and its rules (``_NAMED``)."""
    where = [
        SessionRow.facility_id == facility_id,
        SessionRow.channel == channel,
        SessionRow.started_at >= chunk[0][0],
        SessionRow.started_at < chunk[-1][1],
    ]
    if person_id is not None:
        where.append(SessionRow.person_id == person_id)
    if contact_ids is not None:
        where.append(SessionRow.contact_id.in_(sorted(contact_ids)))
    # As in ``completed_counts``: period indexes are numbers made here, literals.
    period = case(
        *(
            (SessionRow.started_at < end, literal_column(str(first + index)))
            for index, (_, end) in enumerate(chunk)
        ),
    ).label("period")
    empty = (null().label(name) for name in _NAMED[4:])
    counted = (
        select(period, SessionRow.person_id, SessionRow.contact_id, func.count().label("n"), *empty)
        .where(*where, SessionRow.status == "completed")
        .group_by(period, SessionRow.person_id, SessionRow.contact_id)
    )
    rules = case((SessionRow.status == "denied", SessionRow.decision["rules"].as_string()))
    named = select(
        null().label("period"),
        SessionRow.person_id,
        SessionRow.contact_id,
        null().label("n"),
        SessionRow.id.label("evidence_id"),
        SessionRow.started_at,
        SessionRow.minutes,
        SessionRow.status,
        SessionRow.reason,
        SessionRow.charged_to,
        SessionRow.source,
        SessionRow.settled_by,
        rules.label("rules"),
    ).where(*where, _EVIDENCE)
    # The typed branch first: a union's columns take the first branch's types.
    both = union_all(named, counted).subquery()
    return select(both).order_by(both.c.started_at, both.c.evidence_id)


# What a report names one by one: refusals, holds that lapsed, and completed
# calls imported that the engine would have refused (charged to no rule).
_EVIDENCE = or_(
    SessionRow.status.in_(("denied", "released", "expired")),
    and_(
        SessionRow.status == "completed",
        SessionRow.source == "import",
        SessionRow.charged_to.is_(None),
    ),
)
# The columns of both kinds of row.
_NAMED = (
    "period",
    "person_id",
    "contact_id",
    "n",
    "evidence_id",
    "started_at",
    "minutes",
    "status",
    "reason",
    "charged_to",
    "source",
    "settled_by",
    "rules",
)
