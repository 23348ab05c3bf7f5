"""Importing completed calls from a vendor's export (``kinline import calls``).

The file
    CSV, UTF-8, with a header row naming the columns ``person``, ``dialed``,
    ``start``, ``seconds`` and optionally ``channel`` (``phone``, ``video`` or
    ``visit``; ``phone`` when absent or empty) and ``record_id`` (the vendor's
    own id of the record, at most 200 characters), in any order. ``start`` is the
    facility's local wall time, ISO 8601 without offset (``2026-11-01T14:05:00``
    or ``2026-11-01 14:05``); a start the clocks skipped (DST) is an error, one
    they passed twice is the earlier. ``seconds`` is a whole number from 0 to
    86,400. ``dialed`` is any number ``phonenumbers`` reads (without a country
    code: the facility's country) and must be one of that person's contacts'.
    Rows are numbered as lines of the file: the header is row 1. Blank lines
    are skipped.

What an imported call is
    A completed session (``status`` "completed", ``source`` "import") of the
    person with the contact whose number was dialed, decided by the engine at
    its start exactly as a live call would be, against usage that includes
    every earlier call. The session's ``minutes`` are the call's own minutes,
    ``ceil(seconds / 60)``, not capped: it is a record of what happened, and
    ``ended_at`` is its start plus its seconds. When the engine allows it, it
    is charged to ``decision.charged_to`` and the counters, rolling entries and
    gap marks change, through the same writer (``ledger.write_usage``), exactly
    as they would for a live call of ``min(minutes, decision.max_minutes)``
    minutes: the allowance is charged what the engine would have let the call
    use, as ``attempt_session`` and the call path do, so the counters mean the
    same whatever the source. When the engine would have refused it, it is
    still recorded as completed (it happened), with the refusal's ``reason``,
    charged to nothing, and counted as "outside policy".

Order
    Within a batch, each person's calls are decided in order of their start
    (then of their row), so each sees the ones before it. Batches are taken
    in file order: an export sorted by start (as exports are) is decided in
    time order throughout. Calls should be later than the usage already
    stored for their people. Whatever the order nothing is overfilled:
    counters count exactly; a call before stored ones must fit every rolling
    window that holds it, those that close after it too (the ``BatchLedger``'s
    snapshots look ahead); a gap mark holds only the end of the last governed
    session, so a call before it is judged ``too_soon``.

Once only
    Each row is a vendor record, named by ``calls.rows.record_key``: its
    ``record_id`` when it has one, else its person, number (as E.164), start
    (as an instant), seconds and channel. A record already imported, by this
    file or another, or earlier in this one, is skipped and counted in
    ``already_imported``: importing a file again, or files that overlap, adds
    nothing and charges nothing. A batch claims its records in
    ``imported_calls`` (facility and record key unique, ``ON CONFLICT DO
    NOTHING``) before it decides their calls and decides only those it
    claimed, so two imports of one file at once still count each call once.
    A skipped row is not checked against the store (its contact may be gone
    since), only read.

Batches
    ``batch_size`` rows (default 10,000) are one transaction. A batch with an
    invalid row writes nothing and its errors are listed (the first 1,000 of
    the whole file); the other batches still commit. Each committed batch adds
    one audit event (``imports:calls:batch``) to the facility's chain naming
    the file, its SHA-256, the batch's first and last rows and its counts.
    After a partial failure, import the whole file again: the committed
    batches' calls are skipped. ``dry_run`` checks every row against the store
    and writes nothing; it counts as already imported what is stored, and
    what repeats within a batch.

Concurrency and speed
    A batch first locks the allowance ledgers of all its people (the call
    path's per-person lock, in id order), then reads their contacts, rules and
    stored usage in a few statements, decides every call in memory against a
    ``BatchLedger`` seeded from that usage, and writes sessions, summed counter
    increments, rolling entries and gap marks in bulk. The file is read twice,
    streamed both times: once to hash it, count its lines and check it is
    UTF-8 text, then batch by batch.
"""

from __future__ import annotations

import codecs
import csv
import gc
import hashlib
import json
import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from kinline.audit.service import facility_chain, record_event
from kinline.calls import ledger, repository
from kinline.calls.model import charged_usage, usage_added
from kinline.calls.rows import (
    BatchLedger,
    Call,
    ContactEntry,
    Header,
    RowError,
    RowFields,
    read_header,
    read_row,
    record_key,
)
from kinline.db.bulk import copy_field, copy_lines, plan_with_values
from kinline.db.engine import Database
from kinline.errors import InvalidInput
from kinline.people.model import Facility
from kinline.people.service import require_facility
from kinline.rules.decide import Decision, Request, decide
from kinline.rules.model import DAY, MONTH, WEEK, Channel, Rule
from kinline.rules.periods import local, period_key, wall_to_instant
from kinline.rules.usage import UsageChange

_T = TypeVar("_T")
DEFAULT_BATCH_SIZE = 10_000
DEFAULT_WORKERS = 1
MAX_LISTED_ERRORS = 1_000
BATCH_TAG = "imports:calls:batch"
_READ_CHUNK = 1 << 20
NOON = time(12)


class ImportProgress(Protocol):
    """Told how many lines the file has, then how many it has got through."""

    def begin(self, total: int) -> None: ...

    def advance(self, lines: int) -> None: ...


@dataclass
class ImportSummary:
    """What an import did. ``failed_rows`` are the rows of failed batches (valid or
    not); ``invalid_rows`` those with an error; ``already_imported`` the
    records imported before (or earlier in the file), skipped; ``errors``
    lists the first ``MAX_LISTED_ERRORS`` of ``error_count`` errors."""

    file: str
    batch_size: int
    dry_run: bool
    sha256: str | None = None
    rows: int = 0
    imported: int = 0
    outside_policy: int = 0
    already_imported: int = 0
    invalid_rows: int = 0
    failed_rows: int = 0
    batches_committed: int = 0
    batches_failed: int = 0
    error_count: int = 0
    errors: list[str] = field(default_factory=list)
    file_error: str | None = None

    @property
    def exit_code(self) -> int:
        """0: every row imported (or, dry, valid); 1: a batch failed; 2: the file is unusable."""
        if self.file_error is not None:
            return 2
        return 1 if self.batches_failed else 0

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "dry_run": self.dry_run,
            "batch_size": self.batch_size,
            "rows": self.rows,
            "imported": self.imported,
            "outside_policy": self.outside_policy,
            "already_imported": self.already_imported,
            "invalid_rows": self.invalid_rows,
            "failed_rows": self.failed_rows,
            "batches_committed": self.batches_committed,
            "batches_failed": self.batches_failed,
            "error_count": self.error_count,
            "errors": list(self.errors),
            "file_error": self.file_error,
        }

    def _note(self, errors: Sequence[RowError]) -> None:
        self.error_count += len(errors)
        room = MAX_LISTED_ERRORS - len(self.errors)
        self.errors.extend(str(error) for error in errors[: max(room, 0)])


@dataclass(frozen=True, slots=True)
class _Source:
    name: str
    sha256: str
    lines: int


@dataclass(frozen=True, slots=True)
class _BatchResult:
    rows: int
    errors: list[RowError]
    invalid_rows: int
    imported: int = 0
    outside_policy: int = 0
    already_imported: int = 0


def import_calls(
    db: Database,
    facility_id: str,
    path: Path,
    *,
    at: datetime,
    actor: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    progress: ImportProgress | None = None,
    workers: int = DEFAULT_WORKERS,
) -> ImportSummary:
    """Import the completed calls in the CSV file at ``path``; ``at`` is now.

    With ``workers`` above 1, each batch's calls are decided in that many
    processes, each deciding a share of the batch's people (whose calls and
    usage depend on no one else's); the rest of the batch, its one
    transaction included, stays in this process. The decisions, and so the
    sessions and counters written, are the same whatever the number."""
    if batch_size < 1:
        raise InvalidInput("must be at least 1", field="batch_size")
    if workers < 1:
        raise InvalidInput("must be at least 1", field="workers")
    with db.transaction() as session:
        facility = require_facility(session, facility_id)
    summary = ImportSummary(file=path.name, batch_size=batch_size, dry_run=dry_run)
    try:
        source = _scan(path)
    except InvalidInput as error:
        summary.file_error = error.message
        return summary
    summary.sha256 = source.sha256
    if progress is not None:
        progress.begin(max(source.lines - 1, 0))
    try:
        with (
            _fewer_collections(),
            _deciders(workers) as pool,
            path.open(encoding="utf-8-sig", newline="") as handle,
        ):
            reader = csv.reader(handle)
            header = _header(reader)
            done = 1
            batches = _ahead(_parsed(_batches(reader, batch_size), header, facility))
            for batch, keys, lines in batches:
                result = _import_batch(db, facility, batch, keys, source, at, actor, dry_run, pool)
                _count(summary, result, dry_run)
                if progress is not None:
                    progress.advance(lines - done)
                done = lines
    except InvalidInput as error:
        summary.file_error = error.message
    return summary


@contextmanager
def _deciders(workers: int) -> Iterator[Executor | None]:
    """``workers`` processes to decide calls in (started afresh, never forked from
    this one and its connections); None for one, this process."""
    if workers <= 1:
        yield None
        return
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=spawn) as pool:
        yield pool


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector less while importing.

    A batch makes and drops a few hundred thousand small objects, none of
    them cyclic garbage, and each full collection walks every object of the
    process (the libraries' tables too): with the default thresholds the
    collector took a quarter of an import's time. What exists before the
    import is frozen out of collections, and a collection waits for 20,000
    new objects rather than 700; both are put back when the import ends.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], 20_000), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _count(summary: ImportSummary, result: _BatchResult, dry_run: bool) -> None:
    summary.rows += result.rows
    summary.invalid_rows += result.invalid_rows
    summary._note(result.errors)
    if result.errors:
        summary.batches_failed += 1
        summary.failed_rows += result.rows
    else:
        summary.batches_committed += 0 if dry_run else 1
        summary.imported += result.imported
        summary.outside_policy += result.outside_policy
        summary.already_imported += result.already_imported


def _scan(path: Path) -> _Source:
    """Hash the file, count its lines, and check it is UTF-8 text, streaming."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    last = b""
    offset = 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_READ_CHUNK):
                digest.update(chunk)
                lines += chunk.count(b"\n")
                if b"\x00" in chunk:
                    raise InvalidInput(f"not text: a NUL byte at offset {offset + chunk.index(0)}")
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as error:
                    raise InvalidInput(f"not UTF-8 at byte {offset + error.start}") from None
                offset += len(chunk)
                last = chunk[-1:]
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise InvalidInput("not UTF-8: the file ends inside a character") from None
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror or error}") from None
    if offset == 0:
        raise InvalidInput("row 1: header: the file is empty")
    if last != b"\n":
        lines += 1
    return _Source(path.name, digest.hexdigest(), lines)


def _header(reader: Any) -> Header:
    try:
        values = next(reader, None)
    except csv.Error as error:
        raise InvalidInput(f"row 1: header: not CSV: {error}") from None
    if not values:
        raise InvalidInput("row 1: header: the first line is empty; expected a header row")
    return read_header(values)


def _batches(reader: Any, size: int) -> Iterator[tuple[list[tuple[int, list[str]]], int]]:
    """Rows in batches of ``size``, each with its row number (the line it starts
    on), and the number of lines read once the batch is."""
    batch: list[tuple[int, list[str]]] = []
    start = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise InvalidInput(f"row {start}: not CSV: {error}") from None
        if values:
            batch.append((start, values))
            if len(batch) == size:
                yield batch, reader.line_num
                batch = []
        start = reader.line_num + 1
    if batch:
        yield batch, reader.line_num


def _parsed(
    batches: Iterator[tuple[list[tuple[int, list[str]]], int]], header: Header, facility: Facility
) -> Iterator[tuple[list[RowFields], list[str | None], int]]:
    """Each batch's rows as read, their record keys, and the lines read."""
    zone, country = facility.zone, facility.country
    for batch, lines in batches:
        fields = [read_row(values, row, header, zone, country) for row, values in batch]
        yield fields, [record_key(row) for row in fields], lines


_DONE = object()


def _ahead(items: Iterator[_T]) -> Iterator[_T]:
    """``items``, each made in a thread while the one before is used.

    Reading and checking the next batch's rows (the CSV, numbers, times, record
    keys: a tenth of a row's time) goes on while this batch waits for the
    database, which holds no lock Python needs. Whatever making an item
    raises is raised here, in order.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="import-read") as pool:
        coming = pool.submit(next, items, _DONE)
        while (item := coming.result()) is not _DONE:
            coming = pool.submit(next, items, _DONE)
            yield item  # type: ignore[misc]


def _import_batch(
    db: Database,
    facility: Facility,
    fields: Sequence[RowFields],
    keys: Sequence[str | None],
    source: _Source,
    at: datetime,
    actor: str,
    dry_run: bool,
    pool: Executor | None = None,
) -> _BatchResult:
    try:
        return _import_checked_batch(db, facility, fields, keys, source, at, actor, dry_run, pool)
    except _BatchRefused as refused:
        return refused.result


class _BatchRefused(Exception):
    """A batch with invalid rows: raised out of its transaction so the records it
    claimed are released with it."""

    def __init__(self, result: _BatchResult) -> None:
        super().__init__(f"{len(result.errors)} errors")
        self.result = result


def _import_checked_batch(
    db: Database,
    facility: Facility,
    fields: Sequence[RowFields],
    keys: Sequence[str | None],
    source: _Source,
    at: datetime,
    actor: str,
    dry_run: bool,
    pool: Executor | None = None,
) -> _BatchResult:
    people = sorted({row.person for row in fields if row.person})
    with db.transaction() as session:
        plan_with_values(session)
        known = repository.known_people(session, facility.id, people, lock=not dry_run)
        seen = _already_imported(session, facility.id, fields, keys, source, at, dry_run)
        skipped = 0
        dialed = {(row.person, row.dialed) for row in fields if row.person in known and row.dialed}
        book = repository.phone_book(session, facility.id, dialed)
        errors: list[RowError] = []
        invalid = 0
        calls: list[tuple[str, Call]] = []
        for row, key in zip(fields, keys, strict=True):
            if key is not None and key in seen:
                skipped += 1
                continue
            row_errors = list(row.errors)
            contact: ContactEntry | None = None
            if row.person and row.person not in known:
                reason = f"no person {row.person!r} in {facility.id}"
                row_errors.insert(0, RowError(row.row, "person", reason))
            elif row.person and row.dialed is not None:
                contact = book.get((row.person, row.dialed))
                if contact is None:
                    reason = f"{row.dialed} is not a number of any contact of {row.person}"
                    row_errors.append(RowError(row.row, "dialed", reason))
            if row_errors:
                errors.extend(row_errors)
                invalid += 1
                continue
            assert key is not None and contact is not None and row.at is not None
            assert row.seconds is not None and row.channel is not None
            seen.add(key)
            call = Call(row.row, row.person, contact, row.channel, row.at, row.seconds)
            calls.append((key, call))
        if errors:
            raise _BatchRefused(_BatchResult(len(fields), errors, invalid))
        if dry_run:
            return _BatchResult(len(fields), [], 0, imported=len(calls), already_imported=skipped)
        mine = [call for _, call in calls]
        outside = _record(session, facility, mine, at, pool) if mine else 0
        record_event(
            session,
            facility_id=facility.id,
            chain=facility_chain(facility.id),
            actor=actor,
            tag=BATCH_TAG,
            payload={
                "file": source.name,
                "sha256": source.sha256,
                "first_row": fields[0].row,
                "last_row": fields[-1].row,
                "count": len(mine),
                "outside_policy": outside,
                "already_imported": skipped,
            },
            at=at,
        )
    return _BatchResult(
        len(fields), [], 0, imported=len(mine), outside_policy=outside, already_imported=skipped
    )


def _already_imported(
    session: Session,
    facility_id: str,
    fields: Sequence[RowFields],
    keys: Sequence[str | None],
    source: _Source,
    at: datetime,
    dry_run: bool,
) -> set[str]:
    """The batch's records that were imported before it: to skip, unchecked.

    A real import claims every record of the batch first, in one statement
    (``claim_records``), and what it could not claim is another's; a claimed
    record that then fails to import is released with the rest of the batch
    when its transaction rolls back. A dry run claims nothing and only looks.
    """
    if dry_run:
        return repository.imported_records(session, facility_id, {key for key in keys if key})
    first: dict[str, int] = {}
    for row, key in zip(fields, keys, strict=True):
        if key is not None:
            first.setdefault(key, row.row)
    claimed = repository.claim_records(
        session, facility_id, list(first.items()), file_sha256=source.sha256, at=at
    )
    return set(first) - claimed


def _record(
    session: Session,
    facility: Facility,
    calls: Sequence[Call],
    at: datetime,
    pool: Executor | None = None,
) -> int:
    """Decide each call in order against the batch's usage, write them all; the
    number the engine would have refused. With ``pool``, the people's calls are
    decided in its processes, a share of the people each."""
    people = sorted({call.person for call in calls})
    rules = repository.rules_of(
        session,
        facility.id,
        people,
        {call.channel for call in calls},
        min(call.at for call in calls),
        max(call.at for call in calls),
    )
    batch = _seeded_ledger(session, facility, people, rules, calls)
    ordered = sorted(calls, key=attrgetter("person", "at", "row"))
    if pool is None or len(people) < 2:
        decided = decide_calls(ordered, rules, batch)
    else:
        decided = _decided_in(pool, ordered, rules, batch, people)
    sessions = _Sessions(facility.id, at, session.get_bind().dialect.name == "postgresql")
    changes: list[tuple[str, UsageChange]] = []
    outside = 0
    for call, (decision, change) in zip(ordered, decided, strict=True):
        if change is None:
            outside += 1
        else:
            changes.append((call.person, change))
        sessions.add(call, decision)
    sessions.write(session)
    ledger.write_usage(session, facility.id, usage_added(changes))
    return outside


def decide_calls(
    calls: Sequence[Call], rules: Sequence[Rule], batch: BatchLedger
) -> list[tuple[Decision, UsageChange | None]]:
    """Each call's decision, and what it adds to the usage (None: refused), in
    order: ``calls`` are sorted by person, start and row, and ``batch`` holds
    their people's stored usage; each call is charged to it before the next is
    decided, as on the call path.

    Pure (no store): run in this process, or in a pool's for a share of the
    people, whose calls and usage depend on no one else's.
    """
    zone = batch.zone
    by_id = {rule.id: rule for rule in rules}
    relevant: dict[tuple[str, Channel], list[Rule]] = {}
    decided: list[tuple[Decision, UsageChange | None]] = []
    for call in calls:
        key = (call.person, call.channel)
        person_rules = relevant.get(key)
        if person_rules is None:
            person_rules = [
                r for r in rules if r.channel is call.channel and r.concerns(call.person)
            ]
            relevant[key] = person_rules
        contact = call.contact.as_of(call.at)
        request = Request(call.person, contact, call.channel, call.at)
        decision = decide(request, person_rules, batch.snapshot(call.person), zone)
        charged = min(call.minutes, decision.max_minutes or 0)
        change = charged_usage(decision, by_id, call.at, charged, zone)
        if change is not None:
            batch.apply(call.person, change)
        decided.append((decision, change))
    return decided


def _decided_in(
    pool: Executor,
    ordered: Sequence[Call],
    rules: Sequence[Rule],
    batch: BatchLedger,
    people: Sequence[str],
) -> list[tuple[Decision, UsageChange | None]]:
    """``decide_calls`` of ``ordered`` in ``pool``: the calls cut into runs of whole
    people, about as many calls each, one run a process; the decisions put
    back together in the same order."""
    shares = max(1, getattr(pool, "_max_workers", 2))
    runs: list[list[Call]] = []
    size = -(-len(ordered) // shares)
    for call in ordered:
        if not runs or (len(runs[-1]) >= size and runs[-1][-1].person != call.person):
            runs.append([])
        runs[-1].append(call)
    parts = [
        pool.submit(decide_calls, run, rules, batch.part({call.person for call in run}))
        for run in runs
    ]
    return [item for part in parts for item in part.result()]


def _seeded_ledger(
    session: Session,
    facility: Facility,
    people: Sequence[str],
    rules: Sequence[Rule],
    calls: Sequence[Call],
) -> BatchLedger:
    """A ledger holding the stored usage the batch's decisions can read."""
    zone = facility.zone
    calendar = {
        rule.quota.per.kind for rule in rules if rule.quota and not rule.quota.per.is_rolling
    }
    periods = [period for period in (DAY, WEEK, MONTH) if period.kind in calendar]
    keys = {period_key(period, noon, zone) for noon in _noons(calls, zone) for period in periods}
    rolling_days = [
        rule.quota.per.days for rule in rules if rule.quota and rule.quota.per.is_rolling
    ]
    since = (
        min(call.at for call in calls) - timedelta(days=max(rolling_days)) if rolling_days else None
    )
    stored = ledger.stored_usage(
        session, facility.id, people, period_keys=sorted(keys), rolling_since=since
    )
    batch = BatchLedger(zone)
    for person_id, rule_id, key, tally in stored.counters:
        batch.seed_counter(person_id, rule_id, key, tally)
    for person_id, rule_id, started_at, minutes in stored.entries:
        batch.seed_entry(person_id, rule_id, started_at, minutes)
    for person_id, rule_id, last_end in stored.gaps:
        batch.seed_gap(person_id, rule_id, last_end)
    return batch


def _noons(calls: Sequence[Call], zone: ZoneInfo) -> list[datetime]:
    """Noon of each local date the calls fall on: each stands for its date's calls.

    Every date from the first call's to the last's, unless the calls are spread
    over more dates than there are calls."""
    first = local(min(call.at for call in calls), zone).date()
    last = local(max(call.at for call in calls), zone).date()
    if (last - first).days < len(calls):
        dates = {first + timedelta(days=n) for n in range((last - first).days + 1)}
    else:
        dates = {local(call.at, zone).date() for call in calls}
    return [wall_to_instant(datetime.combine(day, NOON), zone) for day in sorted(dates)]


# The columns of an imported session: what varies by call, by decision, then
# what is the same for the whole batch.
_BY_CALL = ("person_id", "contact_id", "channel", "started_at", "ended_at", "minutes")
_BY_DECISION = ("reason", "charged_to", "governed_by", "decision")
_BY_BATCH = ("facility_id", "status", "recorded_at", "source")
SESSION_COLUMNS = (*_BY_CALL, *_BY_DECISION, *_BY_BATCH)


class _Sessions:
    """A batch's sessions, written in row order in one statement.

    On PostgreSQL each is kept as its line of ``COPY``'s text: the columns a
    decision sets are written once per distinct decision (equal decisions
    share them), those of the batch once, so a row costs one f-string.
    Elsewhere (SQLite) each is kept as its columns' values for one
    ``executemany``.
    """

    def __init__(self, facility_id: str, at: datetime, as_text: bool) -> None:
        self.facility_id, self.at, self.as_text = facility_id, at, as_text
        self._lines: list[tuple[int, str]] = []
        self._rows: list[tuple[int, dict[str, Any]]] = []
        self._decided: dict[Decision, str] = {}
        self._shown: dict[Decision, dict[str, Any]] = {}
        self._ids: dict[str, str] = {}
        batch = (facility_id, "completed", at.astimezone(UTC).isoformat(), "import")
        self._batch = "\t".join(copy_field(value) for value in batch)

    def add(self, call: Call, decision: Decision) -> None:
        ended = call.at + timedelta(seconds=call.seconds)
        if not self.as_text:
            row = {
                "person_id": call.person,
                "contact_id": call.contact.id,
                "channel": str(call.channel),
                "started_at": call.at,
                "ended_at": ended,
                "minutes": call.minutes,
                **self._columns(decision),
                "facility_id": self.facility_id,
                "status": "completed",
                "recorded_at": self.at,
                "source": "import",
            }
            self._rows.append((call.row, row))
            return
        decided = self._decided.get(decision)
        if decided is None:
            columns = self._columns(decision)
            decided = self._decided[decision] = "\t".join(
                copy_field(None if value is None else _json_text(value))
                if name in ("governed_by", "decision")
                else copy_field(value)
                for name, value in columns.items()
            )
        person, contact = self._id(call.person), self._id(call.contact.id)
        line = (
            f"{person}\t{contact}\t{call.channel}\t{call.at.isoformat()}\t{ended.isoformat()}"
            f"\t{call.minutes}\t{decided}\t{self._batch}\n"
        )
        self._lines.append((call.row, line))

    def _columns(self, decision: Decision) -> dict[str, Any]:
        """The columns the decision sets; equal decisions share their JSON values."""
        shown = self._shown.get(decision)
        if shown is None:
            shown = self._shown[decision] = {
                "reason": None if decision.reason is None else str(decision.reason),
                "charged_to": decision.charged_to,
                "governed_by": list(decision.governed_by),
                "decision": decision.as_dict(),
            }
        return shown

    def _id(self, value: str) -> str:
        written = self._ids.get(value)
        if written is None:
            written = self._ids[value] = copy_field(value)
        return written

    def write(self, session: Session) -> None:
        """Every session, in the order of their rows."""
        if self.as_text:
            self._lines.sort(key=itemgetter(0))
            lines = (line for _, line in self._lines)
            copy_lines(session, repository.SESSIONS, SESSION_COLUMNS, lines)
        else:
            self._rows.sort(key=itemgetter(0))
            repository.add_sessions(session, [row for _, row in self._rows])


def _json_text(value: object) -> str:
    """A JSON column's value as the store writes it (``json.dumps``' defaults)."""
    return json.dumps(value)
