"""Signing in over HTTP: ``/v1/auth``. Forms are accepted as
``application/x-www-form-urlencoded`` (a browser's form) and as JSON.

The session lives in the ``kinline_session`` cookie (HttpOnly, SameSite=Lax,
Secure unless ``KINLINE_INSECURE_COOKIES=1`` for plain-HTTP development);
the CSRF token every form must carry comes back in the sign-in answer and
from ``/v1/auth/me``. A module of its own above ``kinline.http``: identity sits
below the features, and a reset email goes through the notices outbox.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field, ValidationError

from kinline.changes.password_reset import request_password_reset
from kinline.errors import InvalidInput, Unauthenticated
from kinline.http import (
    SESSION_COOKIE,
    DbDep,
    admitted,
    bearer,
    get_db,
    in_thread,
)
from kinline.identity.credentials import ABSOLUTE
from kinline.identity.model import Subject
from kinline.identity.signin import enroll_totp, reset_password, session_of, sign_in, sign_out

M = TypeVar("M", bound=BaseModel)
router = APIRouter(prefix="/v1/auth", tags=["sign-in"])
INSECURE_ENV = "KINLINE_INSECURE_COOKIES"
# Where reset links point; set it in production (else the request's own URL).
PUBLIC_URL_ENV = "KINLINE_PUBLIC_URL"
RESET_ACCEPTED = (
    "If an account with that login or email has an email address, a link to "
    "reset its password was sent there. It works once, for 30 minutes."
)
MAX_FIELD = 1024


class SignInForm(BaseModel):
    login: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=MAX_FIELD)
    totp: str | None = Field(default=None, max_length=16, description="Staff: the TOTP code")


class ResetRequestForm(BaseModel):
    login: str = Field(min_length=1, max_length=254, description="Login or email")


class ResetCompleteForm(BaseModel):
    token: str = Field(min_length=1, max_length=MAX_FIELD)
    password: str = Field(min_length=1, max_length=MAX_FIELD)


class ResetAcceptedOut(BaseModel):
    status: str = "accepted"
    detail: str = RESET_ACCEPTED


class SignedInOut(BaseModel):
    subject_id: int
    csrf_token: str = Field(description="Send as X-CSRF-Token (or form field csrf_token)")


class BindingOut(BaseModel):
    facility_id: str
    role: str | None = None
    person_id: str | None = None
    contact_id: str | None = None
    case_number: str | None = None
    job: str | None = None


class MeOut(BaseModel):
    id: int
    name: str
    kind: str
    second_factor: bool
    bindings: list[BindingOut]
    csrf_token: str | None = Field(default=None, description="With a session cookie")


class TotpOut(BaseModel):
    secret: str
    uri: str = Field(description="otpauth:// URI for an authenticator app")


FORM_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
        }
    }
}


async def form_fields(request: Request) -> dict[str, str]:
    """The body's fields, from a urlencoded form or a JSON object."""
    kind = request.headers.get("content-type", "")
    if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        return {key: value for key, value in form.items() if isinstance(value, str)}
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested past reading
        raise InvalidInput("the body is not valid JSON or a form", field="body") from None
    if not isinstance(body, dict):
        raise InvalidInput("the body must be an object", field="body")
    return {key: value for key, value in body.items() if isinstance(value, str)}


def parsed(model: type[M], fields: dict[str, str]) -> M:
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidInput(f"{field}: {first['msg']}", field=field) from None


def secure_cookies() -> bool:
    return os.environ.get(INSECURE_ENV, "").lower() not in ("1", "true", "yes", "on")


async def signed_in(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Subject:
    return await admitted(request, await get_db(request), credentials)


SignedInSubject = Annotated[Subject, Depends(signed_in)]


@router.post("/sign-in", response_model=SignedInOut, openapi_extra=FORM_BODY)
async def sign_in_route(request: Request, response: Response, db: DbDep) -> SignedInOut:
    """Sign in with login and password (and, for staff, a TOTP code). A new
    session every time: any session cookie the browser held is replaced."""
    form = parsed(SignInForm, await form_fields(request))
    made = await in_thread(sign_in, db, form.login, form.password, form.totp, at=datetime.now(UTC))
    response.set_cookie(
        SESSION_COOKIE,
        made.secret,
        max_age=int(ABSOLUTE.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure_cookies(),
        path="/",
    )
    return SignedInOut(subject_id=made.subject_id, csrf_token=made.csrf_token)


@router.post("/sign-out", status_code=204, openapi_extra=FORM_BODY)
async def sign_out_route(request: Request, who: SignedInSubject, db: DbDep) -> Response:
    """End this session (CSRF token required, as for every form)."""
    secret = request.cookies.get(SESSION_COOKIE)
    if secret is None:
        raise Unauthenticated("there is no session to end")
    await in_thread(sign_out, db, secret, at=datetime.now(UTC))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", response_model=MeOut)
async def me_route(request: Request, who: SignedInSubject, db: DbDep) -> MeOut:
    """Who the caller is and what it is bound to."""
    csrf = None
    secret = request.cookies.get(SESSION_COOKIE)
    if secret is not None and request.headers.get("authorization") is None:
        live = await in_thread(session_of, db, secret, at=datetime.now(UTC))
        csrf = None if live is None else live.csrf_token
    return MeOut(
        id=who.id,
        name=who.name,
        kind=str(who.kind),
        second_factor=who.second_factor,
        bindings=[
            BindingOut(
                facility_id=b.facility_id,
                role=None if b.role is None else str(b.role),
                person_id=b.person_id,
                contact_id=b.contact_id,
                case_number=b.case_number,
                job=None if b.job is None else str(b.job),
            )
            for b in who.bindings
        ],
        csrf_token=csrf,
    )


@router.post("/totp", response_model=TotpOut, openapi_extra=FORM_BODY)
async def totp_route(who: SignedInSubject, db: DbDep) -> TotpOut:
    """A new TOTP secret for the signed-in subject; the next sign-in needs its code."""
    enrolled = await in_thread(enroll_totp, db, who.id, at=datetime.now(UTC), actor=who.actor)
    return TotpOut(secret=enrolled.secret, uri=enrolled.uri)


def public_url(request: Request) -> str:
    return os.environ.get(PUBLIC_URL_ENV) or str(request.base_url)


@router.post(
    "/password-reset",
    status_code=202,
    response_model=ResetAcceptedOut,
    openapi_extra=FORM_BODY,
)
async def password_reset_route(request: Request, db: DbDep) -> ResetAcceptedOut:
    """Ask for a password reset link by login or email. The answer is the same
    whether or not there is such an account: the link goes only to its email."""
    form = parsed(ResetRequestForm, await form_fields(request))
    await in_thread(
        request_password_reset, db, form.login, at=datetime.now(UTC), base_url=public_url(request)
    )
    return ResetAcceptedOut()


@router.post("/password-reset/complete", status_code=204, openapi_extra=FORM_BODY)
async def password_reset_complete_route(request: Request, db: DbDep) -> Response:
    """Set a new password with the token from a reset link: once, within 30
    minutes. Every session of the account ends. 422 names ``token`` (unknown,
    used or expired) or ``password`` (too weak)."""
    form = parsed(ResetCompleteForm, await form_fields(request))
    await in_thread(reset_password, db, form.token, form.password, at=datetime.now(UTC))
    return Response(status_code=204)
