"""API shapes for notices."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from kinline.bounds import NAME_CHARS
from kinline.people.schemas import plain_text


class NoticeOut(BaseModel):
    id: int
    person_id: str
    language: str
    change: str = Field(description="imposed, lifted, approved or revoked")
    subject: str = Field(description="The rule id, or CONTACT:CHANNEL for an approval")
    authority: str | None
    rule_text: str | None
    reason: str | None
    effective_at: str = Field(description="Local wall time the change takes effect")
    appeal_deadline: str = Field(description="Last day to appeal (effective date + appeal days)")
    title: str
    body: str
    created_at: str = Field(description="Local wall time the notice was written")
    acknowledged: bool
    acknowledged_at: str | None = Field(description="Local wall time it was acknowledged")
    acknowledged_by: str | None
    reference: str | None = Field(
        default=None,
        description="The notice's reference number (FACILITY-YEAR-NUMBER); none before references",
    )


class AcknowledgeIn(BaseModel):
    by: Annotated[str, AfterValidator(plain_text)] = Field(
        min_length=1,
        max_length=NAME_CHARS,
        description="Who acknowledges: the person, or who read it to them",
    )


class LetterheadIn(BaseModel):
    address: str = Field(
        min_length=1,
        max_length=500,
        description="The facility's postal address, one line per line, printed atop its notices",
    )


class LetterheadOut(BaseModel):
    facility_id: str
    name: str
    address: str | None
