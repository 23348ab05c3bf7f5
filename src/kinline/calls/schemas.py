"""API shapes for decisions."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
    conflicts: list[str]
    explanation: list[RuleExplained]
