"""Sending what the outbox holds: email with leases and retries, paper in daily batches.

Email, and why a notice is never lost and, but for one window, never sent twice:

1. **Claim** (one transaction, committed): up to ``batch`` due deliveries
   (pending, ``next_attempt_at`` passed, no live lease) get
   ``claimed_until = now + lease`` and ``attempts + 1``. On PostgreSQL the
   rows are read ``FOR UPDATE SKIP LOCKED``, so concurrent workers split the
   work; a lease, not a held transaction, keeps other workers off while the
   SMTP conversation runs.
2. **Send**, outside any transaction, with a ``Message-ID`` derived from the
   delivery id: every send of one delivery is recognisably the same message.
3. **Record** (a new transaction): the attempt, and on success
   ``status = sent`` with the lease cleared, in the same commit; on failure the
   error and ``next_attempt_at`` with exponential backoff and jitter, or
   ``failed`` after ``max_attempts`` tries, or at once when the server refused
   the recipient or the message for good (a 5xx reply; kept for staff to see).

A worker that dies after 1 and before 3 leaves a lease that expires; the
delivery is then claimed again and sent: nothing is lost. The one unavoidable
at-least-once window is a crash after the SMTP server accepted the message and
before step 3 commits: the message is sent again on the retry. It is
detectable: both copies carry the same ``Message-ID`` (receiving systems and
mail clients may drop the second), and the row shows more ``attempts`` (claims)
than recorded attempts. A worker stops sending from a claim once half its lease
has passed and gives the rest back, so a live worker's lease never expires
under it in the normal path.
"""

from __future__ import annotations

import random
import smtplib
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from email.message import EmailMessage

from sqlalchemy.orm import Session

from kinline.audit.service import facility_chain, person_chain, record_event
from kinline.db.engine import Database
from kinline.db.routing import cross_facility
from kinline.db.tables import NoticeDeliveryRow
from kinline.errors import InvalidInput, NotFound
from kinline.notices.delivery import repository
from kinline.notices.delivery.model import (
    MAX_ATTEMPTS,
    ClaimedEmail,
    Delivery,
    EmailRun,
    PrintBatch,
    Status,
    message_id,
    retry_delay,
    sender_domain,
)
from kinline.notices.delivery.smtp import Mailer, compose_email, refused_for_good
from kinline.notices.render import render_pdf
from kinline.notices.service import notice_document
from kinline.people.service import require_facility
from kinline.rules.periods import local

WORKER_ACTOR = "delivery-worker"
MailerFactory = Callable[[], AbstractContextManager[Mailer]]
DEFAULT_LEASE = timedelta(minutes=5)
SEND_ERRORS = (smtplib.SMTPException, OSError, ValueError)


def deliver_emails(
    db: Database,
    mailer: MailerFactory,
    *,
    now: datetime,
    sender: str,
    batch: int = 20,
    lease: timedelta = DEFAULT_LEASE,
    max_attempts: int = MAX_ATTEMPTS,
    jitter: Callable[[], float] = random.random,
    clock: Callable[[], float] = time.monotonic,
) -> EmailRun:
    """One pass: claim up to ``batch`` due email deliveries, send them, record each."""
    if batch < 1:
        raise InvalidInput("must be 1 or more", field="batch")
    started = clock()
    with cross_facility("notice-delivery"), db.transaction() as session:
        claims = repository.claim_due_emails(session, now=now, until=now + lease, limit=batch)
    if not claims:
        return EmailRun()
    domain = sender_domain(sender)
    run = EmailRun()
    pending = list(claims)
    try:
        with mailer() as smtp:
            while pending:
                claim = pending[0]
                if run.claimed and clock() - started > lease.total_seconds() / 2:
                    # Give the rest back before the lease could expire under us.
                    _release(db, pending)
                    return run
                ident = message_id(claim.id, claim.notice_id, domain)
                try:
                    message = _email(db, claim, sender=sender, ident=ident, now=now)
                except Exception as error:
                    # A notice that cannot be put in a message counts as a failed try,
                    # so it ends as ``failed`` instead of being claimed forever.
                    run += _record_failure(
                        db, claim, ident, error, now=now, max_attempts=max_attempts, jitter=jitter
                    )
                else:
                    try:
                        smtp.send(message)
                    except SEND_ERRORS as error:
                        run += _record_failure(
                            db,
                            claim,
                            ident,
                            error,
                            now=now,
                            max_attempts=max_attempts,
                            jitter=jitter,
                        )
                    else:
                        run += _record_sent(db, claim, ident, now=now)
                pending.pop(0)
    except SEND_ERRORS as error:
        # Could not connect, or the session broke: every claim not yet recorded failed.
        for claim in pending:
            ident = message_id(claim.id, claim.notice_id, domain)
            run += _record_failure(
                db, claim, ident, error, now=now, max_attempts=max_attempts, jitter=jitter
            )
    return run


def _email(
    db: Database, claim: ClaimedEmail, *, sender: str, ident: str, now: datetime
) -> EmailMessage:
    """The notice as an email: its title, its text, and its PDF attached; a
    message of its own as a plain-text email with its subject and body."""
    if claim.notice_id is None:
        with db.transaction() as session:
            message = repository.message_text(session, claim.facility_id, claim.id)
        if message is None:
            raise ValueError(f"delivery {claim.id} has neither a notice nor a message")
        subject, plain = message
        return compose_email(
            sender=sender,
            recipient=claim.recipient,
            subject=subject,
            body=plain,
            message_id=ident,
            sent_at=now,
        )
    with db.transaction() as session:
        text = repository.notice_text(session, claim.facility_id, claim.notice_id)
        if text is None:  # pragma: no cover - notices are never deleted
            raise NotFound(f"no notice {claim.notice_id}", field="notice_id")
        document = notice_document(session, claim.facility_id, claim.notice_id)
    title, body = text
    return compose_email(
        sender=sender,
        recipient=claim.recipient,
        subject=title,
        body=body,
        message_id=ident,
        sent_at=now,
        pdf=render_pdf([document]),
        pdf_name=f"notice-{claim.notice_id}.pdf",
    )


def _release(db: Database, claims: Sequence[ClaimedEmail]) -> None:
    with db.transaction() as session:
        for place, until in {(claim.facility_id, claim.claimed_until) for claim in claims}:
            ids = [
                claim.id
                for claim in claims
                if claim.facility_id == place and claim.claimed_until == until
            ]
            repository.release_claims(session, place, ids, until)


def _attempted(
    session: Session, claim: ClaimedEmail, now: datetime, outcome: str, error: str | None
) -> NoticeDeliveryRow | None:
    """The claimed delivery, locked, with this attempt recorded against it."""
    row = repository.lock_delivery(session, claim.facility_id, claim.id)
    if row is not None:
        repository.add_attempt(
            session,
            facility_id=row.facility_id,
            delivery_id=row.id,
            at=now,
            outcome=outcome,
            error=error,
        )
    return row


def _record_sent(db: Database, claim: ClaimedEmail, ident: str, *, now: datetime) -> EmailRun:
    """The attempt and the sent status in one commit, which also ends the lease."""
    with db.transaction() as session:
        row = _attempted(session, claim, now, "sent", None)
        if row is None:  # pragma: no cover - deliveries are never deleted
            return EmailRun()
        if row.status != str(Status.SENT):
            row.status = str(Status.SENT)
            row.sent_at = now
            row.last_error = None
            _audit_email(
                session,
                row.facility_id,
                row.notice_id,
                "sent",
                now,
                {
                    "delivery_id": row.id,
                    "recipient": row.recipient,
                    "message_id": ident,
                },
            )
        row.message_id = ident
        row.next_attempt_at = None
        row.claimed_until = None
    return EmailRun(sent=1)


def _record_failure(
    db: Database,
    claim: ClaimedEmail,
    ident: str,
    error: BaseException,
    *,
    now: datetime,
    max_attempts: int,
    jitter: Callable[[], float],
) -> EmailRun:
    text = f"{type(error).__name__}: {error}"[:2000]
    with db.transaction() as session:
        row = _attempted(session, claim, now, "error", text)
        if row is None:  # pragma: no cover - deliveries are never deleted
            return EmailRun()
        if row.status != str(Status.PENDING) or row.claimed_until != claim.claimed_until:
            # Another worker has it now (our lease ran out): its outcome stands.
            return EmailRun(retrying=1)
        row.message_id = ident
        row.last_error = text
        row.claimed_until = None
        for_good = refused_for_good(error)
        if for_good or row.attempts >= max_attempts:
            row.status = str(Status.FAILED)
            row.next_attempt_at = None
            _audit_email(
                session,
                row.facility_id,
                row.notice_id,
                "failed",
                now,
                {
                    "delivery_id": row.id,
                    "recipient": row.recipient,
                    "attempts": row.attempts,
                    "error": text,
                    "refused_for_good": for_good,
                },
            )
            return EmailRun(failed=1)
        row.next_attempt_at = now + retry_delay(row.attempts, jitter())
    return EmailRun(retrying=1)


def _audit_email(
    session: Session,
    facility_id: str,
    notice_id: int | None,
    outcome: str,
    at: datetime,
    payload: dict[str, object],
) -> None:
    """A notice emailed, or given up on, is a fact about the person's notice: it
    goes on their chain, in the transaction that records it. A message of its
    own goes on its facility's chain, never with its subject or body (a reset
    link is a secret)."""
    if notice_id is None:
        record_event(
            session,
            facility_id=facility_id,
            chain=facility_chain(facility_id),
            actor=WORKER_ACTOR,
            tag=f"delivery:message:{outcome}",
            payload=payload,
            at=at,
        )
        return
    person_id = repository.notice_person(session, facility_id, notice_id)
    if person_id is None:  # pragma: no cover - notices are never deleted
        return
    record_event(
        session,
        facility_id=facility_id,
        chain=person_chain(facility_id, person_id),
        actor=WORKER_ACTOR,
        tag=f"delivery:email:{outcome}",
        payload={"notice_id": notice_id, **payload},
        at=at,
    )


def deliver_due_emails(
    db: Database,
    mailer: MailerFactory,
    *,
    now: datetime,
    sender: str,
    batch: int = 20,
    lease: timedelta = DEFAULT_LEASE,
    max_attempts: int = MAX_ATTEMPTS,
    jitter: Callable[[], float] = random.random,
) -> EmailRun:
    """Passes of ``deliver_emails`` until nothing is due at ``now`` (or a pass
    sends nothing: the server is down, and the failures wait for their backoff)."""
    total = EmailRun()
    while True:
        run = deliver_emails(
            db,
            mailer,
            now=now,
            sender=sender,
            batch=batch,
            lease=lease,
            max_attempts=max_attempts,
            jitter=jitter,
        )
        total += run
        if run.claimed == 0 or run.sent == 0:
            return total


# --- Paper: one batch per housing unit and day ---------------------------------


def make_print_batches(
    db: Database,
    *,
    at: datetime,
    facility_id: str | None = None,
    once_a_day: bool = True,
    not_before: time_of_day | None = None,
) -> list[PrintBatch]:
    """For each housing unit with paper notices waiting: one PDF of all of them,
    stored, and the deliveries marked sent with its id, in one transaction.

    With ``once_a_day`` a unit that already has a batch for the facility's
    local day waits for the next; with ``not_before`` no batch is made before
    that local time of day (the worker prints each morning).
    """
    everywhere = cross_facility("notice-delivery") if facility_id is None else nullcontext()
    with everywhere, db.transaction() as session:
        units = repository.units_with_pending_prints(session, before=at, facility_id=facility_id)
        facilities = {
            place: require_facility(session, place) for place in {place for place, _ in units}
        }
    made: list[PrintBatch] = []
    for place, unit in units:
        moment = local(at, facilities[place].zone)
        if not_before is not None and moment.time() < not_before:
            continue
        batch = _print_batch(db, place, unit, at=at, day=moment.date(), once_a_day=once_a_day)
        if batch is not None:
            made.append(batch)
    return made


def _print_batch(
    db: Database, facility_id: str, unit: str, *, at: datetime, day: date, once_a_day: bool
) -> PrintBatch | None:
    with db.transaction() as session:
        rows = repository.lock_pending_prints(session, facility_id, unit, before=at)
        if not rows:
            return None  # another worker printed them first
        if once_a_day and repository.batch_exists(session, facility_id, unit, day):
            return None
        notice_ids = [row.notice_id for row in rows if row.notice_id is not None]
        pdf = render_pdf([notice_document(session, facility_id, ident) for ident in notice_ids])
        batch_id = repository.add_print_batch(
            session,
            facility_id=facility_id,
            unit=unit,
            day=day,
            notice_count=len(rows),
            pdf=pdf,
            at=at,
        )
        for row in rows:
            row.status = str(Status.SENT)
            row.sent_at = at
            row.batch_id = batch_id
            row.next_attempt_at = None
            row.attempts += 1
            repository.add_attempt(
                session,
                facility_id=facility_id,
                delivery_id=row.id,
                at=at,
                outcome="sent",
                error=None,
            )
        record_event(
            session,
            facility_id=facility_id,
            chain=facility_chain(facility_id),
            actor=WORKER_ACTOR,
            tag="delivery:print_batch:made",
            payload={
                "batch_id": batch_id,
                "housing_unit": unit,
                "day": day,
                "notice_ids": notice_ids,
            },
            at=at,
        )
        return PrintBatch(batch_id, facility_id, unit, day, len(rows), len(pdf), at)


# --- Reading ---------------------------------------------------------------------


def list_deliveries(db: Database, facility_id: str, notice_id: int) -> list[Delivery]:
    """Every delivery of a notice, each with its attempts."""
    with db.transaction() as session:
        if not repository.notice_exists(session, facility_id, notice_id):
            raise NotFound(f"no notice {notice_id} in {facility_id!r}", field="notice_id")
        return repository.list_deliveries(session, facility_id, notice_id)


def retry_failed(
    db: Database, facility_id: str, notice_id: int, *, actor: str, at: datetime
) -> int:
    """Staff put a notice's failed deliveries back in the outbox, due at once (say,
    after fixing counsel's address); returns how many. Each is an audit event."""
    with db.transaction() as session:
        if not repository.notice_exists(session, facility_id, notice_id):
            raise NotFound(f"no notice {notice_id} in {facility_id!r}", field="notice_id")
        rows = repository.requeue_failed(session, facility_id, notice_id, at)
        person_id = repository.notice_person(session, facility_id, notice_id)
        if rows and person_id is not None:
            record_event(
                session,
                facility_id=facility_id,
                chain=person_chain(facility_id, person_id),
                actor=actor,
                tag="delivery:email:requeued",
                payload={"notice_id": notice_id, "deliveries": [row.id for row in rows]},
                at=at,
            )
        return len(rows)


def list_print_batches(db: Database, facility_id: str) -> list[PrintBatch]:
    with db.transaction() as session:
        require_facility(session, facility_id)
        return repository.list_print_batches(session, facility_id)


def print_batch_pdf(db: Database, facility_id: str, batch_id: int) -> bytes:
    with db.transaction() as session:
        pdf = repository.print_batch_pdf(session, facility_id, batch_id)
    if pdf is None:
        raise NotFound(f"no print batch {batch_id} in {facility_id!r}", field="batch_id")
    return pdf
