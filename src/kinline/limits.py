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
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

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
