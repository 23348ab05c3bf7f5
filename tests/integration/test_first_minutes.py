"""A new user's first minutes: the API's documentation pages work with no
internet, the demo loads once however often it is asked for, `make run` takes a
port, and a database that cannot be reached is one line and an exit code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from kinline.api import create_app
from kinline.db.engine import Database

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
KINLINE = Path(sys.executable).parent / "kinline"
UNREACHABLE = "postgresql+psycopg://postgres:s3cret@127.0.0.1:1/nowhere"
ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_documentation_loads_only_from_kinline(tmp_path: Path, page: str) -> None:
    db = Database(f"sqlite:///{tmp_path / 'docs.db'}")
    try:
        with TestClient(create_app(db)) as client:
            response = client.get(page)
            assert response.status_code == 200
            html = response.text
            assets = ASSET.findall(html)
            assert any(url.endswith(".js") for url in assets), assets
            for url in assets:
                assert url.startswith("/") and not url.startswith("//"), url
                fetched = client.get(url)
                assert fetched.status_code == 200, url
                assert len(fetched.content) > 0, url
            # Nothing the browser would fetch from elsewhere, a validator badge included.
            assert "http://" not in html and "https://" not in html
            assert client.get("/openapi.json").status_code == 200
    finally:
        db.dispose()


def run_kinline(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KINLINE_DATABASE_URL": url, "KINLINE_SWEEP_SECONDS": "0"}
    return subprocess.run(
        [str(KINLINE), *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "command",
    [["serve", "--port", "1"], ["db", "upgrade"], ["demo"], ["notices", "list", "--person", "x"]],
    ids=["serve", "db upgrade", "demo", "notices list"],
)
def test_an_unreachable_database_is_one_line_and_a_nonzero_exit(command: list[str]) -> None:
    done = run_kinline(*command, url=UNREACHABLE)
    assert done.returncode == 3, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert (
        "cannot reach the database at postgresql+psycopg://postgres:***@127.0.0.1:1/nowhere"
        in lines[0]
    )
    assert "s3cret" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_the_demo_loads_once_however_often_it_is_asked_for(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tour.db'}"
    first = run_kinline("demo", url=url)
    assert first.returncode == 0, first.stderr
    assert "loaded the demo facility usp-red-mesa" in first.stdout
    again = run_kinline("demo", url=url)
    assert again.returncode == 0, again.stderr
    assert "already loaded" in again.stdout
    decided = run_kinline(
        "decide", "--person", "salazar", "--contact", "daughter-a", "--at", "2024-05-06T10:00",
        url=url,
    )  # fmt: skip
    assert decided.returncode == 0, decided.stderr
    assert "refused: denied" in decided.stdout


def test_make_run_serves_on_the_port_asked_for() -> None:
    planned = subprocess.run(
        ["make", "-n", "run", "PORT=8123"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert planned.returncode == 0, planned.stderr
    serve = [line for line in planned.stdout.splitlines() if "kinline serve" in line]
    assert serve and serve[-1].endswith("--port 8123"), planned.stdout
    default = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True)
    assert "kinline serve --port 8000" in default.stdout
