"""Subjects, what they are bound to, and API tokens that expire and can be revoked.

Identity spans facilities, so its audit events go on the ``*`` chain; a
binding also goes on the chain of the facility it binds to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from kinline.audit.service import facility_chain, record_event
from kinline.db.engine import Database
from kinline.db.tables import ApiTokenRow, SubjectRow
from kinline.errors import AlreadyExists, InvalidInput, NotFound, WrongState
from kinline.identity import repository
from kinline.identity.model import (
    Binding,
    Job,
    Kind,
    Role,
    Subject,
    binding_problem,
    new_secret,
    token_hash,
)

# A token's last use is written at most this often: a write per request would
# put a row lock on the call path for a number nobody reads to the second.
LAST_USED_EVERY = timedelta(seconds=60)
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token as listed: never its secret."""

    id: int
    name: str
    subject_id: int
    subject_name: str
    facility_id: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def parse_kind(value: str, field: str = "kind") -> Kind:
    try:
        return Kind(value)
    except ValueError:
        choices = ", ".join(kind.value for kind in Kind)
        raise InvalidInput(f"{value!r} is not one of {choices}", field=field) from None


def parse_role(value: str, field: str = "role") -> Role:
    try:
        return Role(value)
    except ValueError:
        choices = ", ".join(role.value for role in Role)
        raise InvalidInput(f"{value!r} is not one of {choices}", field=field) from None


def parse_job(value: str, field: str = "job") -> Job:
    try:
        return Job(value)
    except ValueError:
        choices = ", ".join(job.value for job in Job)
        raise InvalidInput(f"{value!r} is not one of {choices}", field=field) from None


def _checked_name(name: str, field: str = "name") -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("must not be empty", field=field)
    if len(name) > MAX_NAME:
        raise InvalidInput(f"at most {MAX_NAME} characters", field=field)
    return name


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


def add_subject(
    db: Database,
    name: str,
    kind: Kind,
    *,
    at: datetime,
    actor: str,
    bindings: tuple[Binding, ...] = (),
    login: str | None = None,
    email: str | None = None,
    language: str = "en",
) -> Subject:
    """A new subject, bound at once to ``bindings``."""
    name = _checked_name(name)
    with db.transaction() as session:
        if login is not None and repository.subject_by_login(session, login) is not None:
            raise AlreadyExists(f"the login {login!r} is taken", field="login")
        row = repository.add_subject(
            session, name=name, kind=kind, at=at, login=login, email=email, language=language
        )
        _audit(
            session,
            actor,
            "identity:subject:added",
            {"subject_id": row.id, "name": name, "kind": str(kind)},
            at,
        )
        for binding in bindings:
            _bind(session, row, binding, at=at, actor=actor)
        return _subject(session, row)


def bind(db: Database, subject_id: int, binding: Binding, *, at: datetime, actor: str) -> Subject:
    """Bind the subject to one more thing at a facility (checked against its kind)."""
    with db.transaction() as session:
        row = _require_subject(session, subject_id, lock=True)
        _bind(session, row, binding, at=at, actor=actor)
        return _subject(session, row)


def unbind(db: Database, subject_id: int, binding: Binding, *, at: datetime, actor: str) -> Subject:
    with db.transaction() as session:
        row = _require_subject(session, subject_id, lock=True)
        if not repository.remove_binding(session, row, binding):
            raise NotFound("the subject is not bound so", field="binding")
        _audit(
            session,
            actor,
            "identity:subject:unbound",
            {"subject_id": row.id, **_binding_payload(binding)},
            at,
        )
        return _subject(session, row)


def _bind(session: Session, row: SubjectRow, binding: Binding, *, at: datetime, actor: str) -> None:
    kind = Kind(row.kind)
    facility_id = binding.facility_id
    if facility_id not in repository.facility_ids(session):
        raise NotFound(f"no facility {facility_id!r}", field="facility_id")
    if binding.contact_id is not None:
        owner = repository.contact_person(session, facility_id, binding.contact_id)
        if owner is None:
            raise NotFound(f"no contact {binding.contact_id!r}", field="contact_id")
        if binding.person_id not in (None, owner):
            raise InvalidInput("the contact is not that person's", field="contact_id")
        if kind is Kind.FAMILY:
            binding = Binding(facility_id, contact_id=binding.contact_id, person_id=owner)
    problem = binding_problem(kind, binding)
    if problem is not None:
        raise InvalidInput(problem, field="binding")
    if binding.person_id is not None and not repository.person_exists(
        session, facility_id, binding.person_id
    ):
        raise NotFound(f"no person {binding.person_id!r}", field="person_id")
    known = repository.bindings_of(session, [row.id])[row.id]
    if binding in known:
        return
    if kind is Kind.PERSON and known:
        raise WrongState("a person's account is bound to one person", field="person_id")
    repository.add_binding(session, row, binding, at)
    _audit(
        session,
        actor,
        "identity:subject:bound",
        {"subject_id": row.id, **_binding_payload(binding)},
        at,
    )


def _binding_payload(binding: Binding) -> dict[str, object]:
    return {
        name: str(value)
        for name in ("facility_id", "role", "person_id", "contact_id", "case_number", "job")
        if (value := getattr(binding, name)) is not None
    }


def _require_subject(session: Session, subject_id: int, *, lock: bool = False) -> SubjectRow:
    row = repository.get_subject_row(session, subject_id, lock=lock)
    if row is None:
        raise NotFound(f"no subject {subject_id}", field="subject_id")
    return row


def _subject(session: Session, row: SubjectRow) -> Subject:
    return repository.subject_from_row(row, repository.bindings_of(session, [row.id])[row.id])


def get_subject(db: Database, subject_id: int) -> Subject:
    with db.transaction() as session:
        return _subject(session, _require_subject(session, subject_id))


def list_subjects(db: Database) -> list[Subject]:
    with db.transaction() as session:
        rows = repository.list_subject_rows(session)
        bindings = repository.bindings_of(session, [row.id for row in rows])
        return [repository.subject_from_row(row, bindings[row.id]) for row in rows]


def issue_token(
    db: Database,
    subject_id: int,
    *,
    facility_id: str | None,
    at: datetime,
    actor: str,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[TokenInfo, str]:
    """A new token for the subject at ``facility_id`` (None: every facility it
    is bound to); the secret is returned once and only its hash is kept."""
    if expires_at is not None and expires_at <= at:
        raise InvalidInput("the expiry must be in the future", field="expires_at")
    secret = new_secret()
    with db.transaction() as session:
        subject_row = _require_subject(session, subject_id)
        subject = _subject(session, subject_row)
        if facility_id is not None and facility_id not in subject.facilities():
            raise InvalidInput(
                f"subject {subject_id} is bound to nothing at facility {facility_id!r}",
                field="facility_id",
            )
        label = _checked_name(name or subject.name)
        row = repository.add_token(
            session,
            subject_id=subject_id,
            facility_id=facility_id,
            name=label,
            digest=token_hash(secret),
            at=at,
            expires_at=expires_at,
        )
        _audit(
            session,
            actor,
            "identity:token:issued",
            {
                "token_id": row.id,
                "subject_id": subject_id,
                "facility_id": facility_id,
                "expires_at": None if expires_at is None else expires_at.isoformat(),
            },
            at,
        )
        return _token_info(row, subject_row), secret


def create_token(
    db: Database,
    name: str,
    scope: str,
    *,
    at: datetime,
    facility_id: str | None = None,
    expires_at: datetime | None = None,
    actor: str = "cli",
) -> tuple[TokenInfo, str]:
    """A subject named ``name`` made for one purpose, with a token: ``staff`` (the
    admin role), ``read`` (the observer role) or ``telephony`` (a machine client
    for the call path); at ``facility_id``, or at every facility there is."""
    shapes = {"staff": Kind.STAFF, "read": Kind.STAFF, "telephony": Kind.MACHINE}
    if scope not in shapes:
        raise InvalidInput(f"{scope!r} is not one of {', '.join(shapes)}", field="scope")
    with db.transaction() as session:
        known = repository.facility_ids(session)
    if facility_id is not None and facility_id not in known:
        raise NotFound(f"no facility {facility_id!r}", field="facility_id")
    facilities = [facility_id] if facility_id is not None else known
    if not facilities:
        raise InvalidInput("there is no facility to bind the token to", field="facility_id")
    bindings = tuple(
        Binding(place, job=Job.TELEPHONY)
        if scope == "telephony"
        else Binding(place, role=Role.ADMIN if scope == "staff" else Role.OBSERVER)
        for place in facilities
    )
    subject = add_subject(db, name, shapes[scope], at=at, actor=actor, bindings=bindings)
    return issue_token(
        db, subject.id, facility_id=facility_id, at=at, actor=actor, expires_at=expires_at
    )


def list_tokens(db: Database, subject_id: int | None = None) -> list[TokenInfo]:
    with db.transaction() as session:
        rows = repository.list_tokens(session, subject_id)
        subjects = {row.id: row for row in repository.list_subject_rows(session)}
        return [_token_info(row, subjects[row.subject_id]) for row in rows]


def revoke_token(db: Database, token_id: int, *, at: datetime, actor: str) -> TokenInfo:
    """Revoke a token: refused from the next request on. Revoking twice is a no-op."""
    with db.transaction() as session:
        row = repository.get_token(session, token_id, lock=True)
        if row is None:
            raise NotFound(f"no token {token_id}", field="token_id")
        if row.revoked_at is None:
            row.revoked_at = at
            _audit(
                session,
                actor,
                "identity:token:revoked",
                {"token_id": token_id, "subject_id": row.subject_id},
                at,
            )
        return _token_info(row, _require_subject(session, row.subject_id))


def authenticate(db: Database, secret: str, *, at: datetime) -> Subject | None:
    """The subject a token acts for, narrowed to the token's facility; None when
    the token is unknown, revoked, expired or its subject disabled."""
    with db.transaction() as session:
        return authenticate_in(session, secret, at=at)


def authenticate_in(
    session: Session, secret: str, *, at: datetime, record_use: bool = True
) -> Subject | None:
    """``authenticate`` inside the caller's transaction, which must not yet have
    changed any subject's bindings (they are remembered by version only as
    committed).

    Without ``record_use`` it writes nothing, and answers None also when the
    token's use is due to be recorded (once a ``LAST_USED_EVERY``): a caller
    that must not hold the token's row lock until it commits (the call path,
    which runs beside every other set-up on the same token) then authenticates
    on its own with ``authenticate``."""
    found = repository.token_with_subject(session, token_hash(secret))
    if found is None:
        return None
    if found.revoked_at is not None or found.disabled_at is not None:
        return None
    if found.expires_at is not None and found.expires_at <= at:
        return None
    if found.last_used_at is None or found.last_used_at < at - LAST_USED_EVERY:
        if not record_use:
            return None
        repository.touch_token(session, found.token_id, at, at - LAST_USED_EVERY)
    # Committed bindings only, so they may be remembered by version.
    bindings = repository.bindings_at_version(session, found.subject_id, found.version)
    return found.subject(bindings).narrowed(found.facility_id)


def _token_info(row: ApiTokenRow, subject: SubjectRow) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        name=row.name,
        subject_id=row.subject_id,
        subject_name=subject.name,
        facility_id=row.facility_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )
