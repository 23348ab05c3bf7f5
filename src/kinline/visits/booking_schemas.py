"""Shapes of the visiting-session and booking routes."""

from __future__ import annotations

from datetime import date, time

from pydantic import BaseModel, ConfigDict, Field

from kinline.bounds import ID_CHARS, MINUTES_MAX, NAME_CHARS, REASON_CHARS

Id = Field(min_length=1, max_length=ID_CHARS)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoomIn(Strict):
    id: str = Id
    name: str = Field(min_length=1, max_length=NAME_CHARS)


class RoomOut(BaseModel):
    id: str
    name: str


class TemplateIn(Strict):
    id: str = Id
    room_id: str = Id
    weekday: int = Field(ge=0, le=6, description="0 Monday .. 6 Sunday")
    starts: time = Field(description="Local start, HH:MM")
    ends: time = Field(description="Local end, HH:MM")
    kind: str = Field(max_length=16, description="contact, non_contact or video")
    capacity_open: int = Field(ge=0, le=1000)
    capacity_closed: int = Field(ge=0, le=1000)
    valid_from: date
    valid_to: date | None = None
    every_weeks: int = Field(1, description="1 weekly, 2 fortnightly")
    excluded_dates: list[date] = Field(default_factory=list, max_length=500)


class TemplateOut(BaseModel):
    id: str
    room_id: str
    weekday: int
    starts: str
    ends: str
    kind: str
    capacity_open: int
    capacity_closed: int
    valid_from: date
    valid_to: date | None
    every_weeks: int
    excluded_dates: list[date]


class BlockIn(Strict):
    date: date
    room_id: str | None = Field(None, max_length=ID_CHARS, description="None: every room")
    reason: str = Field(min_length=1, max_length=REASON_CHARS)


class BlockOut(BaseModel):
    block_id: int
    cancelled: list[int]


class SlotOut(BaseModel):
    template_id: str
    room_id: str
    date: date
    kind: str
    starts_at: str
    ends_at: str
    local_start: str
    local_end: str
    free_open: int
    free_closed: int


class BookIn(Strict):
    person_id: str = Id
    template_id: str = Id
    date: date
    visitors: list[str] = Field(
        min_length=1, max_length=10, description="Contact ids; the first leads"
    )
    reserve_only: bool = Field(
        False, description="Hold the place for the reservation minutes; confirm to book"
    )
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


class ReasonIn(Strict):
    reason: str = Field(min_length=1, max_length=REASON_CHARS)


class AnswerIn(Strict):
    accept: bool
    reason: str | None = Field(None, min_length=1, max_length=REASON_CHARS)


class RescheduleIn(Strict):
    template_id: str = Id
    date: date
    reason: str = Field(min_length=1, max_length=REASON_CHARS)


class CompleteIn(Strict):
    minutes: int | None = Field(None, ge=0, le=MINUTES_MAX)


class LocalTimeOut(BaseModel):
    timezone: str
    starts: str
    ends: str
    utc_offset: str


class VisitorTimeOut(BaseModel):
    contact_id: str
    name: str
    local: LocalTimeOut


class BookingOut(BaseModel):
    id: int
    person_id: str
    visitors: list[str]
    template_id: str
    room_id: str
    date: date
    kind: str
    setting: str
    status: str
    booker: str
    starts_at: str
    ends_at: str
    expires_at: str | None
    cancel_reason: str | None
    cancelled_by: str | None
    session_id: int | None
    facility_time: LocalTimeOut
    visitor_times: list[VisitorTimeOut]


class BookingAnswerOut(BaseModel):
    allowed: bool
    reason: str | None = Field(
        None,
        description=(
            "Why not: no_capacity, visitor_not_approved, visitor_restricted, non_association, "
            "outside_booking_window, group_limit, session_blocked, already_booked, or the "
            "engine's not_on_list, no_grant, denied, outside_window, too_soon, quota_exhausted"
        ),
    )
    detail: str | None = None
    contact_id: str | None = None
    rules: list[str] = Field(default_factory=list)
    booking: BookingOut | None = None


class NonAssociationIn(Strict):
    person_id: str = Id
    other_person_id: str = Id
    reason: str = Field(min_length=1, max_length=REASON_CHARS)


class NonAssociationOut(BaseModel):
    id: int
    person_id: str
    other_person_id: str


class AvailabilityOut(BaseModel):
    template_id: str
    room_id: str
    date: date
    kind: str
    starts_at: str
    ends_at: str
    allowed: bool
    reason: str | None
    detail: str | None
    contact_id: str | None
