"""Rows of a call export read as plain data, and the usage a batch builds up.

Pure: no database, no I/O. ``read_row`` checks everything a row can be
checked for on its own (its columns, its number, its start, its seconds,
its channel); the service checks what needs the store (the person, the
contact the number belongs to). ``BatchLedger`` is the usage the engine
reads while a batch is decided: the stored counters of the batch's people,
plus every call of the batch decided so far, and the sum of what the batch
adds (``calls.model.UsageAdded``), written back in bulk when the batch commits.
``record_key`` names the vendor record a row is, so a record imported once is
never counted again.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from kinline.calls.model import UsageAdded, usage_added
from kinline.errors import InvalidInput
from kinline.people.model import normalize_phone
from kinline.rules.model import Channel, Contact
from kinline.rules.parse import RuleError, parse_wall_time
from kinline.rules.periods import local, wall_to_instant
from kinline.rules.usage import Tally, UsageChange, UsageSnapshot

REQUIRED_COLUMNS = ("person", "dialed", "start", "seconds")
OPTIONAL_COLUMNS = ("channel", "record_id")
# A longer call or visit is a broken export, not a call; it also keeps minutes in range.
MAX_SECONDS = 24 * 3600
# A vendor's record id; longer is a broken export (only its SHA-256 is stored).
MAX_RECORD_ID = 200
_SECONDS = re.compile(r"-?[0-9]+")
_CHANNELS = {str(channel): channel for channel in Channel}


@dataclass(frozen=True, slots=True)
class RowError:
    """What is wrong with one field of one row; ``row`` counts the header as row 1."""

    row: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Header:
    """Where each column is in a row, and how many values a row must have."""

    width: int
    person: int
    dialed: int
    start: int
    seconds: int
    channel: int | None
    record_id: int | None = None


def read_header(values: Sequence[str]) -> Header:
    """The header row; a missing, unknown or repeated column is an InvalidInput."""
    names = [value.strip().lower() for value in values]
    known = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
    expected = f"expected {','.join(REQUIRED_COLUMNS)}[,{','.join(OPTIONAL_COLUMNS)}]"
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InvalidInput(f"row 1: header: unknown columns {', '.join(unknown)}; {expected}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InvalidInput(f"row 1: header: repeated columns {', '.join(repeated)}")
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise InvalidInput(f"row 1: header: missing columns {', '.join(missing)}; {expected}")
    return Header(
        width=len(names),
        person=names.index("person"),
        dialed=names.index("dialed"),
        start=names.index("start"),
        seconds=names.index("seconds"),
        channel=names.index("channel") if "channel" in names else None,
        record_id=names.index("record_id") if "record_id" in names else None,
    )


@dataclass(frozen=True, slots=True)
class RowFields:
    """One row as read; a field that is wrong is None and has its error in ``errors``.

    ``person`` is the id as written (the service checks it exists); ``dialed``
    is E.164; ``at`` is the UTC instant of the local ``start``; ``record_id``
    the vendor's own id of the record ("" when the file has none for it).
    """

    row: int
    person: str
    dialed: str | None
    at: datetime | None
    seconds: int | None
    channel: Channel | None
    errors: tuple[RowError, ...]
    record_id: str = ""


def read_row(
    values: Sequence[str], row: int, header: Header, zone: ZoneInfo, country: str
) -> RowFields:
    if len(values) != header.width:
        error = RowError(row, "columns", f"expected {header.width} values, got {len(values)}")
        return RowFields(row, "", None, None, None, None, (error,))
    errors: list[RowError] = []
    person = values[header.person].strip()
    if not person:
        errors.append(RowError(row, "person", "is empty"))
    dialed, problem = e164(values[header.dialed].strip(), country)
    if problem is not None:
        errors.append(RowError(row, "dialed", problem))
    at: datetime | None = None
    try:
        at = call_start(values[header.start].strip(), zone)
    except ValueError as error:
        errors.append(RowError(row, "start", str(error)))
    seconds: int | None = None
    try:
        seconds = call_seconds(values[header.seconds].strip())
    except ValueError as error:
        errors.append(RowError(row, "seconds", str(error)))
    channel: Channel | None = Channel.PHONE
    written = values[header.channel].strip() if header.channel is not None else ""
    if written:
        channel = _CHANNELS.get(written)
        if channel is None:
            choices = ", ".join(_CHANNELS)
            errors.append(RowError(row, "channel", f"must be one of {choices}; got {written!r}"))
    record_id = values[header.record_id].strip() if header.record_id is not None else ""
    if len(record_id) > MAX_RECORD_ID:
        errors.append(RowError(row, "record_id", f"is longer than {MAX_RECORD_ID} characters"))
    return RowFields(row, person, dialed, at, seconds, channel, tuple(errors), record_id)


def record_key(row: RowFields) -> str | None:
    """The vendor record ``row`` is, as 64 hex digits; None for a row with errors.

    By the vendor's own ``record_id`` when the row has one; else by what the
    call was: person, number dialed (E.164), start (the UTC instant), seconds
    and channel. The same record in another file, or twice in one, has the same
    key however its number or start were written, so importing it again adds
    nothing. Without record ids, two calls alike in all five are one record.
    """
    if row.errors:
        return None
    if row.record_id:
        identity = f"record\x1f{row.record_id}"
    else:
        assert row.at is not None and row.seconds is not None and row.channel is not None
        start = row.at.astimezone(UTC).isoformat()
        identity = "\x1f".join(
            ("call", row.person, row.dialed or "", start, str(row.seconds), str(row.channel))
        )
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


@lru_cache(maxsize=65_536)
def e164(text: str, country: str) -> tuple[str | None, str | None]:
    """The number as E.164, or why it is not a number (cached: exports repeat numbers)."""
    if not text:
        return None, "is empty"
    try:
        return normalize_phone(text, country, "dialed"), None
    except InvalidInput as error:
        return None, error.message


def call_start(text: str, zone: ZoneInfo) -> datetime:
    """A local date and time in ``zone`` as a UTC instant; ValueError says why not.

    Unlike a rule's ``from`` (SPEC 1), a start that the clocks skipped is refused:
    a real call cannot have started then, so the export is wrong. A start the
    clocks passed twice is the earlier (``fold=0``), as everywhere in kinline.
    """
    if not text:
        raise ValueError("is empty")
    try:
        wall = parse_wall_time(text, "start")
    except RuleError as error:
        raise ValueError(error.message) from None
    if "T" not in text and " " not in text:
        raise ValueError(f"{text!r} has no time of day; write 2026-11-01T14:05")
    try:
        instant = wall_to_instant(wall, zone)
    except (OverflowError, ValueError):
        raise ValueError(f"{text!r} is out of range") from None
    if local(instant, zone) != wall:
        raise ValueError(f"{text!r} does not exist in {zone.key}: the clocks skipped it (DST)")
    return instant


def call_seconds(text: str) -> int:
    if not text:
        raise ValueError("is empty")
    if not _SECONDS.fullmatch(text):
        raise ValueError(f"{text!r} is not a whole number of seconds")
    seconds = int(text)
    if seconds < 0:
        raise ValueError(f"{seconds} is negative; must be zero or more")
    if seconds > MAX_SECONDS:
        raise ValueError(f"{seconds} is more than {MAX_SECONDS} (24 hours)")
    return seconds


def minutes_of(seconds: int) -> int:
    """Whole minutes, rounded up: a call of 61 seconds is 2 minutes."""
    return -(-seconds // 60)


@dataclass(frozen=True, slots=True)
class Approval:
    channel: Channel
    approved_at: datetime
    revoked_at: datetime | None

    def holds_at(self, at: datetime) -> bool:
        return self.approved_at <= at and (self.revoked_at is None or self.revoked_at > at)


@dataclass(slots=True)
class ContactEntry:
    """A contact as stored, with every approval it ever had; ``as_of`` is the
    contact the engine sees at one moment."""

    id: str
    person: str
    relationship: str
    privileged: bool
    approvals: list[Approval] = field(default_factory=list)
    # The last answer of ``as_of`` and the instants [from, until) it holds for
    # (None: unbounded); a person's calls come in time order, so it mostly does.
    _current: Contact | None = None
    _from: datetime | None = None
    _until: datetime | None = None

    def as_of(self, at: datetime) -> Contact:
        current = self._current
        if (
            current is not None
            and (self._from is None or self._from <= at)
            and (self._until is None or at < self._until)
        ):
            return current
        approved = frozenset(a.channel for a in self.approvals if a.holds_at(at))
        changes = [a.approved_at for a in self.approvals]
        changes += [a.revoked_at for a in self.approvals if a.revoked_at is not None]
        self._from = max((t for t in changes if t <= at), default=None)
        self._until = min((t for t in changes if t > at), default=None)
        self._current = Contact(self.id, self.person, self.relationship, self.privileged, approved)
        return self._current


@dataclass(frozen=True, slots=True)
class Call:
    """A valid row: a call that happened, matched to the person's contact."""

    row: int
    person: str
    contact: ContactEntry
    channel: Channel
    at: datetime
    seconds: int

    @property
    def minutes(self) -> int:
        return minutes_of(self.seconds)


class BatchLedger:
    """The usage of a batch's people: stored usage plus the batch's own calls.

    Seeded from the store under the people's ledger locks; ``apply`` takes the
    same ``UsageChange`` a call set-up writes and keeps, beside the running
    totals the engine reads, every change the batch made: ``added`` is their
    sum, written back in one go (``calls.ledger.write_usage``).
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._counters: dict[str, dict[tuple[str, str], Tally]] = defaultdict(dict)
        self._rolling: dict[str, dict[str, list[tuple[datetime, int]]]] = defaultdict(dict)
        self._gaps: dict[str, dict[str, datetime]] = defaultdict(dict)
        self._snapshots: dict[str, UsageSnapshot] = {}
        self._changes: list[tuple[str, UsageChange]] = []

    def seed_counter(self, person: str, rule_id: str, key: str, tally: Tally) -> None:
        self._counters[person][(rule_id, key)] = tally

    def seed_entry(self, person: str, rule_id: str, started_at: datetime, minutes: int) -> None:
        self._rolling[person].setdefault(rule_id, []).append((started_at.astimezone(UTC), minutes))

    def seed_gap(self, person: str, rule_id: str, last_end: datetime) -> None:
        self._gaps[person][rule_id] = last_end

    def part(self, people: set[str]) -> BatchLedger:
        """A ledger of ``people``'s usage alone (a copy), to decide their calls
        elsewhere: no one's decisions read another person's usage."""
        part = BatchLedger(self.zone)
        for person in people:
            if person in self._counters:
                part._counters[person] = dict(self._counters[person])
            if person in self._rolling:
                rolling = self._rolling[person]
                part._rolling[person] = {rule: list(items) for rule, items in rolling.items()}
            if person in self._gaps:
                part._gaps[person] = dict(self._gaps[person])
        return part

    def snapshot(self, person: str) -> UsageSnapshot:
        """The person's usage as the engine reads it; it follows every later
        ``apply`` (it holds the ledger's own tables, never copies)."""
        snapshot = self._snapshots.get(person)
        if snapshot is None:
            snapshot = self._snapshots[person] = UsageSnapshot(
                zone=self.zone,
                counters=self._counters[person],
                rolling=self._rolling[person],
                gaps=self._gaps[person],
                ahead=True,
            )
        return snapshot

    def apply(self, person: str, change: UsageChange) -> None:
        counters = self._counters[person]
        for increment in change.counters:
            key = (increment.rule_id, increment.period_key)
            counters[key] = counters.get(key, Tally()).plus(increment.minutes)
        for entry in change.entries:
            started = entry.started_at.astimezone(UTC)
            self._rolling[person].setdefault(entry.rule_id, []).append((started, entry.minutes))
        gaps = self._gaps[person]
        for mark in change.gaps:
            previous = gaps.get(mark.rule_id)
            if previous is None or mark.ends_at > previous:
                gaps[mark.rule_id] = mark.ends_at
        self._changes.append((person, change))

    @property
    def added(self) -> UsageAdded:
        """What the batch adds to the stored ledger: the sum of its changes."""
        return usage_added(self._changes)
