"""Publishing the outbox: to NATS JetStream, and to webhooks.

At least once, in order per person. The publisher takes the oldest unpublished
events in publication order, publishes them one after another to stream
``KINLINE`` (subject ``kinline.<facility>.<type>``), each with its event id as
``Nats-Msg-Id``, and marks them published once JetStream has acknowledged
them. A publisher killed between the acknowledgement and the mark publishes
those events again when it restarts, and JetStream drops them as duplicates
within its duplicate window (``DUPLICATE_WINDOW``); a broker that is down or
restarting fails the publish, and the same events are tried again, in the same
order, until it answers.

Webhooks are driven from the same outbox: each subscription gets its
facility's events in the same order, one at a time; a failed delivery (no
answer, or not 2xx) is tried again after an exponential backoff, and the
events after it wait, so a receiver sees them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import nats
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError

from kinline.db.engine import Database
from kinline.events import service
from kinline.events.model import subject_name

log = logging.getLogger("kinline.events")

STREAM = "KINLINE"
SUBJECTS = ["kinline.>"]
DUPLICATE_WINDOW = 120.0  # seconds: JetStream's default
SIGNATURE_HEADER = "X-Kinline-Signature"
TIMESTAMP_HEADER = "X-Kinline-Timestamp"


@dataclass(frozen=True, slots=True)
class Settings:
    nats_url: str | None = "nats://127.0.0.1:4222"
    webhooks: bool = True
    batch: int = 500
    idle: float = 0.1  # seconds between polls of an empty outbox
    webhook_backoff: float = 1.0  # seconds before the first retry; doubles each time
    webhook_timeout: float = 10.0
    # Failed tries of one event after which its webhook is suspended.
    webhook_give_up: int = service.GIVE_UP_ATTEMPTS


def settings_from_env(**overrides: object) -> Settings:
    """``KINLINE_NATS_URL``, ``KINLINE_EVENTS_IDLE_SECONDS``,
    ``KINLINE_WEBHOOK_BACKOFF_SECONDS``, ``KINLINE_WEBHOOK_GIVE_UP_ATTEMPTS``,
    then ``overrides``."""
    defaults = Settings()
    values: dict[str, object] = {
        "nats_url": os.environ.get("KINLINE_NATS_URL", defaults.nats_url),
        "idle": float(os.environ.get("KINLINE_EVENTS_IDLE_SECONDS", defaults.idle)),
        "webhook_backoff": float(
            os.environ.get("KINLINE_WEBHOOK_BACKOFF_SECONDS", defaults.webhook_backoff)
        ),
        "webhook_give_up": max(
            1,
            int(os.environ.get("KINLINE_WEBHOOK_GIVE_UP_ATTEMPTS", defaults.webhook_give_up)),
        ),
    }
    values.update({key: value for key, value in overrides.items() if value is not None})
    return Settings(**values)  # type: ignore[arg-type]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256, keyed by the webhook's secret, over
    ``<timestamp>.`` and the body, so a captured delivery cannot be replayed
    later under a new timestamp."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


async def ensure_stream(js: nats.js.JetStreamContext) -> None:
    """Stream ``KINLINE`` on ``kinline.>``, kept on disk, created if missing."""
    config = StreamConfig(
        name=STREAM,
        subjects=SUBJECTS,
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW,
    )
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


async def publish_pending(db: Database, js: nats.js.JetStreamContext, batch: int) -> int:
    """Publish one batch in order; marks what JetStream acknowledged, also when
    a later publish fails (which then raises). How many were published."""
    pending = await asyncio.to_thread(service.unpublished, db, batch)
    done: list[tuple[str, str]] = []
    duplicates = 0
    try:
        for event in pending:
            ack = await js.publish(
                subject_name(event.facility_id, event.type),
                event.body.encode(),
                headers={"Nats-Msg-Id": event.id},
                timeout=5.0,
            )
            duplicates += bool(ack.duplicate)
            done.append((event.facility_id, event.id))
    finally:
        await asyncio.to_thread(service.mark_published, db, done, datetime.now(UTC))
        if done:
            log.info(
                "published %d events (%d already in the stream, dropped)", len(done), duplicates
            )
    return len(done)


async def run_nats(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    """Publish until ``stop`` is set, reconnecting and retrying as needed."""
    assert settings.nats_url is not None
    while not stop.is_set():
        try:
            nc = await nats.connect(
                settings.nats_url,
                connect_timeout=2,
                reconnect_time_wait=0.2,
                max_reconnect_attempts=-1,
                allow_reconnect=True,
            )
        except Exception as error:
            log.warning("NATS at %s: %s; retrying", settings.nats_url, error)
            await _wait(stop, 0.5)
            continue
        try:
            js = nc.jetstream()
            await ensure_stream(js)
            while not stop.is_set():
                sent = await publish_pending(db, js, settings.batch)
                if sent < settings.batch:
                    await _wait(stop, settings.idle)
        except Exception as error:
            log.warning("publishing to NATS failed: %s; retrying", error)
            await _wait(stop, 0.2)
        finally:
            with contextlib.suppress(Exception):
                await nc.close()


async def deliver_webhooks(db: Database, settings: Settings, client: httpx.AsyncClient) -> int:
    """One round over every subscription: deliver what is due, in order, up to
    the first failure or the first event still waiting out its backoff."""
    delivered = 0
    backoff = timedelta(seconds=settings.webhook_backoff)
    for hook in await asyncio.to_thread(service.subscriptions, db):
        for due in await asyncio.to_thread(service.due_to, db, hook, settings.batch):
            now = datetime.now(UTC)
            if due.next_attempt_at is not None and due.next_attempt_at > now:
                break
            ok, status = await _post(client, hook, due.event)
            await asyncio.to_thread(
                service.record_attempt,
                db,
                hook,
                due.event,
                delivered=ok,
                status=status,
                at=datetime.now(UTC),
                backoff=backoff,
                give_up=settings.webhook_give_up,
            )
            if not ok:
                break
            delivered += 1
    return delivered


async def _post(
    client: httpx.AsyncClient, hook: service.Subscription, event: service.Pending
) -> tuple[bool, str]:
    body = event.body.encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/cloudevents+json",
        "X-Kinline-Event-Id": event.id,
        "X-Kinline-Webhook-Id": hook.id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(hook.secret, timestamp, body),
    }
    try:
        response = await client.post(hook.url, content=body, headers=headers)
    except httpx.HTTPError as error:
        return False, f"{type(error).__name__}: {error}"
    return response.is_success, f"HTTP {response.status_code}"


async def run_webhooks(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(timeout=settings.webhook_timeout) as client:
        while not stop.is_set():
            try:
                sent = await deliver_webhooks(db, settings, client)
            except Exception:
                log.exception("webhook round failed; retrying")
                sent = 0
            if not sent:
                await _wait(stop, settings.idle)


async def run(db: Database, settings: Settings, stop: asyncio.Event | None = None) -> None:
    """The publisher: NATS and webhooks side by side until ``stop`` is set."""
    stop = stop or asyncio.Event()
    tasks = []
    if settings.nats_url:
        tasks.append(run_nats(db, settings, stop))
    if settings.webhooks:
        tasks.append(run_webhooks(db, settings, stop))
    await asyncio.gather(*tasks)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
