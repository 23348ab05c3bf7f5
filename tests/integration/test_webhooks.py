"""Webhooks: a facility's subscriptions (admin only), and deliveries from the outbox
to a real HTTP receiver: signed, retried with backoff after a 500, in order."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from _databases import DbTemplate
from _identity import token_for
from sqlalchemy import select
from test_events import FACILITY, SCENARIO

from kinline.api import create_app
from kinline.calls.path import authorize, connect, end
from kinline.db.engine import Database
from kinline.db.tables import AuditEventRow, DomainEventRow
from kinline.events import service
from kinline.identity.model import Binding, Kind, Role

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

KINLINE = Path(sys.executable).parent / "kinline"
BACKOFF = 0.3  # seconds before the first retry
T0 = datetime(2024, 1, 1, tzinfo=UTC)  # long before any event is recorded


class Receiver:
    """A real HTTP server: answers 500 to the first ``failures`` requests, then 200,
    and keeps every request (time, headers, body, status answered)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[float, dict[str, str], bytes, int]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    status = 500 if len(outer.requests) < outer.failures else 200
                    outer.requests.append((time.monotonic(), dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def delivered(self) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(h, b) for _t, h, b, status in self.requests if status == 200]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def db(fresh_db: Callable[[DbTemplate], Database]) -> Database:
    return fresh_db(SCENARIO)


@pytest.fixture
def api(db: Database) -> Iterator[tuple[TestClient, dict[str, str]]]:
    admin = token_for(db, "admin", Kind.STAFF, Binding(FACILITY, role=Role.ADMIN))
    records = token_for(db, "records", Kind.STAFF, Binding(FACILITY, role=Role.RECORDS))
    with TestClient(create_app(db), raise_server_exceptions=False) as client:
        yield client, {"admin": admin, "records": records}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def publisher(db: Database, log: Path, give_up: int = 72) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(KINLINE), "events", "publish", "--no-nats", "--database-url", db.url],
            env={
                **os.environ,
                "KINLINE_EVENTS_IDLE_SECONDS": "0.05",
                "KINLINE_WEBHOOK_BACKOFF_SECONDS": str(BACKOFF),
                "KINLINE_WEBHOOK_GIVE_UP_ATTEMPTS": str(give_up),
            },
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_only_an_admin_manages_webhooks(
    db: Database, api: tuple[TestClient, dict[str, str]]
) -> None:
    client, tokens = api
    path = f"/v1/facilities/{FACILITY}/webhooks"
    body = {"url": "https://pbx.example.org/events"}
    refused = client.post(path, json=body, headers=bearer(tokens["records"]))
    assert refused.status_code == 403, refused.text
    assert client.post(path, json=body).status_code == 401
    elsewhere = client.post(
        "/v1/facilities/fci-other/webhooks", json=body, headers=bearer(tokens["admin"])
    )
    assert elsewhere.status_code == 404
    made = client.post(path, json=body, headers=bearer(tokens["admin"]))
    assert made.status_code == 201, made.text
    created = made.json()
    assert created["id"].startswith("wh_") and len(created["secret"]) == 64
    listed = client.get(path, headers=bearer(tokens["admin"])).json()
    assert [(w["id"], w["url"]) for w in listed] == [(created["id"], body["url"])]
    assert "secret" not in listed[0]
    bad = client.post(path, json={"url": "ftp://x"}, headers=bearer(tokens["admin"]))
    assert (bad.status_code, bad.json()["field"]) == (422, "url")
    gone = client.delete(f"{path}/{created['id']}", headers=bearer(tokens["admin"]))
    assert gone.status_code == 204
    assert client.get(path, headers=bearer(tokens["admin"])).json() == []
    again = client.delete(f"{path}/{created['id']}", headers=bearer(tokens["admin"]))
    assert again.status_code == 404
    # Both changes are audited (the secret never is) and announced.
    with db.transaction() as session:
        audited = session.execute(
            select(AuditEventRow.tag, AuditEventRow.payload)
            .where(AuditEventRow.tag.like("events:webhook:%"))
            .order_by(AuditEventRow.id)
        ).all()
        announced = session.scalars(
            select(DomainEventRow.type).where(DomainEventRow.type.like("kinline.webhook.%"))
        ).all()
    assert [tag for tag, _payload in audited] == [
        "events:webhook:created",
        "events:webhook:deleted",
    ]
    assert all(created["secret"] not in payload for _tag, payload in audited)
    assert sorted(announced) == ["kinline.webhook.created", "kinline.webhook.deleted"]


def test_deliveries_are_signed_retried_after_a_500_and_in_order(
    db: Database, api: tuple[TestClient, dict[str, str]], tmp_path: Path
) -> None:
    client, tokens = api
    with Receiver(failures=2) as receiver:
        made = client.post(
            f"/v1/facilities/{FACILITY}/webhooks",
            json={"url": receiver.url},
            headers=bearer(tokens["admin"]),
        ).json()
        secret = made["secret"]
        at = datetime.now(UTC) + timedelta(seconds=1)
        first = authorize(db, FACILITY, "ana", dialed="+1 303 555 0100", idempotency_key="w1",
                          actor="pbx", at=at)  # fmt: skip
        connect(db, FACILITY, first.hold_id, actor="pbx", at=at)
        end(db, FACILITY, first.hold_id, 60, actor="pbx", at=at + timedelta(minutes=1))
        with db.transaction() as session:
            expected = list(
                session.scalars(
                    select(DomainEventRow.id)
                    .where(DomainEventRow.recorded_at >= datetime.fromisoformat(made["created_at"]))
                    .order_by(DomainEventRow.recorded_at, DomainEventRow.chain, DomainEventRow.seq)
                )
            )
        assert len(expected) == 4  # its own creation, then the call's three steps
        process = publisher(db, tmp_path / "publisher.log")
        try:
            deadline = time.monotonic() + 60
            while len(receiver.delivered()) < len(expected):
                assert time.monotonic() < deadline, (tmp_path / "publisher.log").read_text()
                time.sleep(0.05)
        finally:
            stop(process)

    requests = receiver.requests
    ids = [headers["X-Kinline-Event-Id"] for _t, headers, _b, _s in requests]
    # The first event failed twice and was tried again, later each time (backoff
    # doubling), and nothing after it was sent before it got through.
    assert ids[:3] == [expected[0]] * 3
    assert [status for *_rest, status in requests[:3]] == [500, 500, 200]
    first_try, second_try, third_try = (t for t, *_rest in requests[:3])
    assert second_try - first_try >= BACKOFF * 0.9
    assert third_try - second_try >= 2 * BACKOFF * 0.9
    delivered = receiver.delivered()
    assert [json.loads(body)["id"] for _h, body in delivered] == expected
    for headers, body in delivered:
        timestamp = headers["X-Kinline-Timestamp"]
        mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        assert headers["X-Kinline-Signature"] == f"sha256={mac.hexdigest()}"
        assert headers["Content-Type"] == "application/cloudevents+json"
        assert abs(int(timestamp) - time.time()) < 300
        # A signature over another body does not match.
        forged = hmac.new(secret.encode(), f"{timestamp}.".encode() + body + b" ", hashlib.sha256)
        assert headers["X-Kinline-Signature"] != f"sha256={forged.hexdigest()}"
    types = [json.loads(body)["type"] for _h, body in delivered]
    assert types == [
        "kinline.webhook.created",
        "kinline.call.authorized",
        "kinline.call.connected",
        "kinline.call.ended",
    ]


def delivered_types(receiver: Receiver) -> list[str]:
    return [json.loads(body)["type"] for _h, body in receiver.delivered()]


def test_a_webhook_that_keeps_failing_is_suspended_until_an_admin_resumes_it(
    db: Database, api: tuple[TestClient, dict[str, str]], tmp_path: Path
) -> None:
    client, tokens = api
    admin = bearer(tokens["admin"])
    path = f"/v1/facilities/{FACILITY}/webhooks"
    log = tmp_path / "publisher.log"
    with Receiver(failures=3) as receiver:
        made = client.post(path, json={"url": receiver.url}, headers=admin).json()
        live = client.post(f"{path}/{made['id']}/resume", headers=admin)
        assert (live.status_code, live.json()["field"]) == (409, "webhook_id")
        at = datetime.now(UTC) + timedelta(seconds=1)
        held = authorize(db, FACILITY, "ana", dialed="+1 303 555 0100", idempotency_key="s1",
                         actor="pbx", at=at)  # fmt: skip
        process = publisher(db, log, give_up=3)
        try:
            deadline = time.monotonic() + 60
            while client.get(path, headers=admin).json()[0]["suspended_at"] is None:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            # Suspended: the publisher sends it nothing more, though it runs on.
            time.sleep(BACKOFF * 8)
        finally:
            stop(process)
        (listed,) = client.get(path, headers=admin).json()
        assert "failed 3 times in a row" in listed["suspended_reason"]
        assert "HTTP 500" in listed["suspended_reason"]
        tried = [headers["X-Kinline-Event-Id"] for _t, headers, _b, _s in receiver.requests]
        assert len(tried) == 3 and len(set(tried)) == 1  # the first event, three times
        assert receiver.delivered() == []

        resumed = client.post(f"{path}/{made['id']}/resume", headers=admin)
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["suspended_at"] is None
        end(db, FACILITY, held.hold_id, 0, actor="pbx", at=at + timedelta(seconds=5))
        process = publisher(db, log, give_up=3)
        try:
            deadline = time.monotonic() + 60
            while "kinline.call.ended" not in delivered_types(receiver):
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        finally:
            stop(process)
    types = delivered_types(receiver)
    # From the event it stopped at, in order; its own suspension and resumption
    # are events of the facility too, announced to the webhook after them, and
    # the end of the call (made after the resumption) comes last.
    assert types[:2] == ["kinline.webhook.created", "kinline.call.authorized"]
    assert "kinline.webhook.suspended" in types[2:]
    assert types.index("kinline.webhook.resumed") < types.index("kinline.call.ended")
    assert types[-1] == "kinline.call.ended"
    with db.transaction() as session:
        audited = session.execute(
            select(AuditEventRow.tag, AuditEventRow.actor)
            .where(AuditEventRow.tag.like("events:webhook:%"))
            .order_by(AuditEventRow.id)
        ).all()
    assert [tag for tag, _actor in audited] == [
        "events:webhook:created",
        "events:webhook:suspended",
        "events:webhook:resumed",
    ]
    created_by, suspended_by, resumed_by = (actor for _tag, actor in audited)
    assert suspended_by == "outbox-publisher" and resumed_by == created_by
    unknown = client.post(f"{path}/wh_unknown/resume", headers=admin)
    assert unknown.status_code == 404
    refused = client.post(f"{path}/{made['id']}/resume", headers=bearer(tokens["records"]))
    assert refused.status_code == 403


def test_the_outbox_is_pruned_of_what_everyone_received_and_nothing_else(db: Database) -> None:
    def stored() -> tuple[set[str], int]:
        with db.transaction() as session:
            events = set(session.scalars(select(DomainEventRow.id)))
            audited = len(session.scalars(select(AuditEventRow.id)).all())
        return events, audited

    later = datetime.now(UTC) + timedelta(minutes=5)
    before_hooks, _ = stored()  # the scenario's own events
    made = datetime.now(UTC)  # after the scenario's events were recorded
    live, _secret = service.create_webhook(db, FACILITY, "https://a.example/h", at=made, actor="t")
    gone, _secret = service.create_webhook(db, FACILITY, "https://b.example/h", at=made, actor="t")
    at = datetime.now(UTC) + timedelta(seconds=1)
    held = authorize(db, FACILITY, "ana", dialed="+1 303 555 0100", idempotency_key="p1",
                     actor="pbx", at=at)  # fmt: skip
    end(db, FACILITY, held.hold_id, 0, actor="pbx", at=at + timedelta(seconds=5))
    everything, audited = stored()
    owed = everything - before_hooks
    assert len(owed) >= 4  # two webhooks made, the call authorized and ended

    # Nothing NATS has not acknowledged goes, unless asked.
    assert service.prune(db, before=later) == 0
    keys = [(FACILITY, event) for event in everything]
    service.mark_published(db, keys, at=datetime.now(UTC))
    # Published: what came before the webhooks goes; theirs are still owed.
    counted: list[int] = []
    assert service.prune(db, before=later, batch=2, progress=counted.append) == len(before_hooks)
    assert counted[-1] == len(before_hooks) and len(counted) == -(-len(before_hooks) // 2)
    assert stored() == (owed, audited)  # the audit log is never touched

    # One webhook received all but the last; the other is deleted (owed nothing).
    subscription = {s.id: s for s in service.subscriptions(db)}[live.id]
    due = service.due_to(db, subscription, 100)
    for item in due[:-1]:
        service.record_attempt(db, subscription, item.event, delivered=True, status="HTTP 200",
                               at=datetime.now(UTC), backoff=timedelta(seconds=1))  # fmt: skip
    service.delete_webhook(db, FACILITY, gone.id, at=datetime.now(UTC), actor="t")
    # Suspended, it is still owed what it has not received.
    for _try in range(3):
        service.record_attempt(db, subscription, due[-1].event, delivered=False, status="HTTP 500",
                               at=datetime.now(UTC), backoff=timedelta(0), give_up=3)  # fmt: skip
    assert service.list_webhooks(db, FACILITY)[0].suspended_at is not None
    remaining, _ = stored()
    # The deletion and suspension are events too, recorded since: published or not.
    assert service.prune(db, before=later, unpublished=True) == len(due) - 1
    left, audited_now = stored()
    assert due[-1].event.id in left and len(left) == len(remaining) - (len(due) - 1)
    assert audited_now == audited + 2  # the deletion and the suspension
    # Events recorded after ``before`` stay, whatever else holds.
    assert service.prune(db, before=T0) == 0
