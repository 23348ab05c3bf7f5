"""``kinline import calls``: completed calls from a vendor export, on SQLite and PostgreSQL.

Imported calls must count exactly as live ones: the next decision sees them,
the counters hold what ``attempt_session`` would have put there, and a batch
with a bad row writes nothing while the others commit.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from _databases import DbTemplate
from sqlalchemy import func, select
from typer.testing import CliRunner

from kinline.calls.importer import ImportSummary, import_calls
from kinline.calls.service import attempt_session, decide_contact
from kinline.changes.service import approve_contact, impose_rule
from kinline.cli import app
from kinline.courts.service import compliance_report
from kinline.db.engine import Database
from kinline.db.tables import (
    AuditEventRow,
    GapMarkRow,
    SessionRow,
    UsageCounterRow,
    UsageEntryRow,
)
from kinline.people.model import Facility, Person
from kinline.people.service import (
    add_contact,
    admit_person,
    register_facility,
    require_person,
)
from kinline.rules.model import Channel, Contact

ZONE = ZoneInfo("America/New_York")
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
NOW = datetime(2026, 12, 15, 12, tzinfo=UTC)
ACTOR = "test"
HEADER = ("person", "dialed", "start", "seconds", "channel")
MOTHER = "+1 404 555 0134"
SISTER = "(404) 555-0177"
PARTNER = "+1 718 555 0123"
DEMO = Path(__file__).resolve().parents[2] / "src" / "kinline" / "demo"
runner = CliRunner()

MONTHLY = {
    "id": "monthly",
    "authority": "facility_policy",
    "kind": "grant",
    "channel": "phone",
    "person": "all",
    "contacts": "any",
    "quota": {"count": 2, "per": "month"},
    "max_minutes": 20,
}


def setup_facility(db: Database, rules: Iterable[dict[str, Any]], facility_id: str = "wcf") -> None:
    register_facility(
        db, Facility(facility_id, "Westbrook", "America/New_York"), at=T0, actor=ACTOR
    )
    admit_person(db, Person(facility_id, "okafor", "D. Okafor", "en"), at=T0, actor=ACTOR)
    admit_person(db, Person(facility_id, "reyes", "L. Reyes", "es"), at=T0, actor=ACTOR)
    phone = frozenset({Channel.PHONE})
    for contact, phones in (
        (Contact("mother", "okafor", "parent", approved=phone), [MOTHER]),
        (Contact("sister", "okafor", "sibling", approved=phone), [SISTER]),
        (Contact("partner", "reyes", "partner", approved=phone), [PARTNER]),
    ):
        add_contact(
            db, facility_id, contact, name=contact.id.title(), phones=phones, at=T0, actor=ACTOR
        )
    for rule in rules:
        impose_rule(db, facility_id, rule, at=T0, actor=ACTOR, in_force_at_start=True)


WESTBROOK = DbTemplate("import_westbrook_monthly", lambda db: setup_facility(db, [MONTHLY]))


@pytest.fixture
def facility(fresh_db: Callable[[DbTemplate], Database]) -> Database:
    return fresh_db(WESTBROOK)


def write_csv(path: Path, rows: Iterable[Sequence[object]], header: Sequence[str] = HEADER) -> Path:
    lines = [",".join(header)]
    lines += [",".join(str(value) for value in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(db: Database, path: Path, **options: Any) -> ImportSummary:
    return import_calls(db, "wcf", path, at=NOW, actor=ACTOR, **options)


def count(db: Database, table: Any, **where: str) -> int:
    with db.transaction() as session:
        query = select(func.count()).select_from(table)
        for name, value in where.items():
            query = query.where(getattr(table, name) == value)
        return session.scalar(query) or 0


def imported_sessions(db: Database) -> list[SessionRow]:
    with db.transaction() as session:
        return list(
            session.scalars(
                select(SessionRow).where(SessionRow.source == "import").order_by(SessionRow.id)
            )
        )


def counters(db: Database, facility_id: str = "wcf") -> dict[tuple[str, str, str], tuple[int, int]]:
    with db.transaction() as session:
        rows = session.scalars(
            select(UsageCounterRow).where(UsageCounterRow.facility_id == facility_id)
        )
        return {(r.person_id, r.rule_id, r.period_key): (r.sessions, r.minutes) for r in rows}


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZONE).astimezone(UTC)


def test_imported_calls_count_towards_the_next_decision(facility: Database, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "calls.csv",
        [
            ("okafor", MOTHER, "2026-11-02T10:00:00", 600, "phone"),
            ("okafor", SISTER, "2026-11-05 18:30", 1500, ""),
        ],
    )
    assert decide_contact(facility, "wcf", "okafor", "mother", at=local("2026-11-09T10:00"))
    summary = run(facility, path)
    assert (summary.imported, summary.outside_policy, summary.exit_code) == (2, 0, 0)
    assert (summary.batches_committed, summary.batches_failed) == (1, 0)

    refused = decide_contact(facility, "wcf", "okafor", "mother", at=local("2026-11-09T10:00"))
    assert not refused.decision.allowed
    assert refused.decision.reason == "quota_exhausted"
    assert refused.decision.rules == ("monthly",)
    # Reyes has his own allowance; December is a new month.
    assert decide_contact(facility, "wcf", "reyes", "partner", at=local("2026-11-09T10:00"))
    assert decide_contact(
        facility, "wcf", "okafor", "mother", at=local("2026-12-01T10:00")
    ).decision.allowed

    # 600 s is 10 minutes; 1500 s is 25, charged at the grant's 20-minute cap.
    assert counters(facility) == {("okafor", "monthly", "2026-11"): (2, 30)}
    first, second = imported_sessions(facility)
    assert (first.contact_id, first.minutes, first.charged_to) == ("mother", 10, "monthly")
    assert (second.contact_id, second.minutes, second.charged_to) == ("sister", 25, "monthly")
    assert second.started_at == local("2026-11-05T18:30")
    assert second.ended_at == local("2026-11-05T18:55")
    assert {s.status for s in (first, second)} == {"completed"}
    assert first.decision["allowed"] is True
    assert first.decision["max_minutes"] == 20


def test_a_call_the_rules_would_refuse_is_recorded_outside_policy_and_charges_nothing(
    facility: Database, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "calls.csv",
        [
            ("okafor", MOTHER, "2026-11-02T10:00", 60, "phone"),
            ("okafor", MOTHER, "2026-11-03T10:00", 61, "phone"),
            ("okafor", SISTER, "2026-11-04T10:00", 300, "phone"),
            # Mother is not approved for video.
            ("okafor", MOTHER, "2026-11-01T09:00", 120, "video"),
        ],
    )
    summary = run(facility, path)
    assert (summary.imported, summary.outside_policy, summary.exit_code) == (4, 2, 0)
    assert counters(facility) == {("okafor", "monthly", "2026-11"): (2, 3)}
    by_row = {s.started_at: s for s in imported_sessions(facility)}
    third = by_row[local("2026-11-04T10:00")]
    assert (third.status, third.reason, third.charged_to, third.minutes) == (
        "completed",
        "quota_exhausted",
        None,
        5,
    )
    assert third.governed_by == []
    assert third.decision["allowed"] is False
    video = by_row[local("2026-11-01T09:00")]
    assert (video.channel, video.reason, video.charged_to) == ("video", "not_on_list", None)


def test_calls_are_decided_in_time_order_whatever_the_row_order(
    facility: Database, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "calls.csv",
        [
            ("okafor", MOTHER, "2026-11-20T10:00", 60, "phone"),
            ("okafor", MOTHER, "2026-11-10T10:00", 60, "phone"),
            ("okafor", MOTHER, "2026-11-02T10:00", 60, "phone"),
        ],
    )
    assert run(facility, path).outside_policy == 1
    by_start = {s.started_at: s.reason for s in imported_sessions(facility)}
    assert by_start == {
        local("2026-11-02T10:00"): None,
        local("2026-11-10T10:00"): None,
        local("2026-11-20T10:00"): "quota_exhausted",
    }


def test_approvals_are_read_as_of_each_call(facility: Database, tmp_path: Path) -> None:
    impose_rule(
        facility,
        "wcf",
        dict(MONTHLY, id="video", channel="video", quota={"count": 9, "per": "month"}),
        at=T0,
        actor=ACTOR,
        in_force_at_start=True,
    )
    approve_contact(facility, "wcf", "mother", "video", at=local("2026-11-10T00:00"), actor=ACTOR)
    path = write_csv(
        tmp_path / "calls.csv",
        [
            ("okafor", MOTHER, "2026-11-09T23:59", 60, "video"),
            ("okafor", MOTHER, "2026-11-10T00:00", 60, "video"),
        ],
    )
    assert run(facility, path).outside_policy == 1
    reasons = [(s.started_at, s.reason, s.charged_to) for s in imported_sessions(facility)]
    assert reasons == [
        (local("2026-11-09T23:59"), "not_on_list", None),
        (local("2026-11-10T00:00"), None, "video"),
    ]


def test_every_kind_of_bad_row_is_reported_by_row_and_field_and_nothing_is_written(
    facility: Database, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "person,dialed,start,seconds,channel\n"
        f"okafor,{MOTHER},2026-11-02T10:00,60,phone\n"
        f"nobody,{MOTHER},2026-11-02T10:00,60,phone\n"
        "okafor,not a number,2026-11-02T10:00,60,phone\n"
        f"okafor,{PARTNER},2026-11-02T10:00,60,phone\n"
        f"okafor,{MOTHER},2026-13-02T10:00,60,phone\n"
        f"okafor,{MOTHER},2026-03-08T02:30,60,phone\n"
        f"okafor,{MOTHER},2026-11-02,60,phone\n"
        f"okafor,{MOTHER},2026-11-02T10:00+00:00,60,phone\n"
        f"okafor,{MOTHER},2026-11-02T10:00,-5,phone\n"
        f"okafor,{MOTHER},2026-11-02T10:00,12.5,phone\n"
        f"okafor,{MOTHER},2026-11-02T10:00,60,fax\n"
        f"okafor,{MOTHER},2026-11-02T10:00,60\n"
        "\n"
        f",,2026-11-02T10:00,,phone\n",
        encoding="utf-8",
    )
    summary = run(facility, path)
    assert summary.exit_code == 1
    assert (summary.rows, summary.invalid_rows, summary.failed_rows) == (13, 12, 13)
    assert (summary.batches_committed, summary.batches_failed, summary.imported) == (0, 1, 0)
    fields = [line.split(": ")[:2] for line in summary.errors]
    assert fields == [
        ["row 3", "person"],
        ["row 4", "dialed"],
        ["row 5", "dialed"],
        ["row 6", "start"],
        ["row 7", "start"],
        ["row 8", "start"],
        ["row 9", "start"],
        ["row 10", "seconds"],
        ["row 11", "seconds"],
        ["row 12", "channel"],
        ["row 13", "columns"],
        ["row 15", "person"],
        ["row 15", "dialed"],
        ["row 15", "seconds"],
    ]
    assert summary.error_count == len(summary.errors)
    assert "no person 'nobody'" in summary.errors[0]
    assert "+17185550123 is not a number of any contact of okafor" in summary.errors[2]
    assert "does not exist in America/New_York" in summary.errors[4]
    assert "no time of day" in summary.errors[5]
    assert "without an offset" in summary.errors[6]
    assert "negative" in summary.errors[7]
    assert "expected 5 values, got 4" in summary.errors[10]
    assert count(facility, SessionRow) == 0
    assert count(facility, UsageCounterRow) == 0
    assert count(facility, AuditEventRow, tag="imports:calls:batch") == 0


def test_a_start_the_clocks_passed_twice_is_the_earlier(facility: Database, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "calls.csv",
        [
            ("okafor", MOTHER, "2026-11-01T01:30", 60, "phone"),
            ("okafor", MOTHER, "2026-03-08T03:00", 60, "phone"),
        ],
    )
    assert run(facility, path).exit_code == 0
    starts = [s.started_at for s in imported_sessions(facility)]
    assert starts == [
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # 01:30 EDT, not EST
        datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # 03:00 EDT, the first minute after the gap
    ]


def test_a_bad_batch_writes_nothing_while_the_others_commit(
    facility: Database, tmp_path: Path
) -> None:
    rows = [
        ("okafor", MOTHER, "2026-10-01T10:00", 60, "phone"),
        ("reyes", PARTNER, "2026-10-01T10:00", 120, "phone"),
        ("okafor", MOTHER, "2026-10-02T10:00", 60, "phone"),
        ("reyes", PARTNER, "2026-10-02T10:00", 60, "bus"),  # row 5: fails batch 2
        ("okafor", SISTER, "2026-11-01T10:00", 180, "phone"),
        ("reyes", PARTNER, "2026-11-01T10:00", 240, "phone"),
    ]
    path = write_csv(tmp_path / "calls.csv", rows)
    summary = run(facility, path, batch_size=2)
    assert summary.errors == ["row 5: channel: must be one of phone, video, visit; got 'bus'"]
    assert summary.exit_code == 1
    assert (summary.batches_committed, summary.batches_failed) == (2, 1)
    assert (summary.rows, summary.imported, summary.invalid_rows, summary.failed_rows) == (
        6,
        4,
        1,
        2,
    )
    assert count(facility, SessionRow) == 4
    assert counters(facility) == {
        ("okafor", "monthly", "2026-10"): (1, 1),
        ("reyes", "monthly", "2026-10"): (1, 2),
        ("okafor", "monthly", "2026-11"): (1, 3),
        ("reyes", "monthly", "2026-11"): (1, 4),
    }
    with facility.transaction() as session:
        events = session.scalars(
            select(AuditEventRow)
            .where(AuditEventRow.tag == "imports:calls:batch")
            .order_by(AuditEventRow.seq)
        ).all()
        payloads = [(e.chain, json.loads(e.payload)) for e in events]
    sha = summary.sha256
    assert payloads == [
        (
            "facility:wcf",
            {
                "file": "calls.csv",
                "sha256": sha,
                "first_row": first,
                "last_row": first + 1,
                "count": 2,
                "outside_policy": 0,
                "already_imported": 0,
            },
        )
        for first in (2, 6)
    ]


def test_a_dry_run_checks_every_row_and_writes_nothing(facility: Database, tmp_path: Path) -> None:
    good = ("okafor", MOTHER, "2026-11-02T10:00", 60, "phone")
    path = write_csv(tmp_path / "calls.csv", [good, good, ("okafor", MOTHER, "", 60, "phone")])
    summary = run(facility, path, dry_run=True, batch_size=2)
    assert summary.errors == ["row 4: start: is empty"]
    # The same record twice is one call: the second is counted as already imported.
    assert (summary.imported, summary.already_imported) == (1, 1)
    assert (summary.batches_committed, summary.batches_failed) == (0, 1)
    assert summary.exit_code == 1
    clean = write_csv(tmp_path / "clean.csv", [good])
    assert run(facility, clean, dry_run=True).exit_code == 0
    assert count(facility, SessionRow) == 0
    assert count(facility, AuditEventRow, tag="imports:calls:batch") == 0


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("person,dialed,seconds\nokafor,1,2\n", "row 1: header: missing columns start"),
        ("person,dialed,start,secs\n", "unknown columns secs"),
        ("person,person,dialed,start,seconds\n", "repeated columns person"),
        ("", "the file is empty"),
        ("\nperson,dialed,start,seconds\n", "the first line is empty"),
    ],
)
def test_a_file_level_error_exits_2_and_writes_nothing(
    facility: Database, tmp_path: Path, content: str, words: str
) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(content, encoding="utf-8")
    summary = run(facility, path)
    assert summary.exit_code == 2
    assert summary.file_error is not None
    assert words in summary.file_error
    assert count(facility, SessionRow) == 0


def test_a_file_that_is_not_utf8_text_is_a_file_level_error(
    facility: Database, tmp_path: Path
) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"person,dialed,start,seconds\nP\xe9rez,1,2026-11-02T10:00,1\n")
    summary = run(facility, path)
    assert summary.exit_code == 2
    assert summary.file_error == "not UTF-8 at byte 29"
    missing = run(facility, tmp_path / "missing.csv")
    assert missing.exit_code == 2
    assert missing.file_error is not None
    assert "cannot read" in missing.file_error


RICH_RULES = [
    {
        "id": "allowance",
        "authority": "facility_policy",
        "kind": "grant",
        "channel": "phone",
        "person": "all",
        "contacts": "any",
        "quota": {"minutes": 60, "per": "week"},
        "max_minutes": 15,
    },
    {
        "id": "gap",
        "authority": "facility_policy",
        "kind": "limit",
        "channel": "phone",
        "person": "all",
        "contacts": "any",
        "min_gap_minutes": 30,
        "window": {"from": "07:00", "to": "22:00"},
    },
    {
        "id": "rolling",
        "authority": "sanction",
        "kind": "limit",
        "channel": "phone",
        "person": "okafor",
        "contacts": {"relationships": ["sibling"]},
        "quota": {"count": 2, "per": {"rolling_days": 3}},
    },
    {
        "id": "daily",
        "authority": "incentive",
        "kind": "limit",
        "channel": "phone",
        "person": "all",
        "contacts": "any",
        "quota": {"count": 3, "per": "day"},
    },
]


def test_usage_is_exactly_what_live_sessions_would_have_recorded(
    db: Database, tmp_path: Path
) -> None:
    """The same calls imported into one facility and attempted live, one by one,
    in another: same decisions, same counters, rolling entries and gap marks."""
    setup_facility(db, RICH_RULES, "imp")
    setup_facility(db, RICH_RULES, "live")
    numbers = {"mother": MOTHER, "sister": SISTER, "partner": PARTNER}
    calls = []
    for day in range(2, 12):
        for hour, minute, who, seconds in (
            (6, 50, "mother", 300),
            (9, 0, "sister", 1000),
            (9, 20, "mother", 59),
            (10, 0, "sister", 61),
            (14, 0, "mother", 2400),
            (21, 50, "sister", 900),
        ):
            person = "okafor"
            if (day + hour) % 5 == 0:
                who, person = "partner", "reyes"
            start = f"2026-11-{day:02d}T{hour:02d}:{minute:02d}"
            calls.append((person, who, start, seconds))
    path = write_csv(
        tmp_path / "calls.csv",
        [(person, numbers[who], start, seconds, "phone") for person, who, start, seconds in calls],
    )
    summary = import_calls(db, "imp", path, at=NOW, actor=ACTOR, batch_size=7)
    assert (summary.imported, summary.exit_code) == (len(calls), 0)
    for person, who, start, seconds in calls:
        attempt_session(
            db,
            "live",
            person,
            who,
            at=local(start),
            minutes=math.ceil(seconds / 60),
            actor=ACTOR,
        )
    with db.transaction() as session:

        def decisions(facility_id: str) -> list[tuple[datetime, str, dict[str, object]]]:
            rows = session.scalars(
                select(SessionRow)
                .where(SessionRow.facility_id == facility_id)
                .order_by(SessionRow.started_at, SessionRow.person_id)
            )
            return [(r.started_at, r.person_id, r.decision) for r in rows]

        def usage(facility_id: str) -> tuple[list[Any], ...]:
            entries = session.execute(
                select(
                    UsageEntryRow.person_id,
                    UsageEntryRow.rule_id,
                    UsageEntryRow.started_at,
                    UsageEntryRow.minutes,
                )
                .where(UsageEntryRow.facility_id == facility_id)
                .order_by(UsageEntryRow.person_id, UsageEntryRow.started_at)
            )
            gaps = session.execute(
                select(GapMarkRow.person_id, GapMarkRow.rule_id, GapMarkRow.last_end)
                .where(GapMarkRow.facility_id == facility_id)
                .order_by(GapMarkRow.person_id)
            )
            return (list(entries), list(gaps))

        assert decisions("imp") == decisions("live")
        assert usage("imp") == usage("live")
        outcomes = Counter(str(d["reason"]) for _, _, d in decisions("imp"))
    assert counters(db, "imp") == counters(db, "live")
    # The calls exercise every clause the store keeps usage for.
    assert {"None", "outside_window", "too_soon", "quota_exhausted"} <= set(outcomes)
    assert summary.outside_policy == len(calls) - outcomes["None"]
    assert count(db, UsageEntryRow) > 0
    assert count(db, GapMarkRow) > 0


def test_an_import_waits_for_the_ledger_lock_of_its_people(
    facility: Database, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "calls.csv", [("okafor", MOTHER, "2026-11-02T10:00", 60, "phone")])
    results: list[ImportSummary] = []
    with facility.transaction() as session:
        require_person(session, "wcf", "okafor", lock=True)
        worker = threading.Thread(target=lambda: results.append(run(facility, path)))
        worker.start()
        worker.join(timeout=1.0)
        assert worker.is_alive(), "the import went ahead while the ledger was locked"
    worker.join(timeout=30)
    assert [summary.imported for summary in results] == [1]


def test_twenty_thousand_rows_in_batches_of_five_thousand(db: Database, tmp_path: Path) -> None:
    daily = {
        "id": "daily",
        "authority": "facility_policy",
        "kind": "grant",
        "channel": "phone",
        "person": "all",
        "contacts": "any",
        "quota": {"count": 12, "per": "day"},
        "max_minutes": 20,
    }
    register_facility(db, Facility("wcf", "Westbrook", "America/New_York"), at=T0, actor=ACTOR)
    people = [f"p{index:02d}" for index in range(20)]
    phone = frozenset({Channel.PHONE})
    for index, person in enumerate(people):
        admit_person(db, Person("wcf", person, person, "en"), at=T0, actor=ACTOR)
        for kind in range(2):
            add_contact(
                db,
                "wcf",
                Contact(f"{person}-c{kind}", person, "parent", approved=phone),
                name="Contact",
                phones=[f"+1 404 555 {1000 + index * 2 + kind:04d}"],
                at=T0,
                actor=ACTOR,
            )
    impose_rule(db, "wcf", daily, at=T0, actor=ACTOR, in_force_at_start=True)

    rows: list[tuple[str, str, str, int, str]] = []
    for day in range(50):
        when = date(2026, 9, 1) + timedelta(days=day)
        for slot in range(20):
            start = f"{when.isoformat()}T{8 + slot // 2:02d}:{30 * (slot % 2):02d}"
            for index, person in enumerate(people):
                number = f"+1 404 555 {1000 + index * 2 + slot % 2:04d}"
                seconds = (len(rows) * 37) % 1500
                rows.append((person, number, start, seconds, "phone"))
    assert len(rows) == 20_000
    ghost = 12_345  # 0-based index of a data row in the third batch
    rows[ghost] = ("ghost", *rows[ghost][1:])
    path = write_csv(tmp_path / "calls.csv", rows)

    summary = import_calls(db, "wcf", path, at=NOW, actor=ACTOR, batch_size=5_000)
    assert summary.errors == [f"row {ghost + 2}: person: no person 'ghost' in wcf"]
    assert (summary.batches_committed, summary.batches_failed) == (3, 1)
    assert (summary.rows, summary.imported, summary.failed_rows) == (20_000, 15_000, 5_000)

    # The oracle: each person's first 12 committed calls of a day are charged.
    expected: dict[tuple[str, str, str], tuple[int, int]] = {}
    allowed = 0
    for position, (person, _, start, seconds, _) in enumerate(rows):
        if 10_000 <= position < 15_000:
            continue
        key = (person, "daily", start[:10])
        sessions, minutes = expected.get(key, (0, 0))
        if sessions < 12:
            expected[key] = (sessions + 1, minutes + min(math.ceil(seconds / 60), 20))
            allowed += 1
    assert summary.outside_policy == 15_000 - allowed
    assert count(db, SessionRow) == 15_000
    assert count(db, SessionRow, status="completed", source="import") == 15_000
    assert counters(db) == expected
    assert count(db, AuditEventRow, tag="imports:calls:batch") == 3


def test_the_command_imports_prints_json_and_exits_by_outcome(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    loaded = runner.invoke(
        app,
        ["scenario", "load", str(DEMO / "supermax-family-contact.yaml"), "--database-url", db_url],
    )
    assert loaded.exit_code == 0, loaded.output
    # After the scenario's last call (2024-05-06): children's calls are suspended
    # (sam-children), one call a month (sam-one-call) otherwise.
    daughter_a, wife = "+52 667 555 0101", "+1 213 555 0147"
    as_json = ["--json", "--database-url", db_url]
    assert compliance_report(db, "usp-red-mesa", "order-17", "2024-06").delivered == 0
    path = write_csv(
        tmp_path / "june.csv",
        [
            ("salazar", wife, "2024-06-03T10:00", 900, "phone"),
            ("salazar", wife, "2024-06-04T10:00", 840, "phone"),
            ("salazar", daughter_a, "2024-06-05T10:00", 600, "phone"),
        ],
    )
    result = runner.invoke(app, ["import", "calls", str(path), *as_json])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["imported"], body["outside_policy"], body["batches_committed"]) == (3, 2, 1)
    assert body["errors"] == []

    # The court's report counts the call that happened; the engine sees the calls.
    assert compliance_report(db, "usp-red-mesa", "order-17", "2024-06").delivered == 1
    wife_later = decide_contact(
        db, "usp-red-mesa", "salazar", "wife", at=datetime(2024, 6, 20, 16, tzinfo=UTC)
    )
    assert wife_later.decision.reason == "quota_exhausted"

    bad = write_csv(tmp_path / "bad.csv", [("salazar", "+1 999", "2024-04-20T10:00", 60, "x")])
    failed = runner.invoke(app, ["import", "calls", str(bad), "--database-url", db_url])
    assert failed.exit_code == 1
    assert "row 2: dialed:" in failed.stdout
    assert "row 2: channel: must be one of phone, video, visit; got 'x'" in failed.stdout
    assert "0 committed, 1 failed" in failed.stdout

    headless = tmp_path / "headless.csv"
    headless.write_text("who,dialed,start,seconds\n", encoding="utf-8")
    broken = runner.invoke(app, ["import", "calls", str(headless), "--database-url", db_url])
    assert broken.exit_code == 2
    assert "unknown columns who" in broken.output

    dry = runner.invoke(
        app, ["import", "calls", str(path), "--dry-run", "--json", "--database-url", db_url]
    )
    assert dry.exit_code == 0
    # The file was imported above: a dry run of it again would import nothing.
    dried = json.loads(dry.stdout)
    assert (dried["imported"], dried["already_imported"]) == (0, 3)
    assert count(db, SessionRow, source="import") == 3
