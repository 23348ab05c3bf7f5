"""Request bodies capped before they cost the service memory or time.

A pure ASGI middleware (``BodyLimit``), outermost but for the server's own error
catcher: a ``Content-Length`` above the cap is answered 413 before a byte of the
body is read; a body sent without one (chunked) is counted as it streams and
cut off at the cap, the route never seeing more. A request that shows no
credentials (no ``Authorization`` header, no session cookie) may carry far less:
nothing it may do unauthenticated needs more than a sign-in form, so an
anonymous caller cannot make the server read and parse a large body only to
answer 401.

- ``KINLINE_MAX_BODY_BYTES``: 1 MiB (the import of calls is a command, not a route).
- ``KINLINE_MAX_ANONYMOUS_BODY_BYTES``: 16 KiB.

Inside it, ``TextBodies`` refuses a JSON or form body with a NUL character in
any of its text (422 naming the field), which PostgreSQL could not store.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from kinline.errors import BodyTooLarge, InvalidInput, KinlineError
from kinline.http import domain_problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 1024 * 1024
MAX_ANONYMOUS_BODY_BYTES = 16 * 1024
SESSION_COOKIES = frozenset({"kinline_session", "__Host-kinline_session"})
"""Cookies that carry a signed-in person's session."""


@dataclass(frozen=True, slots=True)
class BodyCaps:
    """How many bytes a request body may hold, with and without credentials."""

    signed_in: int = MAX_BODY_BYTES
    anonymous: int = MAX_ANONYMOUS_BODY_BYTES

    @classmethod
    def from_env(cls) -> BodyCaps:
        signed_in = _bytes_setting("KINLINE_MAX_BODY_BYTES", MAX_BODY_BYTES)
        anonymous = _bytes_setting("KINLINE_MAX_ANONYMOUS_BODY_BYTES", MAX_ANONYMOUS_BODY_BYTES)
        return cls(signed_in, min(anonymous, signed_in))


def _bytes_setting(name: str, default: int) -> int:
    text = os.environ.get(name)
    if not text:
        return default
    if not text.isdigit():
        raise ValueError(f"{name} must be a whole number of bytes, not {text!r}")
    return int(text)


def shows_credentials(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request carries an ``Authorization`` header or a session cookie
    (valid or not: that is for the route to say)."""
    for name, value in headers:
        if name == b"authorization" and value.strip():
            return True
        if name == b"cookie":
            for pair in value.decode("latin-1").split(";"):
                if pair.split("=", 1)[0].strip() in SESSION_COOKIES:
                    return True
    return False


class _Overflow(Exception):
    """The body went past its cap while it was read."""


class BodyLimit:
    """Caps every HTTP request's body (``BodyCaps``); see the module's docstring."""

    def __init__(self, app: ASGIApp, caps: BodyCaps | None = None) -> None:
        self.app = app
        self.caps = caps or BodyCaps.from_env()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        signed_in = shows_credentials(headers)
        cap = self.caps.signed_in if signed_in else self.caps.anonymous
        lengths = [value for name, value in headers if name == b"content-length"]
        if lengths:
            refusal = _refuse_declared(lengths, cap, signed_in)
            if refusal is not None:
                await domain_problem(refusal)(scope, receive, send)
                return
        await self._counted(scope, receive, send, cap, signed_in)

    async def _counted(
        self, scope: Scope, receive: Receive, send: Send, cap: int, signed_in: bool
    ) -> None:
        """Run the app on a body counted as it arrives; past the cap, the app is
        told the client left, whatever it answers is dropped, and 413 is sent."""
        received = 0
        overflowed = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, overflowed
            if overflowed:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    overflowed = True
                    raise _Overflow
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if overflowed and not started:
                return  # the app's answer to a body it never saw whole
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _Overflow:
            pass
        except Exception:
            if not overflowed:
                raise
        if overflowed and not started:
            await domain_problem(_too_large(cap, signed_in))(scope, receive, send)


def _refuse_declared(lengths: list[bytes], cap: int, signed_in: bool) -> KinlineError | None:
    """Why a declared ``Content-Length`` is refused before the body is read, if it is."""
    if len(set(lengths)) > 1 or not lengths[0].strip().isdigit():
        return InvalidInput("Content-Length must be one whole number of bytes", field="body")
    if int(lengths[0]) > cap:
        return _too_large(cap, signed_in)
    return None


def _too_large(cap: int, signed_in: bool) -> BodyTooLarge:
    if signed_in:
        return BodyTooLarge(f"the body must be at most {cap} bytes", field="body")
    return BodyTooLarge(
        f"without credentials the body must be at most {cap} bytes: "
        "send the bearer token or sign in first",
        field="body",
    )


class TextBodies:
    """Refuses, as 422 naming the field, a JSON or form body with a NUL character
    in any name or text: PostgreSQL can neither store nor compare text holding
    one, so it would otherwise reach the database and fail there as a 500 (on
    SQLite it would be stored). Inside ``BodyLimit``, so the body it reads whole
    is already capped; other bodies (a PDF, a file) pass untouched.

    The body is looked at once for the only way each format can carry a NUL
    (``\\u0000`` in JSON, ``%00`` in a form); only a body that has it is parsed
    to name the field."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = _text_kind(scope) if scope["type"] == "http" else None
        if kind is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, replay(b"".join(chunks), receive, message), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        field = _nul_field(kind, body)
        if field is not None:
            error = InvalidInput("must not contain a NUL character", field=field)
            await domain_problem(error)(scope, replay(body, receive), send)
            return
        await self.app(scope, replay(body, receive), send)


def _text_kind(scope: Scope) -> str | None:
    """``json`` or ``form`` for a body of that kind, else None."""
    if scope.get("method") not in ("POST", "PUT", "PATCH", "DELETE"):
        return None
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            if media == b"application/json" or media.endswith(b"+json"):
                return "json"
            if media == b"application/x-www-form-urlencoded":
                return "form"
            return None
    return None


def replay(body: bytes, receive: Receive, then: Message | None = None) -> Receive:
    """A ``receive`` as if the body had not been read yet: it gives ``body`` in
    one message, then ``then`` (a message that ended the reading early) or
    whatever the client sends next. For middleware that reads a body and then
    hands the request on (``TextBodies``, ``calls.api.LeanCallPath``)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent, then
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": then is not None}
        if then is not None:
            message, then = then, None
            return message
        return await receive()

    return replayed


def _nul_field(kind: str, body: bytes) -> str | None:
    """The field (dotted, as validation errors name it) whose name or text holds
    a NUL, ``body`` for one the body has but no field can be named for, or None."""
    if kind == "json":
        if b"\\u0000" not in body:
            return None
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            return None  # not JSON, or nested past reading: the route says so
        try:
            return _nul_in(value, ())
        except RecursionError:
            return "body"  # a NUL somewhere too deep to name the field
    if b"%00" not in body:
        return None
    for name, text in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in text:
            return name.replace("\x00", "") or "body"
    return None


def _nul_in(value: object, where: tuple[str, ...]) -> str | None:
    if isinstance(value, str):
        return ".".join(where) or "body" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return ".".join((*where, key.replace("\x00", ""))) or "body"
            found = _nul_in(item, (*where, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_in(item, (*where, str(index)))
            if found is not None:
                return found
    return None
