"""The family portal (``/family``): a family member's own contact records, the
person each links to (by name), where their applications stand, their visits
in their own time zone with the facility's beside, booking and cancelling a
visit, its calendar file, and applying to visit.

Every page is about the signed-in family member's own contact records (the
session's bindings); a booking of another family is not found (404), as the
access policy answers. Another kind of subject is sent to its own start page.
Bookings are requests (``Booker.PUBLIC``): staff answer them, as at the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import RedirectResponse

from kinline.access import Access, Params, whole
from kinline.changes.registration import FAMILY_RELATIONSHIPS, register_family
from kinline.db.engine import Database
from kinline.errors import InvalidInput, KinlineError
from kinline.http import get_db, in_thread
from kinline.identity.model import Action, Kind, Record, Target
from kinline.identity.registration import FamilySignUp
from kinline.notices.render import NoticeText, notice_text
from kinline.notices.service import Notice, get_notice_document, list_notices
from kinline.people.model import Facility, Person
from kinline.people.service import ContactView, get_contact, get_person, list_facilities
from kinline.visits import calendar
from kinline.visits.booking import (
    Availability,
    Booking,
    available_slots,
    book,
    booking_parties,
    cancel,
    get_booking,
    list_bookings,
)
from kinline.visits.model import Visitor
from kinline.visits.slots import Booker, SessionKind
from kinline.visits.statuses import VisitStatus
from kinline.visits.visitors import Application, VisitorView, apply, list_visitors
from kinline.web.guard import check_form, field_errors, form_of, page
from kinline.web.kiosk.language import prefer_stored_language
from kinline.web.render import LANGUAGES, Templates, flash, gettext_for, language_of, render

router = APIRouter(include_in_schema=False)
TEMPLATES = Templates(__file__)
BookingId = Annotated[int, Path(ge=1, le=2_147_483_647)]
WEEKS_SHOWN = 4


def facility_itself(db: Database, place: Facility, params: Params) -> Target:
    """The facility: the family member's own records are found from the session."""
    return Target(place.id)


def booking_of(db: Database, place: Facility, params: Params) -> Target:
    """The booking in the path: the person visited and its first visitor."""
    person_id, visitors = booking_parties(db, place.id, whole(params, "booking_id"))
    return Target(
        place.id, Record.VISIT, person_id=person_id, contact_id=visitors[0] if visitors else None
    )


Home = Annotated[Access, page(Action.VISIT_READ, facility_itself)]
Book = Annotated[Access, page(Action.VISIT_BOOK, facility_itself)]
Apply = Annotated[Access, page(Action.VISITOR_APPLY, facility_itself)]
ReadOne = Annotated[Access, page(Action.VISIT_READ, booking_of)]
CancelOne = Annotated[Access, page(Action.VISIT_BOOK, booking_of)]


@dataclass(frozen=True, slots=True)
class Mine:
    """One of the family member's contact records, as the portal shows it."""

    contact: ContactView
    person: Person
    visitor: Visitor | None  # the latest visitor application, if any
    view: VisitorView | None
    zone: str  # where the family member reads times


def elsewhere() -> Response:
    """Not a family account: its own start page."""
    return RedirectResponse("/", status_code=303)


def _latest(views: list[VisitorView]) -> VisitorView | None:
    return max(views, key=lambda v: v.visitor.id) if views else None


def _mine_one(db: Database, place: Facility, contact_id: str, at: datetime) -> Mine:
    found = get_contact(db, place.id, contact_id, at=at, include_privileged=False)
    person = get_person(db, place.id, found.contact.person)
    view = _latest(list_visitors(db, place.id, at=at, contact_id=contact_id))
    visitor = None if view is None else view.visitor
    zone = calendar.visitor_zone(
        None if visitor is None else visitor.timezone,
        visitor.country if visitor is not None else found.details.country,
        place.timezone,
    )
    return Mine(found, person, visitor, view, zone)


async def mine(request: Request, grant: Access) -> list[Mine]:
    """The family member's contact records here, the first one's language read
    as theirs when they chose none (``prefer_stored_language``)."""
    place, now = grant.facility, datetime.now(UTC)
    ids = sorted(grant.subject.contacts_at(place.id))
    records = [await in_thread(_mine_one, grant.db, place, cid, now) for cid in ids]
    if records:
        prefer_stored_language(request, records[0].contact.details.language)
    return records


class Clock:
    """Times on the family member's clock and on the facility's, in their language."""

    def __init__(self, own: str, facility: Facility, language: str) -> None:
        self.own, self.facility, self.language = own, facility, language

    def _at(self, moment: datetime, zone: str, fmt: str) -> str:
        """The day (``fmt``: full, medium...) and the hour without seconds."""
        wall = moment.astimezone(ZoneInfo(zone))
        day = format_date(wall.date(), fmt, locale=self.language)
        return f"{day}, {format_time(wall, 'short', tzinfo=wall.tzinfo, locale=self.language)}"

    def own_time(self, moment: datetime, fmt: str = "full") -> str:
        return self._at(moment, self.own, fmt)

    def own_end(self, moment: datetime) -> str:
        return format_time(moment, "short", tzinfo=ZoneInfo(self.own), locale=self.language)

    def facility_time(self, moment: datetime, fmt: str = "full") -> str:
        return self._at(moment, self.facility.timezone, fmt)

    def differs(self) -> bool:
        return self.own != self.facility.timezone


def _clock(request: Request, grant: Access, records: list[Mine]) -> Clock:
    own = records[0].zone if records else grant.facility.timezone
    return Clock(own, grant.facility, language_of(request))


def _my_bookings(grant: Access, records: list[Mine], first: date) -> list[Booking]:
    contacts = {r.contact.contact.id for r in records}
    people = sorted({r.person.id for r in records})
    found: list[Booking] = []
    for person_id in people:
        for b in list_bookings(grant.db, grant.facility.id, person_id=person_id, first=first):
            if contacts & set(b.visitors):
                found.append(b)
    return sorted(found, key=lambda b: b.starts_at)


@dataclass(frozen=True, slots=True)
class AboutYou:
    """A notice the person was sent about one of the family member's own records
    (their approval as a contact, their visitor application's decision)."""

    notice: Notice
    words: NoticeText
    person_name: str


def about_them(grant: Access, records: list[Mine], language: str) -> list[AboutYou]:
    """Notices whose subject is one of the family member's contact records
    (``<contact id>:<channel>``), newest first, in the reader's language. A
    notice about a rule is the person's alone: it is never shown here."""
    own = {r.contact.contact.id for r in records}
    found: list[AboutYou] = []
    for person_id in sorted({r.person.id for r in records}):
        for notice in list_notices(grant.db, grant.facility.id, person_id):
            contact_id, _sep, _channel = notice.subject.rpartition(":")
            if notice.authority is None and contact_id in own:
                document = get_notice_document(
                    grant.db, grant.facility.id, notice.id, language=language
                )
                found.append(AboutYou(notice, notice_text(document), document.person_name))
    return sorted(found, key=lambda a: -a.notice.id)


@router.get("/family")
async def family_home(request: Request, grant: Home) -> Response:
    """The family member's people, applications, notices about them and visits."""
    if grant.subject.kind is not Kind.FAMILY:
        return elsewhere()
    records = await mine(request, grant)
    clock = _clock(request, grant, records)
    notices = await in_thread(about_them, grant, records, language_of(request))
    today = datetime.now(UTC).astimezone(grant.facility.zone).date()
    bookings = await in_thread(_my_bookings, grant, records, today - timedelta(days=1))
    return render(
        request,
        TEMPLATES,
        "family_home.html",
        records=records,
        bookings=[b for b in bookings if b.status.upcoming],
        notices=notices,
        clock=clock,
        facility=grant.facility,
    )


async def _slots(grant: Access, record: Mine, now: datetime) -> list[Availability]:
    first = now.astimezone(grant.facility.zone).date()
    last = first + timedelta(weeks=WEEKS_SHOWN) - timedelta(days=1)
    found = await in_thread(
        available_slots,
        grant.db,
        grant.facility.id,
        record.person.id,
        [record.contact.contact.id],
        first,
        last,
        booker=Booker.PUBLIC,
        now=now,
    )
    return [a for a in found if a.allowed]


async def _book_page(
    request: Request,
    grant: Access,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> Response:
    records = await mine(request, grant)
    clock = _clock(request, grant, records)
    now = datetime.now(UTC)
    offers = [(record, await _slots(grant, record, now)) for record in records]
    return render(
        request,
        TEMPLATES,
        "family_book.html",
        status=status,
        offers=offers,
        clock=clock,
        facility=grant.facility,
        errors=errors or {},
    )


@router.get("/family/visits/new")
async def book_page(request: Request, grant: Home) -> Response:
    """The sessions the family member could book in the next weeks, on their clock."""
    if grant.subject.kind is not Kind.FAMILY:
        return elsewhere()
    return await _book_page(request, grant)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput("choose a session", field="slot") from None


@router.post("/family/visits")
async def book_post(request: Request, grant: Book) -> Response:
    """Request a visit at one session for one of the family member's records."""
    if grant.subject.kind is not Kind.FAMILY:
        return elsewhere()
    form = await form_of(request)
    records = {r.contact.contact.id: r for r in await mine(request, grant)}
    try:
        template_id, _sep, day = form.get("slot", "").partition("/")
        record = records.get(form.get("contact_id", ""))
        if not template_id or record is None:
            raise InvalidInput("choose a session", field="slot")
        answer = await in_thread(
            book,
            grant.db,
            grant.facility.id,
            record.person.id,
            template_id,
            _day(day),
            [record.contact.contact.id],
            booker=Booker.PUBLIC,
            actor=grant.actor,
            now=datetime.now(UTC),
        )
        if not answer.allowed or answer.booking is None:
            raise InvalidInput(answer.detail or "this session cannot be booked", field="slot")
    except KinlineError as error:
        if error.status not in (409, 422):
            raise
        errors = field_errors(request, TEMPLATES, error, default="slot")
        return await _book_page(request, grant, status=error.status, errors=errors)
    response = RedirectResponse(f"/family/visits/{answer.booking.id}", status_code=303)
    _ = gettext_for(request, TEMPLATES)
    flash(response, _("Your visit is requested. Staff will confirm it."))
    return response


async def _visit_page(
    request: Request, grant: Access, booking_id: int, *, status: int = 200, **context: Any
) -> Response:
    records = await mine(request, grant)
    found = await in_thread(get_booking, grant.db, grant.facility.id, booking_id)
    own = {r.contact.contact.id for r in records}
    clock = _clock(request, grant, records)
    person = next((r.person for r in records if r.person.id == found.person_id), None)
    return render(
        request,
        TEMPLATES,
        "family_visit.html",
        status=status,
        booking=found,
        person=person,
        mine=own,
        clock=clock,
        facility=grant.facility,
        form=context.pop("form", {}),
        **context,
    )


@router.get("/family/visits/{booking_id}")
async def visit_page(request: Request, booking_id: BookingId, grant: ReadOne) -> Response:
    """One visit: when on both clocks, its status, cancel, the calendar file."""
    if grant.subject.kind is not Kind.FAMILY:
        return elsewhere()
    return await _visit_page(request, grant, booking_id)


@router.post("/family/visits/{booking_id}/cancel")
async def cancel_post(request: Request, booking_id: BookingId, grant: CancelOne) -> Response:
    """Cancel one's own visit, saying why (staff and the person are told)."""
    if grant.subject.kind is not Kind.FAMILY:
        return elsewhere()
    form = await form_of(request)
    reason = form.get("reason", "")
    try:
        if not reason.strip():
            raise InvalidInput("say why you cancel", field="reason")
        await in_thread(
            cancel,
            grant.db,
            grant.facility.id,
            booking_id,
            reason=reason,
            actor=grant.actor,
            now=datetime.now(UTC),
        )
    except KinlineError as error:
        if error.status not in (409, 422):
            raise
        errors = field_errors(request, TEMPLATES, error, default="reason")
        return await _visit_page(
            request, grant, booking_id, status=error.status, errors=errors, form=form
        )
    response = RedirectResponse("/family", status_code=303)
    flash(response, gettext_for(request, TEMPLATES)("Your visit is cancelled."))
    return response


def invitation(found: Booking, facility: Facility) -> calendar.Invitation:
    """The visit's calendar entry, as the booking email carries it (its uid too,
    so a later update or cancellation replaces it in the calendar)."""
    video = found.kind is SessionKind.VIDEO
    kind = "Video visit" if video else "Visit"
    cancelled = not found.status.holds_place
    tentative = found.status in (VisitStatus.RESERVED, VisitStatus.REQUESTED)
    return calendar.Invitation(
        uid=f"visit-{found.id}@{facility.id}.kinline",
        summary=f"{kind} at {facility.name}",
        description=f"{kind} {found.id}, room {found.room_id}",
        location=f"{facility.name}, room {found.room_id}",
        starts_at=found.starts_at,
        ends_at=found.ends_at,
        timezone=facility.timezone,
        cancelled=cancelled,
        tentative=tentative,
        sequence=calendar.visit_sequence(confirmed=not tentative, cancelled=cancelled),
    )


@router.get("/family/visits/{booking_id}/visit.ics")
async def visit_ics(request: Request, booking_id: BookingId, grant: ReadOne) -> Response:
    """The visit as an iCalendar file, to add to one's own calendar."""
    if grant.subject.kind is not Kind.FAMILY:
        return elsewhere()
    found = await in_thread(get_booking, grant.db, grant.facility.id, booking_id)
    text = calendar.invitation_ics(invitation(found, grant.facility), stamp=datetime.now(UTC))
    return Response(
        text,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="visit-{booking_id}.ics"',
            "Cache-Control": "no-store",
        },
    )


# -- applying to visit -------------------------------------------------------------

CHECKBOX_ON = "yes"


def _application(contact_id: str, form: dict[str, str]) -> Application:
    """The form's answers, checked for what a form alone can tell (the service
    checks the rest, each refusal naming its field)."""
    raw = form.get("date_of_birth", "").strip()
    try:
        born = date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("write the date as year-month-day", field="date_of_birth") from None
    address = form.get("address", "")
    if not address.strip():
        raise InvalidInput("must not be blank", field="address")
    country = form.get("country", "").strip()
    if not country:
        raise InvalidInput("must not be blank", field="country")
    declared = form.get("criminal_record_declared") == CHECKBOX_ON
    record = form.get("criminal_record", "").strip() or None
    return Application(
        contact_id=contact_id,
        date_of_birth=born,
        address=address,
        country=country,
        criminal_record_declared=declared,
        criminal_record=record if declared else None,
        timezone=form.get("timezone", "").strip() or None,
        id_document_type=form.get("id_document_type", "").strip() or None,
        id_document_number=form.get("id_document_number", "").strip() or None,
    )


def _may_apply(record: Mine) -> bool:
    return record.visitor is None or not record.visitor.status.open


@router.get("/family/apply")
async def apply_page(request: Request, grant: Apply) -> Response:
    """Apply to visit the person one of the family member's records links to."""
    if grant.subject.kind is not Kind.FAMILY:
        return elsewhere()
    records = [r for r in await mine(request, grant) if _may_apply(r)]
    return render(request, TEMPLATES, "family_apply.html", records=records, form={})


@router.post("/family/apply")
async def apply_post(request: Request, grant: Apply) -> Response:
    if grant.subject.kind is not Kind.FAMILY:
        return elsewhere()
    form = await form_of(request)
    records = [r for r in await mine(request, grant) if _may_apply(r)]
    chosen = next((r for r in records if r.contact.contact.id == form.get("contact_id")), None)
    try:
        if chosen is None:
            raise InvalidInput("choose whom you apply to visit", field="contact_id")
        await in_thread(
            apply,
            grant.db,
            grant.facility.id,
            _application(chosen.contact.contact.id, form),
            at=datetime.now(UTC),
            actor=grant.actor,
        )
    except KinlineError as error:
        if error.status not in (409, 422):
            raise
        errors = field_errors(request, TEMPLATES, error, default="contact_id")
        return render(
            request,
            TEMPLATES,
            "family_apply.html",
            status=error.status,
            records=records,
            form=form,
            errors=errors,
        )
    response = RedirectResponse("/family", status_code=303)
    flash(response, gettext_for(request, TEMPLATES)("Your application is sent."))
    return response


# -- registering ---------------------------------------------------------------------

RELATIONSHIP_CHOICES = FAMILY_RELATIONSHIPS


def _registration_fields(error: KinlineError) -> str:
    """The form field a refusal is about (the contact's fields are the form's own)."""
    field = error.field or "form"
    if field.startswith("contact.phones"):
        return "phone"
    return {"contact.name": "name", "contact.email": "email", "login": "email"}.get(field, field)


async def _register_page(
    request: Request,
    *,
    status: int = 200,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    facilities = await in_thread(list_facilities, await get_db(request))
    return render(
        request,
        TEMPLATES,
        "family_register.html",
        status=status,
        facilities=facilities,
        relationships=RELATIONSHIP_CHOICES,
        form=form or {},
        errors=errors or {},
    )


@router.get("/family/register")
async def register_page(request: Request) -> Response:
    """Open a family account: name the person, say who you are."""
    return await _register_page(request)


@router.post("/family/register")
async def register_post(request: Request) -> Response:
    """Register (anyone may: the form carries its own CSRF token); then sign in."""
    form = await form_of(request)
    await check_form(request, form)
    language = form.get("language", "")
    sign_up = FamilySignUp(
        name=form.get("name", ""),
        email=form.get("email", ""),
        password=form.get("password", ""),
        language=language if language in LANGUAGES else language_of(request),
    )
    try:
        await in_thread(
            register_family,
            await get_db(request),
            form.get("facility_id", ""),
            person_id=form.get("person_id", ""),
            person_name=form.get("person_name", ""),
            relationship=form.get("relationship", ""),
            phone=form.get("phone", "").strip() or None,
            sign_up=sign_up,
            at=datetime.now(UTC),
        )
    except KinlineError as error:
        if error.status not in (404, 409, 422):
            raise
        message = next(iter(field_errors(request, TEMPLATES, error).values()))
        kept = {k: v for k, v in form.items() if k not in ("password", "csrf_token")}
        return await _register_page(
            request,
            status=422 if error.status == 404 else error.status,
            form=kept,
            errors={_registration_fields(error): message},
        )
    response = RedirectResponse(f"/signin?next={quote('/family', safe='')}", status_code=303)
    _ = gettext_for(request, TEMPLATES)
    flash(response, _("Your account is open. Sign in with your email address and password."))
    return response
