"""The person's kiosk (``/me``): whom they may call or see and what is left this
period, with the reasons in their language; their upcoming visits; their
notices, to read and acknowledge; and an appeal against a notice.

Every page is the signed-in person's own: the person comes from the session's
binding, never from the address. Another kind of subject (staff, counsel...)
who opens a kiosk page is sent to its own start page. The words of decisions
come from ``kinline.explain``, those of notices from the notices' own catalog,
and a rule's text in the reader's language when the rule has one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import RedirectResponse

from kinline.access import Access, Params, whole
from kinline.appeals.service import Appeal, file_appeal, list_appeals
from kinline.calls.allowances import Allowance, QuotaUse, allowances
from kinline.db.engine import Database
from kinline.errors import InvalidInput, KinlineError, NotFound
from kinline.explain import Explanation, explain
from kinline.http import in_thread
from kinline.identity.model import Action, Kind, Record, Target
from kinline.notices.render import NoticeText, notice_text
from kinline.notices.service import (
    Notice,
    acknowledge_notice,
    get_notice,
    get_notice_document,
    list_notices,
)
from kinline.people.model import Facility, Person
from kinline.people.service import get_person
from kinline.policy.service import get_rule
from kinline.rules.decide import Request as Asked
from kinline.rules.periods import local
from kinline.visits.booking import Booking, list_bookings
from kinline.web.guard import field_errors, form_of, page
from kinline.web.kiosk.language import prefer_stored_language
from kinline.web.render import Templates, flash, gettext_for, language_of, render

router = APIRouter(include_in_schema=False)
TEMPLATES = Templates(__file__)
NoticeId = Annotated[int, Path(ge=1, le=2_147_483_647)]


def facility_itself(db: Database, place: Facility, params: Params) -> Target:
    """The facility: the kiosk's own person is found from the session."""
    return Target(place.id)


def notice_of(db: Database, place: Facility, params: Params) -> Target:
    """The notice in the path, as the record of the person it is addressed to."""
    found = get_notice(db, place.id, whole(params, "notice_id"))
    return Target(place.id, Record.NOTICE, person_id=found.person_id)


Home = Annotated[Access, page(Action.PERSON_READ, facility_itself)]
ReadNotice = Annotated[Access, page(Action.NOTICE_READ, notice_of)]
Acknowledge = Annotated[Access, page(Action.NOTICE_ACKNOWLEDGE, notice_of)]
# Filing is checked on the facility (family and counsel may file too, elsewhere);
# the notice must then be the kiosk person's own (``_own_notice``).
FileAppeal = Annotated[Access, page(Action.APPEAL_FILE, facility_itself)]


def own_person(grant: Access) -> str | None:
    """The person a kiosk account is; None for any other kind of subject."""
    if grant.subject.kind is not Kind.PERSON:
        return None
    people = sorted(grant.subject.people_at(grant.facility.id))
    return people[0] if people else None


def elsewhere() -> Response:
    """Not a kiosk account: its own start page."""
    return RedirectResponse("/", status_code=303)


@dataclass(frozen=True, slots=True)
class Row:
    """One contact on one channel, in words."""

    allowance: Allowance
    words: Explanation
    uses: tuple[QuotaUse, ...]


async def _person(request: Request, grant: Access, person_id: str) -> Person:
    person = await in_thread(get_person, grant.db, grant.facility.id, person_id)
    prefer_stored_language(request, person.language)
    return person


def _appeal_dates(notices: list[Notice], today: date) -> dict[str, date]:
    """Each rule's last day to appeal, from the notices that imposed it."""
    return {
        n.subject: n.appeal_deadline
        for n in notices
        if n.authority is not None and n.appeal_deadline >= today
    }


def _rows(
    grant: Access, found: list[Allowance], language: str, appeals: dict[str, date]
) -> list[Row]:
    zone = grant.facility.zone
    rows = []
    for allowance in found:
        e = allowance.decided
        words = explain(
            e.decision,
            Asked(e.person_id, e.contact, e.channel, e.at),
            e.rules,
            e.usage,
            language=language,
            zone=zone,
            appeals=appeals,
        )
        rows.append(Row(allowance, words, allowance.uses))
    return rows


@router.get("/me")
async def kiosk_home(request: Request, grant: Home) -> Response:
    """Contacts and what is left on each channel; visits; notices; appeals."""
    person_id = own_person(grant)
    if person_id is None:
        return elsewhere()
    person = await _person(request, grant, person_id)
    now = datetime.now(UTC)
    db, place = grant.db, grant.facility
    today = local(now, place.zone).date()
    notices = await in_thread(list_notices, db, place.id, person_id)
    found = await in_thread(allowances, db, place.id, person_id, at=now)
    rows = _rows(grant, found, language_of(request), _appeal_dates(notices, today))
    visits: list[Booking] = [
        b
        for b in await in_thread(list_bookings, db, place.id, person_id=person_id, first=today)
        if b.status.upcoming
    ]
    appeals: list[Appeal] = await in_thread(list_appeals, db, place.id, at=now, person_id=person_id)
    return render(
        request,
        TEMPLATES,
        "kiosk_home.html",
        person=person,
        rows=rows,
        visits=visits,
        names={a.contact_id: a.contact_name for a in found},
        notices=sorted(notices, key=lambda n: (n.acknowledged_at is not None, -n.id)),
        appeals=appeals,
    )


async def _own_notice(grant: Access, person_id: str, notice_id: int) -> Notice:
    """The notice, when it is addressed to ``person_id``; else not found."""
    notice = await in_thread(get_notice, grant.db, grant.facility.id, notice_id)
    if notice.person_id != person_id:
        raise NotFound("no notice with that id is known", field="notice_id")
    return notice


async def _notice_words(grant: Access, notice: Notice, language: str) -> NoticeText:
    """The notice in ``language``, the rule's text in it too when written so."""
    db, place = grant.db, grant.facility
    document = await in_thread(get_notice_document, db, place.id, notice.id, language=language)
    if notice.authority is not None:
        try:
            rule = await in_thread(get_rule, db, place.id, notice.subject)
        except NotFound:
            pass  # a rule no longer kept: the notice's own copy of its text
        else:
            document = dataclasses.replace(document, rule_text=rule.text_in(language))
    return notice_text(document)


async def _notice_page(
    request: Request,
    grant: Access,
    notice_id: int,
    *,
    status: int = 200,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    person_id = own_person(grant)
    if person_id is None:
        return elsewhere()
    person = await _person(request, grant, person_id)
    notice = await in_thread(get_notice, grant.db, grant.facility.id, notice_id)
    words = await _notice_words(grant, notice, language_of(request))
    today = local(datetime.now(UTC), grant.facility.zone).date()
    return render(
        request,
        TEMPLATES,
        "kiosk_notice.html",
        status=status,
        person=person,
        notice=notice,
        words=words,
        may_appeal=notice.appeal_deadline >= today,
        form=form or {},
        errors=errors or {},
    )


@router.get("/me/notices/{notice_id}")
async def notice_page(request: Request, notice_id: NoticeId, grant: ReadNotice) -> Response:
    """One notice in the reader's language, to acknowledge and appeal."""
    return await _notice_page(request, grant, notice_id)


@router.post("/me/notices/{notice_id}/acknowledge")
async def acknowledge_post(request: Request, notice_id: NoticeId, grant: Acknowledge) -> Response:
    """The person says they have read the notice (once; again changes nothing)."""
    person_id = own_person(grant)
    if person_id is None:
        return elsewhere()
    person = await _person(request, grant, person_id)
    await form_of(request)
    await in_thread(
        acknowledge_notice,
        grant.db,
        grant.facility.id,
        notice_id,
        by=person.name,
        at=datetime.now(UTC),
        actor=grant.actor,
    )
    response = RedirectResponse(f"/me/notices/{notice_id}", status_code=303)
    flash(response, gettext_for(request, TEMPLATES)("You have acknowledged this notice."))
    return response


@router.post("/me/notices/{notice_id}/appeal")
async def appeal_post(request: Request, notice_id: NoticeId, grant: FileAppeal) -> Response:
    """File an appeal against the notice, in the person's own words."""
    person_id = own_person(grant)
    if person_id is None:
        return elsewhere()
    person = await _person(request, grant, person_id)
    await _own_notice(grant, person_id, notice_id)
    form = await form_of(request)
    text = form.get("text", "")
    try:
        if not text.strip():
            raise InvalidInput("write why you appeal", field="text")
        appeal = await in_thread(
            file_appeal,
            grant.db,
            grant.facility.id,
            person_id=person_id,
            filed_by="person",
            filer=person.name,
            text=text,
            at=datetime.now(UTC),
            actor=grant.actor,
            notice_id=notice_id,
        )
    except KinlineError as error:
        if error.status not in (409, 422):
            raise
        # The form has one field: a refusal about the notice or the moment
        # (already appealed, too late) is shown beside it too.
        message = next(iter(field_errors(request, TEMPLATES, error).values()))
        return await _notice_page(
            request,
            grant,
            notice_id,
            status=error.status,
            form={"text": text},
            errors={"text": message},
        )
    response = RedirectResponse("/me#appeals", status_code=303)
    _ = gettext_for(request, TEMPLATES)
    flash(response, _("Your appeal %(number)s is filed.") % {"number": appeal.id})
    return response
