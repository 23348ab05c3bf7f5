"""Domain errors with stable codes; each entry point renders them in one place.

The API turns them into RFC 9457 problem+json with ``status``; the CLI prints
the message and exits with ``exit_code``.
"""

from __future__ import annotations


class KinlineError(Exception):
    code = "error"
    status = 400
    exit_code = 1

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(KinlineError):
    """Bad input; ``field`` names the offending field."""

    code = "invalid_input"
    status = 422
    exit_code = 2


class NotFound(KinlineError):
    code = "not_found"
    status = 404


class Conflict(KinlineError):
    """The request contradicts the current state (already lifted, duplicate id...)."""

    code = "conflict"
    status = 409
