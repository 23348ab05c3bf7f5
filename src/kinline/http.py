"""What every API route shares: the database, the caller's scope, the facility,
and RFC 9457 problem+json for every error."""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Annotated, Any, ParamSpec, TypeVar

from cachetools import TTLCache
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from kinline.db.engine import Database
from kinline.errors import (
    Forbidden,
    InvalidInput,
    KinlineError,
    NotFound,
    ServiceUnavailable,
    Unauthenticated,
)
from kinline.identity.model import Subject
from kinline.identity.service import authenticate
from kinline.identity.signin import session_of
from kinline.people.model import Facility
from kinline.people.service import get_facility, list_facilities
from kinline.rules.parse import RuleError, parse_instant

PROBLEM = "application/problem+json"
log = logging.getLogger("kinline.api")
P = ParamSpec("P")
T = TypeVar("T")
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


async def in_thread(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking database work in a worker thread and await its result.

    A plain executor with as many threads as the database pool has connections
    (``KINLINE_DB_POOL_SIZE``): what FastAPI does for a sync route (anyio's
    thread hand-off) measured about 0.8 ms more CPU per call set-up request.
    """
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                size = int(os.environ.get("KINLINE_DB_POOL_SIZE", "20"))
                _executor = ThreadPoolExecutor(size, thread_name_prefix="kinline-db")
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, functools.partial(fn, *args, **kwargs))


class ProblemIssue(BaseModel):
    field: str = Field(description="The field at fault, dotted for nested ones")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details: how every error is answered."""

    type: str = Field(
        default="about:blank",
        description=(
            "The kind of error: https://kinline.dev/problems/ and its code with hyphens "
            "(https://kinline.dev/problems/hold-expired); about:blank when the status says it all"
        ),
    )
    title: str
    status: int
    detail: str = Field(description="What was wrong, in a sentence")
    code: str | None = Field(default=None, description="A stable name for the kind of error")
    field: str | None = Field(default=None, description="The input field at fault, if one is")
    errors: list[ProblemIssue] | None = Field(
        default=None, description="Every field at fault (invalid input)"
    )


PROBLEM_REF = "#/components/schemas/Problem"


def problem_schemas() -> dict[str, Any]:
    """Problem and its issue items as OpenAPI components, each schema once: every
    error response of every route refers to them (``$ref``) instead of carrying
    its own copy (whose ``$defs`` a reference from outside could not reach)."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    defined: dict[str, Any] = schema.pop("$defs", {})
    return {**defined, "Problem": schema}


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM: {"schema": {"$ref": PROBLEM_REF}}}}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem_response("The body could not be read"),
    401: _problem_response("No bearer token, or one that is not valid"),
    403: _problem_response("The token's scope does not allow this"),
    404: _problem_response("A facility, person, contact or record named is not there"),
    409: _problem_response("The request conflicts with what is recorded"),
    413: _problem_response("The body is longer than the server accepts"),
    422: _problem_response("Invalid input; `field` names the field at fault"),
    503: _problem_response(
        "The database did not answer in time; nothing was written, try again after Retry-After"
    ),
}
"""Declared for every route (``FastAPI(responses=...)``), so the OpenAPI document
says how errors are answered; kinline.openapi makes each a reference to one
response component (``problem_schemas`` are the schemas they name)."""


def problem(
    status: int,
    title: str,
    detail: str,
    extra: Mapping[str, Any] | None = None,
    *,
    type_: str = "about:blank",
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail}
    body.update(extra or {})
    sent = dict(headers or {})
    if status == 401:
        sent["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=sent or None)


def domain_problem(error: KinlineError, extra: Mapping[str, Any] | None = None) -> JSONResponse:
    """The one rendering of a domain error: its type, title, status, message
    (``detail``), code and field."""
    body: dict[str, Any] = {"code": error.code}
    if error.field:
        body["field"] = error.field
    body.update(extra or {})
    headers = None
    if isinstance(error, ServiceUnavailable):
        headers = {"Retry-After": str(error.retry_after)}
    return problem(
        error.status, error.title, error.message, body, type_=error.type, headers=headers
    )


def database_unavailable(error: OperationalError | PoolTimeout) -> ServiceUnavailable:
    """What a database that did not answer means to the caller: a statement that
    outlasted ``KINLINE_DB_STATEMENT_TIMEOUT_MS`` (or a lock wait it cut short), a
    wait for a pooled connection that outlasted ``KINLINE_DB_POOL_TIMEOUT_SECONDS``,
    a server that cannot be reached. The transaction was rolled back."""
    if isinstance(error, PoolTimeout):
        return ServiceUnavailable("the server is busy: no database connection came free in time")
    return ServiceUnavailable(
        "the database did not answer in time or cannot be reached; nothing was written"
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Every error becomes problem+json here and nowhere else: a domain error as
    its class says, invalid input as ``InvalidInput`` with every field at fault,
    an unknown path or method by its HTTP status, anything else as a logged 500."""

    @app.exception_handler(KinlineError)
    async def domain_error(_request: Request, error: KinlineError) -> JSONResponse:
        return domain_problem(error)

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def database_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, OperationalError | PoolTimeout)
        log.warning("database unavailable: %s", str(error).splitlines()[0])
        return domain_problem(database_unavailable(error))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        issues = [_issue(item) for item in error.errors()]
        first = issues[0] if issues else {"field": "", "message": "invalid request"}
        return domain_problem(
            InvalidInput(f"{first['field']}: {first['message']}", field=first["field"]),
            # Even an empty field: the body as a whole is at fault.
            {"field": first["field"], "errors": issues},
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = str(error.detail)
        headers = dict(error.headers or {})
        if error.status_code == 405:
            # Every method the path has: the router names only its first route's.
            headers["Allow"] = ", ".join(_methods_of(app, request.url.path))
        return problem(error.status_code, detail, detail, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=error)
        return problem(500, "internal error", "an unexpected error; it has been logged")


def _methods_of(app: FastAPI, path: str) -> list[str]:
    """The methods the API documents for ``path`` (HEAD wherever GET is), from the
    most specific paths that match it: ``/v1/calls/authorize`` is that route,
    not a hold named ``authorize``."""
    templates = getattr(app.state, "path_methods", None)
    if templates is None:
        templates = [
            (compile_path(template)[0], template.count("{"), {m.upper() for m in operations})
            for template, operations in app.openapi()["paths"].items()
        ]
        app.state.path_methods = templates
    matching = [(params, methods) for pattern, params, methods in templates if pattern.match(path)]
    fewest = min((params for params, _ in matching), default=0)
    allowed = set().union(*(methods for params, methods in matching if params == fewest))
    if "GET" in allowed:
        allowed.add("HEAD")
    return sorted(allowed)


def _issue(item: Mapping[str, Any]) -> dict[str, str]:
    """One validation error as ``field`` and ``message``; a body that is not JSON
    at all is the fault of ``body``, not of the character where reading stopped."""
    if item.get("type") == "json_invalid":
        at = item["loc"][-1] if item.get("loc") else None
        where = f" (at character {at})" if isinstance(at, int) else ""
        return {"field": "body", "message": f"the body is not valid JSON{where}"}
    parts = [str(part) for part in item["loc"] if part not in ("body", "query", "path")]
    return {"field": ".".join(parts), "message": str(item["msg"])}


async def get_db(request: Request) -> Database:
    db = request.app.state.db
    assert isinstance(db, Database)
    return db


DbDep = Annotated[Database, Depends(get_db)]
bearer = HTTPBearer(auto_error=False)


class Memo:
    """The facilities, kept for a few seconds instead of read for every request.
    Callers are not kept: a revoked token is refused from the next request on.
    Thread-safe: sync routes run in a thread pool."""

    FACILITY_SECONDS = 2.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._facilities: TTLCache[str, tuple[Facility, ...]] = TTLCache(
            maxsize=1, ttl=self.FACILITY_SECONDS
        )

    async def facilities(self, db: Database) -> tuple[Facility, ...]:
        with self._lock:
            known = self._facilities.get("all")
        if known is None:
            known = tuple(await in_thread(list_facilities, db))
            with self._lock:
                self._facilities["all"] = known
        return known


async def get_memo(request: Request) -> Memo:
    memo = getattr(request.app.state, "memo", None)
    if memo is None:
        memo = request.app.state.memo = Memo()
    assert isinstance(memo, Memo)
    return memo


SESSION_COOKIE = "kinline_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def session_caller(request: Request, db: Database, secret: str) -> Subject:
    """The subject of a sign-in session cookie. A request that may change
    something must carry the session's CSRF token (header ``X-CSRF-Token`` or
    form field ``csrf_token``): another site can make the browser send the
    cookie, but cannot read the token."""
    live = await in_thread(session_of, db, secret, at=datetime.now(UTC))
    if live is None:
        raise Unauthenticated("the session has ended or expired; sign in again")
    if request.method.upper() in UNSAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
            field = (await request.form()).get("csrf_token")
            sent = field if isinstance(field, str) else None
        if sent is None or not hmac.compare_digest(sent.encode(), live.csrf_token.encode()):
            raise Forbidden(f"a form sent with a session needs its CSRF token ({CSRF_HEADER})")
    return live.subject


async def caller(
    request: Request, db: Database, credentials: HTTPAuthorizationCredentials | None
) -> Subject:
    """The subject a request acts for: its bearer token's, else its sign-in
    session's (``kinline_session`` cookie, with CSRF checked)."""
    if credentials is None and (secret := request.cookies.get(SESSION_COOKIE)):
        return await session_caller(request, db, secret)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("a bearer token is required")
    found = await in_thread(authenticate, db, credentials.credentials, at=datetime.now(UTC))
    if found is None:
        raise Unauthenticated("the bearer token is not valid, has expired or was revoked")
    return found


async def admitted(
    request: Request, db: Database, credentials: HTTPAuthorizationCredentials | None
) -> Subject:
    """The caller, once no path or query parameter holds a NUL character: PostgreSQL
    can neither store nor compare text with one, so it would fail as a 500."""
    who = await caller(request, db, credentials)
    for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
        if "\x00" in str(value):
            raise InvalidInput("must not contain a NUL character", field=name)
    return who


async def facility_of(
    db: Database, memo: Memo, subject: Subject, facility_id: str | None
) -> Facility:
    """The facility a request is about: ``facility_id``, or the only one the caller
    is bound to, or the only one there is. One the caller is bound to nothing at
    answers as if it did not exist."""
    bound = subject.facilities()
    if facility_id is None:
        if len(bound) == 1:
            facility_id = next(iter(bound))
        else:
            facilities = await memo.facilities(db)
            if len(facilities) != 1:
                raise InvalidInput("name the facility with facility_id", field="facility_id")
            facility_id = facilities[0].id
    if facility_id not in bound:
        raise NotFound(f"no facility {facility_id!r}", field="facility_id")
    facilities = await memo.facilities(db)
    known = [place for place in facilities if place.id == facility_id]
    return known[0] if known else await in_thread(get_facility, db, facility_id)


def moment(text: str | None, place: Facility, field: str = "at") -> datetime:
    """A local wall time in the facility (ISO 8601, no offset), or now."""
    if text is None:
        return datetime.now(UTC)
    try:
        return parse_instant(text, place.zone, field)
    except RuleError as error:
        raise InvalidInput(error.message, field=field) from None
    except OverflowError:
        raise InvalidInput(f"{text!r} is out of range", field=field) from None
