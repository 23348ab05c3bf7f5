"""API shapes for rules."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class RuleOut(BaseModel):
    id: str
    authority: str
    kind: str
    channel: str
    person: str = Field(description="A person id, or `all`")
    contacts: Any = Field(description="The selector, as in the scenario format")
    text: str
    starts_at: str | None = Field(
        description="Local wall time it took effect, if not from the start"
    )
    ends_at: str | None = Field(description="Local wall time it ends (its `until` or lifting)")
    definition: dict[str, Any] = Field(description="The whole rule, as in the scenario format")


class ImposeIn(BaseModel):
    rule: dict[str, Any] = Field(description="A rule as in the scenario format (SPEC section 3)")
    reason: str = Field(
        min_length=1, description="Why; the people concerned read it in their notice"
    )
    at: str | None = Field(default=None, description="Local wall time; default now")


class LiftIn(BaseModel):
    reason: str = Field(
        min_length=1, description="Why; the people concerned read it in their notice"
    )
    at: str | None = Field(default=None, description="Local wall time; default now")
