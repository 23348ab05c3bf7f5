"""Appeal levels, their deadlines, and how an appeal moves through them. Pure.

The readings this module makes, each pinned by a test in
``tests/unit/test_appeal_deadlines.py``:

* **N calendar days.** A window of N calendar days that opens at an instant
  runs to the end of the Nth calendar day after that instant's local date in
  the facility's zone. It is kept as the first instant it is over: the start
  (00:00 local) of day N+1, as a UTC instant, so an act at ``at`` is in time
  when ``at < deadline``. Days are counted on the calendar (``date +
  timedelta(days=N)``), never as N x 24 hours, so a window across a DST change
  is 23 or 25 hours longer or shorter, and a month end is just another day
  (31 January + 20 days is 20 February; 10 February 2024 + 20 days is
  1 March, 2024 being a leap year). This agrees with
  ``Facility.appeal_deadline``: a notice's printed "appeal by" date is the
  last day of the first level's window when ``file_days == appeal_days``.
* **The default levels** follow the US federal administrative remedy program
  (28 CFR 542): informal resolution, the warden, the regional director and
  the central office (general counsel). The regulation folds informal
  resolution into the 20 days to file with the warden (542.14(a)) and gives
  it no answer time. We read it as its own level: file within 20 days of the
  event, answered within 20 days, no extension; the warden's 20 days to file
  then run from the informal answer (or from its deemed denial), so time
  spent waiting on staff is never charged to the person (542.14(b) lets a
  late request through for exactly that reason).
* **A notice's promise holds.** A notice prints its "appeal by" date from the
  facility's ``appeal_days``; if the first level's window (``file_days``)
  would close earlier, the printed date wins: nobody is refused before the
  day their notice gave them.
* **Windows after the first** run from the answer, or, when no answer came
  in time, from the deemed denial: the instant the answer window closed
  (``answer_due``), whose local date is the day after the last answer day
  (542.18: no response in time "may be considered a denial").
* **A late answer** (after ``answer_due``, before the appeal moved on) is
  recorded; a late denial opens the next window from the answer, but never
  shortens a window the deemed denial had already opened.
* **Extensions** are once per level, by staff, before ``answer_due``, and
  add ``extension_days`` calendar days to the answer window.
* **Escalating** is open after a denial, a partial grant or a deemed denial,
  while the next level's window is open. A grant closes the appeal.
* **The issuing-office route**, for security measures, is one level with the
  warden's numbers; after it, the route ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

MAX_DAYS = 366
MAX_LEVELS = 10


class AppealError(Exception):
    """A request the appeal's rules refuse. ``conflict``: the appeal's state does
    not allow it; ``late``: its window has closed."""

    def __init__(
        self, field: str, message: str, *, conflict: bool = False, late: bool = False
    ) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.conflict = conflict
        self.late = late


class Route(StrEnum):
    STANDARD = "standard"
    ISSUING_OFFICE = "issuing_office"


class FiledBy(StrEnum):
    """Who filed: the person, counsel bound to them, or a family member (one of the
    person's contacts, where the facility accepts family filings)."""

    PERSON = "person"
    COUNSEL = "counsel"
    FAMILY = "family"


class Outcome(StrEnum):
    GRANTED = "granted"
    PARTIALLY_GRANTED = "partially_granted"
    DENIED = "denied"


class Status(StrEnum):
    PENDING = "pending"
    GRANTED = "granted"
    PARTIALLY_GRANTED = "partially_granted"
    DENIED = "denied"
    DENIED_BY_SILENCE = "denied_by_silence"
    WITHDRAWN = "withdrawn"


# After these the filer may take the appeal to the next level, if there is one.
ESCALABLE = frozenset({Status.DENIED, Status.PARTIALLY_GRANTED, Status.DENIED_BY_SILENCE})


@dataclass(frozen=True, slots=True)
class Level:
    """One level: calendar days to file there, to answer, and one extension."""

    name: str
    file_days: int
    answer_days: int
    extension_days: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "file_days": self.file_days,
            "answer_days": self.answer_days,
            "extension_days": self.extension_days,
        }


FEDERAL_LEVELS: tuple[Level, ...] = (
    Level("informal resolution", file_days=20, answer_days=20, extension_days=0),
    Level("warden", file_days=20, answer_days=20, extension_days=20),
    Level("regional director", file_days=20, answer_days=30, extension_days=30),
    Level("central office", file_days=30, answer_days=40, extension_days=20),
)
ISSUING_OFFICE_LEVELS: tuple[Level, ...] = (
    Level("issuing office", file_days=20, answer_days=20, extension_days=20),
)


@dataclass(frozen=True, slots=True)
class LevelConfig:
    """A facility's levels for each route."""

    standard: tuple[Level, ...] = FEDERAL_LEVELS
    issuing_office: tuple[Level, ...] = ISSUING_OFFICE_LEVELS

    def levels(self, route: Route) -> tuple[Level, ...]:
        return self.issuing_office if route is Route.ISSUING_OFFICE else self.standard

    def as_stored(self) -> list[dict[str, object]]:
        """The facility's ``appeal_levels`` column: each level with its route."""
        return [
            {"route": str(route), **level.as_dict()}
            for route in Route
            for level in self.levels(route)
        ]


DEFAULT_LEVELS = LevelConfig()


# --- calendar-day deadlines -----------------------------------------------------


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of a local calendar day, in UTC (fold=0: if midnight is
    skipped, the first instant after the gap; if it repeats, the first one)."""
    return datetime.combine(day, time(), tzinfo=zone).replace(fold=0).astimezone(UTC)


def deadline(opened_at: datetime, days: int, zone: ZoneInfo) -> datetime:
    """The first instant after a window of ``days`` calendar days that opened at
    ``opened_at``: 00:00 local on the day after its last day."""
    first = opened_at.astimezone(zone).date()
    return start_of_day(first + timedelta(days=days + 1), zone)


def last_day(closes_at: datetime, zone: ZoneInfo) -> date:
    """The last local calendar day of a window that closes at ``closes_at``."""
    return (closes_at.astimezone(zone) - timedelta(microseconds=1)).date()


def in_time(at: datetime, closes_at: datetime) -> bool:
    return at < closes_at


# --- configuration --------------------------------------------------------------


def _days(data: Mapping[str, Any], key: str, field: str, *, least: int) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise AppealError(f"{field}.{key}", f"must be a whole number of days; got {value!r}")
    if not least <= value <= MAX_DAYS:
        raise AppealError(f"{field}.{key}", f"must be from {least} to {MAX_DAYS} days; got {value}")
    return value


def parse_level(data: object, field: str) -> Level:
    if not isinstance(data, Mapping):
        raise AppealError(field, "must be a mapping with name, file_days and answer_days")
    unknown = sorted(set(data) - {"name", "file_days", "answer_days", "extension_days", "route"})
    if unknown:
        raise AppealError(f"{field}.{unknown[0]}", "is not a level setting")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 64 or "\x00" in name:
        raise AppealError(f"{field}.name", "must be a name of 1 to 64 characters")
    extension = data.get("extension_days", 0)
    return Level(
        name=name.strip(),
        file_days=_days(data, "file_days", field, least=1),
        answer_days=_days(data, "answer_days", field, least=1),
        extension_days=_days({"extension_days": extension}, "extension_days", field, least=0),
    )


def parse_levels(data: object, field: str = "levels") -> tuple[Level, ...]:
    """A list of levels, lowest first; errors name the field, as ``levels[1].answer_days``."""
    if not isinstance(data, Sequence) or isinstance(data, str | bytes):
        raise AppealError(field, "must be a list of levels")
    if not 1 <= len(data) <= MAX_LEVELS:
        raise AppealError(field, f"must hold 1 to {MAX_LEVELS} levels; got {len(data)}")
    levels = tuple(parse_level(item, f"{field}[{index}]") for index, item in enumerate(data))
    seen: set[str] = set()
    for index, level in enumerate(levels):
        if level.name.casefold() in seen:
            raise AppealError(f"{field}[{index}].name", f"{level.name!r} is listed twice")
        seen.add(level.name.casefold())
    return levels


def parse_config(data: object) -> LevelConfig:
    """Levels as a user writes them: a list (the standard route) or a mapping with
    ``standard`` and optionally ``issuing_office``."""
    if isinstance(data, Mapping):
        unknown = sorted(set(data) - {str(route) for route in Route})
        if unknown:
            raise AppealError(unknown[0], "is not a route: standard or issuing_office")
        if "standard" not in data:
            raise AppealError("standard", "the standard route's levels are required")
        issuing = data.get("issuing_office")
        return LevelConfig(
            standard=parse_levels(data["standard"], "standard"),
            issuing_office=ISSUING_OFFICE_LEVELS
            if issuing is None
            else parse_levels(issuing, "issuing_office"),
        )
    return LevelConfig(standard=parse_levels(data, "levels"))


def config_from_stored(stored: Sequence[Mapping[str, object]] | None) -> LevelConfig:
    """A facility's ``appeal_levels`` column (null: the federal default)."""
    if stored is None:
        return DEFAULT_LEVELS
    routes: dict[str, list[Mapping[str, object]]] = {}
    for item in stored:
        routes.setdefault(str(item.get("route", "standard")), []).append(item)
    return parse_config(routes)


# --- an appeal's way through its levels ------------------------------------------


@dataclass(frozen=True, slots=True)
class Stage:
    """Where an appeal stands: its level, status and the two deadlines."""

    level: int
    level_name: str
    status: Status
    answer_due: datetime | None
    file_next_by: datetime | None
    extended: bool


def _level(levels: Sequence[Level], index: int) -> Level:
    # A facility that removed levels leaves an appeal at its last one.
    return levels[min(index, len(levels) - 1)]


def _late(field: str, what: str, closes_at: datetime, zone: ZoneInfo) -> AppealError:
    return AppealError(
        field,
        f"the time to {what} ended on {last_day(closes_at, zone).isoformat()}; "
        "staff may accept it late with a reason",
        late=True,
    )


def file_window(
    levels: Sequence[Level], event_at: datetime, zone: ZoneInfo, promised: date | None = None
) -> datetime:
    """When the time to file at the first level ends: its window from the event, or
    the end of the ``promised`` day a notice printed, whichever is later."""
    closes = deadline(event_at, levels[0].file_days, zone)
    if promised is not None:
        closes = max(closes, start_of_day(promised + timedelta(days=1), zone))
    return closes


def filed(
    levels: Sequence[Level],
    event_at: datetime,
    at: datetime,
    zone: ZoneInfo,
    *,
    accepted_late: bool = False,
    promised: date | None = None,
) -> Stage:
    """A new appeal at the first level; late unless ``accepted_late``."""
    first = levels[0]
    closes = file_window(levels, event_at, zone, promised)
    if not accepted_late and not in_time(at, closes):
        raise _late("at", f"file at the {first.name} level", closes, zone)
    return Stage(0, first.name, Status.PENDING, deadline(at, first.answer_days, zone), None, False)


def _next_window(
    levels: Sequence[Level], stage: Stage, denied_at: datetime, zone: ZoneInfo
) -> datetime | None:
    if stage.level + 1 >= len(levels):
        return None
    return deadline(denied_at, levels[stage.level + 1].file_days, zone)


def answered(
    stage: Stage, levels: Sequence[Level], outcome: Outcome, at: datetime, zone: ZoneInfo
) -> Stage:
    if stage.status not in (Status.PENDING, Status.DENIED_BY_SILENCE):
        raise AppealError(
            "appeal_id", f"the {stage.level_name} level was already {stage.status}", conflict=True
        )
    if outcome is Outcome.GRANTED:
        return replace(stage, status=Status.GRANTED, file_next_by=None)
    window = _next_window(levels, stage, at, zone)
    if window is not None and stage.file_next_by is not None:
        window = max(window, stage.file_next_by)
    return replace(stage, status=Status(str(outcome)), file_next_by=window)


def extended(stage: Stage, levels: Sequence[Level], at: datetime, zone: ZoneInfo) -> Stage:
    level = _level(levels, stage.level)
    if stage.status is not Status.PENDING or stage.answer_due is None:
        raise AppealError(
            "appeal_id", f"the {stage.level_name} level is {stage.status}", conflict=True
        )
    if stage.extended:
        raise AppealError(
            "appeal_id", f"the {stage.level_name} level was already extended once", conflict=True
        )
    if level.extension_days == 0:
        raise AppealError(
            "appeal_id", f"the {stage.level_name} level allows no extension", conflict=True
        )
    if not in_time(at, stage.answer_due):
        raise AppealError(
            "at",
            f"the answer was due by {last_day(stage.answer_due, zone).isoformat()}; "
            "an extension after that cannot undo the denial",
            conflict=True,
        )
    due = deadline(stage.answer_due - timedelta(microseconds=1), level.extension_days, zone)
    return replace(stage, answer_due=due, extended=True)


def silence_due(stage: Stage, at: datetime) -> bool:
    """No answer came before the answer window closed."""
    return (
        stage.status is Status.PENDING and stage.answer_due is not None and at >= stage.answer_due
    )


def denied_by_silence(stage: Stage, levels: Sequence[Level], zone: ZoneInfo) -> Stage:
    """The deemed denial, at the instant the answer window closed."""
    assert stage.answer_due is not None
    return replace(
        stage,
        status=Status.DENIED_BY_SILENCE,
        file_next_by=_next_window(levels, stage, stage.answer_due, zone),
    )


def escalated(
    stage: Stage,
    levels: Sequence[Level],
    at: datetime,
    zone: ZoneInfo,
    *,
    accepted_late: bool = False,
) -> Stage:
    """The appeal filed at the next level (a pending deemed denial is taken first)."""
    if silence_due(stage, at):
        stage = denied_by_silence(stage, levels, zone)
    if stage.status not in ESCALABLE:
        raise AppealError(
            "appeal_id",
            f"the {stage.level_name} level is {stage.status}: only a denial, a partial grant "
            "or a deemed denial can be taken further",
            conflict=True,
        )
    if stage.level + 1 >= len(levels):
        raise AppealError(
            "appeal_id", f"the {stage.level_name} level is the last one", conflict=True
        )
    closes = stage.file_next_by
    assert closes is not None
    nxt = levels[stage.level + 1]
    if not accepted_late and not in_time(at, closes):
        raise _late("at", f"file at the {nxt.name} level", closes, zone)
    return Stage(
        stage.level + 1,
        nxt.name,
        Status.PENDING,
        deadline(at, nxt.answer_days, zone),
        None,
        False,
    )


def is_closed(stage: Stage) -> bool:
    """Granted, withdrawn, or answered at a level beyond which there is none."""
    if stage.status in (Status.GRANTED, Status.WITHDRAWN):
        return True
    return stage.status in ESCALABLE and stage.file_next_by is None


def withdrawn(stage: Stage) -> Stage:
    if is_closed(stage):
        raise AppealError("appeal_id", f"the appeal is already {stage.status}", conflict=True)
    return replace(stage, status=Status.WITHDRAWN, file_next_by=None)


def is_overdue(stage: Stage, at: datetime) -> bool:
    """Staff owe an answer whose time has passed (deemed denied or not yet swept)."""
    return (
        stage.status in (Status.PENDING, Status.DENIED_BY_SILENCE)
        and stage.answer_due is not None
        and at >= stage.answer_due
    )


# --- what the person is told when silence denies their appeal --------------------

_SILENCE = {
    "en": {
        "denied": (
            "No answer came by {answer_by}, so your appeal {appeal} is denied at the {level} level."
        ),
        "next": (
            " You may take it to the {next} level until {file_by}: file at the kiosk or on "
            "the paper form, naming appeal {appeal}. Your counsel or a family member may "
            "file it for you."
        ),
        "next_no_family": (
            " You may take it to the {next} level until {file_by}: file at the kiosk or on "
            "the paper form, naming appeal {appeal}. Your counsel may file it for you."
        ),
        "last": (
            " This was the last level: the facility's appeal process is over, and you may "
            "take the matter to a court."
        ),
    },
    "es": {
        "denied": (
            "No hubo respuesta antes del {answer_by}, por lo que su apelación {appeal} queda "
            "denegada en el nivel {level}."
        ),
        "next": (
            " Puede llevarla al nivel {next} hasta el {file_by}: preséntela en el quiosco o "
            "con el formulario en papel, indicando la apelación {appeal}. Su abogado o un "
            "familiar puede presentarla por usted."
        ),
        "next_no_family": (
            " Puede llevarla al nivel {next} hasta el {file_by}: preséntela en el quiosco o "
            "con el formulario en papel, indicando la apelación {appeal}. Su abogado puede "
            "presentarla por usted."
        ),
        "last": (
            " Este era el último nivel: el proceso de apelación del centro ha terminado y "
            "puede llevar el asunto ante un tribunal."
        ),
    },
}


def silence_explained(
    language: str,
    *,
    appeal_id: int,
    level_name: str,
    answer_by: date,
    next_level: str | None,
    file_by: date | None,
    family_may_file: bool,
) -> str:
    """What a denial by silence means and what comes next, in the person's language
    (English for any language without its own words): the next level and the last
    day to file there, or that the appeals are exhausted."""
    words = _SILENCE.get(language, _SILENCE["en"])
    text = words["denied"].format(
        answer_by=answer_by.isoformat(), appeal=appeal_id, level=level_name
    )
    if next_level is None or file_by is None:
        return text + words["last"]
    follow = words["next"] if family_may_file else words["next_no_family"]
    return text + follow.format(next=next_level, file_by=file_by.isoformat(), appeal=appeal_id)
