"""Every table of kinline.

Each table carries ``facility_id``: it is the distribution key, so the schema
shards by facility unchanged. Rules and approvals are never edited in place
except to set their end; sessions, notices and audit events are append-only.
"""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import false, true

from kinline.db.base import Base
from kinline.db.ids import next_id
from kinline.db.types import UTCDateTime

ID = String(64)


# An id the database makes (``_serial_id``), and a column that names one: 64-bit,
# since a national operator's sessions and audit events outrun 2**31 in months,
# and Citus lets each node draw from a bigint sequence on its own.
RowId = BigInteger


def _serial_id(table: str) -> Mapped[int]:
    """The integer ``id`` of a distributed table, second in its primary key
    ``(facility_id, id)`` and unique in the whole database (db/ids.py)."""
    return mapped_column(
        RowId, primary_key=True, autoincrement=False, default=next_id(table, Base.metadata)
    )


class FacilityRow(Base):
    __tablename__ = "facilities"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    country: Mapped[str] = mapped_column(String(2))
    appeal_days: Mapped[int] = mapped_column(Integer)
    retaliation_window_days: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The appeal levels and their deadlines; null: the federal default.
    appeal_levels: Mapped[list[dict[str, object]] | None] = mapped_column(JSON, nullable=True)


class PersonRow(Base):
    __tablename__ = "people"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(16))
    # Where printed notices go: one print batch per housing unit and day.
    housing_unit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # in_custody, released or transferred (out of this facility; the person's
    # record at ``transferred_to`` carries on with the same id).
    custody_status: Mapped[str] = mapped_column(String(16), server_default="in_custody")
    admitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    custody_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    transferred_to: Mapped[str | None] = mapped_column(ID, nullable=True)
    transferred_from: Mapped[str | None] = mapped_column(ID, nullable=True)

    __table_args__ = (ForeignKeyConstraint(["facility_id"], ["facilities.id"]),)


class ContactRow(Base):
    __tablename__ = "contacts"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    person_id: Mapped[str] = mapped_column(ID)
    name: Mapped[str] = mapped_column(String(200))
    relationship: Mapped[str] = mapped_column(String(32))
    privileged: Mapped[bool] = mapped_column(Boolean)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    # Counsel with an email get every notice; other contacts when they asked.
    notify_by_email: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # The language the contact is written to in (null: the person's) and the
    # country their numbers without a country code are read in (null: the facility's).
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)

    __table_args__ = (
        ForeignKeyConstraint(["facility_id", "person_id"], ["people.facility_id", "people.id"]),
        Index("ix_contacts_person", "facility_id", "person_id"),
    )


class ContactPhoneRow(Base):
    __tablename__ = "contact_phones"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    contact_id: Mapped[str] = mapped_column(ID, primary_key=True)
    e164: Mapped[str] = mapped_column(String(20), primary_key=True)

    __table_args__ = (
        ForeignKeyConstraint(
            ["facility_id", "contact_id"], ["contacts.facility_id", "contacts.id"]
        ),
        Index("ix_contact_phones_e164", "facility_id", "e164"),
    )


class ApprovalRow(Base):
    """One approval of a contact for a channel; revoking sets its end."""

    __tablename__ = "approvals"

    id: Mapped[int] = _serial_id("approvals")
    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    contact_id: Mapped[str] = mapped_column(ID)
    channel: Mapped[str] = mapped_column(String(8))
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        PrimaryKeyConstraint("facility_id", "id", name="pk_approvals"),
        ForeignKeyConstraint(
            ["facility_id", "contact_id"], ["contacts.facility_id", "contacts.id"]
        ),
        Index("ix_approvals_contact", "facility_id", "contact_id"),
    )


class RuleRow(Base):
    """A rule as imposed. ``definition`` is the whole rule, canonical JSON.

    ``seq`` orders rules as listed (then as imposed); lifting sets
    ``lifted_at`` and nothing else ever changes.
    """

    __tablename__ = "rules"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    authority: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(8))
    person_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    definition: Mapped[str] = mapped_column(Text)
    imposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    imposed_by: Mapped[str] = mapped_column(String(200))
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lifted_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lift_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        ForeignKeyConstraint(["facility_id"], ["facilities.id"]),
        UniqueConstraint("facility_id", "seq", name="uq_rules_facility_seq"),
        Index("ix_rules_channel", "facility_id", "channel"),
    )


class SessionRow(Base):
    """A contact session: refused, held for a call set-up, connected, completed,
    released or expired.

    A held or connected session has already added ``max_minutes`` to the usage
    counters (``reserved`` says where), so a racing set-up sees it; ending,
    releasing or expiring it settles the counters to what was used.
    """

    __tablename__ = "sessions"

    id: Mapped[int] = _serial_id("sessions")
    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    person_id: Mapped[str] = mapped_column(ID)
    contact_id: Mapped[str] = mapped_column(ID)
    channel: Mapped[str] = mapped_column(String(8))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    minutes: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    charged_to: Mapped[str | None] = mapped_column(ID, nullable=True)
    governed_by: Mapped[list[str]] = mapped_column(JSON)
    decision: Mapped[dict[str, object]] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(16), server_default="recorded")
    hold_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    max_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    settled_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reserved: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (
        PrimaryKeyConstraint("facility_id", "id", name="pk_sessions"),
        Index("ix_sessions_person_start", "facility_id", "person_id", "started_at"),
        Index("ix_sessions_contact_start", "facility_id", "contact_id", "started_at"),
        Index("ix_sessions_due", "status", "expires_at"),
        UniqueConstraint("facility_id", "hold_id", name="uq_sessions_hold_id"),
        UniqueConstraint("facility_id", "idempotency_key", name="uq_sessions_idempotency_key"),
    )


class UsageCounterRow(Base):
    """Sessions and minutes a rule has counted for one person in one calendar period."""

    __tablename__ = "usage_counters"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    person_id: Mapped[str] = mapped_column(ID, primary_key=True)
    rule_id: Mapped[str] = mapped_column(ID, primary_key=True)
    period_key: Mapped[str] = mapped_column(String(16), primary_key=True)
    sessions: Mapped[int] = mapped_column(Integer)
    minutes: Mapped[int] = mapped_column(Integer)


class UsageEntryRow(Base):
    """One session counted by a rule with a rolling period (rolling windows need starts)."""

    __tablename__ = "usage_entries"

    id: Mapped[int] = _serial_id("usage_entries")
    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    person_id: Mapped[str] = mapped_column(ID)
    rule_id: Mapped[str] = mapped_column(ID)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    minutes: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        PrimaryKeyConstraint("facility_id", "id", name="pk_usage_entries"),
        Index("ix_usage_entries_rule", "facility_id", "person_id", "rule_id", "started_at"),
    )


class GapMarkRow(Base):
    """When the last session a gap-limit governed for one person ended."""

    __tablename__ = "gap_marks"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    person_id: Mapped[str] = mapped_column(ID, primary_key=True)
    rule_id: Mapped[str] = mapped_column(ID, primary_key=True)
    last_end: Mapped[datetime] = mapped_column(UTCDateTime())


class ProtectedActivityRow(Base):
    __tablename__ = "protected_activities"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    person_id: Mapped[str] = mapped_column(ID)
    kind: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[str] = mapped_column(String(200))
    # The facility's activities numbered as recorded: of several at one instant,
    # the retaliation report names the later-listed.
    seq: Mapped[int] = mapped_column(Integer, server_default="0")

    __table_args__ = (Index("ix_protected_activities_person", "facility_id", "person_id"),)


class AdverseActionRow(Base):
    """A change against one person that the retaliation report weighs."""

    __tablename__ = "adverse_actions"

    id: Mapped[int] = _serial_id("adverse_actions")
    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    person_id: Mapped[str] = mapped_column(ID)
    action: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        PrimaryKeyConstraint("facility_id", "id", name="pk_adverse_actions"),
        Index("ix_adverse_actions_person", "facility_id", "person_id"),
    )


class NoticeRow(Base):
    __tablename__ = "notices"

    id: Mapped[int] = _serial_id("notices")
    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    person_id: Mapped[str] = mapped_column(ID)
    language: Mapped[str] = mapped_column(String(16))
    change: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(200))
    authority: Mapped[str | None] = mapped_column(String(20), nullable=True)
    rule_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime())
    appeal_deadline: Mapped[date] = mapped_column(Date)
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200), nullable=True)

    __table_args__ = (
        PrimaryKeyConstraint("facility_id", "id", name="pk_notices"),
        Index("ix_notices_person", "facility_id", "person_id"),
    )


class NoticeDeliveryRow(Base):
    """The outbox: one row per notice, channel and recipient, written in the same
    transaction as the notice; a worker sends it and records each attempt."""

    __tablename__ = "notice_deliveries"

    id: Mapped[int] = _serial_id("notice_deliveries")
    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    # None: a message of its own (a password reset link), not a notice.
    notice_id: Mapped[int | None] = mapped_column(RowId, nullable=True)
    channel: Mapped[str] = mapped_column(String(8))  # inbox, email, print
    # A message of its own: its subject line and plain-text body.
    message_subject: Mapped[str | None] = mapped_column(String(200), nullable=True)
    message_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    recipient: Mapped[str] = mapped_column(String(254))  # kiosk, an address, a housing unit
    status: Mapped[str] = mapped_column(String(12))  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    batch_id: Mapped[int | None] = mapped_column(RowId, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        PrimaryKeyConstraint("facility_id", "id", name="pk_notice_deliveries"),
        UniqueConstraint(
            "facility_id",
            "notice_id",
            "channel",
            "recipient",
            name="uq_notice_deliveries_target",
        ),
        Index("ix_notice_deliveries_due", "status", "next_attempt_at"),
        Index("ix_notice_deliveries_notice", "facility_id", "notice_id"),
    )


class DeliveryAttemptRow(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = _serial_id("delivery_attempts")
    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(RowId)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(12))  # sent, error
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        PrimaryKeyConstraint("facility_id", "id", name="pk_delivery_attempts"),
        Index("ix_delivery_attempts_delivery", "delivery_id"),
    )


class PrintBatchRow(Base):
    """One PDF of the day's notices for one housing unit."""

    __tablename__ = "print_batches"

    id: Mapped[int] = _serial_id("print_batches")
    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    housing_unit: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)
    notice_count: Mapped[int] = mapped_column(Integer)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        PrimaryKeyConstraint("facility_id", "id", name="pk_print_batches"),
        Index("ix_print_batches_unit_day", "facility_id", "housing_unit", "day"),
    )


class AppealRow(Base):
    """An appeal against a notice or a decision, at its current level."""

    __tablename__ = "appeals"

    id: Mapped[int] = _serial_id("appeals")
    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    person_id: Mapped[str] = mapped_column(ID)
    notice_id: Mapped[int | None] = mapped_column(RowId, nullable=True)
    session_id: Mapped[int | None] = mapped_column(RowId, nullable=True)
    filed_by: Mapped[str] = mapped_column(String(16))  # person, counsel
    filer: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    route: Mapped[str] = mapped_column(String(16))  # standard, issuing_office
    level: Mapped[int] = mapped_column(Integer)
    level_name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24))
    event_at: Mapped[datetime] = mapped_column(UTCDateTime())
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answer_due: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    file_next_by: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    extended: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        PrimaryKeyConstraint("facility_id", "id", name="pk_appeals"),
        Index("ix_appeals_person", "facility_id", "person_id"),
        Index("ix_appeals_due", "status", "answer_due"),
    )


class AppealStepRow(Base):
    """Each step of an appeal: filed, extended, answered, denied by silence, escalated."""

    __tablename__ = "appeal_steps"

    id: Mapped[int] = _serial_id("appeal_steps")
    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(RowId)
    level: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str | None] = mapped_column(String(24), nullable=True)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    due: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        PrimaryKeyConstraint("facility_id", "id", name="pk_appeal_steps"),
        Index("ix_appeal_steps_appeal", "appeal_id"),
    )


class AuditEventRow(Base):
    """One link of a hash chain: ``hash = sha256(prev_hash || canonical bytes)``."""

    __tablename__ = "audit_events"

    id: Mapped[int] = _serial_id("audit_events")
    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    chain: Mapped[str] = mapped_column(String(140))
    seq: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    tag: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        PrimaryKeyConstraint("facility_id", "id", name="pk_audit_events"),
        UniqueConstraint("facility_id", "chain", "seq", name="uq_audit_events_chain_seq"),
    )


class AuditHeadRow(Base):
    """The last link of each chain, so a deleted tail is detected too."""

    __tablename__ = "audit_heads"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    chain: Mapped[str] = mapped_column(String(140), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class SubjectRow(Base):
    """A caller: staff, a person's kiosk account, family, counsel, a court or a
    machine. Identity spans facilities, so this is a reference table; what the
    subject may touch is in ``subject_bindings``. People sign in with ``login``
    and an argon2id ``password_hash``; staff also with a TOTP secret."""

    __tablename__ = "subjects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    login: Mapped[str | None] = mapped_column(String(254), nullable=True, unique=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    language: Mapped[str] = mapped_column(String(16), server_default="en")
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    failed_signins: Mapped[int] = mapped_column(Integer, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Raised whenever a binding changes, so a cached subject is known stale.
    version: Mapped[int] = mapped_column(Integer, server_default="1")


class SubjectBindingRow(Base):
    """One thing a subject is bound to at a facility (``identity.model.Binding``)."""

    __tablename__ = "subject_bindings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[int] = mapped_column(Integer)
    facility_id: Mapped[str] = mapped_column(ID)
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    person_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    contact_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    case_number: Mapped[str | None] = mapped_column(String(64), nullable=True)
    job: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        ForeignKeyConstraint(["subject_id"], ["subjects.id"]),
        Index("ix_subject_bindings_subject", "subject_id"),
    )


class ApiTokenRow(Base):
    """An API token of one subject, for one facility (null: each the subject is
    bound to), until it expires or is revoked; only the SHA-256 of the secret
    is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[int] = mapped_column(Integer)
    facility_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (ForeignKeyConstraint(["subject_id"], ["subjects.id"]),)


class WebSessionRow(Base):
    """A signed-in person's server-side session; the cookie holds a secret whose
    SHA-256 is ``id``. Ends at ``expires_at`` (absolute) or after
    ``last_seen_at`` plus the idle limit; a new one is made at every sign-in."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_id: Mapped[int] = mapped_column(Integer)
    csrf_token: Mapped[str] = mapped_column(String(64))
    second_factor: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        ForeignKeyConstraint(["subject_id"], ["subjects.id"]),
        Index("ix_web_sessions_subject", "subject_id"),
    )


class PasswordResetRow(Base):
    """A one-time, expiring password reset; only the SHA-256 of its secret."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[int] = mapped_column(Integer)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (ForeignKeyConstraint(["subject_id"], ["subjects.id"]),)


# ---------------------------------------------------------------------------
# Visits: visitors and their approval, rooms, session templates, concrete
# sessions (slots), bookings, non-associations and allocation requests.
# ---------------------------------------------------------------------------


class VisitorRow(Base):
    """One application of a contact to visit a person, and its decision.

    The contact row (people.contacts) holds the name, relationship, country,
    language and email; this row what approval to visit needs on top. An
    approved visitor's contact is also approved for the ``visit`` channel, so
    the engine sees it. A refused or withdrawn visitor may apply again: a new row.
    """

    __tablename__ = "visitors"

    id: Mapped[int] = _serial_id("visitors")
    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    person_id: Mapped[str] = mapped_column(ID)
    contact_id: Mapped[str] = mapped_column(ID)
    date_of_birth: Mapped[date] = mapped_column(Date)
    address: Mapped[str] = mapped_column(Text)
    country: Mapped[str] = mapped_column(String(2))
    # The visitor's own IANA time zone (null: the country's main zone).
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    id_document_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    id_document_number: Mapped[str | None] = mapped_column(String(64), nullable=True)
    id_checked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    id_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    criminal_record_declared: Mapped[bool] = mapped_column(Boolean)
    criminal_record: Mapped[str | None] = mapped_column(Text, nullable=True)
    # probation, supervised_release, parole; null: not under supervision.
    supervision_kind: Mapped[str | None] = mapped_column(String(24), nullable=True)
    supervising_officer: Mapped[str | None] = mapped_column(String(200), nullable=True)
    supervising_office: Mapped[str | None] = mapped_column(String(200), nullable=True)
    officer_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    officer_consent_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    officer_consent_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    co_defendant: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # A minor's approved adult visitor (a contact of the same person).
    accompanying_contact_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    # applied, approved, refused, withdrawn
    status: Mapped[str] = mapped_column(String(16))
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime())
    applied_by: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        PrimaryKeyConstraint("facility_id", "id", name="pk_visitors"),
        ForeignKeyConstraint(
            ["facility_id", "contact_id"], ["contacts.facility_id", "contacts.id"]
        ),
        Index("ix_visitors_contact", "facility_id", "contact_id"),
        Index("ix_visitors_person", "facility_id", "person_id", "status"),
    )


class VisitorRestrictionRow(Base):
    """A visitor banned, or held to closed or non-contact visits, from
    ``starts_on`` until the day before ``until`` (null: until lifted)."""

    __tablename__ = "visitor_restrictions"

    id: Mapped[int] = _serial_id("visitor_restrictions")
    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    visitor_id: Mapped[int] = mapped_column(RowId)
    contact_id: Mapped[str] = mapped_column(ID)
    kind: Mapped[str] = mapped_column(String(16))  # banned, closed, non_contact
    reason: Mapped[str] = mapped_column(Text)
    starts_on: Mapped[date] = mapped_column(Date)
    until: Mapped[date | None] = mapped_column(Date, nullable=True)
    imposed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    imposed_by: Mapped[str] = mapped_column(String(200))
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lifted_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lift_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        PrimaryKeyConstraint("facility_id", "id", name="pk_visitor_restrictions"),
        ForeignKeyConstraint(
            ["facility_id", "visitor_id"], ["visitors.facility_id", "visitors.id"]
        ),
        Index("ix_visitor_restrictions_contact", "facility_id", "contact_id"),
    )


class VisitSettingsRow(Base):
    """A facility's visit settings; no row: the defaults of ``visits.model``."""

    __tablename__ = "visit_settings"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    adult_age: Mapped[int] = mapped_column(Integer, server_default="18")
    max_visitors: Mapped[int] = mapped_column(Integer, server_default="3")
    max_adults: Mapped[int] = mapped_column(Integer, server_default="3")
    max_children: Mapped[int] = mapped_column(Integer, server_default="3")
    staff_min_notice_days: Mapped[int] = mapped_column(Integer, server_default="0")
    staff_max_notice_days: Mapped[int] = mapped_column(Integer, server_default="60")
    public_min_notice_days: Mapped[int] = mapped_column(Integer, server_default="2")
    public_max_notice_days: Mapped[int] = mapped_column(Integer, server_default="28")
    reservation_minutes: Mapped[int] = mapped_column(Integer, server_default="10")
    auto_refuse_hours: Mapped[int] = mapped_column(Integer, server_default="72")
    officer_consent_required: Mapped[bool] = mapped_column(Boolean, server_default=true())
    co_defendants_to_warden: Mapped[bool] = mapped_column(Boolean, server_default=true())
    minors_need_adult: Mapped[bool] = mapped_column(Boolean, server_default=true())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (ForeignKeyConstraint(["facility_id"], ["facilities.id"]),)


class VisitRoomRow(Base):
    __tablename__ = "visit_rooms"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (ForeignKeyConstraint(["facility_id"], ["facilities.id"]),)


class VisitTemplateRow(Base):
    """A recurring visiting session: a room on a weekday, every one or two
    weeks counted from ``valid_from``, except ``excluded_dates`` (ISO dates)."""

    __tablename__ = "visit_templates"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    room_id: Mapped[str] = mapped_column(ID)
    weekday: Mapped[int] = mapped_column(Integer)  # 0 Monday .. 6 Sunday
    start_time: Mapped[time] = mapped_column(Time)  # facility local time
    end_time: Mapped[time] = mapped_column(Time)
    capacity_open: Mapped[int] = mapped_column(Integer)
    capacity_closed: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))  # contact, non_contact, video
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    every_weeks: Mapped[int] = mapped_column(Integer, server_default="1")
    excluded_dates: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        ForeignKeyConstraint(
            ["facility_id", "room_id"], ["visit_rooms.facility_id", "visit_rooms.id"]
        ),
    )


class VisitBlockRow(Base):
    """A date closed to visits, in one room or (room null) the whole facility."""

    __tablename__ = "visit_blocks"

    id: Mapped[int] = _serial_id("visit_blocks")
    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    room_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    on_date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    blocked_by: Mapped[str] = mapped_column(String(200))
    blocked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lifted_by: Mapped[str | None] = mapped_column(String(200), nullable=True)

    __table_args__ = (
        PrimaryKeyConstraint("facility_id", "id", name="pk_visit_blocks"),
        Index("ix_visit_blocks_date", "facility_id", "on_date"),
    )


class VisitSlotRow(Base):
    """One occurrence of a template on a date: the row locked while booking.

    The counters hold the places taken by reserved, requested and booked
    visits of each setting, so a racing booking sees them.
    """

    __tablename__ = "visit_slots"

    id: Mapped[int] = _serial_id("visit_slots")
    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    template_id: Mapped[str] = mapped_column(ID)
    room_id: Mapped[str] = mapped_column(ID)
    on_date: Mapped[date] = mapped_column(Date)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(12))
    capacity_open: Mapped[int] = mapped_column(Integer)
    capacity_closed: Mapped[int] = mapped_column(Integer)
    booked_open: Mapped[int] = mapped_column(Integer, server_default="0")
    booked_closed: Mapped[int] = mapped_column(Integer, server_default="0")
    blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    block_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        PrimaryKeyConstraint("facility_id", "id", name="pk_visit_slots"),
        UniqueConstraint("facility_id", "template_id", "on_date", name="uq_visit_slots_occurrence"),
        Index("ix_visit_slots_date", "facility_id", "on_date"),
    )


class VisitBookingRow(Base):
    """A visit: reserved (until ``expires_at``), requested, booked, checked in,
    completed (``session_id`` in the usage ledger), cancelled or no-show."""

    __tablename__ = "visit_bookings"

    id: Mapped[int] = _serial_id("visit_bookings")
    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    slot_id: Mapped[int] = mapped_column(RowId)
    person_id: Mapped[str] = mapped_column(ID)
    setting: Mapped[str] = mapped_column(String(12))  # open, non_contact, closed
    status: Mapped[str] = mapped_column(String(16))
    booker_kind: Mapped[str] = mapped_column(String(8))  # staff, public
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    booked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    booked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancelled_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    checked_in_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    completed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    no_show_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    no_show_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    session_id: Mapped[int | None] = mapped_column(RowId, nullable=True)
    rescheduled_from: Mapped[int | None] = mapped_column(RowId, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        PrimaryKeyConstraint("facility_id", "id", name="pk_visit_bookings"),
        ForeignKeyConstraint(
            ["facility_id", "slot_id"], ["visit_slots.facility_id", "visit_slots.id"]
        ),
        Index("ix_visit_bookings_slot", "facility_id", "slot_id", "status"),
        Index("ix_visit_bookings_person", "facility_id", "person_id"),
        Index("ix_visit_bookings_due", "status", "expires_at"),
        UniqueConstraint(
            "facility_id", "idempotency_key", name="uq_visit_bookings_idempotency_key"
        ),
    )


class VisitBookingVisitorRow(Base):
    __tablename__ = "visit_booking_visitors"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    booking_id: Mapped[int] = mapped_column(RowId, primary_key=True)
    contact_id: Mapped[str] = mapped_column(ID, primary_key=True)

    __table_args__ = (
        ForeignKeyConstraint(
            ["facility_id", "booking_id"], ["visit_bookings.facility_id", "visit_bookings.id"]
        ),
        Index("ix_visit_booking_visitors_contact", "facility_id", "contact_id"),
    )


class NonAssociationRow(Base):
    """Two people who must not be in the same visiting session (stored once
    per direction, so either person's query finds it)."""

    __tablename__ = "non_associations"

    id: Mapped[int] = _serial_id("non_associations")
    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    person_id: Mapped[str] = mapped_column(ID)
    other_person_id: Mapped[str] = mapped_column(ID)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[str] = mapped_column(String(200))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        PrimaryKeyConstraint("facility_id", "id", name="pk_non_associations"),
        Index("ix_non_associations_person", "facility_id", "person_id"),
    )


class VisitRequestRow(Base):
    """A family's ranked preferences for the weekly allocation.

    ``visitors``: contact ids; ``preferences``: ranked
    ``{"template_id": ..., "date": "YYYY-MM-DD"}``.
    """

    __tablename__ = "visit_requests"

    id: Mapped[int] = _serial_id("visit_requests")
    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    person_id: Mapped[str] = mapped_column(ID)
    requested_by: Mapped[str] = mapped_column(String(200))
    visitors: Mapped[list[str]] = mapped_column(JSON)
    preferences: Mapped[list[dict[str, object]]] = mapped_column(JSON)
    setting: Mapped[str] = mapped_column(String(12), server_default="open")
    window_closes_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))  # pending, met, unmet, withdrawn
    outcome_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    booking_id: Mapped[int | None] = mapped_column(RowId, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        PrimaryKeyConstraint("facility_id", "id", name="pk_visit_requests"),
        Index("ix_visit_requests_window", "facility_id", "window_closes_at", "status"),
        Index("ix_visit_requests_person", "facility_id", "person_id"),
    )


class ImportedCallRow(Base):
    """A vendor's call record once imported: ``kinline import calls`` of it again adds nothing.

    ``record_key`` is ``calls.rows.record_key`` of the row (the vendor's record
    id, else what the call was, hashed). A batch claims its records here before
    it decides and writes their calls; the primary key makes a second claim,
    by a re-import or a concurrent import of the same file, a no-op, so a
    record is counted once.
    """

    __tablename__ = "imported_calls"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    record_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    file_sha256: Mapped[str] = mapped_column(String(64))
    row: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DomainEventRow(Base):
    """The transactional outbox: one CloudEvent per audit event, written in the
    same transaction (kinline.events), published to NATS and to webhooks later.

    ``id`` is the event's id, derived from its audit chain and seq, so a replay
    is the same event; ``recorded_at`` (the server's clock at insertion) orders
    publication, and ``chain``/``seq`` order one person's events. ``body`` is the
    whole CloudEvent as JSON; ``published_at`` is set once NATS acknowledged it.
    """

    __tablename__ = "domain_events"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    chain: Mapped[str] = mapped_column(String(140))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(120))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    body: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        Index("ix_domain_events_unpublished", "published_at", "recorded_at"),
        Index("ix_domain_events_order", "facility_id", "recorded_at", "chain", "seq"),
    )


class WebhookRow(Base):
    """A facility's subscription: its domain events POSTed to ``url``, signed with
    ``secret`` (HMAC-SHA256), from ``created_at`` on; ``deleted_at`` ends it.
    The secret is kept as it was given: signing needs it."""

    __tablename__ = "webhooks"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The recorded_at of the last event delivered: where the next look starts.
    delivered_through: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Set when one event failed too many times in a row: nothing is sent until resumed.
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    suspended_reason: Mapped[str | None] = mapped_column(String(300), nullable=True)


class WebhookDeliveryRow(Base):
    """One event's delivery to one webhook: attempts so far, when to try again
    (exponential backoff) and when it was delivered."""

    __tablename__ = "webhook_deliveries"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_status: Mapped[str | None] = mapped_column(String(200), nullable=True)


class AppealSettingsRow(Base):
    """A facility's choices about appeals besides its levels; no row: the defaults.

    ``family_may_file``: a family member (one of the person's contacts) may file
    an appeal for them. On by default, as every notice's "how to appeal" says.
    """

    __tablename__ = "appeal_settings"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    family_may_file: Mapped[bool] = mapped_column(Boolean, server_default=true())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(200))


class CourtOrderRow(Base):
    """A court order as a record: who signed it, when, its words, who to tell.

    ``counsel``: the counsel of record, ``[{"name": ..., "email": ...}]``. The
    rules it creates are linked in ``court_order_rules``; its signed PDF, every
    version uploaded, in ``court_order_documents``. Never edited once written.
    """

    __tablename__ = "court_orders"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    court: Mapped[str] = mapped_column(String(200))
    case_number: Mapped[str] = mapped_column(String(64))
    judge: Mapped[str] = mapped_column(String(200))
    signed_on: Mapped[date] = mapped_column(Date)
    text: Mapped[str] = mapped_column(Text)
    person_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    counsel: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    court_address: Mapped[str | None] = mapped_column(Text, nullable=True)
    court_email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        ForeignKeyConstraint(["facility_id"], ["facilities.id"]),
        Index("ix_court_orders_case", "facility_id", "case_number"),
    )


class CourtOrderRuleRow(Base):
    """A rule an order created; a rule belongs to at most one order."""

    __tablename__ = "court_order_rules"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    order_id: Mapped[str] = mapped_column(ID, primary_key=True)
    rule_id: Mapped[str] = mapped_column(ID, primary_key=True)

    __table_args__ = (
        ForeignKeyConstraint(
            ["facility_id", "order_id"], ["court_orders.facility_id", "court_orders.id"]
        ),
        ForeignKeyConstraint(["facility_id", "rule_id"], ["rules.facility_id", "rules.id"]),
        UniqueConstraint("facility_id", "rule_id", name="uq_court_order_rules_rule"),
    )


class CourtOrderDocumentRow(Base):
    """One upload of an order's signed PDF; the highest ``version`` is the order's
    document, earlier ones are kept (an order's record is never rewritten)."""

    __tablename__ = "court_order_documents"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    order_id: Mapped[str] = mapped_column(ID, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(100))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    uploaded_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        ForeignKeyConstraint(
            ["facility_id", "order_id"], ["court_orders.facility_id", "court_orders.id"]
        ),
    )


class RuleCitationRow(Base):
    """The authority a rule's imposer relied on (e.g. "28 CFR 540.100(a)"),
    required when the rule overrides a court-order grant, with their reason."""

    __tablename__ = "rule_citations"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    rule_id: Mapped[str] = mapped_column(ID, primary_key=True)
    authority_cited: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    cited_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cited_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        ForeignKeyConstraint(["facility_id", "rule_id"], ["rules.facility_id", "rules.id"]),
    )


class NoticeIssueRow(Base):
    """What makes a notice an official document, fixed when it is written: its
    reference number (the facility's, the year, the notice's number) and who
    issued it, by name and role at the facility ("kinline (automatic)" for a sweep)."""

    __tablename__ = "notice_issues"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    notice_id: Mapped[int] = mapped_column(RowId, primary_key=True)
    reference: Mapped[str] = mapped_column(String(120))
    issued_by: Mapped[str] = mapped_column(String(200))
    issuer_role: Mapped[str | None] = mapped_column(String(32), nullable=True)

    __table_args__ = (
        UniqueConstraint("facility_id", "reference", name="uq_notice_issues_reference"),
    )


class FacilityLetterheadRow(Base):
    """A facility's postal address, printed as the letterhead of its notices."""

    __tablename__ = "facility_letterheads"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    address: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(200))


class RetaliationFindingRow(Base):
    """A reviewer's finding on one retaliation flag (an adverse action after a
    protected activity): unfounded, substantiated or referred, with the
    reasoning. Append-only: a later finding on the same flag supersedes, and
    the earlier ones stay readable."""

    __tablename__ = "retaliation_findings"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # a random hex id
    person_id: Mapped[str] = mapped_column(ID)
    action: Mapped[str] = mapped_column(String(200))
    activity_id: Mapped[str] = mapped_column(ID)
    finding: Mapped[str] = mapped_column(String(16))
    reasoning: Mapped[str] = mapped_column(Text)
    reviewer: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_retaliation_findings_person", "facility_id", "person_id"),)


class ComplianceSettingsRow(Base):
    """A facility's rule for a court order's compliance status; no row: the
    defaults (``courts.report.StatusRule``). A period is compliant when it
    delivered at least ``compliant_percent`` of what it entitled, partial at
    least ``partial_percent``, else non-compliant."""

    __tablename__ = "compliance_settings"

    facility_id: Mapped[str] = mapped_column(ID, primary_key=True)
    compliant_percent: Mapped[int] = mapped_column(Integer)
    partial_percent: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(200))
