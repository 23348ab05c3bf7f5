"""Shapes of the weekly request window's routes."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from kinline.bounds import ID_CHARS
from kinline.visits.allocation import MOST_PREFERENCES

Id = Field(min_length=1, max_length=ID_CHARS)


class PreferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_id: str = Id
    date: date


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person_id: str = Id
    visitors: list[str] = Field(min_length=1, max_length=10, description="Contact ids")
    preferences: list[PreferenceIn] = Field(
        min_length=1,
        max_length=MOST_PREFERENCES,
        description="Sessions of one week, the most wanted first",
    )


class PreferenceOut(BaseModel):
    template_id: str
    date: date


class RequestOut(BaseModel):
    id: int
    person_id: str
    requested_by: str
    visitors: list[str]
    preferences: list[PreferenceOut]
    window_closes_at: datetime
    status: str = Field(description="pending, met, unmet or withdrawn")
    reason: str | None = Field(description="Why an unmet request was not met")
    booking_id: int | None
    created_at: datetime
    decided_at: datetime | None


class AllocateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(10.0, gt=0, le=60, description="The solver's time limit")


class AllocationOut(BaseModel):
    requests: list[RequestOut]
    met: int
    unmet: int
    fcfs_met: int = Field(description="Requests first come, first served would have met")
    solver_status: str
    gap: float = Field(description="The solver's relative optimality gap")
    seconds: float
