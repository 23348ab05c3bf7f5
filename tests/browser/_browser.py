"""Helpers for the browser tests: ``sign_in``, ``check_axe``, ``shoot``, the
``BROWSER`` mark (each test module sets ``pytestmark = BROWSER``) and
``DemoServer``; the fixtures are in conftest.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _server import Server
from playwright.sync_api import Page

from kinline.demo.callers import DemoAccess

ROOT = Path(__file__).parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "test-artifacts" / "screenshots"


class DemoServer:
    """The ``server`` fixture: a running server and the demo's sign-in details."""

    def __init__(self, server: Server, demo: DemoAccess) -> None:
        self.server = server
        self.demo = demo
        self.base_url = server.base_url


# One xdist worker runs every browser test, so a module's server starts once.
BROWSER = pytest.mark.xdist_group("browser")


def sign_in(page: Page, login: str, password: str, totp: str | None = None) -> None:
    """Fill in and send the sign-in form (going to /signin first)."""
    if "/signin" not in page.url:
        page.goto("/signin")
    page.fill("#f-login", login)
    page.fill("#f-password", password)
    if totp is not None:
        page.fill("#f-totp", totp)
    page.click("form[action='/signin'] button[type=submit]")
    page.wait_for_load_state()


def check_axe(page: Page) -> None:
    """axe-core on the page as it is: no violation of serious or critical impact."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci`")
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate("async () => await axe.run(document)")
    bad = [v for v in result["violations"] if v.get("impact") in ("serious", "critical")]
    for violation in bad:
        print(json.dumps({k: violation[k] for k in ("id", "impact", "help")}))
        for node in violation["nodes"]:
            print("   ", node["target"], node.get("failureSummary", ""))
    assert bad == [], f"axe: {[v['id'] for v in bad]} on {page.url}"


def shoot(page: Page, name: str) -> Path:
    """A full-page screenshot at test-artifacts/screenshots/<name>.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
