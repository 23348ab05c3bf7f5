"""Routes for notices."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from kinline.http import DbDep, FacilityDep, Reader
from kinline.notices.service import list_notices
from kinline.rules.periods import local

router = APIRouter(prefix="/v1", tags=["notices"])


class NoticeOut(BaseModel):
    id: int
    person_id: str
    language: str
    change: str
    subject: str
    authority: str | None
    rule_text: str | None
    reason: str | None
    effective_at: str
    appeal_deadline: str
    title: str
    body: str


@router.get("/notices", response_model=list[NoticeOut])
def notices(
    db: DbDep, place: FacilityDep, _who: Reader, person_id: str | None = None
) -> list[NoticeOut]:
    return [
        NoticeOut(
            id=n.id,
            person_id=n.person_id,
            language=n.language,
            change=n.change,
            subject=n.subject,
            authority=n.authority,
            rule_text=n.rule_text,
            reason=n.reason,
            effective_at=local(n.effective_at, place.zone).isoformat(),
            appeal_deadline=n.appeal_deadline.isoformat(),
            title=n.title,
            body=n.body,
        )
        for n in list_notices(db, place.id, person_id)
    ]
