"""API shapes for decisions and the call path."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from kinline.bounds import CODE_CHARS, ID_CHARS, NAME_CHARS
from kinline.people.schemas import plain_text
from kinline.rules.model import Channel


class RuleExplained(BaseModel):
    id: str
    authority: str
    kind: str
    text: str
    role: str = Field(
        description="`responsible`, or `conflict` when outranked by the grant charged"
    )


class DecisionOut(BaseModel):
    person_id: str
    contact_id: str
    channel: str
    at: str = Field(description="Local wall time decided for")
    allowed: bool
    reason: str | None = Field(
        description=(
            "null, or not_on_list, no_grant, denied, outside_window, too_soon, quota_exhausted"
        )
    )
    rules: list[str]
    charged_to: str | None
    max_minutes: int | None
    monitoring: str | None
    interpreter: str | None
    setting: str | None = Field(
        description="Visits only: open, non_contact or closed; null for phone and video"
    )
    conflicts: list[str]
    explanation: list[RuleExplained]


Text = Annotated[str, AfterValidator(plain_text)]


class AuthorizeIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            # Exactly one of the two names the contact called.
            "oneOf": [
                {"required": ["dialed"], "properties": {"dialed": {"type": "string"}}},
                {"required": ["contact_id"], "properties": {"contact_id": {"type": "string"}}},
            ],
            "examples": [
                {
                    "person_id": "p-rivera",
                    "dialed": "+52 667 555 0101",
                    "channel": "phone",
                    "idempotency_key": "pbx-7f3a-000123",
                }
            ],
        },
    )

    person_id: Text = Field(min_length=1, max_length=ID_CHARS, description="The caller")
    dialed: Text | None = Field(
        default=None,
        min_length=1,
        max_length=ID_CHARS,
        description="The number dialled, in any format; resolved to a contact by E.164",
    )
    contact_id: Text | None = Field(
        default=None, min_length=1, max_length=ID_CHARS, description="Instead of dialed"
    )
    channel: Text = Field(
        default="phone",
        max_length=CODE_CHARS,
        description="phone or video",
        json_schema_extra={"enum": [str(Channel.PHONE), str(Channel.VIDEO)]},
    )
    idempotency_key: Text = Field(
        min_length=1,
        max_length=NAME_CHARS,
        description="The platform's id for this set-up; the same key gives the same answer",
    )


class AuthorizeOut(BaseModel):
    allowed: bool
    reason: str | None = Field(
        description=(
            "null, or not_on_list, no_grant, denied, outside_window, too_soon, quota_exhausted"
        )
    )
    rules: list[str] = Field(description="The rules responsible for the decision")
    hold_id: str | None = Field(description="Present when allowed: connect, end or release it")
    max_minutes: int | None = Field(description="Cut the call after this many minutes")
    monitoring: str | None = Field(description="recorded, live or none (privileged)")
    interpreter: str | None = Field(description="Language of an interpreter to join, if any")
    charged_to: str | None = Field(description="The grant whose allowance is held")
    conflicts: list[str] = Field(description="Rules the charged grant outranked")
    contact_id: str | None = Field(description="The contact the number resolved to")
    expires_at: str | None = Field(description="When the hold lapses unless connected (UTC)")
    replayed: bool = Field(description="True when this answers an idempotency key seen before")


class EndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: int = Field(ge=0, le=86_400, description="How long the call lasted")


class CallOut(BaseModel):
    hold_id: str
    state: str = Field(description="held, connected, completed, released or expired")
    person_id: str
    contact_id: str | None
    channel: str
    max_minutes: int | None
    minutes: int = Field(description="Minutes held (while open) or charged (once ended)")
    connected_at: str | None
    ended_at: str | None
    expires_at: str | None
    settled_by: str | None = Field(description="platform, or timeout when kinline settled it")
