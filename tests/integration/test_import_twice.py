"""``kinline import calls`` counts a vendor record once, however often it is imported.

A call imported twice would be charged twice, and the compliance report would
then say an order was met when it was not. Each test imports, then imports
again (the whole file, an overlapping file, the same file from two threads at
once) and checks that the sessions, the usage counters and the report are
exactly what one import left. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from test_import_calls import (
    HEADER,
    MOTHER,
    NOW,
    PARTNER,
    SISTER,
    WESTBROOK,
    count,
    counters,
    run,
    runner,
    write_csv,
)

from kinline.calls import repository
from kinline.calls.importer import ImportSummary
from kinline.calls.rows import read_header, read_row, record_key
from kinline.cli import app
from kinline.db.engine import Database
from kinline.db.tables import AuditEventRow, ImportedCallRow, SessionRow

ZONE = ZoneInfo("America/New_York")

OCTOBER = [
    ("okafor", MOTHER, "2026-10-01T10:00", 60, "phone"),
    ("reyes", PARTNER, "2026-10-01T11:00", 120, "phone"),
    ("okafor", SISTER, "2026-10-02T10:00", 90, "phone"),
    ("reyes", PARTNER, "2026-10-03T10:00", 30, "phone"),
]
ONE_IMPORT = {
    ("okafor", "monthly", "2026-10"): (2, 3),
    ("reyes", "monthly", "2026-10"): (2, 3),
}


@pytest.fixture
def facility(fresh_db: Callable[[object], Database]) -> Database:
    return fresh_db(WESTBROOK)


def sessions(db: Database) -> int:
    return count(db, SessionRow, source="import")


def test_the_same_file_imported_again_adds_nothing(facility: Database, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "october.csv", OCTOBER)
    first = run(facility, path)
    assert (first.imported, first.already_imported, first.exit_code) == (4, 0, 0)
    assert counters(facility) == ONE_IMPORT

    again = run(facility, path)
    assert (again.imported, again.already_imported, again.exit_code) == (0, 4, 0)
    assert (again.batches_committed, again.outside_policy) == (1, 0)
    assert sessions(facility) == 4
    assert counters(facility) == ONE_IMPORT
    assert count(facility, ImportedCallRow) == 4


def test_the_second_batch_event_says_what_was_skipped(facility: Database, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "october.csv", OCTOBER)
    run(facility, path)
    run(facility, path)
    with facility.transaction() as session:
        payloads = [
            json.loads(payload)
            for payload in session.scalars(
                select(AuditEventRow.payload)
                .where(AuditEventRow.tag == "imports:calls:batch")
                .order_by(AuditEventRow.seq)
            )
        ]
    assert [(p["count"], p["already_imported"]) for p in payloads] == [(4, 0), (0, 4)]


def test_an_overlapping_file_written_differently_adds_only_what_is_new(
    facility: Database, tmp_path: Path
) -> None:
    run(facility, write_csv(tmp_path / "first.csv", OCTOBER[:3]))
    # The same two calls as another vendor tool writes them: other number formats,
    # a space instead of the T, seconds on the start; then one new call.
    overlapping = [
        ("reyes", "7185550123", "2026-10-01 11:00:00", 120, "phone"),
        ("okafor", "+14045550177", "2026-10-02 10:00", 90, ""),
        OCTOBER[3],
    ]
    summary = run(facility, write_csv(tmp_path / "second.csv", overlapping))
    assert (summary.imported, summary.already_imported) == (1, 2)
    assert sessions(facility) == 4
    assert counters(facility) == ONE_IMPORT


def test_a_repeated_row_in_one_file_counts_once_within_and_across_batches(
    facility: Database, tmp_path: Path
) -> None:
    rows = [OCTOBER[0], OCTOBER[0], OCTOBER[1], OCTOBER[0]]
    summary = run(facility, write_csv(tmp_path / "calls.csv", rows), batch_size=2)
    assert (summary.imported, summary.already_imported, summary.batches_committed) == (2, 2, 2)
    assert counters(facility) == {
        ("okafor", "monthly", "2026-10"): (1, 1),
        ("reyes", "monthly", "2026-10"): (1, 2),
    }


def test_the_vendors_record_id_names_the_record_when_the_file_has_one(
    facility: Database, tmp_path: Path
) -> None:
    header = (*HEADER, "record_id")
    call = OCTOBER[0]
    # Two calls alike in every field are two records when the vendor says so.
    path = write_csv(tmp_path / "ids.csv", [(*call, "v-1"), (*call, "v-2")], header)
    assert (run(facility, path).imported, sessions(facility)) == (2, 2)
    # A corrected export of record v-1 (other seconds) is still record v-1: skipped.
    corrected = write_csv(
        tmp_path / "fixed.csv", [("okafor", MOTHER, call[2], 75, "phone", "v-1")], header
    )
    summary = run(facility, corrected)
    assert (summary.imported, summary.already_imported) == (0, 1)
    assert counters(facility) == {("okafor", "monthly", "2026-10"): (2, 2)}


def test_after_a_failed_batch_the_whole_file_again_imports_only_that_batch(
    facility: Database, tmp_path: Path
) -> None:
    broken = [*OCTOBER[:2], ("okafor", SISTER, "2026-10-02T10:00", 90, "bus"), OCTOBER[3]]
    failed = run(facility, write_csv(tmp_path / "calls.csv", broken), batch_size=2)
    assert (failed.imported, failed.batches_failed) == (2, 1)
    fixed = run(facility, write_csv(tmp_path / "calls.csv", OCTOBER), batch_size=2)
    assert (fixed.imported, fixed.already_imported, fixed.exit_code) == (2, 2, 0)
    assert counters(facility) == ONE_IMPORT


def test_a_skipped_record_is_not_checked_against_contacts_that_changed_since(
    facility: Database, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "october.csv", OCTOBER)
    run(facility, path)
    with facility.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM contact_phones WHERE contact_id = 'sister'")
    summary = run(facility, path)
    assert (summary.imported, summary.already_imported, summary.exit_code) == (0, 4, 0)


def test_two_imports_of_one_file_at_once_count_it_once(facility: Database, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "october.csv", OCTOBER)
    barrier = threading.Barrier(2)
    results: list[ImportSummary] = []
    failures: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            results.append(run(facility, path, batch_size=1))
        except BaseException as error:  # re-raised in the test's thread
            failures.append(error)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert len(results) == 2
    assert sum(r.imported for r in results) == 4
    assert sum(r.already_imported for r in results) == 4
    assert all(r.exit_code == 0 for r in results)
    assert sessions(facility) == 4
    assert counters(facility) == ONE_IMPORT


def test_a_claim_held_by_an_open_import_is_skipped_once_it_commits(
    facility: Database, tmp_path: Path
) -> None:
    """The unique key, not the people's locks, decides: another writer claims the
    record and holds its transaction open; the import waits, then skips it."""
    path = write_csv(tmp_path / "one.csv", [OCTOBER[1]])
    header = read_header(HEADER)
    fields = read_row([str(v) for v in OCTOBER[1]], 2, header, ZONE, "US")
    key = record_key(fields)
    assert key is not None
    results: list[ImportSummary] = []
    with facility.transaction() as session:
        claimed = repository.claim_records(session, "wcf", [(key, 2)], file_sha256="0" * 64, at=NOW)
        assert claimed == {key}
        worker = threading.Thread(target=lambda: results.append(run(facility, path)))
        worker.start()
        worker.join(timeout=1.0)
        assert worker.is_alive(), "the import went ahead past a claim not yet committed"
    worker.join(timeout=30)
    assert [(r.imported, r.already_imported) for r in results] == [(0, 1)]
    assert sessions(facility) == 0


def test_a_claim_twice_in_one_facility_is_a_no_op_and_another_facility_is_apart(
    facility: Database,
) -> None:
    with facility.transaction() as session:
        first = repository.claim_records(
            session, "wcf", [("a" * 64, 2), ("b" * 64, 3)], file_sha256="0" * 64, at=NOW
        )
    with facility.transaction() as session:
        again = repository.claim_records(
            session, "wcf", [("b" * 64, 9), ("c" * 64, 4)], file_sha256="1" * 64, at=NOW
        )
        elsewhere = repository.claim_records(
            session, "other", [("a" * 64, 2)], file_sha256="0" * 64, at=NOW
        )
    assert (first, again, elsewhere) == ({"a" * 64, "b" * 64}, {"c" * 64}, {"a" * 64})


def test_the_command_says_how_many_were_already_imported(
    facility: Database, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "october.csv", OCTOBER)
    options = ["--facility", "wcf", "--database-url", facility.url]
    first = runner.invoke(app, ["import", "calls", str(path), *options])
    assert first.exit_code == 0, first.output
    assert "imported 4 calls (0 outside policy); 0 already imported, skipped" in first.stdout
    again = runner.invoke(app, ["import", "calls", str(path), *options])
    assert again.exit_code == 0, again.output
    assert "imported 0 calls (0 outside policy); 4 already imported, skipped" in again.stdout
    as_json = runner.invoke(app, ["import", "calls", str(path), "--json", *options])
    assert json.loads(as_json.stdout)["already_imported"] == 4


# -- the record key (pure) ----------------------------------------------------------------------


def _key(values: tuple[object, ...], header: tuple[str, ...] = HEADER) -> str | None:
    return record_key(read_row([str(v) for v in values], 2, read_header(header), ZONE, "US"))


def test_the_key_ignores_how_a_number_or_a_start_is_written() -> None:
    written = ("okafor", MOTHER, "2026-10-01T10:00", 60, "phone")
    assert _key(written) == _key(("okafor", "404-555-0134", "2026-10-01 10:00:00", 60, ""))
    assert _key(written) is not None and len(_key(written) or "") == 64


@pytest.mark.parametrize(
    "other",
    [
        ("reyes", MOTHER, "2026-10-01T10:00", 60, "phone"),
        ("okafor", SISTER, "2026-10-01T10:00", 60, "phone"),
        ("okafor", MOTHER, "2026-10-01T10:01", 60, "phone"),
        ("okafor", MOTHER, "2026-10-01T10:00", 61, "phone"),
        ("okafor", MOTHER, "2026-10-01T10:00", 60, "video"),
    ],
)
def test_each_of_the_five_fields_makes_another_record(other: tuple[object, ...]) -> None:
    assert _key(("okafor", MOTHER, "2026-10-01T10:00", 60, "phone")) != _key(other)


def test_a_record_id_decides_and_a_bad_row_has_no_key() -> None:
    header = (*HEADER, "record_id")
    assert _key(("okafor", MOTHER, "2026-10-01T10:00", 60, "phone", "v-1"), header) == _key(
        ("reyes", PARTNER, "2026-11-01T10:00", 5, "video", " v-1 "), header
    )
    assert _key(("okafor", MOTHER, "2026-10-01T10:00", 60, "bus")) is None
    too_long = ("okafor", MOTHER, "2026-10-01T10:00", 60, "phone", "x" * 201)
    assert _key(too_long, header) is None


def test_an_instant_is_the_same_record_whatever_its_zone() -> None:
    # 10:00 in New York is 14:00 UTC: the key is of the instant, not the wall time.
    fields = read_row(
        ["okafor", MOTHER, "2026-10-01T10:00", "60", "phone"], 2, read_header(HEADER), ZONE, "US"
    )
    assert fields.at == datetime(2026, 10, 1, 14, tzinfo=UTC)
