"""Browser tests: Debian's chromium driven by Playwright against a live kinline
server (``kinline serve``, tests/integration/_server.py) on SQLite with the
demo facility loaded, as ``make run`` serves it.

Fixtures: ``server`` (module-scoped; ``server.demo`` holds the demo's
passwords and staff TOTP secret), ``browser``, ``page`` (a fresh context, so
fresh cookies, per test). Helpers: ``sign_in``, ``check_axe``, ``shoot``.
Chromium comes from apt (``make browser-setup``), axe-core from npm.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from kinline.db.engine import Database
from kinline.db.migrate import upgrade
from kinline.demo.callers import demo_access
from kinline.demo.load import load_demo

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from _browser import DemoServer
from _server import running_server

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'kinline.db'}"
    upgrade(url)
    db = Database(url)
    try:
        load_demo(db, at=datetime.now(UTC))
        demo = demo_access(db)
    finally:
        db.dispose()
    # Plain HTTP in tests: the cookies may not be Secure.
    with running_server(url, workers=1, KINLINE_INSECURE_COOKIES="1") as live:
        yield DemoServer(live, demo)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser-setup`")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser, server: DemoServer) -> Iterator[Page]:
    context = browser.new_context(base_url=server.base_url, locale="en-US")
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()
