"""``kinline import calls`` deciding in several processes decides as in one.

The people's calls are decided in a pool's processes, a share of the people
each; the sessions (their decisions and row order), the counters, the rolling
entries, the gap marks and the summary must be exactly those of an import
deciding in its own process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from test_import_calls import (
    ACTOR,
    MOTHER,
    NOW,
    PARTNER,
    RICH_RULES,
    SISTER,
    setup_facility,
    write_csv,
)

from kinline.calls.importer import import_calls
from kinline.db.engine import Database
from kinline.db.tables import GapMarkRow, SessionRow, UsageCounterRow, UsageEntryRow


def stored(db: Database, facility_id: str) -> dict[str, list[Any]]:
    """What an import wrote for ``facility_id``, in a comparable form."""
    with db.transaction() as session:

        def rows(*columns: Any) -> list[Any]:
            table = columns[0].class_
            query = select(*columns).where(table.facility_id == facility_id)
            return sorted(tuple(row) for row in session.execute(query))

        sessions = session.execute(
            select(
                SessionRow.person_id,
                SessionRow.contact_id,
                SessionRow.started_at,
                SessionRow.minutes,
                SessionRow.reason,
                SessionRow.charged_to,
                SessionRow.decision,
            )
            .where(SessionRow.facility_id == facility_id)
            .order_by(SessionRow.id)
        )
        return {
            "sessions": [tuple(row) for row in sessions],
            "counters": rows(
                UsageCounterRow.person_id,
                UsageCounterRow.rule_id,
                UsageCounterRow.period_key,
                UsageCounterRow.sessions,
                UsageCounterRow.minutes,
            ),
            "entries": rows(
                UsageEntryRow.person_id,
                UsageEntryRow.rule_id,
                UsageEntryRow.started_at,
                UsageEntryRow.minutes,
            ),
            "gaps": rows(GapMarkRow.person_id, GapMarkRow.rule_id, GapMarkRow.last_end),
        }


def test_two_processes_decide_every_call_as_one_does(db: Database, tmp_path: Path) -> None:
    setup_facility(db, RICH_RULES, "one")
    setup_facility(db, RICH_RULES, "two")
    numbers = {"okafor": (MOTHER, SISTER), "reyes": (PARTNER,)}
    rows = []
    for day in range(2, 20):
        for hour in (6, 9, 10, 14, 21):
            for person, dialed in numbers.items():
                for minute, number in zip((0, 50), dialed, strict=False):
                    start = f"2026-11-{day:02d}T{hour:02d}:{minute:02d}"
                    rows.append((person, number, start, (day * hour * 37) % 2400, "phone"))
    rows.reverse()  # each person's calls are still decided in time order
    path = write_csv(tmp_path / "calls.csv", rows)

    one = import_calls(db, "one", path, at=NOW, actor=ACTOR, batch_size=40)
    two = import_calls(db, "two", path, at=NOW, actor=ACTOR, batch_size=40, workers=2)

    assert one.exit_code == two.exit_code == 0
    assert one.imported == two.imported == len(rows)
    assert 0 < one.outside_policy == two.outside_policy < len(rows)
    assert stored(db, "one") == stored(db, "two")
    assert stored(db, "one")["entries"] and stored(db, "one")["gaps"]
