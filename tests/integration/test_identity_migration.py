"""Migration 0006: every API token of a database from before subjects moves to
a subject of its own, named as the token was, bound as its scope allowed, and
the token still works for what it could do."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from kinline.api import create_app
from kinline.db.engine import Database
from kinline.db.migrate import upgrade
from kinline.identity.model import token_hash

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

SECRETS = {"staff": "kl_old-staff-secret", "read": "kl_old-read-secret", "telephony": "kl_old-pbx"}


@pytest.fixture
def empty_url(db_backend: str, tmp_path: Path) -> Iterator[str]:
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    server = make_url(os.environ["KINLINE_TEST_POSTGRES_URL"])
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"kinline_mig_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_old_tokens_become_named_subjects(empty_url: str) -> None:
    upgrade(empty_url, "0005")
    engine = create_engine(empty_url)
    with engine.begin() as connection:
        for place in ("north", "south"):
            connection.execute(
                text(
                    "INSERT INTO facilities (id, name, timezone, country, appeal_days,"
                    " retaliation_window_days, created_at)"
                    " VALUES (:id, :id, 'UTC', 'US', 20, 90, CURRENT_TIMESTAMP)"
                ),
                {"id": place},
            )
        for scope, secret in SECRETS.items():
            connection.execute(
                text(
                    "INSERT INTO api_tokens (name, scope, token_hash, created_at, facility_id)"
                    " VALUES (:name, :scope, :hash, CURRENT_TIMESTAMP, :facility)"
                ),
                {
                    "name": f"old-{scope}",
                    "scope": scope,
                    "hash": token_hash(secret),
                    "facility": "north" if scope == "telephony" else None,
                },
            )
    engine.dispose()
    upgrade(empty_url)
    engine = create_engine(empty_url)
    with engine.connect() as connection:
        subjects = {name: (kind, sorted(bound)) for name, kind, bound in _bindings(connection)}
    engine.dispose()
    assert subjects == {
        "old-staff": ("staff", ["north:role=admin", "south:role=admin"]),
        "old-read": ("staff", ["north:role=observer", "south:role=observer"]),
        "old-telephony": ("machine", ["north:job=telephony"]),
    }
    db = Database(empty_url)
    try:
        with TestClient(create_app(db), raise_server_exceptions=False) as client:

            def status(secret: str, method: str, path: str, **params: str) -> int:
                headers = {"Authorization": f"Bearer {secret}"}
                return client.request(method, path, params=params, headers=headers).status_code

            assert status(SECRETS["staff"], "GET", "/v1/people", facility_id="south") == 200
            assert status(SECRETS["read"], "GET", "/v1/people", facility_id="north") == 200
            body = {"rule": {}, "reason": "r"}
            refused = client.post(
                "/v1/rules",
                json=body,
                params={"facility_id": "north"},
                headers={"Authorization": f"Bearer {SECRETS['read']}"},
            )
            assert refused.status_code == 403
            # The telephony token works at its facility only, and only the call path.
            assert status(SECRETS["telephony"], "GET", "/v1/people") == 403
            assert status(SECRETS["telephony"], "GET", "/v1/calls/h_x", facility_id="south") == 404
    finally:
        db.dispose()


def _bindings(connection: object) -> Iterator[tuple[str, str, list[str]]]:
    rows = connection.execute(  # type: ignore[attr-defined]
        text(
            "SELECT s.name, s.kind, b.facility_id, b.role, b.job FROM subjects s"
            " JOIN subject_bindings b ON b.subject_id = s.id ORDER BY s.id, b.id"
        )
    ).all()
    grouped: dict[tuple[str, str], list[str]] = {}
    for name, kind, facility, role, job in rows:
        grouped.setdefault((name, kind), []).append(
            f"{facility}:role={role}" if role else f"{facility}:job={job}"
        )
    for (name, kind), bound in grouped.items():
        yield name, kind, bound
