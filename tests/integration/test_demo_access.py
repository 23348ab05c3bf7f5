"""`make run`'s first minutes: `kinline demo` prints how to sign in and a staff
token, and what it prints works, however often it runs."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pyotp
import pytest
from typer.testing import CliRunner

from kinline.api import create_app
from kinline.cli import app
from kinline.db.engine import Database

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

runner = CliRunner()


def printed(output: str, pattern: str) -> str:
    found = re.search(pattern, output)
    assert found is not None, output
    return found.group(1)


def test_demo_prints_callers_that_work_and_refreshes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KINLINE_INSECURE_COOKIES", "1")
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    first = runner.invoke(app, ["demo", "--database-url", url, "--base-url", "http://h:9"])
    assert first.exit_code == 0, first.output
    assert "http://h:9/v1/people" in first.output
    token = printed(first.output, r"export TOKEN=(kl_\S+)")
    staff_password = printed(first.output, r"login staff\s+password (\S+)")
    totp_secret = printed(first.output, r"TOTP secret (\S+)")
    person_password = printed(first.output, r"login salazar\s+password (\S+)")
    db = Database(url)
    try:
        with TestClient(create_app(db), raise_server_exceptions=False) as client:
            bearer = {"Authorization": f"Bearer {token}"}
            people = client.get("/v1/people", headers=bearer)
            assert people.status_code == 200, people.text
            assert [p["id"] for p in people.json()] == ["salazar"]
            staff = client.post(
                "/v1/auth/sign-in",
                json={
                    "login": "staff",
                    "password": staff_password,
                    "totp": pyotp.TOTP(totp_secret).now(),
                },
            )
            assert staff.status_code == 200, staff.text
            client.cookies.clear()
            kiosk = client.post(
                "/v1/auth/sign-in", json={"login": "salazar", "password": person_password}
            )
            assert kiosk.status_code == 200, kiosk.text
            assert client.get("/v1/auth/me").json()["kind"] == "person"
            client.cookies.clear()
            # Run again: new passwords and a new token; the old token is revoked.
            again = runner.invoke(app, ["demo", "--database-url", url])
            assert again.exit_code == 0, again.output
            assert "already loaded" in again.output
            assert client.get("/v1/people", headers=bearer).status_code == 401
            fresh = printed(again.output, r"export TOKEN=(kl_\S+)")
            renewed = client.get("/v1/people", headers={"Authorization": f"Bearer {fresh}"})
            assert renewed.status_code == 200
            old = client.post(
                "/v1/auth/sign-in", json={"login": "salazar", "password": person_password}
            )
            assert old.status_code == 401
    finally:
        db.dispose()
