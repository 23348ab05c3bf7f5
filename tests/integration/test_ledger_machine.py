"""One person's allowance ledger as a state machine: authorize, connect, end,
release, the expiry sweep, a scenario's recorded call and an imported call, in
any order and at any instants, including instants that go backwards.

After every step, on a real (SQLite) store written only through the services:
- no allowance is ever exceeded: every calendar period and every rolling window
  of every quota holds at most its sessions and minutes, and every two sessions
  a gap limit governs are at least its gap apart;
- the ledger equals a recount from the sessions table: each counter and each
  rule's rolling entries (sessions and minutes); each gap mark is at or after
  the end of the latest session its limit governs.

A held or connected call counts at its ``max_minutes``; a completed one at the
minutes charged (an imported call: at most what the engine allowed it).
"""

from __future__ import annotations

import shutil
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from kinline.calls import path as call_path
from kinline.calls.importer import import_calls
from kinline.calls.service import attempt_session
from kinline.db.engine import Database
from kinline.db.tables import GapMarkRow, SessionRow, UsageCounterRow, UsageEntryRow
from kinline.errors import KinlineError
from kinline.rules.model import Period
from kinline.rules.parse import parse_rule
from kinline.rules.periods import period_key
from kinline.scenario import load_into

FACILITY = "fci-machine"
ZONE = ZoneInfo("America/Denver")
# Around the spring DST change: local days of 23 hours are in reach.
BASE = datetime(2026, 3, 6, 0, 0, tzinfo=ZONE)
SPAN_MINUTES = 5 * 24 * 60
COUNTED = ("held", "connected", "completed")

# Each rule set leaves room for a few calls, so steps keep meeting full allowances.
RULE_SETS = {
    "rolling": """
- {id: g, authority: facility_policy, kind: grant, channel: phone, person: ana, contacts: any,
   quota: {count: 2, minutes: 30, per: {rolling_days: 1}}, max_minutes: 20, text: Calls.}
""",
    "calendar": """
- {id: g, authority: facility_policy, kind: grant, channel: phone, person: ana, contacts: any,
   quota: {count: 3, per: day}, max_minutes: 20, text: Calls.}
- {id: l-week, authority: facility_policy, kind: limit, channel: phone, person: ana,
   contacts: any, quota: {minutes: 50, per: week}, text: Fifty minutes a week.}
""",
    "gaps": """
- {id: g, authority: facility_policy, kind: grant, channel: phone, person: ana, contacts: any,
   max_minutes: 20, text: Calls.}
- {id: l-gap, authority: facility_policy, kind: limit, channel: phone, person: ana,
   contacts: any, min_gap_minutes: 30, text: Half an hour between calls.}
- {id: l-zero, authority: facility_policy, kind: limit, channel: phone, person: all,
   contacts: any, min_gap_minutes: 0, text: No overlapping calls.}
""",
    "mixed": """
- {id: g, authority: facility_policy, kind: grant, channel: phone, person: ana, contacts: any,
   quota: {count: 2, per: {rolling_days: 2}}, max_minutes: 25, text: Calls.}
- {id: g-video, authority: incentive, kind: grant, channel: phone, person: ana,
   contacts: {ids: [mum]}, quota: {count: 1, minutes: 15, per: month}, text: Extra.}
- {id: l-day, authority: facility_policy, kind: limit, channel: phone, person: all,
   contacts: any, quota: {count: 2, per: day}, min_gap_minutes: 0, text: Two a day.}
""",
}


def scenario_text(rules: str) -> str:
    return (
        "scenario: ledger-machine\n"
        f"facility: {{id: {FACILITY}, name: FCI Machine, timezone: {ZONE.key}}}\n"
        "people:\n  - {id: ana, name: A. Ana, language: en}\n"
        "contacts:\n"
        "  - {id: mum, person: ana, relationship: parent, phones: ['+1 303 555 0100'],"
        " approved: [phone]}\n"
        "  - {id: bro, person: ana, relationship: sibling, phones: ['+1 303 555 0101'],"
        " approved: [phone]}\n"
        "rules:\n" + rules
    )


def at_minute(minute: int) -> datetime:
    return (BASE + timedelta(minutes=minute)).astimezone(ZoneInfo("UTC"))


instants = st.integers(min_value=0, max_value=SPAN_MINUTES).map(at_minute)
contacts = st.sampled_from(["mum", "bro"])
NUMBERS = {"mum": "+13035550100", "bro": "+13035550101"}


class Ledger(RuleBasedStateMachine):
    template: Path
    folder: Path

    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        path = self.folder / f"machine-{uuid.uuid4().hex}.db"
        shutil.copyfile(self.template, path)
        self.db = Database(f"sqlite:///{path}")
        self.path = path
        self.rules: dict[str, Any] = {}

    @initialize(name=st.sampled_from(sorted(RULE_SETS)))
    def load(self, name: str) -> None:
        file = self.path.with_suffix(".yaml")
        file.write_text(scenario_text(RULE_SETS[name]))
        scenario = load_into(str(file), self.db)
        parsed = (parse_rule(dict(r), ZONE, n) for n, r in enumerate(scenario.rules))
        self.rules = {rule.id: rule for rule in parsed}

    def teardown(self) -> None:
        self.db.dispose()
        self.path.unlink(missing_ok=True)

    # -- steps --------------------------------------------------------------

    @rule(target=holds, contact=contacts, at=instants)
    def authorize(self, contact: str, at: datetime) -> str:
        call = call_path.authorize(
            self.db,
            FACILITY,
            "ana",
            contact_id=contact,
            idempotency_key=uuid.uuid4().hex,
            actor="test",
            at=at,
        )
        return call.hold_id or ""

    @rule(hold=holds, at=instants)
    def connect(self, hold: str, at: datetime) -> None:
        if hold:
            self._tolerant(lambda: call_path.connect(self.db, FACILITY, hold, actor="t", at=at))

    @rule(hold=holds, seconds=st.integers(0, 40 * 60), at=instants)
    def end(self, hold: str, seconds: int, at: datetime) -> None:
        if hold:
            self._tolerant(
                lambda: call_path.end(self.db, FACILITY, hold, seconds, actor="t", at=at)
            )

    @rule(hold=holds, at=instants)
    def release(self, hold: str, at: datetime) -> None:
        if hold:
            self._tolerant(lambda: call_path.release(self.db, FACILITY, hold, actor="t", at=at))

    @rule(at=instants)
    def sweep(self, at: datetime) -> None:
        call_path.sweep(self.db, at=at)

    @rule(contact=contacts, at=instants, minutes=st.integers(0, 40))
    def record(self, contact: str, at: datetime, minutes: int) -> None:
        attempt_session(self.db, FACILITY, "ana", contact, at=at, minutes=minutes, actor="t")

    @rule(contact=contacts, at=instants, seconds=st.integers(0, 40 * 60))
    def import_one(self, contact: str, at: datetime, seconds: int) -> None:
        csv = self.path.with_suffix(".csv")
        start = at.astimezone(ZONE).strftime("%Y-%m-%dT%H:%M:%S")
        csv.write_text(f"person,dialed,start,seconds\nana,{NUMBERS[contact]},{start},{seconds}\n")
        summary = import_calls(self.db, FACILITY, csv, at=at_minute(SPAN_MINUTES + 60), actor="t")
        assert summary.file_error is None and summary.batches_failed == 0, summary.errors

    def _tolerant(self, step: Any) -> None:
        """A step the call's state does not allow is refused; that is not a failure."""
        try:
            step()
        except KinlineError as error:
            if error.status != 409:
                raise

    # -- what must always hold ---------------------------------------------

    def _sessions(self) -> list[SessionRow]:
        with self.db.transaction() as session:
            return list(
                session.scalars(
                    select(SessionRow).where(
                        SessionRow.facility_id == FACILITY, SessionRow.status.in_(COUNTED)
                    )
                )
            )

    @staticmethod
    def _charged(row: SessionRow) -> int:
        if row.source == "import":
            return min(row.minutes, int(row.decision.get("max_minutes") or 0))
        return row.minutes

    @invariant()
    def no_allowance_is_exceeded(self) -> None:
        if not self.rules:
            return
        rows = [row for row in self._sessions() if row.charged_to is not None]
        for rule_id, rule_ in self.rules.items():
            counted = [r for r in rows if rule_id in (r.charged_to, *(r.governed_by or ()))]
            if rule_.quota is not None:
                self._within_quota(rule_id, rule_.quota, counted)
            if rule_.min_gap_minutes is not None and rule_.kind == "limit":
                gap = timedelta(minutes=rule_.min_gap_minutes)
                ordered = sorted(counted, key=lambda r: (r.started_at, r.id))
                for i, earlier in enumerate(ordered):
                    end = earlier.started_at + timedelta(minutes=self._charged(earlier))
                    for later in ordered[i + 1 :]:
                        assert later.started_at - end >= gap, (rule_id, earlier.id, later.id)

    def _within_quota(self, rule_id: str, quota: Any, counted: list[SessionRow]) -> None:
        period: Period = quota.per
        if period.is_rolling:
            span = timedelta(days=period.days)
            groups = [
                [r for r in counted if end.started_at - span < r.started_at <= end.started_at]
                for end in counted
            ]
        else:
            by_key: dict[str, list[SessionRow]] = defaultdict(list)
            for r in counted:
                by_key[period_key(period, r.started_at, ZONE)].append(r)
            groups = list(by_key.values())
        for group in groups:
            if quota.count is not None:
                assert len(group) <= quota.count, (rule_id, [r.id for r in group])
            if quota.minutes is not None:
                used = sum(self._charged(r) for r in group)
                assert used <= quota.minutes, (rule_id, used, [r.id for r in group])

    @invariant()
    def the_ledger_equals_a_recount(self) -> None:
        if not self.rules:
            return
        counters: dict[tuple[str, str], tuple[int, int]] = {}
        entries: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
        marks: dict[str, datetime] = {}
        for row in self._sessions():
            if row.charged_to is None:
                continue
            charged = self._charged(row)
            for rule_id in (row.charged_to, *(row.governed_by or ())):
                rule_ = self.rules[rule_id]
                if rule_.quota is not None and rule_.quota.per.is_rolling:
                    entries[rule_id].append((row.started_at, charged))
                elif rule_.quota is not None:
                    key = (rule_id, period_key(rule_.quota.per, row.started_at, ZONE))
                    sessions, minutes = counters.get(key, (0, 0))
                    counters[key] = (sessions + 1, minutes + charged)
                if rule_.min_gap_minutes is not None and rule_id != row.charged_to:
                    end = row.started_at + timedelta(minutes=charged)
                    marks[rule_id] = max(end, marks.get(rule_id, end))
        with self.db.transaction() as session:
            stored = {
                (c.rule_id, c.period_key): (c.sessions, c.minutes)
                for c in session.scalars(select(UsageCounterRow))
                if (c.sessions, c.minutes) != (0, 0)
            }
            stored_entries: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
            for e in session.scalars(select(UsageEntryRow)):
                stored_entries[e.rule_id].append((e.started_at, e.minutes))
            stored_marks = {m.rule_id: m.last_end for m in session.scalars(select(GapMarkRow))}
        assert stored == counters
        assert {k: sorted(v) for k, v in stored_entries.items() if v} == {
            k: sorted(v) for k, v in entries.items() if v
        }
        # A gap mark is never earlier than the end of the latest governed session
        # (it may stay later, where a call released after an earlier call was
        # shortened left it: a wait too long, never a call too soon).
        for rule_id, latest in marks.items():
            mark = stored_marks.get(rule_id)
            assert mark is not None and mark >= latest, (rule_id, stored_marks, marks)


def test_the_ledger_holds_under_any_sequence_of_steps(
    sqlite_template: Path, tmp_path: Path
) -> None:
    Ledger.template = sqlite_template
    Ledger.folder = tmp_path
    run_state_machine_as_test(
        Ledger,
        settings=settings(
            max_examples=60,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
