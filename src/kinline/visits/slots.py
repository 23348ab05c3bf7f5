"""Visiting sessions as pure arithmetic: which dates a template offers, what a
block takes away, which place a visit takes, what a group and a booking window
allow, and how a booking moves through its statuses.

Standard library and the rules engine's model only, so every rule here is
tested without a database. Session times are wall times in the facility's
zone, turned into UTC instants date by date, so a 10:00 session is at 10:00
on both sides of a DST change (a wall time in a DST gap resolves as
``zoneinfo`` does with ``fold=0``, as everywhere in kinline).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from kinline.rules.model import Channel, Setting
from kinline.rules.periods import wall_to_instant

MAX_RANGE_DAYS = 366  # the longest date range slots are listed for at once


class SessionKind(StrEnum):
    """What a visiting session is: in person with contact, in person behind glass, or video."""

    CONTACT = "contact"
    NON_CONTACT = "non_contact"
    VIDEO = "video"

    @property
    def channel(self) -> Channel:
        """The engine's channel for a visit in such a session."""
        return Channel.VIDEO if self is SessionKind.VIDEO else Channel.VISIT


class Place(StrEnum):
    """Which of a session's two capacities a visit takes."""

    OPEN = "open"
    CLOSED = "closed"


class Booker(StrEnum):
    """Who books: staff, or the public (a family member, the person at a kiosk)."""

    STAFF = "staff"
    PUBLIC = "public"


class Refusal(StrEnum):
    """Why a visit cannot be booked, beside the engine's own reasons (``rules.model.Reason``)."""

    NO_CAPACITY = "no_capacity"
    VISITOR_NOT_APPROVED = "visitor_not_approved"
    VISITOR_RESTRICTED = "visitor_restricted"
    NON_ASSOCIATION = "non_association"
    OUTSIDE_BOOKING_WINDOW = "outside_booking_window"
    GROUP_LIMIT = "group_limit"
    SETTING_NOT_OFFERED = "setting_not_offered"
    SESSION_BLOCKED = "session_blocked"
    ALREADY_BOOKED = "already_booked"


@dataclass(frozen=True, slots=True)
class Template:
    """A session that recurs: a room, a weekday (0 Monday .. 6 Sunday), local start and end."""

    id: str
    room_id: str
    weekday: int
    starts: time
    ends: time
    kind: SessionKind
    capacity_open: int
    capacity_closed: int
    valid_from: date
    valid_to: date | None = None  # inclusive; None: open-ended
    every_weeks: int = 1  # 1 weekly, 2 fortnightly (counted from valid_from's week)
    excluded: frozenset[date] = frozenset()


@dataclass(frozen=True, slots=True)
class Block:
    """A date taken out of service: one room's, or the whole facility's (``room_id`` None)."""

    day: date
    room_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One template on one date: the session a visit is booked into."""

    template_id: str
    room_id: str
    day: date
    starts_at: datetime  # UTC
    ends_at: datetime  # UTC
    kind: SessionKind
    capacity_open: int
    capacity_closed: int

    @property
    def minutes(self) -> int:
        return int((self.ends_at - self.starts_at).total_seconds() // 60)


def template_problem(template: Template) -> tuple[str, str] | None:
    """What is wrong with a template, as (field, message), or None."""
    if not 0 <= template.weekday <= 6:
        return "weekday", "must be 0 (Monday) to 6 (Sunday)"
    if template.ends <= template.starts:
        return "ends", "must be later than the start (a session does not cross midnight)"
    if template.capacity_open < 0:
        return "capacity_open", "must be zero or more"
    if template.capacity_closed < 0:
        return "capacity_closed", "must be zero or more"
    if template.capacity_open + template.capacity_closed == 0:
        return "capacity_open", "a session needs at least one place"
    if template.kind is SessionKind.VIDEO and template.capacity_closed:
        return "capacity_closed", "a video session has no closed places"
    if template.every_weeks not in (1, 2):
        return "every_weeks", "must be 1 (weekly) or 2 (fortnightly)"
    if template.valid_to is not None and template.valid_to < template.valid_from:
        return "valid_to", "must not be before valid_from"
    return None


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def occurs_on(template: Template, day: date) -> bool:
    """Whether the template offers a session on ``day`` (blocks aside)."""
    if day.weekday() != template.weekday or day < template.valid_from:
        return False
    if template.valid_to is not None and day > template.valid_to:
        return False
    if day in template.excluded:
        return False
    weeks = (_monday(day) - _monday(template.valid_from)).days // 7
    return weeks % template.every_weeks == 0


def occurrence(template: Template, day: date, zone: ZoneInfo) -> Occurrence:
    """The template's session on ``day`` with its instants in ``zone``."""
    return Occurrence(
        template_id=template.id,
        room_id=template.room_id,
        day=day,
        starts_at=wall_to_instant(datetime.combine(day, template.starts), zone),
        ends_at=wall_to_instant(datetime.combine(day, template.ends), zone),
        kind=template.kind,
        capacity_open=template.capacity_open,
        capacity_closed=template.capacity_closed,
    )


def blocking(blocks: Iterable[Block], room_id: str, day: date) -> Block | None:
    """The block that takes ``room_id`` out of service on ``day``, if any
    (a whole-facility block first)."""
    hits = [block for block in blocks if block.day == day and block.room_id in (None, room_id)]
    hits.sort(key=lambda block: block.room_id is not None)
    return hits[0] if hits else None


def days(first: date, last: date) -> list[date]:
    """Every date from ``first`` to ``last`` inclusive."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def occurrences(
    templates: Iterable[Template],
    blocks: Iterable[Block],
    first: date,
    last: date,
    zone: ZoneInfo,
) -> list[Occurrence]:
    """Every session offered from ``first`` to ``last`` (inclusive), not blocked,
    in order of start then room."""
    blocks = list(blocks)
    found = [
        occurrence(template, day, zone)
        for template in templates
        for day in days(first, last)
        if occurs_on(template, day) and blocking(blocks, template.room_id, day) is None
    ]
    return sorted(found, key=lambda o: (o.starts_at, o.room_id, o.template_id))


# -- places: which capacity a visit takes --------------------------------------

_PLACES: Mapping[SessionKind, tuple[tuple[Place, Setting], ...]] = {
    # least restrictive first
    SessionKind.CONTACT: ((Place.OPEN, Setting.OPEN), (Place.CLOSED, Setting.CLOSED)),
    SessionKind.NON_CONTACT: ((Place.OPEN, Setting.NON_CONTACT), (Place.CLOSED, Setting.CLOSED)),
}


def most_restrictive(settings: Iterable[Setting | None]) -> Setting:
    """The most restrictive of ``open`` and the settings given (None adds nothing)."""
    return max((s for s in settings if s is not None), key=lambda s: s.level, default=Setting.OPEN)


def place_for(kind: SessionKind, required: Setting) -> tuple[Place, Setting | None] | None:
    """The place a visit takes in a session of ``kind`` when it must happen in
    ``required`` or a more restrictive setting: the least restrictive such place
    the session has (a visit allowed in the open does not take a closed place,
    which those who need one would then lack). A video visit takes an open place
    and has no setting. None: the session offers no such place."""
    if kind is SessionKind.VIDEO:
        return Place.OPEN, None
    for place, setting in _PLACES[kind]:
        if setting.level >= required.level:
            return place, setting
    return None  # pragma: no cover - every in-person kind offers closed places


def capacity(occ: Occurrence, place: Place) -> int:
    return occ.capacity_open if place is Place.OPEN else occ.capacity_closed


# -- the group and the booking window ------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupLimits:
    """How many visitors a visit may have (the facility's visit settings)."""

    max_visitors: int = 3
    max_adults: int = 3
    max_children: int = 3
    adult_age: int = 18


def age_on(born: date, day: date) -> int:
    """Whole years from ``born`` to ``day`` (a 29 February birthday turns on 1 March)."""
    years = day.year - born.year
    return years - ((day.month, day.day) < (born.month, born.day))


def group_problem(births: Iterable[date | None], limits: GroupLimits, day: date) -> str | None:
    """Why a group of visitors (their dates of birth; None: unknown, counted as an
    adult) may not visit on ``day``, in plain words, or None."""
    ages = [None if born is None else age_on(born, day) for born in births]
    if not ages:
        return "a visit needs at least one visitor"
    children = sum(1 for age in ages if age is not None and age < limits.adult_age)
    adults = len(ages) - children
    if len(ages) > limits.max_visitors:
        return f"at most {limits.max_visitors} visitors, not {len(ages)}"
    if adults > limits.max_adults:
        return f"at most {limits.max_adults} adults, not {adults}"
    if children > limits.max_children:
        return f"at most {limits.max_children} children, not {children}"
    if children and not adults:
        return f"a visitor under {limits.adult_age} visits only with an adult"
    return None


@dataclass(frozen=True, slots=True)
class BookingWindow:
    """How many days ahead a booking may be made: at least ``min_days``, at most ``max_days``."""

    min_days: int
    max_days: int


def within_window(window: BookingWindow, today: date, day: date) -> bool:
    """Whether a session on ``day`` may be booked on ``today`` (both facility dates)."""
    ahead = (day - today).days
    return window.min_days <= ahead <= window.max_days
