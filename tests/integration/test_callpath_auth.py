"""The call path's authentication reads less per request, and never a stale answer.

A bearer request reads its token and subject in one statement; the subject's
bindings are remembered by (subject id, version). These tests change what a
token's subject may do between requests and expect the very next request to
see it, and see that the remembered bindings are those of the version read.
On both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from kinline.db.engine import Database
from kinline.db.tables import ApiTokenRow, SubjectRow
from kinline.identity import repository
from kinline.identity.model import Binding, Job, Role
from kinline.identity.service import (
    authenticate,
    bind,
    create_token,
    revoke_token,
    unbind,
)
from kinline.people.model import Facility
from kinline.people.service import register_facility

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _two_facilities(db: Database) -> None:
    for place in ("east", "west"):
        register_facility(
            db, Facility(id=place, name=place.title(), timezone="America/Denver"), at=AT, actor="t"
        )


def test_a_binding_added_or_removed_is_seen_by_the_next_request(db: Database) -> None:
    _two_facilities(db)
    info, secret = create_token(db, "reader", "read", at=AT, facility_id="east")
    first = authenticate(db, secret, at=AT)
    assert first is not None and first.facilities() == {"east"}
    again = authenticate(db, secret, at=AT + timedelta(seconds=1))
    assert again == first  # remembered, and the same

    west = Binding("west", role=Role.OBSERVER)
    bind(db, info.subject_id, west, at=AT, actor="t")
    # The token is the subject's at every facility it is bound to (no facility
    # narrowing by this token's own: it was made for one facility, so it stays there).
    widened = authenticate(db, secret, at=AT + timedelta(seconds=2))
    assert widened is not None
    with db.transaction() as session:
        version = session.scalars(
            select(SubjectRow.version).where(SubjectRow.id == info.subject_id)
        ).one()
        bindings = repository.bindings_at_version(session, info.subject_id, version)
    assert west in bindings and len(bindings) == 2

    unbind(db, info.subject_id, west, at=AT, actor="t")
    with db.transaction() as session:
        version = session.scalars(
            select(SubjectRow.version).where(SubjectRow.id == info.subject_id)
        ).one()
        assert west not in repository.bindings_at_version(session, info.subject_id, version)


def test_an_unnarrowed_token_follows_its_subjects_bindings(db: Database) -> None:
    _two_facilities(db)
    info, secret = create_token(db, "platform", "telephony", at=AT)
    seen = authenticate(db, secret, at=AT)
    assert seen is not None and seen.facilities() == {"east", "west"}

    unbind(db, info.subject_id, Binding("west", job=Job.TELEPHONY), at=AT, actor="t")
    after = authenticate(db, secret, at=AT + timedelta(seconds=1))
    assert after is not None and after.facilities() == {"east"}

    bind(db, info.subject_id, Binding("west", job=Job.TELEPHONY), at=AT, actor="t")
    back = authenticate(db, secret, at=AT + timedelta(seconds=2))
    assert back is not None and back.facilities() == {"east", "west"}


def test_a_revoked_expired_or_disabled_token_is_refused_at_once(db: Database) -> None:
    _two_facilities(db)
    info, secret = create_token(db, "platform", "telephony", at=AT)
    assert authenticate(db, secret, at=AT) is not None
    revoke_token(db, info.id, at=AT, actor="t")
    assert authenticate(db, secret, at=AT + timedelta(seconds=1)) is None

    _other, other_secret = create_token(
        db, "later", "telephony", at=AT, expires_at=AT + timedelta(minutes=5)
    )
    assert authenticate(db, other_secret, at=AT) is not None
    assert authenticate(db, other_secret, at=AT + timedelta(minutes=5)) is None

    third, third_secret = create_token(db, "third", "telephony", at=AT)
    assert authenticate(db, third_secret, at=AT) is not None
    with db.transaction() as session:
        session.execute(
            update(SubjectRow).where(SubjectRow.id == third.subject_id).values(disabled_at=AT)
        )
    assert authenticate(db, third_secret, at=AT + timedelta(seconds=1)) is None


def test_a_token_read_for_authentication_records_its_use(db: Database) -> None:
    _two_facilities(db)
    info, secret = create_token(db, "platform", "telephony", at=AT)
    assert authenticate(db, secret, at=AT) is not None
    with db.transaction() as session:
        used = session.scalars(select(ApiTokenRow.last_used_at).where(ApiTokenRow.id == info.id))
        last = used.one()
    assert last is not None and last.astimezone(UTC) == AT
