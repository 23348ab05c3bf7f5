"""Every query of the compliance reports' own: the facility's status rule, and
the sessions an order's report counts, read as plain values.

Beside ``courts.repository`` rather than in it: a separate module keeps the
reports' store apart from the orders' (the two grew at the same time), and
services reach both the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import and_, case, func, literal_column, null, or_, select, type_coerce
from sqlalchemy.orm import Session

from kinline.db.tables import ComplianceSettingsRow, SessionRow


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
