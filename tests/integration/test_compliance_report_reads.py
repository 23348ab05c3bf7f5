"""How a compliance report without a timeline (JSON, CSV) reads the database,
on SQLite and PostgreSQL: in one transaction, by a fixed number of statements
whatever the number of sessions, contacts or periods (the completed calls
counted by the database, the evidence read with them in one statement); and
for an order that names no person (everyone's calls with any contact) with
the figures and evidence of the report that reads every call.
"""

from __future__ import annotations

import gc
import importlib.util
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from _databases import DbTemplate
from sqlalchemy import event

from kinline.courts.compliance import order_report
from kinline.db.engine import Database
from kinline.errors import NotFound
from kinline.scenario import load_into


def _bench() -> ModuleType:
    """bench/report.py: the generator and the SQL aggregate the report is held to."""
    loaded = sys.modules.get("bench_report")
    if loaded is not None:
        return loaded
    path = Path(__file__).resolve().parents[2] / "bench" / "report.py"
    spec = importlib.util.spec_from_file_location("bench_report", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_report"] = module
    spec.loader.exec_module(module)
    return module


BENCH = _bench()
F = BENCH.FACILITY
DENVER = ZoneInfo("America/Denver")
AT = datetime(2026, 1, 15, tzinfo=UTC)

GENERATED = DbTemplate(
    "compliance_report_generated",
    lambda db: BENCH.build(db, sessions=4_000, mine=1_500, people=40, seed=7),
)


@contextmanager
def _reads(db: Database) -> Iterator[Counter[str]]:
    """Counts the SELECT statements sent and the transactions begun."""
    seen: Counter[str] = Counter()

    def statement(_c: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            seen["selects"] += 1

    def begun(_connection: Any) -> None:
        seen["transactions"] += 1

    event.listen(db.engine, "before_cursor_execute", statement)
    event.listen(db.engine, "begin", begun)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", statement)
        event.remove(db.engine, "begin", begun)


def _delivered(db: Database, order: str, first: str, last: str) -> dict[str, int]:
    report = order_report(db, F, order, first, last, at=AT, timeline=False)
    return {p.key: p.delivered for p in report.requirements[0].periods}


def test_a_report_in_figures_reads_in_one_transaction_by_three_statements(
    fresh_db: Any,
) -> None:
    """The facility with its status rule and the order's rule; the person's
    contacts with the rules on the channel (one statement: both depend only
    on the order's rule, so they are read together); the sessions (counted,
    and the evidence). Not one more for more sessions, nor for a longer
    range."""
    db = fresh_db(GENERATED)
    with _reads(db) as seen:
        before = _delivered(db, BENCH.ORDER, BENCH.FIRST, BENCH.LAST)
    assert seen == {"selects": 3, "transactions": 1}

    BENCH.add_sessions(db, BENCH.session_rows(sessions=2_000, mine=2_000, people=1, seed=11))
    with _reads(db) as seen:
        after = _delivered(db, BENCH.ORDER, BENCH.FIRST, BENCH.LAST)
    assert seen == {"selects": 3, "transactions": 1}
    assert sum(after.values()) > sum(before.values())  # the new calls are counted
    assert after == {key: delivered for key, (_, delivered) in BENCH.sql_figures(db).items()}

    with _reads(db) as seen:
        _delivered(db, BENCH.ORDER, "2024-03", "2024-04")
    assert seen == {"selects": 3, "transactions": 1}


# --- an order that names no person ---------------------------------------------

EVERYONE = "order-everyone"
SCENARIO = f"""\
scenario: compliance-report-everyone
facility: {{id: {F}, name: FCI Bench, timezone: America/Denver}}
people:
  - {{id: ana, name: A. Ana, language: en}}
  - {{id: bo, name: B. Bo, language: en}}
contacts:
  - {{id: kid, person: ana, name: K. Ana, relationship: child,
     phones: ["+1 303 555 0100"], approved: [phone]}}
  - {{id: lawyer, person: ana, name: J. Counsel, relationship: attorney, privileged: true,
     phones: ["+1 303 555 0109"], approved: [phone]}}
  - {{id: bo-kid, person: bo, name: K. Bo, relationship: child,
     phones: ["+1 303 555 0200"], approved: [phone]}}
rules:
  - {{id: g-phone, authority: facility_policy, kind: grant, channel: phone, person: all,
     contacts: any, quota: {{minutes: 600, per: month}}, max_minutes: 20,
     text: Standard telephone allowance.}}
  - {{id: {EVERYONE}, authority: court_order, kind: grant, channel: phone, person: all,
     contacts: any, quota: {{count: 3, per: month}}, max_minutes: 15,
     from: 2024-01-01, case_number: CV-7, text: Three calls a month for everyone.}}
  - {{id: bo-lockdown, authority: security_measure, kind: deny, channel: phone, person: bo,
     contacts: any, from: 2024-02-10, until: 2024-02-20, overrides: [{EVERYONE}],
     text: Calls suspended on the unit.}}
"""

# (day of February 2024, person, contact, status): the privileged contact is
# not "any" contact of a selector; "ghost" is nobody's contact; the video call
# is on another channel.
FEBRUARY = [
    (2, "ana", "kid", "completed", "phone"),
    (3, "ana", "kid", "completed", "phone"),
    (4, "ana", "lawyer", "completed", "phone"),
    (5, "ana", "ghost", "completed", "phone"),
    (6, "ana", "kid", "completed", "video"),
    (7, "bo", "bo-kid", "completed", "phone"),
    (12, "bo", "bo-kid", "denied", "phone"),
    (13, "bo", "bo-kid", "expired", "phone"),
    (14, "ana", "kid", "denied", "phone"),
]


def _row(day: int, person: str, contact: str, status: str, channel: str) -> dict[str, object]:
    at = datetime(2024, 2, day, 10, tzinfo=DENVER).astimezone(UTC)
    refused = status == "denied"
    return {
        "facility_id": F,
        "person_id": person,
        "contact_id": contact,
        "channel": channel,
        "started_at": at,
        "minutes": 0 if refused else 12,
        "status": status,
        "reason": "denied" if refused else None,
        "charged_to": None if refused else "g-phone",
        "governed_by": [] if refused else ["g-phone"],
        "decision": {
            "allowed": not refused,
            "reason": "denied" if refused else None,
            "rules": ["bo-lockdown"] if refused else ["g-phone"],
        },
        "recorded_at": at,
        "source": "recorded",
    }


def _everyone(db: Database) -> None:
    with tempfile.TemporaryDirectory(prefix="kinline-test-") as folder:
        path = Path(folder) / "scenario.yaml"
        path.write_text(SCENARIO)
        load_into(str(path), db)
    rows = [_row(*one) for one in FEBRUARY]
    # An imported call the engine would have refused: delivered, and counted apart.
    imported = _row(20, "bo", "bo-kid", "completed", "phone")
    rows.append({**imported, "source": "import", "charged_to": None, "reason": "denied"})
    march = datetime(2024, 3, 1, 10, tzinfo=DENVER).astimezone(UTC)
    rows.append({**_row(2, "ana", "kid", "completed", "phone"), "started_at": march})
    BENCH.add_sessions(db, rows)


EVERYONE_DB = DbTemplate("compliance_report_everyone", _everyone)


def test_an_order_naming_no_person_counts_everyones_calls_with_any_contact(
    fresh_db: Any,
) -> None:
    db = fresh_db(EVERYONE_DB)
    with _reads(db) as seen:
        counted = order_report(db, F, EVERYONE, "2024-01", "2024-03", at=AT, timeline=False)
    assert seen == {"selects": 3, "transactions": 1}  # every contact read at once
    read = order_report(db, F, EVERYONE, "2024-01", "2024-03", at=AT)
    assert counted.requirements == read.requirements

    january, february, march = counted.requirements[0].periods
    assert (january.entitled, january.delivered, january.evidence) == (3, 0, ())
    # ana's two calls with her child, bo's call and his imported one; not the
    # privileged contact's, not nobody's contact's, not the video call.
    assert (february.delivered, february.outside_policy) == (4, 1)
    assert [(e.kind, e.who) for e in february.evidence] == [
        ("override", ""),
        ("refusal", "K. Bo"),
        ("lapsed", "K. Bo"),
        ("refusal", "K. Ana"),
        ("outside_policy", "K. Bo"),
    ]
    (override,) = [e for e in february.evidence if e.kind == "override"]
    assert override.rules == ("bo-lockdown",) and override.days == 10
    assert (march.delivered, march.evidence) == (1, ())


def test_the_refusals_name_the_rules_of_their_stored_decision(fresh_db: Any) -> None:
    db = fresh_db(EVERYONE_DB)
    report = order_report(db, F, EVERYONE, "2024-02", "2024-02", at=AT, timeline=False)
    refusals = [e for e in report.requirements[0].periods[0].evidence if e.kind == "refusal"]
    assert [(e.at.astimezone(DENVER).day, e.rules) for e in refusals] == [
        (12, ("bo-lockdown",)),
        (14, ("bo-lockdown",)),
    ]
    assert all(e.at.tzinfo is UTC for e in refusals)  # read as UTC, as every instant
    assert refusals[0].at == datetime(2024, 2, 12, 10, tzinfo=DENVER)


def test_a_report_is_built_with_the_collector_paused_and_restores_it(fresh_db: Any) -> None:
    """Cyclic garbage collection is off while the report reads (its thousands
    of evidence objects are not walked again and again), and on again after
    it, also when the report fails."""
    db = fresh_db(EVERYONE_DB)
    collecting: list[bool] = []

    def statement(*_args: Any) -> None:
        collecting.append(gc.isenabled())

    assert gc.isenabled()
    event.listen(db.engine, "before_cursor_execute", statement)
    try:
        order_report(db, F, EVERYONE, "2024-01", "2024-03", at=AT, timeline=False)
        assert collecting and not any(collecting)
        assert gc.isenabled()
        with pytest.raises(NotFound):
            order_report(db, F, "no-such-order", "2024-01", "2024-03", at=AT, timeline=False)
        assert gc.isenabled()
    finally:
        event.remove(db.engine, "before_cursor_execute", statement)
