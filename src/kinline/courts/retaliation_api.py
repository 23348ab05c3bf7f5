"""Routes for the retaliation review: the flags with their findings, a
reviewer's finding, and the report for counsel as a PDF.

Reading is for wardens, admins and the person's counsel; recording a finding
for wardens and admins (``retaliation:review``): the people answerable for
what their staff did.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from kinline import access
from kinline.access import Access, allowed, people_for
from kinline.courts.retaliation import (
    REASONING_MAX,
    Finding,
    FindingKind,
    ReviewedFlag,
    person_review,
    record_finding,
    reviewed_flags,
)
from kinline.courts.retaliation_report import render_review_pdf
from kinline.identity.model import Action
from kinline.people.model import Facility
from kinline.rules.periods import local

router = APIRouter(prefix="/v1", tags=["retaliation"])

PersonId = Annotated[str, Path(max_length=64, description="The person's id")]


class FindingIn(BaseModel):
    action: str = Field(
        min_length=1,
        max_length=200,
        description="The flagged adverse action: the rule id, or revoke:CONTACT:CHANNEL",
    )
    activity: str = Field(
        min_length=1, max_length=64, description="The protected activity the flag names"
    )
    finding: FindingKind = Field(description="unfounded, substantiated or referred")
    reasoning: str = Field(
        min_length=1, max_length=REASONING_MAX, description="Why: what the finding rests on"
    )


class FindingOut(BaseModel):
    id: str
    person_id: str
    action: str
    activity: str
    finding: str
    reasoning: str
    reviewer: str
    recorded_at: str = Field(description="Local wall time it was recorded")


class FlagOut(BaseModel):
    person_id: str
    action: str
    action_kind: str
    action_text: str = Field(description="What the action was, in words")
    action_by: str | None
    action_at: str = Field(description="Local wall time of the adverse action")
    activity: str
    activity_kind: str
    activity_at: str = Field(description="Local wall time of the protected activity")
    days: int = Field(description="Days between, on the facility's calendar")
    finding: FindingOut | None = Field(description="The current finding, if any")
    findings: list[FindingOut] = Field(description="Every finding, oldest first")


def finding_out(finding: Finding, place: Facility) -> FindingOut:
    return FindingOut(
        id=finding.id,
        person_id=finding.person_id,
        action=finding.action,
        activity=finding.activity_id,
        finding=str(finding.finding),
        reasoning=finding.reasoning,
        reviewer=finding.reviewer,
        recorded_at=local(finding.recorded_at, place.zone).isoformat(timespec="seconds"),
    )


def flag_out(flag: ReviewedFlag, place: Facility) -> FlagOut:
    current = flag.finding
    return FlagOut(
        person_id=flag.person_id,
        action=flag.action,
        action_kind=flag.action_kind,
        action_text=flag.action_text,
        action_by=flag.action_by,
        action_at=local(flag.action_at, place.zone).isoformat(),
        activity=flag.activity_id,
        activity_kind=flag.activity_kind,
        activity_at=local(flag.activity_at, place.zone).isoformat(),
        days=flag.days,
        finding=None if current is None else finding_out(current, place),
        findings=[finding_out(f, place) for f in flag.findings],
    )


@router.get("/retaliation", response_model=list[FlagOut])
def flags(
    grant: Annotated[Access, allowed(Action.RETALIATION_READ, access.person)],
    person_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[FlagOut]:
    """Adverse actions that closely followed a protected activity, each with its
    findings: the facility's, or one person's (counsel: their clients')."""
    place = grant.facility
    return [
        flag_out(flag, place)
        for who in people_for(grant, person_id)
        for flag in reviewed_flags(grant.db, place.id, who)
    ]


@router.post(
    "/people/{person_id}/retaliation/findings",
    response_model=FindingOut,
    status_code=201,
    summary="Record a finding on a retaliation flag",
)
def find(
    person_id: PersonId,
    body: FindingIn,
    grant: Annotated[Access, allowed(Action.RETALIATION_REVIEW, access.person_record)],
) -> FindingOut:
    """Unfounded, substantiated or referred, with the reasoning; audited. A
    later finding on the same flag supersedes this one, which stays listed."""
    place = grant.facility
    found = record_finding(
        grant.db,
        place.id,
        person_id,
        action=body.action,
        activity=body.activity,
        finding=body.finding,
        reasoning=body.reasoning,
        at=datetime.now(UTC),
        actor=grant.actor,
    )
    return finding_out(found, place)


@router.get(
    "/people/{person_id}/retaliation/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The report as a PDF"}},
)
def report_pdf(
    person_id: PersonId,
    grant: Annotated[Access, allowed(Action.RETALIATION_READ, access.person_record)],
) -> Response:
    """The report for counsel: the person's timeline, each flag with its
    activity, adverse action, days between, finding and reasoning."""
    review = person_review(grant.db, grant.facility.id, person_id)
    return Response(
        render_review_pdf(review, prepared=datetime.now(UTC)),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="retaliation-{person_id}.pdf"'},
    )
