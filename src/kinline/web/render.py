"""Rendering a page: one Jinja environment per feature and language, with the
shared catalog merged with the feature's (``.po`` files read at start, as the
notices do: adding words is editing a ``.po``, no build step), autoescape on,
and the helpers every template has: ``_``, ``ngettext``, ``csrf_field()``,
dates and times in the facility's zone and the reader's language.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from kinline.identity.model import Kind, Subject
from kinline.signin_api import secure_cookies

WEB = Path(__file__).parent
LANGUAGES = ("en", "es")
LANGUAGE_NAMES = {"en": "English", "es": "Español"}
LANG_COOKIE = "lang"
LANG_SECONDS = 365 * 24 * 3600
FORM_COOKIE = "kinline_form"  # the form token of a browser not signed in
FLASH_COOKIE = "kinline_flash"
DOMAIN = "pages"
# Where each kind of subject starts, and the nav it sees.
HOMES: dict[Kind, str] = {
    Kind.STAFF: "/staff",
    Kind.PERSON: "/me",
    Kind.FAMILY: "/family",
    Kind.COUNSEL: "/counsel",
    Kind.COURT: "/court",
}


class Templates:
    """A feature's templates and catalog: ``Templates(__file__)`` in its pages.py."""

    def __init__(self, pages_file: str) -> None:
        self.folder = Path(pages_file).parent

    def environment(self, language: str) -> Environment:
        return _environment(self.folder, language)


SHARED = Templates(str(WEB / "pages.py"))


def _read_catalog(folder: Path, language: str) -> Translations:
    path = folder / "locale" / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return Translations()  # English: the msgids are the words
    with path.open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


@cache
def translations(folder: Path, language: str) -> Translations:
    """The shared catalog with the feature's merged over it."""
    merged = _read_catalog(WEB, language)
    if folder != WEB:
        merged.merge(_read_catalog(folder, language))
    return merged


@cache
def _environment(folder: Path, language: str) -> Environment:
    env = Environment(
        loader=ChoiceLoader(
            [FileSystemLoader(folder / "templates"), FileSystemLoader(WEB / "templates")]
        ),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(folder, language), newstyle=True)  # type: ignore[attr-defined]
    return env


def gettext_for(request: Request, templates: Templates = SHARED) -> Any:
    """The ``gettext`` of the request's language (for messages made in Python)."""
    return translations(templates.folder, language_of(request)).gettext


def language_of(request: Request) -> str:
    """The ``lang`` cookie, the Accept-Language header, else English."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(request.headers.get("accept-language", "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            weighted.append((-quality, index, primary))
    return sorted(weighted)[0][2] if weighted else "en"


def remember_language(response: Response, language: str) -> None:
    response.set_cookie(
        LANG_COOKIE, language, max_age=LANG_SECONDS, samesite="lax", secure=secure_cookies()
    )


def form_token(request: Request) -> str:
    """The token a form must carry: the session's CSRF token when signed in (the
    one the API takes as X-CSRF-Token), else one kept in a cookie of its own."""
    token = getattr(request.state, "csrf_token", None) or request.cookies.get(FORM_COOKIE)
    if not token:
        token = getattr(request.state, "new_form_token", None) or secrets.token_urlsafe(24)
        request.state.new_form_token = token
    return str(token)


def flash(response: Response, message: str) -> None:
    """A message the next page shows once (already in the reader's language)."""
    response.set_cookie(FLASH_COOKIE, quote(message), samesite="lax", secure=secure_cookies())


def _formatters(request: Request, language: str) -> dict[str, Any]:
    zone = getattr(request.state, "zone", None) or UTC
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone

    def local(value: datetime) -> datetime:
        return value.astimezone(tz) if value.tzinfo else value.replace(tzinfo=UTC).astimezone(tz)

    return {
        "format_datetime": lambda value, fmt="medium": format_datetime(
            local(value), fmt, tzinfo=tz, locale=language
        ),
        "format_date": lambda value, fmt="medium": format_date(
            local(value).date() if isinstance(value, datetime) else value, fmt, locale=language
        ),
        "format_time": lambda value, fmt="short": format_time(
            local(value), fmt, tzinfo=tz, locale=language
        ),
        "today": date.today,
    }


def render(
    request: Request,
    templates: Templates,
    name: str,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The page ``name`` of ``templates`` in the reader's language. The context
    has ``subject`` (None when not signed in), ``lang``, ``errors`` (field ->
    message), ``flash``, ``csrf_field()`` and the date helpers."""
    language = language_of(request)
    env = templates.environment(language)
    token = form_token(request)
    subject: Subject | None = getattr(request.state, "subject", None)
    flashed = request.cookies.get(FLASH_COOKIE)
    values: dict[str, Any] = {
        "request": request,
        "lang": language,
        "languages": LANGUAGE_NAMES,
        "subject": subject,
        "home": HOMES.get(subject.kind, "/") if subject else "/",
        "errors": {},
        "flash": unquote(flashed) if flashed else None,
        "csrf_token": token,
        "csrf_field": lambda: Markup('<input type="hidden" name="csrf_token" value="{}">').format(
            token
        ),
        **_formatters(request, language),
        **context,
    }
    html = env.get_template(name).render(values)
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Language"] = language
    response.headers["Cache-Control"] = "no-store"
    if flashed:
        response.delete_cookie(FLASH_COOKIE)
    new = getattr(request.state, "new_form_token", None)
    if new:
        response.set_cookie(
            FORM_COOKIE, new, httponly=True, samesite="lax", secure=secure_cookies()
        )
    return response
