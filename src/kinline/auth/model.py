"""API tokens: scopes, and how a secret becomes what is stored."""

from __future__ import annotations

import hashlib
import secrets
from enum import StrEnum

TOKEN_PREFIX = "kl_"  # noqa: S105 (a prefix, not a secret)


class Scope(StrEnum):
    READ = "read"
    STAFF = "staff"
    TELEPHONY = "telephony"


# What each scope may also do: staff may read; telephony may read.
IMPLIED: dict[Scope, frozenset[Scope]] = {
    Scope.READ: frozenset({Scope.READ}),
    Scope.STAFF: frozenset({Scope.STAFF, Scope.READ}),
    Scope.TELEPHONY: frozenset({Scope.TELEPHONY, Scope.READ}),
}


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(secret: str) -> str:
    """SHA-256 suffices: the secret is 256 random bits, not a password."""
    return hashlib.sha256(secret.encode()).hexdigest()
