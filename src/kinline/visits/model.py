"""Visitors as pure rules: who may be approved, what a restriction allows on a
day, how it is shown to a family, and a facility's visit settings.

Standard library, the engine's model and ``visits.slots`` only; time and
dates are passed in. The service checks what these return before it writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import TypeVar

from kinline.errors import InvalidInput
from kinline.rules.model import Setting
from kinline.visits.slots import Booker, BookingWindow, GroupLimits, Refusal, age_on

REASON_REQUIRED = "a reason is required"
E = TypeVar("E", bound=StrEnum)


class VisitorStatus(StrEnum):
    APPLIED = "applied"
    APPROVED = "approved"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"

    @property
    def open(self) -> bool:
        """Whether the application still stands (applied or approved)."""
        return self in (VisitorStatus.APPLIED, VisitorStatus.APPROVED)


class Verdict(StrEnum):
    """What staff decide on an application."""

    APPROVE = "approve"
    REFUSE = "refuse"


class Supervision(StrEnum):
    """Court supervision in the community a visitor may be under."""

    PROBATION = "probation"
    SUPERVISED_RELEASE = "supervised_release"
    PAROLE = "parole"


class RestrictionKind(StrEnum):
    """What a restriction leaves a visitor: nothing, closed or non-contact visits."""

    BANNED = "banned"
    CLOSED = "closed"
    NON_CONTACT = "non_contact"

    @property
    def setting(self) -> Setting | None:
        """The least restrictive setting a visit may have (None: no visit at all)."""
        if self is RestrictionKind.CLOSED:
            return Setting.CLOSED
        if self is RestrictionKind.NON_CONTACT:
            return Setting.NON_CONTACT
        return None


@dataclass(frozen=True, slots=True)
class VisitSettings:
    """A facility's visit settings; the defaults hold where it set none."""

    adult_age: int = 18
    max_visitors: int = 3
    max_adults: int = 3
    max_children: int = 3
    staff_min_notice_days: int = 0
    staff_max_notice_days: int = 60
    public_min_notice_days: int = 2
    public_max_notice_days: int = 28
    reservation_minutes: int = 10
    auto_refuse_hours: int = 72
    officer_consent_required: bool = True
    co_defendants_to_warden: bool = True
    minors_need_adult: bool = True

    @property
    def group_limits(self) -> GroupLimits:
        return GroupLimits(
            max_visitors=self.max_visitors,
            max_adults=self.max_adults,
            max_children=self.max_children,
            adult_age=self.adult_age,
        )

    def booking_window(self, booker: Booker) -> BookingWindow:
        if booker is Booker.STAFF:
            return BookingWindow(self.staff_min_notice_days, self.staff_max_notice_days)
        return BookingWindow(self.public_min_notice_days, self.public_max_notice_days)


_SETTING_BOUNDS = {
    "adult_age": (1, 30),
    "max_visitors": (1, 50),
    "max_adults": (1, 50),
    "max_children": (0, 50),
    "staff_min_notice_days": (0, 365),
    "staff_max_notice_days": (0, 365),
    "public_min_notice_days": (0, 365),
    "public_max_notice_days": (0, 365),
    "reservation_minutes": (1, 240),
    "auto_refuse_hours": (1, 24 * 60),
}


def check_settings(settings: VisitSettings) -> VisitSettings:
    """The settings, or ``InvalidInput`` naming the first that is out of bounds."""
    for name, (low, high) in _SETTING_BOUNDS.items():
        value = getattr(settings, name)
        if not low <= value <= high:
            raise InvalidInput(f"must be from {low} to {high}, not {value}", field=name)
    for kind in ("staff", "public"):
        low, high = (getattr(settings, f"{kind}_{end}_notice_days") for end in ("min", "max"))
        if low > high:
            raise InvalidInput(
                f"the minimum notice ({low} days) is above the maximum ({high})",
                field=f"{kind}_min_notice_days",
            )
    return settings


@dataclass(frozen=True, slots=True)
class Visitor:
    """An application of a contact to visit a person, and its decision."""

    id: int
    facility_id: str
    person_id: str
    contact_id: str
    name: str
    relationship: str
    date_of_birth: date
    address: str
    country: str
    timezone: str | None
    id_document_type: str | None
    id_document_number: str | None
    id_checked_by: str | None
    id_checked_at: datetime | None
    criminal_record_declared: bool
    criminal_record: str | None
    supervision: Supervision | None
    supervising_officer: str | None
    supervising_office: str | None
    officer_consent_at: datetime | None
    officer_consent_by: str | None
    officer_consent_note: str | None
    co_defendant: bool
    accompanying_contact_id: str | None
    status: VisitorStatus
    applied_at: datetime
    applied_by: str
    decided_at: datetime | None = None
    decided_by: str | None = None
    decision_reason: str | None = None

    def minor_on(self, day: date, adult_age: int) -> bool:
        return age_on(self.date_of_birth, day) < adult_age

    def needs_consent(self, settings: VisitSettings) -> bool:
        """Whether approval waits for the supervising officer's consent (the first key)."""
        return (
            self.supervision is not None
            and settings.officer_consent_required
            and self.officer_consent_at is None
        )

    def flagged(self, settings: VisitSettings) -> bool:
        """Whether only the warden may decide (a former co-defendant)."""
        return self.co_defendant and settings.co_defendants_to_warden


@dataclass(frozen=True, slots=True)
class Blocker:
    """Why an application cannot be approved yet: a stable code, the field, words."""

    code: str
    field: str
    message: str


def approval_blockers(
    visitor: Visitor,
    settings: VisitSettings,
    *,
    today: date,
    adult_approved: bool,
) -> list[Blocker]:
    """Everything that stands between an application and its approval on ``today``.

    The warden's flag is not here: who decides is access, not readiness.
    ``adult_approved``: whether the minor's accompanying adult is an approved visitor.
    """
    blockers: list[Blocker] = []
    if visitor.status is not VisitorStatus.APPLIED:
        blockers.append(Blocker("wrong_state", "status", f"the application is {visitor.status}"))
    if visitor.id_checked_at is None:
        blockers.append(
            Blocker("id_not_checked", "id_document", "the ID document has not been checked")
        )
    if visitor.needs_consent(settings):
        blockers.append(
            Blocker(
                "officer_consent_missing",
                "officer_consent",
                f"a visitor under {visitor.supervision} needs the supervising officer's "
                "recorded consent before approval",
            )
        )
    if settings.minors_need_adult and visitor.minor_on(today, settings.adult_age):
        if visitor.accompanying_contact_id is None:
            blockers.append(
                Blocker(
                    "minor_without_adult",
                    "accompanying_contact_id",
                    f"a visitor under {settings.adult_age} visits only with an approved adult: "
                    "name one",
                )
            )
        elif not adult_approved:
            blockers.append(
                Blocker(
                    "minor_without_adult",
                    "accompanying_contact_id",
                    f"the accompanying adult {visitor.accompanying_contact_id!r} is not an "
                    "approved visitor",
                )
            )
    return blockers


@dataclass(frozen=True, slots=True)
class Restriction:
    """A visitor banned or held to closed or non-contact visits from ``starts_on``
    until the day before ``until`` (None: until lifted)."""

    id: int
    visitor_id: int
    contact_id: str
    kind: RestrictionKind
    reason: str
    starts_on: date
    until: date | None
    imposed_at: datetime
    imposed_by: str
    lifted_at: datetime | None = None
    lifted_by: str | None = None
    lift_reason: str | None = None

    def in_force_on(self, day: date, at: datetime | None = None) -> bool:
        """Whether it restricts a visit on ``day`` (as known at ``at``: a lifted
        restriction restricts nothing after it was lifted)."""
        if self.lifted_at is not None and (at is None or self.lifted_at <= at):
            return False
        return self.starts_on <= day and (self.until is None or day < self.until)


def check_restriction_dates(starts_on: date, until: date | None) -> None:
    if until is not None and until <= starts_on:
        raise InvalidInput(
            f"must be after the first restricted day {starts_on.isoformat()}", field="until"
        )


_SHOWN = {
    "en": {
        RestrictionKind.BANNED: "No visits",
        RestrictionKind.CLOSED: "Closed visits only",
        RestrictionKind.NON_CONTACT: "Non-contact visits only",
        "until": "not until {date}",
        "open": "until further notice",
        "from": "from {date}",
    },
    "es": {
        RestrictionKind.BANNED: "Sin visitas",
        RestrictionKind.CLOSED: "Solo visitas cerradas",
        RestrictionKind.NON_CONTACT: "Solo visitas sin contacto",
        "until": "no antes del {date}",
        "open": "hasta nuevo aviso",
        "from": "desde el {date}",
    },
}


def shown(restriction: Restriction, language: str, today: date) -> str:
    """A restriction as a family reads it: "Closed visits only, not until 2027-03-01"
    (``until`` is the first day without it)."""
    words = _SHOWN.get(language, _SHOWN["en"])
    parts = [words[restriction.kind]]
    if restriction.starts_on > today:
        parts.append(words["from"].format(date=restriction.starts_on.isoformat()))
    if restriction.until is None:
        parts.append(words["open"])
    else:
        parts.append(words["until"].format(date=restriction.until.isoformat()))
    return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Standing:
    """Whether a contact may visit on a day, and in what setting at least.

    ``refusal`` is None, ``visitor_not_approved`` or ``visitor_restricted``;
    ``setting`` the least restrictive setting the visitor's restrictions allow.
    """

    contact_id: str
    refusal: Refusal | None
    setting: Setting
    message: str | None
    date_of_birth: date | None = None


def standing(
    contact_id: str,
    visitor: Visitor | None,
    restrictions: Iterable[Restriction],
    day: date,
    *,
    at: datetime,
) -> Standing:
    """What a contact's visitor record allows on ``day``, as known at ``at``."""
    if visitor is None or visitor.status is not VisitorStatus.APPROVED:
        state = "has not applied" if visitor is None else f"is {visitor.status}"
        return Standing(
            contact_id,
            Refusal.VISITOR_NOT_APPROVED,
            Setting.OPEN,
            f"visitor {contact_id!r} is not an approved visitor (their application {state})",
            None if visitor is None else visitor.date_of_birth,
        )
    setting = Setting.OPEN
    for restriction in restrictions:
        if not restriction.in_force_on(day, at):
            continue
        required = restriction.kind.setting
        if required is None:
            return Standing(
                contact_id,
                Refusal.VISITOR_RESTRICTED,
                Setting.CLOSED,
                f"visitor {contact_id!r}: {shown(restriction, 'en', day)} ({restriction.reason})",
                visitor.date_of_birth,
            )
        if required.level > setting.level:
            setting = required
    return Standing(contact_id, None, setting, None, visitor.date_of_birth)


def choice(kind: type[E], value: str, field: str) -> E:
    """``value`` as one of ``kind``'s words, or ``InvalidInput`` naming the field."""
    try:
        return kind(value)
    except ValueError:
        words = ", ".join(member.value for member in kind)
        raise InvalidInput(f"{value!r} is not one of {words}", field=field) from None
