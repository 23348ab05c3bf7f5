"""API shapes for appeals."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from kinline.bounds import (
    CODE_CHARS,
    ID_CHARS,
    LONG_TEXT_CHARS,
    NAME_CHARS,
    REASON_CHARS,
    SERIAL_MAX,
    TIME_CHARS,
)
from kinline.people.schemas import Reason, plain_text

Text = Annotated[str, AfterValidator(plain_text)]
WHEN = (
    "Local wall time (ISO 8601, no offset); default now. Staff only: a filing's "
    "time is the server's clock for anyone else."
)
LATE = "Staff only: accept a filing after its window closed, and why."


class AppealIn(BaseModel):
    person_id: str = Field(max_length=ID_CHARS, description="Who appeals")
    notice_id: int | None = Field(
        default=None, ge=1, le=SERIAL_MAX, description="The notice appealed against"
    )
    session_id: int | None = Field(
        default=None,
        ge=1,
        le=SERIAL_MAX,
        description="Or the decision appealed against (a recorded session)",
    )
    filed_by: str | None = Field(
        default=None,
        max_length=CODE_CHARS,
        description=(
            "person, counsel or family: set by staff entering a filing (default person); "
            "a person, counsel or family member signed in files as who they are"
        ),
    )
    contact_id: str | None = Field(
        default=None,
        max_length=ID_CHARS,
        description=(
            "A family filing: the filer's contact record (one of the person's contacts); "
            "a family member signed in may leave it out"
        ),
    )
    filer: Text = Field(min_length=1, max_length=NAME_CHARS, description="The filer's name")
    text: Reason = Field(
        min_length=1, max_length=LONG_TEXT_CHARS, description="The appeal, in free text"
    )
    route: str = Field(
        default="standard",
        max_length=CODE_CHARS,
        description="standard, or issuing_office for a security measure",
    )
    at: str | None = Field(default=None, max_length=TIME_CHARS, description=WHEN)
    late_reason: Reason | None = Field(default=None, max_length=REASON_CHARS, description=LATE)


class AnswerIn(BaseModel):
    outcome: str = Field(max_length=CODE_CHARS, description="granted, partially_granted or denied")
    text: Reason = Field(
        min_length=1, max_length=LONG_TEXT_CHARS, description="The answer, with reasons"
    )
    at: str | None = Field(
        default=None, max_length=TIME_CHARS, description="Local wall time; default now"
    )


class ExtendIn(BaseModel):
    reason: Reason = Field(
        min_length=1, max_length=REASON_CHARS, description="Why more time; the person is told"
    )
    at: str | None = Field(
        default=None, max_length=TIME_CHARS, description="Local wall time; default now"
    )


class EscalateIn(BaseModel):
    text: Reason = Field(
        min_length=1, max_length=LONG_TEXT_CHARS, description="The appeal to the next level"
    )
    at: str | None = Field(default=None, max_length=TIME_CHARS, description=WHEN)
    late_reason: Reason | None = Field(default=None, max_length=REASON_CHARS, description=LATE)


class WithdrawIn(BaseModel):
    reason: Text | None = Field(
        default=None, max_length=REASON_CHARS, description="Why, if they say"
    )
    at: str | None = Field(default=None, max_length=TIME_CHARS, description=WHEN)


class StepOut(BaseModel):
    level: int
    kind: str = Field(
        description="filed, extended, answered, denied_by_silence, escalated or withdrawn"
    )
    at: str = Field(description="Local wall time")
    actor: str
    outcome: str | None
    text: str | None
    due: str | None = Field(description="The deadline the step set, as a local wall time")


class AppealOut(BaseModel):
    id: int
    person_id: str
    notice_id: int | None
    session_id: int | None
    filed_by: str
    filer: str
    text: str
    route: str
    level: int = Field(description="Index of the current level, from 0")
    level_name: str
    status: str = Field(
        description="pending, granted, partially_granted, denied, denied_by_silence or withdrawn"
    )
    event_at: str = Field(description="When the appealed change or decision took effect")
    filed_at: str
    answer_due: str | None = Field(
        description="Local wall time from which the answer is late (00:00 after the last day)"
    )
    answer_by: str | None = Field(description="The last day to answer (local date)")
    file_next_by: str | None = Field(
        description="Local wall time the next level's window closes, when one is open"
    )
    escalate_by: str | None = Field(description="The last day to escalate (local date)")
    extended: bool
    overdue: bool = Field(description="The answer is past due")


class AppealDetailOut(AppealOut):
    steps: list[StepOut]
