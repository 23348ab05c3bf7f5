"""The one family of domain errors: each kind has a stable code, problem type,
HTTP status and CLI exit code, and each entry point renders them in one place.

- The API (``kinline.http.install_problem_handlers``) answers RFC 9457
  problem+json: ``type``, ``title``, ``status``, ``detail`` (the message),
  ``code`` and ``field``.
- The CLI (``kinline.cli_base.friendly``) prints ``error (field): message`` and
  exits with ``exit_code``.
- A web page shows ``title`` and ``message`` beside the field ``field`` names.

A problem ``type`` is an absolute URI, the same in every deployment:
``https://kinline.dev/problems/`` and the code with hyphens
(``hold_expired`` -> ``https://kinline.dev/problems/hold-expired``). It names
the kind of error; it need not resolve. Codes and types never change once
published: a client may switch on either. Raise the most specific class;
callers catch the general one (a ``LateFiling`` is an ``InvalidInput``).
"""

from __future__ import annotations

from typing import ClassVar

PROBLEM_TYPES = "https://kinline.dev/problems/"


def problem_type(code: str) -> str:
    """The problem type URI of an error code."""
    return PROBLEM_TYPES + code.replace("_", "-")


class KinlineError(Exception):
    """A request kinline refuses, in words for the person who made it."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def type(self) -> str:
        return problem_type(self.code)

    @property
    def title(self) -> str:
        """A short name for the kind of error, the same for every instance."""
        return self.code.replace("_", " ")


class InvalidInput(KinlineError):
    """Bad input; ``field`` names the offending field."""

    code = "invalid_input"
    status = 422
    exit_code = 2


class LateFiling(InvalidInput):
    """An appeal filed after its level's window closed; staff may accept it late
    with a reason. ``field`` is the filing's time."""

    code = "late_filing"


class Unauthenticated(KinlineError):
    """No credentials, or ones that are not valid."""

    code = "unauthenticated"
    status = 401


class Forbidden(KinlineError):
    """The caller is known but may not do this."""

    code = "forbidden"
    status = 403


class NotFound(KinlineError):
    """A facility, person, contact or record named is not there."""

    code = "not_found"
    status = 404


class Conflict(KinlineError):
    """The request contradicts what is recorded (a rule already ended, a contact
    not approved for the channel); the subclasses name the common kinds."""

    code = "conflict"
    status = 409


class AlreadyExists(Conflict):
    """Something with this id (or an open appeal against this notice) is
    recorded already; ``field`` names the id."""

    code = "already_exists"


class WrongState(Conflict):
    """A step its object's state does not allow: "cannot end call 'h1': it is
    released", an appeal level already answered or extended."""

    code = "wrong_state"


class HoldExpired(Conflict):
    """The call set-up's hold lapsed before the call connected: the allowance it
    held is given back and the call must be set up again."""

    code = "hold_expired"


class IdempotencyKeyReused(Conflict):
    """An idempotency key already used for a different request."""

    code = "idempotency_key_reused"


class BodyTooLarge(KinlineError):
    """A request body longer than the server accepts (``KINLINE_MAX_BODY_BYTES``,
    and much less before the caller has shown credentials); ``field`` is ``body``."""

    code = "body_too_large"
    status = 413


class ServiceUnavailable(KinlineError):
    """The database did not answer in time (a statement or a wait for a
    connection outlasted its bound) or cannot be reached; nothing was written,
    and the same request may be tried again after ``retry_after`` seconds."""

    code = "service_unavailable"
    status = 503
    exit_code = 3

    def __init__(self, message: str, *, field: str | None = None, retry_after: int = 5) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


def not_utf8(error: UnicodeDecodeError) -> str:
    """What a file that is not UTF-8 text is, in words: ``not UTF-8 text: byte
    0xe9 at offset 13``."""
    return f"not UTF-8 text: byte 0x{error.object[error.start]:02x} at offset {error.start}"
