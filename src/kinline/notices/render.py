"""Notices as HTML pages and PDF letters, in the person's language.

Every label comes from a gettext catalog under ``locale/LANG/LC_MESSAGES/
kinline.po``, read at run time (no build step): adding a language is adding a
catalog, and a language with no catalog is written in English. Dates follow
the language's style (``babel.dates``); times are the facility's wall time
with its zone's abbreviation, since a person reading a notice on paper has
no other clock to compare it to.

Both forms are built from one ``NoticeText``, so the page and the letter
always say the same thing. The PDF uses fpdf2's core Helvetica (Windows-1252:
every Spanish letter and sign); a character outside it is replaced by its
nearest plain letter, or ``?``, never a crash.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from jinja2 import Environment, FileSystemLoader, select_autoescape

from kinline.notices.document import AUTOMATIC_ISSUER, COMMAND_LINE_ISSUER, NoticeDocument

DOMAIN = "kinline"
FALLBACK = "en"
LOCALE_DIR = Path(__file__).with_name("locale")
TEMPLATE_DIR = Path(__file__).with_name("templates")
PDF_ENCODING = "windows-1252"
_Gettext = Callable[[str], str]
# Latin letters that Unicode does not decompose into a base letter and a mark.
_NO_DECOMPOSITION = {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "ı": "i"}


@dataclass(frozen=True, slots=True)
class NoticeText:
    """A notice's words in one language: what both the page and the letter print."""

    language: str
    heading: str
    headline: str
    rows: tuple[tuple[str, str], ...]
    # The letterhead (the facility's name, then its address lines) and the
    # official particulars beside it: reference, date of issue, issuer.
    letterhead: tuple[str, ...]
    particulars: tuple[tuple[str, str], ...]
    deadline_sentence: str
    how_label: str
    how_to_appeal: str
    acknowledgement: str | None


def languages() -> frozenset[str]:
    """The languages notices can be written in: those with a catalog."""
    return _languages()


@cache
def _languages() -> frozenset[str]:
    return frozenset(
        path.parent.parent.name for path in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")
    )


def resolve_language(code: str) -> str:
    """``code`` when it has a catalog, else its base language's, else English."""
    known = _languages()
    normalized = code.replace("-", "_")
    for candidate in (normalized, normalized.split("_")[0].lower()):
        if candidate in known:
            return candidate
    return FALLBACK


@cache
def _translations(language: str) -> Translations:
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return Translations()  # English is the catalogs' source: its words are the ids
    with path.open("rb") as po:
        catalog = read_po(po, locale=_babel_locale(language), domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def catalog(language: str) -> tuple[str, str, _Gettext]:
    """For words outside a notice (an email of its own): the language resolved
    to a catalog, its CLDR locale for dates, and the catalog's ``gettext``."""
    resolved = resolve_language(language)
    return resolved, _babel_locale(resolved), _translations(resolved).gettext


@cache
def _babel_locale(language: str) -> str:
    """The CLDR locale for dates: the catalog's language, or English when CLDR
    does not know it."""
    try:
        Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        return FALLBACK
    return language


def notice_text(doc: NoticeDocument) -> NoticeText:
    """The notice's words in ``doc.language`` (or English, lacking its catalog)."""
    language = resolve_language(doc.language)
    _ = _translations(language).gettext
    dates = _babel_locale(language)
    zone = ZoneInfo(doc.timezone)
    channel = _channel_label(doc.channel, _)
    headline = _headline(doc, channel, _)
    effective = _local_time(doc.effective_at, zone, dates)
    deadline = format_date(doc.appeal_deadline, "long", locale=dates)
    letterhead = (doc.facility_name, *(doc.facility_address or "").splitlines())
    particulars: list[tuple[str, str]] = []
    if doc.reference is not None:
        particulars.append((_("Reference"), doc.reference))
    if doc.issued_at is not None:
        particulars.append(
            (_("Date of issue"), format_date(doc.issued_at.astimezone(zone), "long", locale=dates))
        )
    if doc.issued_by is not None:
        particulars.append((_("Issued by"), _issuer(doc.issued_by, doc.issuer_role, _)))
    rows: list[tuple[str, str]] = [
        (_("Facility"), doc.facility_name),
        (_("Person"), f"{doc.person_name} ({doc.person_id})"),
        (_("What changed"), _explanation(doc, channel, _)),
    ]
    if doc.authority is not None:
        rule = doc.subject
        if doc.rule_kind is not None:
            rule = f"{rule} ({_kind_label(doc.rule_kind, _)})"
        rows.append((_("Rule"), rule))
        rows.append((_("Rule text"), doc.rule_text or ""))
        rows.append((_("Authority"), _authority_label(doc.authority, _)))
        if doc.case_number:
            rows.append((_("Case number"), doc.case_number))
        for order in doc.overridden_orders:
            overridden = order.text
            if order.case_number:
                overridden = _("case {case}: {text}").format(
                    case=order.case_number, text=order.text
                )
            rows.append((_("Court order it overrides"), overridden))
    elif doc.contact_name is not None:
        rows.append((_("Contact"), doc.contact_name))
        rows.append((_("Channel"), channel))
    if doc.reason:
        rows.append((_("Reason"), doc.reason))
    rows.append((_("Effective"), effective))
    rows.append((_("Appeal deadline"), deadline))
    acknowledgement = None
    if doc.acknowledged_at is not None:
        acknowledgement = _("Acknowledged by {by} on {when}.").format(
            by=doc.acknowledged_by or "",
            when=_local_time(doc.acknowledged_at, zone, dates),
        )
    return NoticeText(
        language=language,
        heading=_("Notice {number}").format(number=doc.notice_id),
        headline=headline,
        rows=tuple(rows),
        letterhead=letterhead,
        particulars=tuple(particulars),
        deadline_sentence=_(
            "You may appeal this change until {deadline}: {days} days from the day it takes effect."
        ).format(deadline=deadline, days=doc.appeal_days),
        how_label=_("How to appeal"),
        how_to_appeal=_(
            "File an appeal at the kiosk, or on the paper form your unit team must give you "
            "when you ask, naming notice {number}. Your counsel or a family member may file "
            "it for you. An appeal filed by the deadline is answered in writing, and the rule "
            "stays open to appeal until it is answered."
        ).format(number=doc.notice_id),
        acknowledgement=acknowledgement,
    )


def render_html(doc: NoticeDocument) -> str:
    """One notice as a standalone HTML page; every value is escaped."""
    return _environment().get_template("notice.html").render(text=notice_text(doc))


def render_pdf(docs: Sequence[NoticeDocument]) -> bytes:
    """One notice per page, each in its own language; one PDF for them all (a
    housing unit's daily print batch). No notices is a caller's mistake: ValueError."""
    if not docs:
        raise ValueError("render_pdf needs at least one notice")
    pdf = FPDF(format="Letter")
    pdf.core_fonts_encoding = PDF_ENCODING
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(20, 18, 20)
    pdf.set_creator("kinline")
    texts = [notice_text(doc) for doc in docs]
    if len(texts) == 1:
        pdf.set_title(_pdf_safe(texts[0].heading))
        pdf.set_lang(texts[0].language)
    for text in texts:
        _pdf_page(pdf, text)
    return bytes(pdf.output())


def _pdf_page(pdf: FPDF, text: NoticeText) -> None:
    pdf.add_page()
    width = pdf.epw
    name, *address = text.letterhead
    pdf.set_font("Helvetica", "B", 14)
    _pdf_line(pdf, name, 7, align="C")
    pdf.set_font("Helvetica", "", 10)
    for line in address:
        _pdf_line(pdf, line, 5, align="C")
    pdf.ln(2)
    pdf.set_draw_color(60, 60, 60)
    pdf.set_line_width(0.5)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
    pdf.set_line_width(0.2)
    pdf.ln(3)
    for label, value in text.particulars:
        pdf.set_font("Helvetica", "B", 10)
        label_width = pdf.get_string_width(_pdf_safe(label)) + 3
        pdf.cell(label_width, 5, _pdf_safe(f"{label}:"))
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(0, 5, _pdf_safe(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if text.particulars:
        pdf.ln(3)
    pdf.set_font("Helvetica", "B", 16)
    _pdf_line(pdf, text.heading, 9)
    pdf.set_font("Helvetica", "B", 12)
    _pdf_line(pdf, text.headline, 7)
    pdf.ln(3)
    # Two columns, label beside value, so a notice with a court order, a
    # reason and an acknowledgement still fits one Letter page.
    label_width = 46
    for label, value in text.rows:
        pdf.set_font("Helvetica", "B", 10)
        count = _line_count(pdf, label_width, label)
        if pdf.will_page_break(5.5 * count):
            pdf.add_page()
        top, page = pdf.get_y(), pdf.page
        pdf.multi_cell(
            label_width, 5.5, _pdf_safe(label), new_x=XPos.RIGHT, new_y=YPos.TOP, align="L"
        )
        pdf.set_font("Helvetica", "", 11)
        pdf.multi_cell(0, 5.5, _pdf_safe(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
        if pdf.page == page:
            pdf.set_y(max(pdf.get_y(), top + 5.5 * count))
        pdf.ln(1.2)
    pdf.ln(2)
    pdf.set_draw_color(120, 120, 120)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 11)
    _pdf_line(pdf, text.deadline_sentence, 6)
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 10)
    _pdf_line(pdf, text.how_label, 5)
    pdf.set_font("Helvetica", "", 11)
    _pdf_line(pdf, text.how_to_appeal, 6)
    if text.acknowledgement is not None:
        pdf.ln(3)
        pdf.set_font("Helvetica", "I", 10)
        _pdf_line(pdf, text.acknowledgement, 5)


def _line_count(pdf: FPDF, width: float, text: str) -> int:
    """How many lines ``text`` takes in a cell ``width`` wide, in the current font."""
    lines = pdf.multi_cell(width, 5.5, _pdf_safe(text), dry_run=True, output="LINES", align="L")
    return len(lines) if isinstance(lines, list) else 1


def _pdf_line(pdf: FPDF, text: str, height: float, *, align: str = "L") -> None:
    pdf.multi_cell(0, height, _pdf_safe(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align=align)


def pdf_safe(text: str) -> str:
    """``text`` as the PDF core fonts can draw it (for other documents' letters)."""
    return _pdf_safe(text)


def _pdf_safe(text: str) -> str:
    """``text`` with every character the core fonts cannot draw replaced by its
    plain form (``ł`` -> ``l``, a narrow space -> a space) or ``?``."""
    try:
        text.encode(PDF_ENCODING)
    except UnicodeEncodeError:
        return "".join(_pdf_char(char) for char in text)
    return text


def _pdf_char(char: str) -> str:
    try:
        char.encode(PDF_ENCODING)
    except UnicodeEncodeError:
        if char in _NO_DECOMPOSITION:
            return _NO_DECOMPOSITION[char]
        plain = "".join(
            part for part in unicodedata.normalize("NFKD", char) if not unicodedata.combining(part)
        )
        try:
            plain.encode(PDF_ENCODING)
        except UnicodeEncodeError:
            return "?"
        return plain or "?"
    return char


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _local_time(moment: datetime, zone: ZoneInfo, language: str) -> str:
    here = moment.astimezone(zone)
    day = format_date(here.date(), "long", locale=language)
    clock = format_time(here.time(), "short", locale=language)
    return f"{day}, {clock} {here.tzname()}"


def _channel_label(channel: str | None, _: _Gettext) -> str:
    labels = {
        "phone": _("telephone calls"),
        "video": _("video calls"),
        "visit": _("visits"),
        "all": _("calls and visits"),
    }
    return labels.get(channel or "", channel or "")


def _authority_label(authority: str, _: _Gettext) -> str:
    labels = {
        "facility_policy": _("facility policy"),
        "incentive": _("incentive program"),
        "sanction": _("disciplinary sanction"),
        "security_measure": _("security measure"),
        "court_order": _("court order"),
    }
    return labels.get(authority, authority)


def _kind_label(kind: str, _: _Gettext) -> str:
    labels = {
        "grant": _("permission"),
        "limit": _("limit"),
        "deny": _("prohibition"),
        "require": _("condition"),
    }
    return labels.get(kind, kind)


def _explanation(doc: NoticeDocument, channel: str, _: _Gettext) -> str:
    sentences = {
        "imposed": _("The rule below applies to you from the time it takes effect."),
        "lifted": _("The rule below no longer applies to you from the time shown."),
        "approved": _("You may now have {channel} with this contact."),
        "revoked": _("You may no longer have {channel} with this contact."),
        "contact_changed": _(
            "Rules that name a relationship now apply to this contact as recorded."
        ),
        "phone_removed": _("You cannot call this contact until a number is added."),
        "transferred": _(
            "Your contacts moved with you, but each must be approved again at your new "
            "facility; the rules of your former facility no longer apply to you."
        ),
        "released": _("Your {channel} through this facility have ended."),
        "visitor_approved": _("This visitor may now visit you, within the visiting rules."),
        "visitor_refused": _("This visitor may not visit you; they may apply again."),
        "visitor_limited": _("Visits with this visitor are restricted as stated below."),
        "visits_restored": _("A restriction on visits with this visitor no longer applies."),
        "appeal_silence": _(
            "Staff did not answer your appeal in time, so it counts as denied. The reason "
            "below says what you may do next."
        ),
    }
    return sentences.get(doc.change, _("{channel} changed for you.")).format(channel=channel)


def _headline(doc: NoticeDocument, channel: str, _: _Gettext) -> str:
    contact = doc.contact_name or doc.subject
    templates = {
        "imposed": _("A new rule on your {channel}: {rule}"),
        "lifted": _("A rule on your {channel} was lifted: {rule}"),
        "approved": _("{contact} is approved for {channel}"),
        "revoked": _("{contact} is no longer approved for {channel}"),
        "contact_changed": _("{contact} is now recorded as your {subject}"),
        "phone_removed": _("{contact} has no telephone number on file"),
        "transferred": _("You were transferred to {subject}"),
        "released": _("You were released from {subject}"),
        "visitor_approved": _("{contact} is approved to visit you"),
        "visitor_refused": _("{contact} is not approved to visit you"),
        "visitor_limited": _("Visits with {contact} are restricted"),
        "visits_restored": _("A restriction on visits with {contact} was lifted"),
        "appeal_silence": _("Your appeal {subject} is denied: no answer came in time"),
    }
    template = templates.get(doc.change, _("A change to your {channel}: {subject}"))
    return template.format(
        channel=channel, subject=doc.subject, contact=contact, rule=_rule_words(doc, _)
    )


TITLE_RULE_CHARS = 120


def _rule_words(doc: NoticeDocument, _: _Gettext) -> str:
    """How a headline names a rule: its text (cut at a word), else its
    authority; never its internal id."""
    words = " ".join((doc.rule_text or "").split()).rstrip(".")
    if len(words) > TITLE_RULE_CHARS:
        words = words[:TITLE_RULE_CHARS].rsplit(" ", 1)[0] + "…"
    if words:
        return words
    if doc.authority is not None:
        return _authority_label(doc.authority, _)
    return _("a rule without text")


def _issuer(name: str, role: str | None, _: _Gettext) -> str:
    if name == AUTOMATIC_ISSUER:
        return _("kinline (automatic)")
    if name == COMMAND_LINE_ISSUER:
        return _("kinline (command line)")
    labels = {
        "warden": _("Warden"),
        "admin": _("Administrator"),
        "security": _("Security officer"),
        "records": _("Records officer"),
        "visiting": _("Visiting officer"),
        "observer": _("Observer"),
        "counsel": _("Counsel"),
        "court": _("Court"),
        "person": _("The person concerned"),
        "family": _("Family member"),
    }
    if role is None:
        return name
    return f"{name}, {labels.get(role, role)}"
