"""Every query about the notice outbox, its attempts and the print batches."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from kinline.db.tables import (
    ContactRow,
    DeliveryAttemptRow,
    NoticeDeliveryRow,
    NoticeRow,
    PersonRow,
    PrintBatchRow,
)
from kinline.notices.delivery.model import (
    Attempt,
    Channel,
    ClaimedEmail,
    Delivery,
    PrintBatch,
    Status,
)


def email_addresses(session: Session, facility_id: str, person_id: str) -> list[str]:
    """The addresses a person's notices are emailed to: counsel with an address,
    and every other contact with an address who asked for email."""
    rows = session.execute(
        select(ContactRow.email)
        .where(
            ContactRow.facility_id == facility_id,
            ContactRow.person_id == person_id,
            ContactRow.email.is_not(None),
            or_(ContactRow.privileged.is_(True), ContactRow.notify_by_email.is_(True)),
        )
        .order_by(ContactRow.id)
    )
    return [email for (email,) in rows if email]


def housing_unit(session: Session, facility_id: str, person_id: str) -> str | None:
    return session.scalars(
        select(PersonRow.housing_unit).where(
            PersonRow.facility_id == facility_id, PersonRow.id == person_id
        )
    ).one_or_none()


def add_delivery(
    session: Session,
    *,
    facility_id: str,
    notice_id: int,
    channel: Channel,
    recipient: str,
    at: datetime,
    sent: bool,
) -> None:
    session.add(
        NoticeDeliveryRow(
            facility_id=facility_id,
            notice_id=notice_id,
            channel=str(channel),
            recipient=recipient,
            status=str(Status.SENT if sent else Status.PENDING),
            attempts=0,
            next_attempt_at=None if sent else at,
            sent_at=at if sent else None,
            created_at=at,
        )
    )


def add_message(
    session: Session,
    *,
    facility_id: str,
    recipient: str,
    subject: str,
    body: str,
    at: datetime,
) -> int:
    """An email of its own (no notice) in the outbox, due at ``at``."""
    row = NoticeDeliveryRow(
        facility_id=facility_id,
        notice_id=None,
        channel=str(Channel.EMAIL),
        message_subject=subject,
        message_body=body,
        recipient=recipient,
        status=str(Status.PENDING),
        attempts=0,
        next_attempt_at=at,
        created_at=at,
    )
    session.add(row)
    session.flush()
    return row.id


def claim_due_emails(
    session: Session, *, now: datetime, until: datetime, limit: int
) -> list[ClaimedEmail]:
    """Lease up to ``limit`` due email deliveries until ``until``, counting the try.

    On PostgreSQL the rows are taken ``FOR UPDATE SKIP LOCKED``, so workers
    claiming at once each get different rows and none waits; on SQLite the
    transaction already holds the database's write lock (BEGIN IMMEDIATE).
    """
    rows = list(
        session.scalars(
            select(NoticeDeliveryRow)
            .where(
                NoticeDeliveryRow.channel == str(Channel.EMAIL),
                NoticeDeliveryRow.status == str(Status.PENDING),
                NoticeDeliveryRow.next_attempt_at <= now,
                or_(
                    NoticeDeliveryRow.claimed_until.is_(None),
                    NoticeDeliveryRow.claimed_until <= now,
                ),
            )
            .order_by(NoticeDeliveryRow.next_attempt_at, NoticeDeliveryRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for row in rows:
        row.claimed_until = until
        row.attempts += 1
    session.flush()
    return [
        ClaimedEmail(
            id=row.id,
            facility_id=row.facility_id,
            notice_id=row.notice_id,
            recipient=row.recipient,
            attempt=row.attempts,
            claimed_until=until,
        )
        for row in rows
    ]


def lock_delivery(session: Session, facility_id: str, delivery_id: int) -> NoticeDeliveryRow | None:
    return session.scalars(
        select(NoticeDeliveryRow)
        .where(NoticeDeliveryRow.facility_id == facility_id, NoticeDeliveryRow.id == delivery_id)
        .with_for_update()
    ).one_or_none()


def release_claims(
    session: Session, facility_id: str, delivery_ids: Sequence[int], claimed_until: datetime
) -> None:
    """Give back the facility's claims still held under this lease, untried (the
    try is not counted)."""
    if not delivery_ids:
        return
    session.execute(
        update(NoticeDeliveryRow)
        .where(
            NoticeDeliveryRow.facility_id == facility_id,
            NoticeDeliveryRow.id.in_(delivery_ids),
            NoticeDeliveryRow.status == str(Status.PENDING),
            NoticeDeliveryRow.claimed_until == claimed_until,
        )
        .values(claimed_until=None, attempts=NoticeDeliveryRow.attempts - 1)
    )


def add_attempt(
    session: Session,
    *,
    facility_id: str,
    delivery_id: int,
    at: datetime,
    outcome: str,
    error: str | None,
) -> None:
    session.add(
        DeliveryAttemptRow(
            facility_id=facility_id,
            delivery_id=delivery_id,
            attempted_at=at,
            outcome=outcome,
            error=error,
        )
    )


def notice_text(session: Session, facility_id: str, notice_id: int) -> tuple[str, str] | None:
    """The notice's title and body."""
    row = session.execute(
        select(NoticeRow.title, NoticeRow.body).where(
            NoticeRow.facility_id == facility_id, NoticeRow.id == notice_id
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def message_text(session: Session, facility_id: str, delivery_id: int) -> tuple[str, str] | None:
    """A message of its own: the delivery's subject line and plain-text body."""
    row = session.execute(
        select(NoticeDeliveryRow.message_subject, NoticeDeliveryRow.message_body).where(
            NoticeDeliveryRow.facility_id == facility_id,
            NoticeDeliveryRow.id == delivery_id,
            NoticeDeliveryRow.notice_id.is_(None),
        )
    ).one_or_none()
    if row is None or row[0] is None or row[1] is None:
        return None
    return (row[0], row[1])


def notice_person(session: Session, facility_id: str, notice_id: int) -> str | None:
    return session.scalars(
        select(NoticeRow.person_id).where(
            NoticeRow.facility_id == facility_id, NoticeRow.id == notice_id
        )
    ).one_or_none()


def requeue_failed(
    session: Session, facility_id: str, notice_id: int, at: datetime
) -> list[NoticeDeliveryRow]:
    """The notice's failed deliveries, back in the outbox and due at ``at``, with a
    fresh count of attempts (those made stay in delivery_attempts)."""
    rows = list(
        session.scalars(
            select(NoticeDeliveryRow)
            .where(
                NoticeDeliveryRow.facility_id == facility_id,
                NoticeDeliveryRow.notice_id == notice_id,
                NoticeDeliveryRow.status == "failed",
            )
            .order_by(NoticeDeliveryRow.id)
            .with_for_update()
        )
    )
    for row in rows:
        row.status = "pending"
        row.attempts = 0
        row.next_attempt_at = at
        row.claimed_until = None
    session.flush()
    return rows


def notice_exists(session: Session, facility_id: str, notice_id: int) -> bool:
    return (
        session.scalars(
            select(NoticeRow.id).where(
                NoticeRow.facility_id == facility_id, NoticeRow.id == notice_id
            )
        ).one_or_none()
        is not None
    )


def units_with_pending_prints(
    session: Session, *, before: datetime, facility_id: str | None = None
) -> list[tuple[str, str]]:
    """``(facility_id, housing_unit)`` of every unit with paper notices waiting."""
    query = select(NoticeDeliveryRow.facility_id, NoticeDeliveryRow.recipient).where(
        NoticeDeliveryRow.channel == str(Channel.PRINT),
        NoticeDeliveryRow.notice_id.is_not(None),
        NoticeDeliveryRow.status == str(Status.PENDING),
        NoticeDeliveryRow.created_at <= before,
    )
    if facility_id is not None:
        query = query.where(NoticeDeliveryRow.facility_id == facility_id)
    rows = session.execute(
        query.group_by(NoticeDeliveryRow.facility_id, NoticeDeliveryRow.recipient).order_by(
            NoticeDeliveryRow.facility_id, NoticeDeliveryRow.recipient
        )
    )
    return [(facility, unit) for facility, unit in rows]


def lock_pending_prints(
    session: Session, facility_id: str, unit: str, *, before: datetime
) -> list[NoticeDeliveryRow]:
    """One unit's waiting paper notices, locked: a second batch-maker waits here,
    then finds them sent."""
    return list(
        session.scalars(
            select(NoticeDeliveryRow)
            .where(
                NoticeDeliveryRow.facility_id == facility_id,
                NoticeDeliveryRow.channel == str(Channel.PRINT),
                NoticeDeliveryRow.notice_id.is_not(None),
                NoticeDeliveryRow.recipient == unit,
                NoticeDeliveryRow.status == str(Status.PENDING),
                NoticeDeliveryRow.created_at <= before,
            )
            .order_by(NoticeDeliveryRow.notice_id)
            .with_for_update()
        )
    )


def batch_exists(session: Session, facility_id: str, unit: str, day: date) -> bool:
    return (
        session.scalars(
            select(PrintBatchRow.id)
            .where(
                PrintBatchRow.facility_id == facility_id,
                PrintBatchRow.housing_unit == unit,
                PrintBatchRow.day == day,
            )
            .limit(1)
        ).first()
        is not None
    )


def add_print_batch(
    session: Session,
    *,
    facility_id: str,
    unit: str,
    day: date,
    notice_count: int,
    pdf: bytes,
    at: datetime,
) -> int:
    row = PrintBatchRow(
        facility_id=facility_id,
        housing_unit=unit,
        day=day,
        notice_count=notice_count,
        pdf=pdf,
        created_at=at,
    )
    session.add(row)
    session.flush()
    return row.id


def _attempt(row: DeliveryAttemptRow) -> Attempt:
    return Attempt(row.id, row.attempted_at, row.outcome, row.error)


def list_deliveries(session: Session, facility_id: str, notice_id: int) -> list[Delivery]:
    rows = list(
        session.scalars(
            select(NoticeDeliveryRow)
            .where(
                NoticeDeliveryRow.facility_id == facility_id,
                NoticeDeliveryRow.notice_id == notice_id,
            )
            .order_by(NoticeDeliveryRow.id)
        )
    )
    history: dict[int, list[Attempt]] = {row.id: [] for row in rows}
    if rows:
        for attempt in session.scalars(
            select(DeliveryAttemptRow)
            .where(
                DeliveryAttemptRow.facility_id == facility_id,
                DeliveryAttemptRow.delivery_id.in_(list(history)),
            )
            .order_by(DeliveryAttemptRow.id)
        ):
            history[attempt.delivery_id].append(_attempt(attempt))
    return [
        Delivery(
            id=row.id,
            facility_id=row.facility_id,
            notice_id=notice_id,
            channel=row.channel,
            recipient=row.recipient,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            claimed_until=row.claimed_until,
            message_id=row.message_id,
            last_error=row.last_error,
            sent_at=row.sent_at,
            batch_id=row.batch_id,
            created_at=row.created_at,
            history=tuple(history[row.id]),
        )
        for row in rows
    ]


def list_print_batches(session: Session, facility_id: str) -> list[PrintBatch]:
    rows = session.execute(
        select(
            PrintBatchRow.id,
            PrintBatchRow.housing_unit,
            PrintBatchRow.day,
            PrintBatchRow.notice_count,
            func.length(PrintBatchRow.pdf),
            PrintBatchRow.created_at,
        )
        .where(PrintBatchRow.facility_id == facility_id)
        .order_by(PrintBatchRow.id)
    )
    return [
        PrintBatch(batch_id, facility_id, unit, day, count, int(size or 0), created)
        for batch_id, unit, day, count, size, created in rows
    ]


def print_batch_pdf(session: Session, facility_id: str, batch_id: int) -> bytes | None:
    return session.scalars(
        select(PrintBatchRow.pdf).where(
            PrintBatchRow.facility_id == facility_id, PrintBatchRow.id == batch_id
        )
    ).one_or_none()
