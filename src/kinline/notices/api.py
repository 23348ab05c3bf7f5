"""Routes for notices: listed, read as data, HTML or PDF, acknowledged, overdue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, Response

from kinline import access
from kinline.access import Access, Params, allowed, people_for, whole
from kinline.db.engine import Database
from kinline.http import moment
from kinline.identity.model import Action, Record, Target
from kinline.notices.render import render_html, render_pdf
from kinline.notices.schemas import AcknowledgeIn, LetterheadIn, LetterheadOut, NoticeOut
from kinline.notices.service import (
    Notice,
    acknowledge_notice,
    get_letterhead,
    get_notice,
    get_notice_document,
    list_notices,
    overdue_notices,
    set_letterhead,
)
from kinline.people.model import Facility, check_language
from kinline.rules.periods import local

router = APIRouter(prefix="/v1", tags=["notices"])

NoticeId = Annotated[int, Path(ge=1, le=2_147_483_647, description="The notice's id")]
LanguageQuery = Annotated[
    str | None,
    Query(description="Language to render in (default: the notice's); unknown ones: English"),
]


def notice_target(db: Database, place: Facility, params: Params) -> Target:
    """The notice named in the path, as the person's it is addressed to."""
    found = get_notice(db, place.id, whole(params, "notice_id"))
    return Target(place.id, Record.NOTICE, person_id=found.person_id)


def notice_out(notice: Notice, place: Facility) -> NoticeOut:
    acknowledged = notice.acknowledged_at
    acknowledged_at = None if acknowledged is None else local(acknowledged, place.zone)
    return NoticeOut(
        id=notice.id,
        person_id=notice.person_id,
        language=notice.language,
        change=notice.change,
        subject=notice.subject,
        authority=notice.authority,
        rule_text=notice.rule_text,
        reason=notice.reason,
        effective_at=local(notice.effective_at, place.zone).isoformat(),
        appeal_deadline=notice.appeal_deadline.isoformat(),
        title=notice.title,
        body=notice.body,
        created_at=local(notice.created_at, place.zone).isoformat(),
        acknowledged=acknowledged is not None,
        acknowledged_at=None if acknowledged_at is None else acknowledged_at.isoformat(),
        acknowledged_by=notice.acknowledged_by,
        reference=notice.reference,
    )


@router.get("/notices", response_model=list[NoticeOut])
def notices(
    grant: Annotated[Access, allowed(Action.NOTICE_READ, access.person)],
    person_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[NoticeOut]:
    """Every notice of the facility, or of one person, oldest first: those the
    caller may read."""
    place = grant.facility
    found = [
        n for who in people_for(grant, person_id) for n in list_notices(grant.db, place.id, who)
    ]
    found.sort(key=lambda n: n.id)
    return [notice_out(n, place) for n in found]


@router.get("/notices/overdue", response_model=list[NoticeOut])
def overdue(
    grant: Annotated[Access, allowed(Action.NOTICE_QUEUE)],
    days: Annotated[int, Query(ge=0, le=3650, description="Older than this many days")] = 7,
    at: Annotated[str | None, Query(description="Local wall time to count from; now")] = None,
) -> list[NoticeOut]:
    """Notices nobody has acknowledged, written more than ``days`` days ago: staff
    should put them in the person's hands."""
    place = grant.facility
    found = overdue_notices(grant.db, place.id, days=days, now=moment(at, place))
    return [notice_out(n, place) for n in found]


@router.get("/notices/{notice_id}", response_model=NoticeOut)
def notice(
    notice_id: NoticeId, grant: Annotated[Access, allowed(Action.NOTICE_READ, notice_target)]
) -> NoticeOut:
    return notice_out(get_notice(grant.db, grant.facility.id, notice_id), grant.facility)


@router.get(
    "/notices/{notice_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The notice as a PDF"}},
)
def notice_pdf(
    notice_id: NoticeId,
    grant: Annotated[Access, allowed(Action.NOTICE_READ, notice_target)],
    language: LanguageQuery = None,
) -> Response:
    """The notice as a printable letter, in its language or ``language``."""
    document = get_notice_document(
        grant.db, grant.facility.id, notice_id, language=_language(language)
    )
    return Response(
        render_pdf([document]),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="notice-{notice_id}.pdf"'},
    )


@router.get("/notices/{notice_id}/html", response_class=HTMLResponse)
def notice_html(
    notice_id: NoticeId,
    grant: Annotated[Access, allowed(Action.NOTICE_READ, notice_target)],
    language: LanguageQuery = None,
) -> HTMLResponse:
    """The notice as a page, in its language or ``language``."""
    document = get_notice_document(
        grant.db, grant.facility.id, notice_id, language=_language(language)
    )
    return HTMLResponse(render_html(document))


@router.post("/notices/{notice_id}/acknowledge", response_model=NoticeOut)
def acknowledge(
    notice_id: NoticeId,
    body: AcknowledgeIn,
    grant: Annotated[Access, allowed(Action.NOTICE_ACKNOWLEDGE, notice_target)],
) -> NoticeOut:
    """Record that the notice was read: by the person it is addressed to (at the
    kiosk), or by staff who put it in their hands.

    Idempotent: acknowledging again returns the first acknowledgement."""
    found = acknowledge_notice(
        grant.db,
        grant.facility.id,
        notice_id,
        by=body.by,
        at=datetime.now(UTC),
        actor=grant.actor,
    )
    return notice_out(found, grant.facility)


def _language(code: str | None) -> str | None:
    return None if code is None else check_language(code)


@router.get("/letterhead", response_model=LetterheadOut)
def letterhead(grant: Annotated[Access, allowed(Action.FACILITY_READ)]) -> LetterheadOut:
    """The facility's name and postal address as its notices print them."""
    place = grant.facility
    return LetterheadOut(
        facility_id=place.id, name=place.name, address=get_letterhead(grant.db, place.id)
    )


@router.put("/letterhead", response_model=LetterheadOut)
def put_letterhead(
    body: LetterheadIn, grant: Annotated[Access, allowed(Action.FACILITY_MANAGE)]
) -> LetterheadOut:
    """Set the facility's postal address, printed atop every notice it issues
    (also those written before). Admin only; audited."""
    place = grant.facility
    address = set_letterhead(
        grant.db, place.id, body.address, at=datetime.now(UTC), actor=grant.actor
    )
    return LetterheadOut(facility_id=place.id, name=place.name, address=address)
