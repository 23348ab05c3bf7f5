"""Signing people in: argon2id passwords, server-side sessions made anew at
every sign-in, a growing lockout after failed attempts, TOTP for staff, and
one-time password resets. Each use case is one transaction with its audit
event on the ``*`` chain; a refusal is committed (its count and its event)
before it is raised.

Only hashes are kept: of the session secret (the cookie), of a reset token;
the plain values leave this module once, to their owner.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from kinline.audit.service import facility_chain, record_event
from kinline.db.engine import Database
from kinline.db.tables import SubjectRow
from kinline.errors import InvalidInput, NotFound, Unauthenticated
from kinline.identity import repository, signin_repository
from kinline.identity.credentials import (
    RESET_VALID,
    SessionTimes,
    idle_limit,
    lock_remaining,
    locked_until,
    password_problem,
    session_expiry,
    session_live,
)
from kinline.identity.model import Subject, needs_second_factor

SIGNIN_ACTOR = "signin"
TOTP_ISSUER = "kinline"
# Last seen is written at most this often: idle expiry is exact to a minute.
SEEN_EVERY = timedelta(seconds=60)
MAX_LOGIN = 254


class SignInLocked(Unauthenticated):
    """Too many failed sign-ins: the login is locked for a while, even to the
    right password."""

    code = "signin_locked"
    status = 429

    def __init__(self, wait: timedelta) -> None:
        seconds = max(1, int(wait.total_seconds() + 0.999))
        super().__init__(f"too many failed sign-ins: try again in {seconds} seconds")
        self.retry_after = seconds


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session: the cookie's secret and the token its forms must carry."""

    secret: str
    csrf_token: str
    subject_id: int


@dataclass(frozen=True, slots=True)
class LiveSession:
    subject: Subject
    csrf_token: str


@dataclass(frozen=True, slots=True)
class TotpEnrollment:
    secret: str
    uri: str


@dataclass(frozen=True, slots=True)
class ResetIssued:
    """A reset token made for a subject: the plain token goes only into the email."""

    subject_id: int
    name: str
    email: str
    language: str
    token: str
    expires_at: datetime
    # The subject's first bound facility ("*" when bound to none): where the
    # email waits in the outbox and its sending is audited.
    facility_id: str = "*"


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id, the library's recommended parameters


@cache
def _dummy_hash() -> str:
    """Verified against for unknown logins, so they take as long as known ones."""
    return _hasher().hash(secrets.token_urlsafe(16))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _audit(
    session: Session, actor: str, tag: str, payload: dict[str, object], at: datetime
) -> None:
    record_event(
        session,
        facility_id="*",
        chain=facility_chain("*"),
        actor=actor,
        tag=tag,
        payload=payload,
        at=at,
    )


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher().verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def _checked_password(password: str, field: str = "password") -> str:
    problem = password_problem(password)
    if problem is not None:
        raise InvalidInput(f"the password must be {problem}", field=field)
    return password


def set_password(db: Database, subject_id: int, password: str, *, at: datetime, actor: str) -> None:
    """Give the subject a new password; a lock and the failure count are cleared."""
    hashed = _hasher().hash(_checked_password(password))
    with db.transaction() as session:
        row = repository.get_subject_row(session, subject_id, lock=True)
        if row is None:
            raise NotFound(f"no subject {subject_id}", field="subject_id")
        if row.login is None:
            raise InvalidInput("the subject has no login to sign in with", field="subject_id")
        _store_password(row, hashed)
        _audit(session, actor, "identity:password:set", {"subject_id": row.id}, at)


def _store_password(row: SubjectRow, hashed: str) -> None:
    row.password_hash = hashed
    row.failed_signins = 0
    row.locked_until = None


def _totp_ok(secret: str | None, code: str | None, at: datetime) -> bool:
    if secret is None or not code:
        return False
    return pyotp.TOTP(secret).verify(code.strip(), for_time=at, valid_window=1)


def sign_in(
    db: Database, login: str, password: str, totp_code: str | None, *, at: datetime
) -> SignedIn:
    """A new session for the login, or a refusal: 401 for a wrong login, password
    or (staff) second factor, 429 with the wait while the login is locked."""
    login = login.strip()[:MAX_LOGIN]
    refusal: Unauthenticated | None = None
    with db.transaction() as session:
        row = signin_repository.lock_subject_by_login(session, login) if login else None
        if row is None or row.disabled_at is not None:
            _verify(None, password)
            _audit(
                session,
                SIGNIN_ACTOR,
                "identity:signin:failed",
                {"login": login, "reason": "unknown" if row is None else "disabled"},
                at,
            )
            refusal = Unauthenticated("the login or password is not right")
        elif (wait := lock_remaining(row.locked_until, at)) > timedelta(0):
            _verify(None, password)
            _audit(
                session,
                SIGNIN_ACTOR,
                "identity:signin:failed",
                {"subject_id": row.id, "reason": "locked"},
                at,
            )
            refusal = SignInLocked(wait)
        else:
            subject = repository.subject_from_row(
                row, repository.bindings_of(session, [row.id])[row.id]
            )
            right = _verify(row.password_hash, password)
            second = needs_second_factor(subject)
            if right and second and not _totp_ok(row.totp_secret, totp_code, at):
                refusal = _failure(session, row, "second_factor", at)
            elif not right:
                refusal = _failure(session, row, "password", at)
            else:
                if row.password_hash and _hasher().check_needs_rehash(row.password_hash):
                    row.password_hash = _hasher().hash(password)  # parameters were raised
                return _open_session(session, row, second_factor=second, at=at)
    assert refusal is not None
    raise refusal


def _failure(session: Session, row: SubjectRow, reason: str, at: datetime) -> Unauthenticated:
    row.failed_signins += 1
    until = locked_until(row.failed_signins, at)
    row.locked_until = until
    _audit(
        session,
        SIGNIN_ACTOR,
        "identity:signin:failed",
        {"subject_id": row.id, "reason": reason, "failures": row.failed_signins},
        at,
    )
    if until is not None:
        _audit(
            session,
            SIGNIN_ACTOR,
            "identity:signin:locked",
            {"subject_id": row.id, "failures": row.failed_signins, "until": until.isoformat()},
            at,
        )
        return SignInLocked(until - at)
    if reason == "second_factor":
        return Unauthenticated("a valid code from the authenticator app is required")
    return Unauthenticated("the login or password is not right")


def _open_session(
    session: Session, row: SubjectRow, *, second_factor: bool, at: datetime
) -> SignedIn:
    row.failed_signins = 0
    row.locked_until = None
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    signin_repository.add_web_session(
        session,
        digest=digest(secret),
        subject_id=row.id,
        csrf_token=csrf,
        second_factor=second_factor,
        at=at,
        expires_at=session_expiry(at),
    )
    _audit(
        session,
        SIGNIN_ACTOR,
        "identity:signin:succeeded",
        {"subject_id": row.id, "second_factor": second_factor},
        at,
    )
    return SignedIn(secret, csrf, row.id)


def session_of(db: Database, secret: str, *, at: datetime) -> LiveSession | None:
    """The subject a session cookie acts for, and its CSRF token; None when the
    session is unknown, ended, idle too long, past its absolute expiry, or its
    subject disabled."""
    idle = idle_limit()
    with db.transaction() as session:
        found = signin_repository.web_session_with_subject(session, digest(secret))
        if found is None:
            return None
        web, row = found
        times = SessionTimes(web.created_at, web.last_seen_at, web.expires_at, web.ended_at)
        if row.disabled_at is not None or not session_live(times, at, idle):
            return None
        if web.last_seen_at < at - SEEN_EVERY:
            signin_repository.touch_web_session(session, web.id, at)
        subject = repository.subject_from_row(
            row, repository.bindings_of(session, [row.id])[row.id]
        )
        return LiveSession(
            dataclasses.replace(subject, second_factor=web.second_factor), web.csrf_token
        )


def session_subject(db: Database, secret: str, *, at: datetime) -> Subject | None:
    live = session_of(db, secret, at=at)
    return None if live is None else live.subject


def sign_out(db: Database, secret: str, *, at: datetime) -> bool:
    """End the session; False when it was not live."""
    with db.transaction() as session:
        subject_id = signin_repository.end_web_session(session, digest(secret), at)
        if subject_id is None:
            return False
        _audit(
            session,
            SIGNIN_ACTOR,
            "identity:session:ended",
            {"subject_id": subject_id, "reason": "signed out"},
            at,
        )
        return True


def enroll_totp(db: Database, subject_id: int, *, at: datetime, actor: str) -> TotpEnrollment:
    """A new TOTP secret for the subject (replacing any), and its otpauth URI
    for an authenticator app. Sessions keep working; the next sign-in needs it."""
    secret = pyotp.random_base32()
    with db.transaction() as session:
        row = repository.get_subject_row(session, subject_id, lock=True)
        if row is None:
            raise NotFound(f"no subject {subject_id}", field="subject_id")
        row.totp_secret = secret
        _audit(session, actor, "identity:totp:enrolled", {"subject_id": row.id}, at)
        uri = pyotp.TOTP(secret).provisioning_uri(
            name=row.login or f"subject-{row.id}", issuer_name=TOTP_ISSUER
        )
        return TotpEnrollment(secret, uri)


def issue_password_reset(
    session: Session, login_or_email: str, *, at: datetime
) -> ResetIssued | None:
    """A one-time reset token for the subject with that login (or only that
    email), inside the caller's transaction, which also queues the email; None
    when there is no such subject, it is disabled or has no email."""
    value = login_or_email.strip()[:MAX_LOGIN]
    row = signin_repository.subject_by_login_or_email(session, value) if value else None
    if row is None or row.disabled_at is not None or not row.email:
        _audit(
            session,
            SIGNIN_ACTOR,
            "identity:reset:requested",
            {"login": value, "outcome": "no account with an email"},
            at,
        )
        return None
    token = secrets.token_urlsafe(32)
    expires_at = at + RESET_VALID
    reset = signin_repository.add_password_reset(
        session, subject_id=row.id, digest=digest(token), at=at, expires_at=expires_at
    )
    _audit(
        session,
        SIGNIN_ACTOR,
        "identity:reset:requested",
        {"subject_id": row.id, "reset_id": reset.id, "outcome": "sent"},
        at,
    )
    bound = repository.bindings_of(session, [row.id])[row.id]
    facility_id = bound[0].facility_id if bound else "*"
    return ResetIssued(row.id, row.name, row.email, row.language, token, expires_at, facility_id)


def reset_password(db: Database, token: str, new_password: str, *, at: datetime) -> None:
    """Set the password with a reset token: once, before it expires. Every
    session of the subject ends."""
    hashed = _hasher().hash(_checked_password(new_password))
    with db.transaction() as session:
        reset = signin_repository.lock_password_reset(session, digest(token.strip()))
        if reset is None or reset.used_at is not None or reset.expires_at <= at:
            raise InvalidInput(
                "the reset link is not valid, was used or has expired", field="token"
            )
        row = repository.get_subject_row(session, reset.subject_id, lock=True)
        if row is None or row.disabled_at is not None:
            raise InvalidInput(
                "the reset link is not valid, was used or has expired", field="token"
            )
        reset.used_at = at
        _store_password(row, hashed)
        ended = signin_repository.end_sessions_of(session, row.id, at)
        _audit(
            session,
            SIGNIN_ACTOR,
            "identity:password:reset",
            {"subject_id": row.id, "reset_id": reset.id, "sessions_ended": ended},
            at,
        )
