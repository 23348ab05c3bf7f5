"""Every query of the compliance reports' own: the facility's status rule, and
the sessions an order's report counts, read as plain values.

Beside ``courts.repository`` rather than in it: a separate module keeps the
reports' store apart from the orders' (the two grew at the same time), and
services reach both the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select
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
) -> list[SessionFacts]:
    """Every session of the person, or of everyone, on ``channel``, started in
    ``[start, end)``, in time order: plain columns by one Core statement, and the
    stored decisions of the refused ones by a second."""
    where = [
        SessionRow.facility_id == facility_id,
        SessionRow.channel == channel,
        SessionRow.started_at >= start,
        SessionRow.started_at < end,
    ]
    if person_id is not None:
        where.append(SessionRow.person_id == person_id)
    rows = session.execute(
        select(*_FACTS).where(*where).order_by(SessionRow.started_at, SessionRow.id)
    ).all()
    refused = {
        row.id: (row.decision, row.governed_by)
        for row in session.execute(
            select(SessionRow.id, SessionRow.decision, SessionRow.governed_by).where(
                *where, SessionRow.status == "denied"
            )
        ).all()
    }
    none = (None, None)
    return [SessionFacts(*row, *refused.get(row[0], none)) for row in rows]
