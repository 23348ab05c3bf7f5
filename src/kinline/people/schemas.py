"""API shapes for facilities, people and contacts."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field


def plain_text(text: str) -> str:
    """PostgreSQL can neither store nor compare text with a NUL character."""
    if "\x00" in text:
        raise ValueError("must not contain a NUL character")
    return text


def stated_reason(text: str) -> str:
    if not text.strip():
        raise ValueError("must state a reason, not only spaces")
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


class PersonOut(BaseModel):
    id: str
    name: str
    language: str


class ContactOut(BaseModel):
    id: str
    person_id: str
    name: str
    relationship: str
    privileged: bool
    phones: list[str] = Field(description="E.164 numbers")
    approved: list[str] = Field(description="Channels the contact is approved for now")


class ApprovalIn(BaseModel):
    channel: str = Field(description="phone, video or visit")
    reason: Reason = Field(min_length=1, description="Why; the person reads it in their notice")
    at: str | None = Field(default=None, description="Local wall time; default now")


class RevocationIn(BaseModel):
    reason: Reason = Field(min_length=1, description="Why; the person reads it in their notice")
    at: str | None = Field(default=None, description="Local wall time; default now")


class ApprovalOut(BaseModel):
    contact_id: str
    channel: str
    changed: bool
    notice_id: int | None
