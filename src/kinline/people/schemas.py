"""API shapes for facilities, people and contacts."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from kinline.bounds import CODE_CHARS, LONG_TEXT_CHARS, REASON_CHARS, TIME_CHARS


def plain_text(text: str) -> str:
    """PostgreSQL can neither store nor compare text with a NUL character."""
    if "\x00" in text:
        raise ValueError("must not contain a NUL character")
    return text


def stated_reason(text: str) -> str:
    if not text.strip():
        raise ValueError("must state a reason, not only spaces")
    # Each field says its own cap (kinline.bounds); none is longer than this.
    if len(text) > LONG_TEXT_CHARS:
        raise ValueError(f"must be at most {LONG_TEXT_CHARS} characters")
    return plain_text(text)


# Why a change is made; the person reads it in their notice, so it is never blank.
Reason = Annotated[str, AfterValidator(stated_reason)]


class FacilityOut(BaseModel):
    id: str
    name: str
    timezone: str
    country: str
    appeal_days: int
    retaliation_window_days: int


# Text a person or staff typed, stored as is.
Text = Annotated[str, AfterValidator(plain_text)]


class PersonOut(BaseModel):
    id: str
    name: str
    language: str
    housing_unit: str | None = Field(description="Where printed notices go")
    custody: str = Field(description="in_custody, released or transferred (out of this facility)")
    admitted_at: str | None = Field(description="Local wall time the record was opened")
    custody_changed_at: str | None = Field(
        description="Local wall time of the release or transfer out"
    )
    transferred_to: str | None = Field(description="The facility a transfer went to")
    transferred_from: str | None = Field(description="The facility a transfer came from")


class ContactOut(BaseModel):
    id: str
    person_id: str
    name: str
    relationship: str
    privileged: bool
    phones: list[str] = Field(description="E.164 numbers")
    approved: list[str] = Field(description="Channels the contact is approved for now")
    email: str | None = Field(description="Where the contact's notices are emailed")
    notify_by_email: bool
    language: str | None = Field(description="The contact's language; null: the person's")
    country: str | None = Field(description="Where numbers without a country code are read")
    withheld: bool = Field(
        description="A privileged contact whose numbers and email the caller may not see"
    )


class AdmitIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "p-rivera",
                    "name": "M. Rivera",
                    "language": "es",
                    "housing_unit": "B-2",
                    "at": "2024-06-01T09:00",
                }
            ]
        },
    )

    id: Text = Field(min_length=1, max_length=64, description="The person's id, for good")
    name: Text = Field(min_length=1, max_length=200)
    language: Text = Field(
        min_length=2, max_length=16, description="ISO 639 code their notices are written in"
    )
    housing_unit: Text | None = Field(default=None, max_length=64)
    at: str | None = Field(default=None, description="Local wall time; default now")


class PersonPatch(BaseModel):
    """Only the fields given change; ``housing_unit: null`` clears it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"housing_unit": "C-1", "language": "en"}]},
    )

    name: Text | None = Field(default=None, min_length=1, max_length=200)
    language: Text | None = Field(default=None, min_length=2, max_length=16)
    housing_unit: Text | None = Field(default=None, max_length=64)
    at: str | None = Field(default=None, description="Local wall time; default now")


class TransferIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "to_facility_id": "fci-tucson",
                    "reason": "Designated to a facility nearer the family.",
                    "housing_unit": "A-1",
                }
            ]
        },
    )

    to_facility_id: Text = Field(min_length=1, max_length=64)
    reason: Reason = Field(min_length=1, description="Why; the person reads it in their notice")
    housing_unit: Text | None = Field(
        default=None, max_length=64, description="The person's unit at the new facility"
    )
    at: str | None = Field(default=None, description="Local wall time; default now")


class ReleaseIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "Sentence served."}]},
    )

    reason: Reason = Field(min_length=1, description="Why; the person reads it in their notice")
    at: str | None = Field(default=None, description="Local wall time; default now")


class CustodyOut(BaseModel):
    person: PersonOut = Field(description="The record at the facility the person is now held")
    notice_id: int
    approvals_ended: list[str] = Field(description="contact:channel approvals ended")
    contacts: dict[str, str] = Field(
        default_factory=dict, description="A transfer: each contact's id at the new facility"
    )


class ContactIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "rivera-daughter",
                    "person_id": "p-rivera",
                    "name": "A. Rivera",
                    "relationship": "child",
                    "phones": ["+52 667 555 0101"],
                    "language": "es",
                    "country": "MX",
                }
            ]
        },
    )

    id: Text = Field(min_length=1, max_length=64)
    person_id: Text = Field(min_length=1, max_length=64)
    name: Text = Field(min_length=1, max_length=200)
    relationship: Text = Field(min_length=1, max_length=32)
    privileged: bool = Field(default=False, description="Counsel: calls never monitored")
    phones: list[Text] = Field(default_factory=list, max_length=20, description="Any format")
    email: Text | None = Field(default=None, max_length=254)
    notify_by_email: bool = False
    language: Text | None = Field(default=None, max_length=16)
    country: Text | None = Field(
        default=None, min_length=2, max_length=2, description="Numbers without +code are read here"
    )
    at: str | None = Field(default=None, description="Local wall time; default now")


class ContactPatch(BaseModel):
    """Only the fields given change; ``email``, ``language`` and ``country`` may be null."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"relationship": "spouse", "email": None}]},
    )

    name: Text | None = Field(default=None, min_length=1, max_length=200)
    relationship: Text | None = Field(default=None, min_length=1, max_length=32)
    email: Text | None = Field(default=None, max_length=254)
    notify_by_email: bool | None = None
    language: Text | None = Field(default=None, max_length=16)
    country: Text | None = Field(default=None, min_length=2, max_length=2)
    at: str | None = Field(default=None, description="Local wall time; default now")


class ContactChangeOut(BaseModel):
    contact: ContactOut
    notice_id: int | None = Field(description="The person's notice, when what they may do changed")


class PhoneIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"number": "+1 213 555 0147"}]}
    )

    number: Text = Field(min_length=1, max_length=64, description="Any format; stored as E.164")
    at: str | None = Field(default=None, description="Local wall time; default now")


class ApprovalIn(BaseModel):
    channel: str = Field(max_length=CODE_CHARS, description="phone, video or visit")
    reason: Reason = Field(
        min_length=1,
        max_length=REASON_CHARS,
        description="Why; the person reads it in their notice",
    )
    at: str | None = Field(
        default=None, max_length=TIME_CHARS, description="Local wall time; default now"
    )


class RevocationIn(BaseModel):
    reason: Reason = Field(
        min_length=1,
        max_length=REASON_CHARS,
        description="Why; the person reads it in their notice",
    )
    at: str | None = Field(
        default=None, max_length=TIME_CHARS, description="Local wall time; default now"
    )


class ApprovalOut(BaseModel):
    contact_id: str
    channel: str
    changed: bool
    notice_id: int | None
