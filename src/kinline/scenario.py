"""The SPEC runner: plays a scenario through the real services and compares.

There is one engine: every step goes through the same services, repositories
and ``decide()`` that the API and the telephony hook use, on a real database
(a fresh embedded one for ``check``, the configured one for ``load``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kinline.calls.service import attempt_session, decide_contact
from kinline.changes.service import approve_contact, impose_rule, lift_rule
from kinline.changes.service import revoke_contact as revoke
from kinline.courts.service import (
    compliance_report,
    record_protected_activity,
    retaliation_report,
)
from kinline.db.engine import Database
from kinline.db.migrate import upgrade
from kinline.errors import Conflict, KinlineError
from kinline.notices.service import notice_counts
from kinline.people.service import add_contact, admit_person, register_facility
from kinline.rules.decide import Decision
from kinline.rules.retaliation import ProtectedActivity
from kinline.scenariofile import LineMap, Scenario, ScenarioFormatError, Step, load_scenario

ACTOR = "scenario"
SET_COMPARED = frozenset({"rules", "conflicts"})


@dataclass(frozen=True)
class Mismatch:
    path: str
    where: str
    key: str
    expected: object
    got: object

    def __str__(self) -> str:
        return (
            f"{self.path}: {self.where}: {self.key}: expected {self.expected!r}, got {self.got!r}"
        )


@dataclass
class ScenarioResult:
    path: str
    passed: int = 0
    failures: list[Mismatch] = field(default_factory=list)

    def compare(self, where: str, key: str, expected: object, got: object) -> None:
        if _same(key, expected, got):
            self.passed += 1
        else:
            self.failures.append(Mismatch(self.path, where, key, expected, got))


def _same(key: str, expected: object, got: object) -> bool:
    if key in SET_COMPARED and isinstance(expected, list) and isinstance(got, list):
        return {str(item) for item in expected} == {str(item) for item in got}
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected is got
    return expected == got


def setup_time(scenario: Scenario) -> datetime:
    """A moment before anything in the file happens: when its starting state is entered."""
    moments = [step.at for step in scenario.steps]
    if not moments:
        return datetime(2000, 1, 1, tzinfo=scenario.facility.zone)
    return min(moments) - timedelta(days=1)


def play(
    scenario: Scenario,
    db: Database,
    on_step: Callable[[Step, Decision | None], None] | None = None,
) -> None:
    """Enter the scenario's starting state and apply its timeline."""
    start = setup_time(scenario)
    facility_id = scenario.facility.id
    try:
        register_facility(db, scenario.facility, at=start, actor=ACTOR)
        for person in scenario.people:
            admit_person(
                db,
                person,
                at=start,
                actor=ACTOR,
                housing_unit=scenario.housing_units.get(person.id),
            )
        for entry in scenario.contacts:
            add_contact(
                db,
                facility_id,
                entry.contact,
                name=entry.name,
                phones=entry.phones,
                at=start,
                actor=ACTOR,
                email=entry.email,
                notify_by_email=entry.notify_by_email,
            )
    except KinlineError as error:
        raise ScenarioFormatError(scenario.path, None, error.message) from None
    for rule in scenario.rules:
        try:
            impose_rule(db, facility_id, rule, at=start, actor=ACTOR, in_force_at_start=True)
        except KinlineError as error:
            raise ScenarioFormatError(scenario.path, rule.line, _explain(error)) from None
    for step in scenario.steps:
        try:
            decision = _apply(step, facility_id, db)
        except KinlineError as error:
            raise ScenarioFormatError(
                scenario.path, step.line, f"step {step.number}: {_explain(error)}"
            ) from None
        if on_step is not None:
            on_step(step, decision)


def _explain(error: KinlineError) -> str:
    return f"{error.field}: {error.message}" if error.field else error.message


def _apply(step: Step, facility_id: str, db: Database) -> Decision | None:
    body = step.body
    at = step.at
    if step.action == "call":
        recorded = attempt_session(
            db,
            facility_id,
            body["person"],
            body["contact"],
            body.get("channel", "phone"),
            at=at,
            minutes=body["minutes"],
            actor=ACTOR,
        )
        return recorded.decision.decision
    if step.action == "check":
        explained = decide_contact(
            db, facility_id, body["person"], body["contact"], body.get("channel", "phone"), at=at
        )
        return explained.decision
    if step.action == "filing":
        activity = ProtectedActivity(body["id"], body["person"], body["kind"], at)
        record_protected_activity(db, facility_id, activity, actor=ACTOR, at=at)
    elif step.action == "impose":
        impose_rule(db, facility_id, body, at=at, actor=ACTOR)
    elif step.action == "lift":
        reason = body.get("reason") or "Lifted."
        # A rule that has already ended: nothing changes, so nothing is written.
        with suppress(Conflict):
            lift_rule(db, facility_id, body["rule"], reason=reason, at=at, actor=ACTOR)
    elif step.action == "approve":
        approve_contact(
            db,
            facility_id,
            body["contact"],
            body["channel"],
            at=at,
            actor=ACTOR,
            reason=body.get("reason"),
        )
    elif step.action == "revoke":
        reason = body.get("reason") or "No reason was given."
        # A channel that was not approved: nothing changes, so nothing is written.
        with suppress(Conflict):
            revoke(
                db, facility_id, body["contact"], body["channel"], reason=reason, at=at, actor=ACTOR
            )
    return None


def check(scenario: Scenario, db: Database) -> ScenarioResult:
    """Play the scenario and compare every expectation it states."""
    result = ScenarioResult(scenario.path)

    def on_step(step: Step, decision: Decision | None) -> None:
        if step.expect is None or decision is None:
            return
        got = decision.as_dict()
        for key, expected in step.expect.items():
            where = f"step {step.number} (line {step.expect.line_of(key)})"
            result.compare(where, key, expected, got[key])

    play(scenario, db, on_step)
    if scenario.expect_end is not None:
        _check_end(scenario, scenario.expect_end, db, result)
    return result


def _check_end(scenario: Scenario, end: LineMap, db: Database, result: ScenarioResult) -> None:
    facility_id = scenario.facility.id
    if "notices" in end:
        counts = notice_counts(db, facility_id)
        notices: LineMap = end["notices"]
        for person, expected in notices.items():
            where = f"expect_end (line {notices.line_of(person)})"
            result.compare(where, f"notices.{person}", expected, counts.get(person, 0))
    if "retaliation_flags" in end:
        flags = retaliation_report(db, facility_id)
        expected_flags = sorted(
            (str(flag["action"]), str(flag["activity"]), flag["days"])
            for flag in end["retaliation_flags"]
        )
        got_flags = sorted((flag.action, flag.activity, flag.days) for flag in flags)
        result.compare(
            f"expect_end (line {end.line_of('retaliation_flags')})",
            "retaliation_flags",
            _as_flags(expected_flags),
            _as_flags(got_flags),
        )
    for entry in end.get("compliance", []):
        try:
            report = compliance_report(db, facility_id, entry["order"], str(entry["period"]))
        except KinlineError as error:
            raise ScenarioFormatError(scenario.path, entry.line, _explain(error)) from None
        for key in ("entitled", "delivered", "shortfall"):
            if key in entry:
                where = (
                    f"expect_end compliance {entry['order']} {entry['period']} (line {entry.line})"
                )
                result.compare(where, key, entry[key], getattr(report, key))


def _as_flags(flags: Iterable[tuple[str, str, Any]]) -> list[dict[str, Any]]:
    return [{"action": a, "activity": b, "days": c} for a, b, c in flags]


class FreshDatabases:
    """Fresh embedded databases, each a copy of one migrated template (migrating is slow)."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="kinline-scenarios-"))
        self._template = self._dir / "template.db"
        upgrade(f"sqlite:///{self._template}")
        self._count = 0

    @contextmanager
    def fresh(self) -> Iterator[Database]:
        self._count += 1
        path = self._dir / f"scenario-{self._count}.db"
        shutil.copyfile(self._template, path)
        db = Database(f"sqlite:///{path}")
        try:
            yield db
        finally:
            db.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


def check_file(path: str, databases: FreshDatabases) -> ScenarioResult:
    scenario = load_scenario(path)
    with databases.fresh() as db:
        return check(scenario, db)


def load_into(path: str, db: Database) -> Scenario:
    """Put a scenario's state into ``db`` (``kinline scenario load``)."""
    scenario = load_scenario(path)
    play(scenario, db)
    return scenario
