"""API shapes for visitors and a facility's visit settings."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from kinline.bounds import CODE_CHARS, ID_CHARS, NAME_CHARS, REASON_CHARS, TIME_CHARS
from kinline.people.schemas import Reason, plain_text

Text = Annotated[str, AfterValidator(plain_text)]
WHEN = "Local wall time (ISO 8601, no offset); default now."


class ApplicationIn(BaseModel):
    contact_id: str = Field(max_length=ID_CHARS, description="The contact applying to visit")
    date_of_birth: date
    address: Text = Field(min_length=1, max_length=500)
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2, e.g. MX")
    timezone: str | None = Field(
        default=None, max_length=64, description="The visitor's IANA zone, for times shown to them"
    )
    id_document_type: str | None = Field(
        default=None,
        max_length=CODE_CHARS,
        description="passport, driving_licence, national_id, state_id, consular_id, "
        "birth_certificate",
    )
    id_document_number: Text | None = Field(default=None, max_length=64)
    criminal_record_declared: bool = Field(description="Whether the visitor declares a record")
    criminal_record: Text | None = Field(default=None, max_length=REASON_CHARS)
    supervision: str | None = Field(
        default=None,
        max_length=CODE_CHARS,
        description="probation, supervised_release or parole; none when not supervised",
    )
    supervising_officer: Text | None = Field(default=None, max_length=NAME_CHARS)
    supervising_office: Text | None = Field(default=None, max_length=NAME_CHARS)
    co_defendant: bool = Field(default=False, description="A former co-defendant of the person")
    accompanying_contact_id: str | None = Field(
        default=None, max_length=ID_CHARS, description="A minor's approved adult visitor"
    )
    at: str | None = Field(default=None, max_length=TIME_CHARS, description=WHEN)


class IdCheckIn(BaseModel):
    document_type: str = Field(max_length=CODE_CHARS)
    document_number: Text = Field(min_length=1, max_length=64)
    at: str | None = Field(default=None, max_length=TIME_CHARS, description=WHEN)


class ConsentIn(BaseModel):
    officer: Text = Field(min_length=1, max_length=NAME_CHARS, description="Who consented")
    note: Reason | None = Field(default=None, max_length=REASON_CHARS)
    at: str | None = Field(default=None, max_length=TIME_CHARS, description=WHEN)


class DecisionIn(BaseModel):
    verdict: str = Field(max_length=CODE_CHARS, description="approve or refuse")
    reason: Reason = Field(min_length=1, max_length=REASON_CHARS, description="Told to both")
    channels: list[str] = Field(
        default=["visit"],
        max_length=2,
        description="On approval: visit, and video for video visits",
    )
    at: str | None = Field(default=None, max_length=TIME_CHARS, description=WHEN)


class WithdrawIn(BaseModel):
    at: str | None = Field(default=None, max_length=TIME_CHARS, description=WHEN)


class RestrictionIn(BaseModel):
    kind: str = Field(max_length=CODE_CHARS, description="banned, closed or non_contact")
    reason: Reason = Field(min_length=1, max_length=REASON_CHARS)
    starts_on: date | None = Field(default=None, description="The first day; default today")
    until: date | None = Field(
        default=None, description="The first day without it; none: until lifted"
    )
    at: str | None = Field(default=None, max_length=TIME_CHARS, description=WHEN)


class LiftIn(BaseModel):
    reason: Reason = Field(min_length=1, max_length=REASON_CHARS)
    at: str | None = Field(default=None, max_length=TIME_CHARS, description=WHEN)


class RestrictionOut(BaseModel):
    id: int
    kind: str
    reason: str
    starts_on: date
    until: date | None
    shown: str = Field(description='As the family reads it: "... not until {date}"')
    imposed_at: str
    imposed_by: str
    lifted_at: str | None
    lift_reason: str | None


class BlockerOut(BaseModel):
    code: str
    field: str
    message: str


class VisitorOut(BaseModel):
    id: int
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
    id_checked_at: str | None
    criminal_record_declared: bool
    criminal_record: str | None
    supervision: str | None
    supervising_officer: str | None
    supervising_office: str | None
    officer_consent_at: str | None
    officer_consent_by: str | None
    co_defendant: bool
    flagged_for_warden: bool
    accompanying_contact_id: str | None
    status: str
    applied_at: str
    decided_at: str | None
    decided_by: str | None
    decision_reason: str | None
    restrictions: list[RestrictionOut]
    shown: list[str] = Field(description="Restrictions in force, as the family reads them")
    blockers: list[BlockerOut] = Field(description="What still stands before approval")


class DecisionOut(BaseModel):
    visitor: VisitorOut
    notice_id: int
    emailed: bool = Field(description="Whether the applicant's email was queued")


class RestrictionDecisionOut(BaseModel):
    restriction: RestrictionOut
    notice_id: int
    emailed: bool


class VisitSettingsIO(BaseModel):
    adult_age: int = Field(default=18, ge=1, le=30)
    max_visitors: int = Field(default=3, ge=1, le=50)
    max_adults: int = Field(default=3, ge=1, le=50)
    max_children: int = Field(default=3, ge=0, le=50)
    staff_min_notice_days: int = Field(default=0, ge=0, le=365)
    staff_max_notice_days: int = Field(default=60, ge=0, le=365)
    public_min_notice_days: int = Field(default=2, ge=0, le=365)
    public_max_notice_days: int = Field(default=28, ge=0, le=365)
    reservation_minutes: int = Field(default=10, ge=1, le=240)
    auto_refuse_hours: int = Field(default=72, ge=1, le=1440)
    officer_consent_required: bool = True
    co_defendants_to_warden: bool = True
    minors_need_adult: bool = True
