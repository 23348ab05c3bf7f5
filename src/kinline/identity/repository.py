"""Every query about subjects, their bindings and their API tokens."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import NamedTuple, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from kinline.db.engine import core
from kinline.db.raw import Raw
from kinline.db.tables import (
    ApiTokenRow,
    ContactRow,
    FacilityRow,
    PersonRow,
    SubjectBindingRow,
    SubjectRow,
)
from kinline.identity.model import Binding, Job, Kind, Role, Subject


def facility_ids(session: Session) -> list[str]:
    return list(session.scalars(select(FacilityRow.id).order_by(FacilityRow.id)))


def person_exists(session: Session, facility_id: str, person_id: str) -> bool:
    return session.get(PersonRow, (facility_id, person_id)) is not None


def contact_person(session: Session, facility_id: str, contact_id: str) -> str | None:
    """Whose contact ``contact_id`` is; None when there is no such contact."""
    return session.scalars(
        select(ContactRow.person_id).where(
            ContactRow.facility_id == facility_id, ContactRow.id == contact_id
        )
    ).one_or_none()


def add_subject(
    session: Session,
    *,
    name: str,
    kind: Kind,
    at: datetime,
    login: str | None = None,
    email: str | None = None,
    language: str = "en",
) -> SubjectRow:
    row = SubjectRow(
        name=name,
        kind=str(kind),
        login=login,
        email=email,
        language=language,
        created_at=at,
        failed_signins=0,
        version=1,
    )
    session.add(row)
    session.flush()
    return row


def get_subject_row(session: Session, subject_id: int, *, lock: bool = False) -> SubjectRow | None:
    statement = select(SubjectRow).where(SubjectRow.id == subject_id)
    if lock:
        statement = statement.with_for_update()
    return session.scalars(statement).one_or_none()


def subject_by_login(session: Session, login: str) -> SubjectRow | None:
    return session.scalars(select(SubjectRow).where(SubjectRow.login == login)).one_or_none()


def list_subject_rows(session: Session) -> list[SubjectRow]:
    return list(session.scalars(select(SubjectRow).order_by(SubjectRow.id)))


def bindings_of(session: Session, subject_ids: list[int]) -> dict[int, list[Binding]]:
    found: dict[int, list[Binding]] = {subject_id: [] for subject_id in subject_ids}
    if not subject_ids:
        return found
    for row in session.scalars(
        select(SubjectBindingRow)
        .where(SubjectBindingRow.subject_id.in_(subject_ids))
        .order_by(SubjectBindingRow.id)
    ):
        found[row.subject_id].append(binding_from_row(row))
    return found


# A subject's bindings by (database, subject id, version): every change of a
# subject's bindings raises its version (``add_binding``, ``remove_binding``), so
# an entry is never stale, only unused; the caller's request reads the version
# with its token anyway. The database is part of the key, as one process may
# open several (ids and versions are each database's own). Bounded: cleared
# whole when full (each entry is one subject).
_BINDINGS: dict[tuple[str, int, int], tuple[Binding, ...]] = {}
_BINDINGS_MAX = 10_000
_BINDINGS_LOCK = threading.Lock()


def bindings_at_version(session: Session, subject_id: int, version: int) -> list[Binding]:
    """The subject's bindings as they stand at ``version`` (its row's, read in this
    transaction): from memory when that version was read before, else read
    once. Every request authenticated by a token needs them. Only for a
    transaction that has not changed the subject's bindings: one that has
    might still roll back what it would remember."""
    key = (str(session.get_bind().engine.url), subject_id, version)
    with _BINDINGS_LOCK:
        known = _BINDINGS.get(key)
    if known is not None:
        return list(known)
    found = bindings_of(session, [subject_id])[subject_id]
    with _BINDINGS_LOCK:
        if len(_BINDINGS) >= _BINDINGS_MAX:
            _BINDINGS.clear()
        _BINDINGS[key] = tuple(found)
    return found


def binding_from_row(row: SubjectBindingRow) -> Binding:
    return Binding(
        facility_id=row.facility_id,
        role=None if row.role is None else Role(row.role),
        person_id=row.person_id,
        contact_id=row.contact_id,
        case_number=row.case_number,
        job=None if row.job is None else Job(row.job),
    )


def subject_from_row(row: SubjectRow, bindings: list[Binding]) -> Subject:
    return Subject(id=row.id, name=row.name, kind=Kind(row.kind), bindings=tuple(bindings))


def add_binding(session: Session, subject: SubjectRow, binding: Binding, at: datetime) -> None:
    session.add(
        SubjectBindingRow(
            subject_id=subject.id,
            facility_id=binding.facility_id,
            role=None if binding.role is None else str(binding.role),
            person_id=binding.person_id,
            contact_id=binding.contact_id,
            case_number=binding.case_number,
            job=None if binding.job is None else str(binding.job),
            created_at=at,
        )
    )
    subject.version += 1
    session.flush()


def remove_binding(session: Session, subject: SubjectRow, binding: Binding) -> bool:
    for row in session.scalars(
        select(SubjectBindingRow).where(SubjectBindingRow.subject_id == subject.id)
    ):
        if binding_from_row(row) == binding:
            session.delete(row)
            subject.version += 1
            session.flush()
            return True
    return False


def add_token(
    session: Session,
    *,
    subject_id: int,
    facility_id: str | None,
    name: str,
    digest: str,
    at: datetime,
    expires_at: datetime | None,
) -> ApiTokenRow:
    row = ApiTokenRow(
        subject_id=subject_id,
        facility_id=facility_id,
        name=name,
        token_hash=digest,
        created_at=at,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return row


_TOKENS = cast(Table, ApiTokenRow.__table__)
_SUBJECTS = cast(Table, SubjectRow.__table__)
# Every request with a bearer token runs this: built once, run through Core,
# reading only what authenticating needs into a plain tuple (an ORM query of
# two entities, then two ORM rows built per request, took more CPU than the
# rest of authenticating).
_TOKEN_WITH_SUBJECT = (
    select(
        _TOKENS.c.id,
        _TOKENS.c.facility_id,
        _TOKENS.c.expires_at,
        _TOKENS.c.revoked_at,
        _TOKENS.c.last_used_at,
        _SUBJECTS.c.id,
        _SUBJECTS.c.name,
        _SUBJECTS.c.kind,
        _SUBJECTS.c.version,
        _SUBJECTS.c.disabled_at,
    )
    .join_from(_TOKENS, _SUBJECTS, _SUBJECTS.c.id == _TOKENS.c.subject_id)
    .where(_TOKENS.c.token_hash == bindparam("digest"))
)
_TOKEN_WITH_SUBJECT_RAW = Raw("token_with_subject", _TOKEN_WITH_SUBJECT)


class TokenSubject(NamedTuple):
    """A token and its subject, as authentication reads them."""

    token_id: int
    facility_id: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    subject_id: int
    name: str
    kind: str
    version: int
    disabled_at: datetime | None

    def subject(self, bindings: list[Binding]) -> Subject:
        return Subject(
            id=self.subject_id, name=self.name, kind=Kind(self.kind), bindings=tuple(bindings)
        )


def token_with_subject(session: Session, digest: str) -> TokenSubject | None:
    """The token with this digest and its subject (change them with this module's
    statements)."""
    params = {"digest": digest}
    if session.get_bind().dialect.name == "postgresql":  # every request's first statement
        rows = _TOKEN_WITH_SUBJECT_RAW.rows(session, params)
        return TokenSubject._make(rows[0]) if rows else None
    found = core(session).execute(_TOKEN_WITH_SUBJECT, params).one_or_none()
    return None if found is None else TokenSubject._make(found)


def touch_token(session: Session, token_id: int, at: datetime, stale_before: datetime) -> None:
    """Record the token's use at ``at``, unless one was recorded since ``stale_before``."""
    session.execute(
        update(ApiTokenRow)
        .where(
            ApiTokenRow.id == token_id,
            (ApiTokenRow.last_used_at.is_(None)) | (ApiTokenRow.last_used_at < stale_before),
        )
        .values(last_used_at=at)
    )


def list_tokens(session: Session, subject_id: int | None = None) -> list[ApiTokenRow]:
    statement = select(ApiTokenRow).order_by(ApiTokenRow.id)
    if subject_id is not None:
        statement = statement.where(ApiTokenRow.subject_id == subject_id)
    return list(session.scalars(statement))


def get_token(session: Session, token_id: int, *, lock: bool = False) -> ApiTokenRow | None:
    statement = select(ApiTokenRow).where(ApiTokenRow.id == token_id)
    if lock:
        statement = statement.with_for_update()
    return session.scalars(statement).one_or_none()
