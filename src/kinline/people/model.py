"""Facilities, people and contacts as the services hand them around; channels, phone numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from kinline.errors import InvalidInput
from kinline.rules.model import Channel
from kinline.rules.parse import RuleError, parse_enum
from kinline.rules.periods import local

# Languages notices are written in; a person may speak any other, and is then
# written to in English until a catalog for their language is added.
NOTICE_LANGUAGES = frozenset({"en", "es"})
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")


def check_language(code: str, field: str = "language") -> str:
    """An ISO 639 language code such as ``es`` or ``pt-BR``."""
    if not _LANGUAGE_CODE.fullmatch(code):
        raise InvalidInput(f"{code!r} is not a language code such as `en` or `es`", field=field)
    return code


@dataclass(frozen=True, slots=True)
class Facility:
    id: str
    name: str
    timezone: str
    country: str = "US"
    appeal_days: int = 20
    retaliation_window_days: int = 90

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def appeal_deadline(self, effective_at: datetime) -> date:
        """The effective date, in the facility's calendar, plus ``appeal_days``."""
        return local(effective_at, self.zone).date() + timedelta(days=self.appeal_days)


@dataclass(frozen=True, slots=True)
class Person:
    facility_id: str
    id: str
    name: str
    language: str


@dataclass(frozen=True, slots=True)
class ContactDetails:
    """What staff keep about a contact beside what decisions read (``rules.model.Contact``)."""

    name: str
    email: str | None = None
    notify_by_email: bool = False
    # The language the contact is written to in (None: the person's) and the
    # country their numbers without a country code are read in (None: the facility's).
    language: str | None = None
    country: str | None = None


class Custody(StrEnum):
    """Where a person's record at one facility stands."""

    IN_CUSTODY = "in_custody"
    RELEASED = "released"
    # Transferred out: the record at ``transferred_to`` carries on.
    TRANSFERRED = "transferred"


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """A person's record at one facility, as staff read it."""

    person: Person
    housing_unit: str | None
    custody: Custody
    admitted_at: datetime | None
    custody_changed_at: datetime | None
    transferred_to: str | None
    transferred_from: str | None

    def held_at(self, at: datetime) -> bool:
        """Whether the facility held the person at ``at``: a released or
        transferred-out record still counts for moments before its custody ended
        (a call recorded after the fact), never after."""
        return held(self.custody, self.custody_changed_at, at)


def held(custody: str, changed_at: datetime | None, at: datetime) -> bool:
    """``PersonRecord.held_at`` over a record's two custody columns."""
    return custody == Custody.IN_CUSTODY or (changed_at is not None and at < changed_at)


def check_name(name: str, field: str = "name") -> str:
    """A name as people write it: not blank, at most 200 characters, no NUL or
    line break (it is printed on a notice's address line)."""
    if not name.strip():
        raise InvalidInput("must not be blank", field=field)
    if len(name) > 200:
        raise InvalidInput("must be at most 200 characters", field=field)
    if any(char in name for char in "\x00\r\n"):
        raise InvalidInput("must be one line with no NUL character", field=field)
    return name


def check_country(code: str | None, field: str = "country") -> str | None:
    """A two-letter country code (ISO 3166-1 alpha-2, as phonenumbers knows it), or None."""
    if code is None:
        return None
    if code.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInput(f"{code!r} is not a two-letter country code such as `MX`", field=field)
    return code.upper()


_EMAIL = re.compile(r"[^@\s<>(),;:\"\[\]\\]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_HOUSING_UNIT = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/-]{0,63}")


def parse_channel(value: Channel | str, field: str = "channel") -> Channel:
    """A channel a contact is approved for and a rule concerns: phone, video, visit."""
    try:
        return parse_enum(Channel, str(value), field)
    except RuleError as error:
        raise InvalidInput(error.message, field=field) from None


def check_email(address: str | None, field: str = "email") -> str | None:
    """A plain ``name@example.org`` (no display name: nothing that could carry a
    second header line into a message), or None."""
    if address is None:
        return None
    if len(address) > 254 or not _EMAIL.fullmatch(address):
        raise InvalidInput(f"{address!r} is not an email address", field=field)
    return address


def check_housing_unit(unit: str | None, field: str = "housing_unit") -> str | None:
    """Letters, digits, spaces and ``._/-``, up to 64; None for no unit."""
    if unit is None:
        return None
    if not _HOUSING_UNIT.fullmatch(unit) or unit != unit.strip():
        raise InvalidInput(f"{unit!r} is not a housing unit such as `B-2`", field=field)
    return unit


def check_timezone(name: str, field: str = "timezone") -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"{name!r} is not an IANA time zone", field=field) from None
    return name


def normalize_phone(text: str, country: str, field: str = "phones") -> str:
    """Any format ``phonenumbers`` parses, as E.164; numbers without a country code
    are read as ``country``'s. A number that is not one says why in plain words."""
    try:
        number = phonenumbers.parse(text, country, keep_raw_input=True)
    except phonenumbers.NumberParseException as error:
        raise InvalidInput(_unparsable(text, country, error), field=field) from None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason not in (_REASON.IS_POSSIBLE, _REASON.IS_POSSIBLE_LOCAL_ONLY):
        explained = _IMPOSSIBLE.get(reason, "it has the wrong number of digits")
        if number.country_code_source in _WITH_COUNTRY_CODE:
            raise InvalidInput(f"{text!r} is not a phone number: {explained}", field=field)
        raise InvalidInput(f"{text!r} is not a valid number in {country}: {explained}", field=field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_REASON = phonenumbers.ValidationResult
_IMPOSSIBLE = {
    _REASON.TOO_SHORT: "too short",
    _REASON.TOO_LONG: "too long",
    _REASON.INVALID_COUNTRY_CODE: "the country code is not known",
    _REASON.INVALID_LENGTH: "it has the wrong number of digits",
}
_WITH_COUNTRY_CODE = frozenset(
    {
        phonenumbers.CountryCodeSource.FROM_NUMBER_WITH_PLUS_SIGN,
        phonenumbers.CountryCodeSource.FROM_NUMBER_WITH_IDD,
    }
)


def _unparsable(text: str, country: str, error: phonenumbers.NumberParseException) -> str:
    kind = error.error_type
    if kind == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
        written = text.lstrip().startswith(("+", "\uff0b"))
        if not written and country.upper() not in phonenumbers.SUPPORTED_REGIONS:
            return f"{text!r} is not a phone number: the country code is missing"
        return f"{text!r} is not a phone number: the country code is not known"
    if kind in (
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD,
        phonenumbers.NumberParseException.TOO_SHORT_NSN,
    ):
        return f"{text!r} is not a phone number: too short"
    if kind == phonenumbers.NumberParseException.TOO_LONG:
        return f"{text!r} is not a phone number: too long"
    return f"{text!r} is not a phone number"
