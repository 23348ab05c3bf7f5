"""Who may see a page: ``kinline.access``'s guards, answered in HTML.

A page route declares its action as an API route does, with
``grant: Annotated[Access, page(Action.X, locator)]`` (or ``page_everywhere``).
The guards are ``kinline.access.Guard`` and ``AcrossFacilities`` themselves,
given no bearer credentials: a page is signed in by its session cookie alone
(and a form that changes something carries the session's CSRF token, checked
by ``kinline.http.session_caller``). What they raise becomes HTML in
``install_page_errors``: 401 a redirect to /signin, 403 "not allowed", 404 "not
found", other errors a page with the message.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kinline.access import Access, AcrossFacilities, Guard, Locator, Reach
from kinline.db.engine import Database
from kinline.errors import Forbidden, KinlineError, NotFound, Unauthenticated
from kinline.http import SESSION_COOKIE, get_db, in_thread
from kinline.identity.model import Action
from kinline.identity.signin import session_of
from kinline.web.render import (
    FORM_COOKIE,
    SHARED,
    Templates,
    gettext_for,
    language_of,
    render,
    translations,
)

# Paths that are the API's, answered in problem+json; every other path is a page.
API_PATHS = ("/v1/", "/docs", "/redoc", "/openapi.json", "/docs-assets")


async def _remember(request: Request, db: Database) -> None:
    """Keep the session's CSRF token for the page's forms."""
    live = await in_thread(
        session_of, db, request.cookies.get(SESSION_COOKIE, ""), at=datetime.now(UTC)
    )
    if live is not None:
        request.state.csrf_token = live.csrf_token


class PageGuard(Guard):
    """``Guard`` for a page: the session cookie only, never a bearer token."""

    async def __call__(  # type: ignore[override]
        self,
        request: Request,
        facility_id: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Access:
        if not request.cookies.get(SESSION_COOKIE):
            raise Unauthenticated("sign in to see this page")
        grant = await super().__call__(request, None, facility_id)
        request.state.subject = grant.subject
        request.state.zone = grant.facility.zone
        await _remember(request, grant.db)
        return grant


class PageAcross(AcrossFacilities):
    """``AcrossFacilities`` for a page: the session cookie only."""

    async def __call__(self, request: Request) -> Reach:  # type: ignore[override]
        if not request.cookies.get(SESSION_COOKIE):
            raise Unauthenticated("sign in to see this page")
        reach = await super().__call__(request, None)
        request.state.subject = reach.subject
        await _remember(request, reach.db)
        return reach


def page(action: Action, locate: Locator | None = None) -> Any:
    """A page route's guard: ``grant: Annotated[Access, page(Action.X, locator)]``."""
    return Depends(PageGuard(action, locate))


def page_everywhere(action: Action) -> Any:
    """A page about every facility the subject is bound to (a home, a menu)."""
    return Depends(PageAcross(action))


async def check_form(request: Request, form: dict[str, str]) -> None:
    """The CSRF check of a form anyone may send (sign in, sign out, language):
    its ``csrf_token`` is the live session's token or that of the browser's
    ``kinline_form`` cookie, which another site can neither read nor set. 403
    without it."""
    sent = form.get("csrf_token", "").encode()
    known = [request.cookies.get(FORM_COOKIE, "")]
    if secret := request.cookies.get(SESSION_COOKIE):
        live = await in_thread(session_of, await get_db(request), secret, at=datetime.now(UTC))
        if live is not None:
            known.append(live.csrf_token)
    if not sent or not any(k and hmac.compare_digest(sent, k.encode()) for k in known):
        raise Forbidden("the form is missing its CSRF token; reload the page and send it again")


async def form_of(request: Request) -> dict[str, str]:
    """A page form's text fields."""
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def sentence(message: str) -> str:
    """A service's message (``the login ... is not right``) as a sentence on a page."""
    return message[:1].upper() + message[1:]


def field_errors(
    request: Request, templates: Templates, error: KinlineError, default: str = "form"
) -> dict[str, str]:
    """A service's refusal for the form's ``errors``: its field (``default``
    when it names none) -> its message, translated by the feature's catalog
    when it has the message, as a sentence."""
    message = translations(templates.folder, language_of(request)).gettext(error.message)
    return {error.field or default: sentence(message)}


def is_page(request: Request) -> bool:
    return not request.url.path.startswith(API_PATHS)


def sign_in_redirect(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(here, safe='')}", status_code=303)


def error_page(request: Request, status: int, message: str) -> Response:
    _ = gettext_for(request)
    titles = {403: _("Not allowed"), 404: _("Page not found"), 422: _("Check what you sent")}
    return render(
        request,
        SHARED,
        "error.html",
        status=status,
        title=titles.get(status, _("Something went wrong")),
        message=sentence(_(message)),
    )


Handler = Callable[[Request, Any], Awaitable[Response]]


def install_page_errors(app: FastAPI) -> None:
    """Wrap the API's error handlers: a page's errors are answered in HTML."""
    for kind in (KinlineError, StarletteHTTPException, RequestValidationError):
        api_handler: Handler = app.exception_handlers[kind]  # type: ignore[assignment]
        app.add_exception_handler(kind, _html_or(api_handler))


def _html_or(api_handler: Handler) -> Handler:
    async def handle(request: Request, error: Any) -> Response:
        if not is_page(request):
            return await api_handler(request, error)
        if isinstance(error, Unauthenticated) and error.status == 401:
            return sign_in_redirect(request)
        if isinstance(error, KinlineError):
            if isinstance(error, NotFound):
                return error_page(request, 404, "There is no page at this address.")
            return error_page(request, error.status, error.message)
        if isinstance(error, RequestValidationError):
            first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid"}
            field = ".".join(str(p) for p in first["loc"] if p not in ("query", "path", "body"))
            return error_page(request, 422, f"{field}: {first['msg']}")
        status = int(error.status_code)
        if status == 404:
            return error_page(request, 404, "There is no page at this address.")
        return error_page(request, status, str(error.detail))

    return handle
