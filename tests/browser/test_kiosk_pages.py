"""The person's kiosk in chromium: R. Salazar (Spanish stored on his record)
signs in, reads his allowances and a new notice in Spanish (the rule's own
Spanish text, not its English one), acknowledges it, appeals it, and switches
the pages to English. Every page is axe-checked and screenshotted."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from _browser import BROWSER, DemoServer, check_axe, shoot, sign_in
from playwright.sync_api import Page, expect

pytestmark = BROWSER

FACILITY = "usp-red-mesa"
ENGLISH = "Phone calls last at most ten minutes."
SPANISH = "Las llamadas duran como máximo diez minutos."


@pytest.fixture(scope="module")
def notice_id(server: DemoServer) -> Iterator[int]:
    """A rule written in English and Spanish, imposed now: its notice is his to read."""
    with httpx.Client(base_url=server.base_url) as api:
        made = api.post(
            "/v1/rules",
            params={"facility_id": FACILITY},
            headers={"Authorization": f"Bearer {server.demo.token}"},
            json={
                "rule": {
                    "id": "kiosk-ten-minutes",
                    "authority": "facility_policy",
                    "kind": "limit",
                    "channel": "phone",
                    "person": "salazar",
                    "contacts": "any",
                    "max_minutes": 10,
                    "text": {"en": ENGLISH, "es": SPANISH},
                },
                "reason": "Calls are shorter while the phones are repaired.",
            },
        )
        assert made.status_code == 201, made.text
        listed = api.get(
            "/v1/notices",
            params={"facility_id": FACILITY, "person_id": "salazar"},
            headers={"Authorization": f"Bearer {server.demo.token}"},
        )
        ours = [n for n in listed.json() if n["subject"] == "kiosk-ten-minutes"]
        assert len(ours) == 1
        # And a video visit with his daughter, booked by staff.
        booked = api.post(
            "/v1/visits/bookings",
            params={"facility_id": FACILITY},
            headers={"Authorization": f"Bearer {server.demo.token}"},
            json={
                "person_id": "salazar",
                "template_id": "video-thu",
                "date": visit_day().isoformat(),
                "visitors": ["daughter-a"],
            },
        )
        assert booked.status_code == 200 and booked.json()["allowed"], booked.text
        yield int(ours[0]["id"])


def today() -> date:
    return datetime.now(UTC).astimezone(ZoneInfo("America/Denver")).date()


def visit_day() -> date:
    """Next Thursday: a video session."""
    return today() + timedelta(days=(3 - today().weekday()) % 7 or 7)


def enter(page: Page, server: DemoServer) -> None:
    sign_in(page, "salazar", server.demo.person_password)
    expect(page).to_have_url(re.compile(r"/me$"))
    # The boosted sign-in swaps the body only: <html lang> is the sign-in
    # page's until a full load.
    page.reload()


def test_the_kiosk_speaks_his_language_and_explains_each_contact(
    page: Page, server: DemoServer, notice_id: int
) -> None:
    enter(page, server)
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("h1")).to_have_text("Hola, R. Salazar")
    # His daughters' video calls are allowed, four a month; phone calls with
    # the children are suspended by a security measure, in words.
    video = page.locator("tr.allowance[data-contact=daughter-a][data-channel=video]")
    expect(video).to_contain_text("Videollamada permitida")
    # The booked visit holds its place in its month's four.
    held = 1 if visit_day().month == today().month else 0
    expect(video).to_contain_text(f"{held} de 4 sesiones usadas este mes")
    phone = page.locator("tr.allowance[data-contact=daughter-a][data-channel=phone]")
    expect(phone).to_contain_text("Llamada no permitida")
    expect(phone).not_to_contain_text("sam-children")  # no rule id as the words
    expect(page.locator(f"a[href='/me/notices/{notice_id}']")).to_be_visible()
    expect(page.locator("#notices ~ table")).to_contain_text("Sin leer")
    visit = page.locator("#visits ~ table tr.visit")
    expect(visit).to_have_count(1)
    expect(visit).to_contain_text("Videollamada")
    expect(visit).to_contain_text("A. Salazar")
    expect(visit).to_contain_text("17:00")
    expect(visit).to_contain_text("Reservada")
    check_axe(page)
    shoot(page, "kiosk-home-es")


def test_he_reads_acknowledges_and_appeals_a_notice_in_spanish(
    page: Page, server: DemoServer, notice_id: int
) -> None:
    enter(page, server)
    page.click(f"a[href='/me/notices/{notice_id}']")
    expect(page.locator("h1")).to_have_text(f"Aviso {notice_id}")
    body = page.locator("main")
    expect(body).to_contain_text(SPANISH)
    expect(body).to_contain_text("Plazo para apelar")
    assert ENGLISH not in body.inner_text()
    check_axe(page)
    shoot(page, "kiosk-notice-es")

    page.click("text=He leído este aviso")
    expect(page.locator(".flash")).to_have_text("Ha confirmado que leyó este aviso.")
    expect(page.locator(".acknowledged")).to_contain_text("Confirmó que leyó este aviso")

    # An appeal without words is refused beside its field, in Spanish.
    page.fill("#f-text", "   ")
    page.click("text=Presentar mi apelación")
    expect(page.locator("#f-text-error")).to_contain_text("Escriba por qué apela")
    expect(page.locator(".error-summary a[href='#f-text']")).to_be_visible()
    check_axe(page)
    shoot(page, "kiosk-appeal-error-es")

    page.fill("#f-text", "Necesito hablar más tiempo con mis hijas.")
    page.click("text=Presentar mi apelación")
    expect(page).to_have_url(re.compile(r"/me(#appeals)?$"))
    expect(page.locator(".flash")).to_contain_text("está presentada")
    appeals = page.locator("#appeals ~ table")
    expect(appeals).to_contain_text("A la espera de respuesta")
    expect(appeals.locator(f"a[href='/me/notices/{notice_id}']")).to_be_visible()
    check_axe(page)
    shoot(page, "kiosk-appealed-es")

    # A second appeal against the same notice is refused, in words.
    page.goto(f"/me/notices/{notice_id}")
    page.fill("#f-text", "Otra vez.")
    page.click("text=Presentar mi apelación")
    expect(page.locator("#f-text-error")).to_contain_text("Ya hay una apelación abierta")


def test_the_language_switch_wins_over_his_stored_language(
    page: Page, server: DemoServer, notice_id: int
) -> None:
    enter(page, server)
    page.select_option("#lang-select", "en")
    page.click("form.language button[type=submit]")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Hello, R. Salazar")
    page.goto(f"/me/notices/{notice_id}")
    expect(page.locator("main")).to_contain_text(ENGLISH)
    assert SPANISH not in page.locator("main").inner_text()
    check_axe(page)
    shoot(page, "kiosk-notice-en")


def test_pages_not_his_are_not_found_and_other_kinds_go_home(
    page: Page, server: DemoServer
) -> None:
    enter(page, server)
    missing = page.goto("/me/notices/999999")
    assert missing is not None and missing.status == 404
    page.context.clear_cookies()
    sign_in(page, "daughter", server.demo.family_password)
    expect(page).to_have_url(re.compile(r"/family$"))
    page.goto("/me")
    expect(page).to_have_url(re.compile(r"/family$"))


@pytest.mark.parametrize("feature", ["kiosk", "family"])
def test_every_word_of_the_kiosk_and_the_portal_has_its_spanish(feature: str) -> None:
    """Each msgid the templates and pages.py use (``_``, ``ngettext``) is in the
    feature's Spanish catalog or the shared one, with a translation."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    web = Path(__file__).parents[2] / "src" / "kinline" / "web"
    folder = web / feature
    found = {
        message if isinstance(message, str) else message[0]
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(folder),
            [("**.py", "python"), ("**/templates/**.html", "jinja2")],
            options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
            keywords={"_": None, "ngettext": (1, 2)},
        )
    }
    assert len(found) > 40
    catalogs = []
    for place in (folder, web):
        with (place / "locale/es/LC_MESSAGES/pages.po").open("rb") as po:
            catalogs.append(read_po(po))
    missing = [
        msgid
        for msgid in sorted(found)
        if not any((entry := c.get(msgid)) is not None and entry.string for c in catalogs)
    ]
    assert missing == []
