"""Signing in and out, the language, and ``/``: the pages every kind of
subject shares. The session is the one ``/v1/auth/sign-in`` makes
(``kinline.identity.signin``), in the same ``kinline_session`` cookie."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from kinline.access import Reach
from kinline.errors import InvalidInput, Unauthenticated
from kinline.http import SESSION_COOKIE, get_db, in_thread
from kinline.identity.credentials import ABSOLUTE
from kinline.identity.model import Action
from kinline.identity.signin import sign_in, sign_out
from kinline.signin_api import SignInForm, parsed, secure_cookies
from kinline.web.guard import check_form, field_errors, form_of, page_everywhere
from kinline.web.render import (
    HOMES,
    LANGUAGES,
    Templates,
    flash,
    gettext_for,
    remember_language,
    render,
)

router = APIRouter(include_in_schema=False)
TEMPLATES = Templates(__file__)


def local_path(target: str | None, default: str = "/") -> str:
    """``next`` only when it is a path on this site: not ``//host`` nor a URL."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    return target


def page_paths(request: Request) -> set[str]:
    """The GET page paths the app has (the kinds' start pages arrive one by one)."""
    paths = getattr(request.app.state, "page_paths", None)
    if paths is None:
        paths = request.app.state.page_paths = set(_get_paths(request.app.router.routes))
    return set(paths)


def _get_paths(routes: list[Any]) -> Iterator[str]:
    for route in routes:
        if isinstance(route, APIRoute) and "GET" in (route.methods or ()):
            yield route.path
        elif hasattr(route, "original_router"):  # an included router, kept whole
            yield from _get_paths(route.original_router.routes)


@router.get("/")
async def home_page(
    request: Request, reach: Annotated[Reach, page_everywhere(Action.FACILITY_READ)]
) -> Response:
    """Each kind of subject's own start page; until it exists, a simple home."""
    home = HOMES.get(reach.subject.kind)
    if home is not None and home in page_paths(request):
        return RedirectResponse(home, status_code=303)
    return render(request, TEMPLATES, "home.html")


@router.get("/signin")
async def signin_page(request: Request, next: str | None = None) -> Response:
    return render(request, TEMPLATES, "signin.html", next=local_path(next), form={})


@router.post("/signin")
async def signin_post(request: Request) -> Response:
    """Sign in; on a refusal the form again, the message beside its field."""
    form = await form_of(request)
    await check_form(request, form)
    target = local_path(form.get("next"))
    fields = {key: form.get(key, "") for key in ("login", "password")}
    fields["totp"] = form.get("totp", "")
    try:
        if not fields["login"].strip():
            raise InvalidInput("enter your login", field="login")
        if not fields["password"]:
            raise InvalidInput("enter your password", field="password")
        checked = parsed(SignInForm, {k: v for k, v in fields.items() if v})
        made = await in_thread(
            sign_in,
            await get_db(request),
            checked.login,
            checked.password,
            checked.totp,
            at=datetime.now(UTC),
        )
    except (InvalidInput, Unauthenticated) as error:
        field = error.field or ("totp" if "code" in error.message else "password")
        errors = field_errors(request, TEMPLATES, error, default=field)
        status = 429 if error.status == 429 else 422
        return render(
            request,
            TEMPLATES,
            "signin.html",
            status=status,
            next=target,
            form={"login": fields["login"]},
            errors=errors,
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        made.secret,
        max_age=int(ABSOLUTE.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure_cookies(),
        path="/",
    )
    return response


@router.post("/signout")
async def signout_post(request: Request) -> Response:
    """End the session (its CSRF token required) and go to the sign-in page."""
    form = await form_of(request)
    await check_form(request, form)
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        await in_thread(sign_out, await get_db(request), secret, at=datetime.now(UTC))
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    flash(response, gettext_for(request, TEMPLATES)("You have signed out."))
    return response


@router.post("/language")
async def language_post(request: Request) -> Response:
    """Choose the pages' language (kept a year in the ``lang`` cookie) and go back."""
    form = await form_of(request)
    await check_form(request, form)
    language = form.get("lang", "")
    if language not in LANGUAGES:
        raise InvalidInput("choose English or Spanish", field="lang")
    response = RedirectResponse(local_path(form.get("next")), status_code=303)
    remember_language(response, language)
    return response
