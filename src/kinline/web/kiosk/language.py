"""The kiosk's and the family portal's language: the reader's own choice (the
``lang`` cookie) first, then the language kinline keeps for them (a person's
record, a visitor's contact), then the browser's.

The foundation reads only the cookie and Accept-Language (``Subject`` carries
no language). A kiosk is a shared terminal whose browser says nothing about
who sits at it, so these pages put the stored language in place of a missing
cookie for this one request, before anything is rendered or translated.
"""

from __future__ import annotations

from fastapi import Request

from kinline.web.render import LANG_COOKIE, LANGUAGES


def prefer_stored_language(request: Request, stored: str | None) -> None:
    """Read this request as if its ``lang`` cookie said ``stored`` (``es-MX`` is
    read as ``es``), unless the reader chose a language themselves or kinline
    has no pages in ``stored``."""
    if not stored or request.cookies.get(LANG_COOKIE) in LANGUAGES:
        return
    primary = stored.split("-")[0].split("_")[0].lower()
    if primary in LANGUAGES:
        # Starlette keeps the parsed cookies on the request: every later reader
        # (render, gettext_for, field_errors) sees the same language.
        request.cookies[LANG_COOKIE] = primary
