"""Reading and settling the outbox, and the facilities' webhook subscriptions.

Each function owns its transaction; the publisher and the webhook dispatcher
run them in a thread. Publication order is ``(recorded_at, chain, seq)``: the
time each event was written, so one person's events (one chain, whose appends
are serialised by its head lock) come in the order they were recorded.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import and_, delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from kinline.audit.service import facility_chain, record_event
from kinline.db.engine import Database
from kinline.db.routing import cross_facility
from kinline.db.tables import DomainEventRow, WebhookDeliveryRow, WebhookRow
from kinline.errors import Conflict, InvalidInput, NotFound

MAX_BACKOFF = timedelta(hours=1)
GIVE_UP_ATTEMPTS = 72
"""Failed tries of one event after which its webhook is suspended: with the
default backoff (1 s doubling to an hour) about two and a half days."""
PUBLISHER = "outbox-publisher"


@dataclass(frozen=True, slots=True)
class Pending:
    """An event to publish: its key, type and CloudEvent body."""

    facility_id: str
    id: str
    type: str
    body: str
    recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Webhook:
    facility_id: str
    id: str
    url: str
    created_at: datetime
    created_by: str
    suspended_at: datetime | None = None
    suspended_reason: str | None = None


def _webhook(row: WebhookRow) -> Webhook:
    return Webhook(
        row.facility_id,
        row.id,
        row.url,
        row.created_at,
        row.created_by,
        row.suspended_at,
        row.suspended_reason,
    )


@dataclass(frozen=True, slots=True)
class Subscription:
    """A live webhook as the dispatcher needs it: with its secret."""

    facility_id: str
    id: str
    url: str
    secret: str
    created_at: datetime
    delivered_through: datetime | None = None


@dataclass(frozen=True, slots=True)
class Due:
    """The next event due to a webhook, and how often it was tried."""

    event: Pending
    attempts: int
    next_attempt_at: datetime | None


_ORDER = (DomainEventRow.recorded_at, DomainEventRow.chain, DomainEventRow.seq)


def unpublished(db: Database, limit: int) -> list[Pending]:
    """The oldest events not yet acknowledged by NATS, in publication order."""
    with cross_facility(PUBLISHER), db.transaction() as session:
        rows = session.execute(
            select(
                DomainEventRow.facility_id,
                DomainEventRow.id,
                DomainEventRow.type,
                DomainEventRow.body,
            )
            .where(DomainEventRow.published_at.is_(None))
            .order_by(*_ORDER)
            .limit(limit)
        ).all()
    return [Pending(*row) for row in rows]


def mark_published(db: Database, keys: Iterable[tuple[str, str]], at: datetime) -> int:
    """Set ``published_at`` on the events ``(facility_id, id)``; how many changed."""
    wanted = list(keys)
    if not wanted:
        return 0
    with db.transaction() as session:
        result = session.execute(
            update(DomainEventRow)
            .where(tuple_(DomainEventRow.facility_id, DomainEventRow.id).in_(wanted))
            .where(DomainEventRow.published_at.is_(None))
            .values(published_at=at)
            .execution_options(synchronize_session=False)
        )
    return int(getattr(result, "rowcount", 0) or 0)


def count_unpublished(db: Database) -> int:
    with cross_facility(PUBLISHER), db.transaction() as session:
        counted = session.scalar(select(func.count()).where(DomainEventRow.published_at.is_(None)))
        return int(counted or 0)


def prune(
    db: Database,
    *,
    before: datetime,
    unpublished: bool = False,
    batch: int = 5_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Delete from the outbox the events recorded before ``before`` that no one
    still needs, in transactions of ``batch``; how many. An event is kept while
    NATS has not acknowledged it (unless ``unpublished``: a deployment that
    publishes to webhooks only) and while any webhook of its facility that is
    not deleted (suspended ones included) has not had it delivered. The audit
    log is a separate table and is never touched: each event can be made again
    from its audit event. ``progress`` is called with the count after each batch."""
    e, w, d = DomainEventRow, WebhookRow, WebhookDeliveryRow
    delivered = (
        select(d.event_id)
        .where(
            d.facility_id == e.facility_id,
            d.webhook_id == w.id,
            d.event_id == e.id,
            d.delivered_at.is_not(None),
        )
        .correlate(e, w)  # the event two levels out, not a second domain_events
        .exists()
    )
    owed = (
        select(w.id)
        .where(
            w.facility_id == e.facility_id,
            w.deleted_at.is_(None),
            w.created_at <= e.recorded_at,
            ~delivered,
        )
        .exists()
    )
    done = e.recorded_at < before
    if not unpublished:
        done = and_(done, e.published_at.is_not(None))
    pick = select(e.facility_id, e.id).where(done, ~owed).order_by(*_ORDER).limit(batch)
    pruned = 0
    while True:
        with cross_facility(PUBLISHER), db.transaction() as session:
            keys = [tuple(row) for row in session.execute(pick).all()]
            if not keys:
                return pruned
            session.execute(
                delete(d)
                .where(tuple_(d.facility_id, d.event_id).in_(keys))
                .execution_options(synchronize_session=False)
            )
            session.execute(
                delete(e)
                .where(tuple_(e.facility_id, e.id).in_(keys))
                .execution_options(synchronize_session=False)
            )
        pruned += len(keys)
        if progress is not None:
            progress(pruned)


# --- webhooks ---------------------------------------------------------------


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("must be an http or https URL with a host", field="url")
    return url


def create_webhook(
    db: Database, facility_id: str, url: str, *, at: datetime, actor: str
) -> tuple[Webhook, str]:
    """A new subscription and its signing secret (shown once, to its creator).
    It receives the facility's events recorded from ``at`` on."""
    _check_url(url)
    webhook_id = f"wh_{secrets.token_hex(12)}"
    secret = secrets.token_hex(32)
    with db.transaction() as session:
        session.add(
            WebhookRow(
                facility_id=facility_id,
                id=webhook_id,
                url=url,
                secret=secret,
                created_at=at,
                created_by=actor,
            )
        )
        _audit(session, facility_id, "created", {"webhook_id": webhook_id, "url": url}, at, actor)
    return Webhook(facility_id, webhook_id, url, at, actor), secret


def list_webhooks(db: Database, facility_id: str) -> list[Webhook]:
    with db.transaction() as session:
        rows = session.scalars(
            select(WebhookRow)
            .where(WebhookRow.facility_id == facility_id, WebhookRow.deleted_at.is_(None))
            .order_by(WebhookRow.created_at, WebhookRow.id)
        ).all()
        return [_webhook(row) for row in rows]


def delete_webhook(
    db: Database, facility_id: str, webhook_id: str, *, at: datetime, actor: str
) -> None:
    """End a subscription: nothing more is sent to it."""
    with db.transaction() as session:
        row = session.get(WebhookRow, (facility_id, webhook_id))
        if row is None or row.deleted_at is not None:
            raise NotFound(f"no webhook {webhook_id!r}", field="webhook_id")
        row.deleted_at = at
        _audit(session, facility_id, "deleted", {"webhook_id": webhook_id}, at, actor)


def resume_webhook(
    db: Database, facility_id: str, webhook_id: str, *, at: datetime, actor: str
) -> Webhook:
    """Send to a suspended webhook again, from the event it gave up on, each
    event's tries counted afresh. Conflict if it is not suspended."""
    with db.transaction() as session:
        row = session.get(WebhookRow, (facility_id, webhook_id), with_for_update=True)
        if row is None or row.deleted_at is not None:
            raise NotFound(f"no webhook {webhook_id!r}", field="webhook_id")
        if row.suspended_at is None:
            raise Conflict(f"webhook {webhook_id!r} is not suspended", field="webhook_id")
        row.suspended_at, row.suspended_reason = None, None
        session.execute(
            update(WebhookDeliveryRow)
            .where(
                WebhookDeliveryRow.facility_id == facility_id,
                WebhookDeliveryRow.webhook_id == webhook_id,
                WebhookDeliveryRow.delivered_at.is_(None),
            )
            .values(attempts=0, next_attempt_at=None)
        )
        _audit(session, facility_id, "resumed", {"webhook_id": webhook_id}, at, actor)
        return _webhook(row)


def _audit(
    session: Session,
    facility_id: str,
    action: str,
    payload: dict[str, object],
    at: datetime,
    actor: str,
) -> None:
    """A subscription made or ended is a change like any other: on the
    facility's chain (the secret is never written there)."""
    record_event(
        session,
        facility_id=facility_id,
        chain=facility_chain(facility_id),
        actor=actor,
        tag=f"events:webhook:{action}",
        payload=payload,
        at=at,
    )


def subscriptions(db: Database) -> list[Subscription]:
    """Every live webhook of every facility."""
    with cross_facility(PUBLISHER), db.transaction() as session:
        rows = session.scalars(
            select(WebhookRow)
            .where(WebhookRow.deleted_at.is_(None), WebhookRow.suspended_at.is_(None))
            .order_by(WebhookRow.facility_id, WebhookRow.id)
        ).all()
        return [
            Subscription(r.facility_id, r.id, r.url, r.secret, r.created_at, r.delivered_through)
            for r in rows
        ]


def due_to(db: Database, hook: Subscription, limit: int) -> list[Due]:
    """The webhook's undelivered events in publication order: those of its
    facility recorded since it was created, with their attempts so far. The
    look starts at the last one delivered (``delivered_through``), so it reads
    what is new, not the whole history."""
    delivery = WebhookDeliveryRow
    since = max(hook.created_at, hook.delivered_through or hook.created_at)
    with db.transaction() as session:
        rows = session.execute(
            select(
                DomainEventRow.facility_id,
                DomainEventRow.id,
                DomainEventRow.type,
                DomainEventRow.body,
                DomainEventRow.recorded_at,
                delivery.attempts,
                delivery.next_attempt_at,
            )
            .outerjoin(
                delivery,
                and_(
                    delivery.facility_id == DomainEventRow.facility_id,
                    delivery.webhook_id == hook.id,
                    delivery.event_id == DomainEventRow.id,
                ),
            )
            .where(
                DomainEventRow.facility_id == hook.facility_id,
                DomainEventRow.recorded_at >= since,
                delivery.delivered_at.is_(None),
            )
            .order_by(*_ORDER)
            .limit(limit)
        ).all()
    return [
        Due(Pending(f, i, t, b, at), attempts or 0, nxt) for f, i, t, b, at, attempts, nxt in rows
    ]


def record_attempt(
    db: Database,
    hook: Subscription,
    event: Pending,
    *,
    delivered: bool,
    status: str,
    at: datetime,
    backoff: timedelta,
    give_up: int = GIVE_UP_ATTEMPTS,
) -> Sequence[object]:
    """One try of one event: delivered, or due again after ``backoff`` doubled
    for every earlier try (at most ``MAX_BACKOFF``); its ``give_up``-th failed
    try suspends the webhook (audited and announced), so nothing more is sent
    to an endpoint that is gone until an admin resumes it."""
    with db.transaction() as session:
        row = session.get(WebhookDeliveryRow, (hook.facility_id, hook.id, event.id))
        if row is None:
            row = WebhookDeliveryRow(
                facility_id=hook.facility_id, webhook_id=hook.id, event_id=event.id, attempts=0
            )
            session.add(row)
        row.attempts += 1
        row.last_status = status[:200]
        if delivered:
            row.delivered_at, row.next_attempt_at = at, None
            if event.recorded_at is not None:
                session.execute(
                    update(WebhookRow)
                    .where(WebhookRow.facility_id == hook.facility_id, WebhookRow.id == hook.id)
                    .values(delivered_through=event.recorded_at)
                )
        else:
            row.next_attempt_at = at + min(backoff * 2 ** (row.attempts - 1), MAX_BACKOFF)
            if row.attempts >= give_up:
                _suspend(session, hook, event, row.attempts, status, at)
        return (row.attempts, row.next_attempt_at)


def _suspend(
    session: Session, hook: Subscription, event: Pending, attempts: int, status: str, at: datetime
) -> None:
    webhook = session.get(WebhookRow, (hook.facility_id, hook.id), with_for_update=True)
    if webhook is None or webhook.deleted_at is not None or webhook.suspended_at is not None:
        return
    webhook.suspended_at = at
    webhook.suspended_reason = (
        f"event {event.id} failed {attempts} times in a row; the last: {status}"
    )[:300]
    payload = {"webhook_id": hook.id, "event_id": event.id, "attempts": attempts}
    _audit(session, hook.facility_id, "suspended", payload, at, PUBLISHER)
