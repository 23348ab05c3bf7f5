"""Every query of the compliance reports' own: the facility's status rule.

Beside ``courts.repository`` rather than in it: a separate module keeps the
reports' store apart from the orders' (the two grew at the same time), and
services reach both the same way.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from kinline.db.tables import ComplianceSettingsRow


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
