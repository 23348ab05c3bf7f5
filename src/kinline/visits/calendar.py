"""A visit's times where each visitor lives, and its iCalendar invitation.

Family abroad read a visit in their own zone: a video visit at 10:00 in
Denver is 11:00 in Mexico City for half the year and 10:00 for the other
half, because the two zones change clocks on different dates (Mexico City
no longer at all). Times are therefore computed instant by instant from the
IANA database, never by a fixed offset. The invitation carries its
VTIMEZONE, so a calendar that has no tz database of its own shows the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event, vCalAddress, vText

PRODID = "-//kinline//visits//EN"


@dataclass(frozen=True, slots=True)
class LocalTime:
    """A visit's start and end on one wall clock."""

    timezone: str
    starts: datetime  # aware, in ``timezone``
    ends: datetime

    @property
    def utc_offset(self) -> str:
        """``-06:00``: the start's offset from UTC."""
        offset = self.starts.utcoffset() or timedelta(0)
        sign = "-" if offset < timedelta(0) else "+"
        minutes = abs(int(offset.total_seconds())) // 60
        return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"

    def shown(self) -> str:
        """``2026-03-09 11:00-12:00 America/Mexico_City (-06:00)``."""
        return f"{self.starts:%Y-%m-%d %H:%M}-{self.ends:%H:%M} {self.timezone} ({self.utc_offset})"


def local_time(starts_at: datetime, ends_at: datetime, timezone: str) -> LocalTime:
    zone = ZoneInfo(timezone)
    return LocalTime(timezone, starts_at.astimezone(zone), ends_at.astimezone(zone))


@cache
def _country_zones() -> dict[str, str]:
    """Each country's first zone in the tz database's ``zone.tab`` (its main one:
    ``MX`` -> ``America/Mexico_City``, ``US`` -> ``America/New_York``)."""
    text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text("utf-8")
    zones: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split("\t")
        zones.setdefault(fields[0].upper(), fields[2])
    return zones


def visitor_zone(timezone: str | None, country: str | None, fallback: str) -> str:
    """The zone a visitor reads times in: their own if known and valid, else their
    country's main zone, else ``fallback`` (the facility's)."""
    if timezone:
        try:
            ZoneInfo(timezone)
            return timezone
        except (ZoneInfoNotFoundError, ValueError):
            pass
    if country:
        return _country_zones().get(country.upper(), fallback)
    return fallback


@dataclass(frozen=True, slots=True)
class Attendee:
    name: str
    email: str | None


@dataclass(frozen=True, slots=True)
class Invitation:
    """What an invitation says about one visit."""

    uid: str  # stable per booking, so an update or cancellation replaces the invitation
    summary: str
    description: str
    location: str
    starts_at: datetime
    ends_at: datetime
    timezone: str  # the facility's: the times are written on its clock, with its VTIMEZONE
    attendees: Sequence[Attendee] = ()
    sequence: int = 0  # raised with each change
    cancelled: bool = False
    tentative: bool = False  # requested, not yet confirmed by the facility


def visit_sequence(*, confirmed: bool, cancelled: bool) -> int:
    """The invitation's SEQUENCE: a visit requested is 0, confirmed 1, cancelled
    2. RFC 5545 counts a change of STATUS as a revision a calendar must see, so
    the confirmation replaces a tentative entry saved from a request, and the
    cancellation replaces either."""
    return 2 if cancelled else 1 if confirmed else 0


def invitation_ics(invitation: Invitation, *, stamp: datetime) -> str:
    """The invitation as iCalendar text (RFC 5545), with a VTIMEZONE for the
    facility's zone covering the visit's year either side."""
    zone = ZoneInfo(invitation.timezone)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if invitation.cancelled else "REQUEST")
    event = Event()
    event.add("uid", invitation.uid)
    event.add("sequence", invitation.sequence)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("dtstart", invitation.starts_at.astimezone(zone))
    event.add("dtend", invitation.ends_at.astimezone(zone))
    event.add("summary", vText(invitation.summary))
    event.add("description", vText(invitation.description))
    event.add("location", vText(invitation.location))
    event.add("status", _status(invitation))
    for attendee in _with_email(invitation.attendees):
        address = vCalAddress(f"mailto:{attendee.email}")
        address.params["cn"] = vText(attendee.name)
        address.params["role"] = vText("REQ-PARTICIPANT")
        event.add("attendee", address, encode=False)
    calendar.add_component(event)
    day = invitation.starts_at.astimezone(zone).date()
    calendar.add_missing_timezones(
        first_date=day - timedelta(days=366), last_date=day + timedelta(days=366)
    )
    return str(calendar.to_ical().decode("utf-8"))


def _status(invitation: Invitation) -> str:
    if invitation.cancelled:
        return "CANCELLED"
    return "TENTATIVE" if invitation.tentative else "CONFIRMED"


def _with_email(attendees: Iterable[Attendee]) -> list[Attendee]:
    return [attendee for attendee in attendees if attendee.email]
