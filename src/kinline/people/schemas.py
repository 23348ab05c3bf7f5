"""API shapes for facilities, people and contacts."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
    reason: str = Field(min_length=1, description="Why; the person reads it in their notice")
    at: str | None = Field(default=None, description="Local wall time; default now")


class RevocationIn(BaseModel):
    reason: str = Field(min_length=1, description="Why; the person reads it in their notice")
    at: str | None = Field(default=None, description="Local wall time; default now")


class ApprovalOut(BaseModel):
    contact_id: str
    channel: str
    changed: bool
    notice_id: int | None
