"""The family portal in chromium: A. Salazar, his daughter in Mexico City
(approved for video visits, her time zone America/Mexico_City), reads the
portal in Spanish, requests a video visit, sees it on her clock beside the
facility's (Denver), downloads its calendar file, and cancels it; her sister's
visit is not found for her. Every page is axe-checked and screenshotted."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from _browser import BROWSER, DemoServer, check_axe, shoot, sign_in
from playwright.sync_api import Browser, Page, expect

pytestmark = BROWSER

FACILITY = "usp-red-mesa"
DENVER = ZoneInfo("America/Denver")
MEXICO = ZoneInfo("America/Mexico_City")


@pytest.fixture
def page(browser: Browser, server: DemoServer) -> Iterator[Page]:
    """A browser in Mexico: Spanish first, on Mexico City's clock."""
    context = browser.new_context(
        base_url=server.base_url, locale="es-MX", timezone_id="America/Mexico_City",
        accept_downloads=True,
    )  # fmt: skip
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


def enter(page: Page, server: DemoServer) -> None:
    sign_in(page, "daughter", server.demo.family_password)
    expect(page).to_have_url(re.compile(r"/family$"))
    page.reload()  # a full load: <html lang> is this page's


def next_tuesday() -> date:
    today = datetime.now(UTC).astimezone(DENVER).date()
    return today + timedelta(days=(1 - today.weekday()) % 7 or 7)


@pytest.fixture(scope="module")
def sisters_visit(server: DemoServer) -> int:
    """A video visit staff booked for her sister (daughter-b): not hers to see."""
    with httpx.Client(base_url=server.base_url) as api:
        made = api.post(
            "/v1/visits/bookings",
            params={"facility_id": FACILITY},
            headers={"Authorization": f"Bearer {server.demo.token}"},
            json={
                "person_id": "salazar",
                "template_id": "video-thu",
                "date": (next_tuesday() + timedelta(days=2)).isoformat(),
                "visitors": ["daughter-b"],
            },
        )
        assert made.status_code == 200 and made.json()["allowed"], made.text
        return int(made.json()["booking"]["id"])


def test_she_books_a_video_visit_on_her_own_clock_and_downloads_it(
    page: Page, server: DemoServer, tmp_path: Path
) -> None:
    enter(page, server)
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("h1")).to_have_text("Bienvenido/a, A. Salazar")
    expect(page.locator("main")).to_contain_text("America/Mexico_City")
    application = page.locator("tr.application[data-contact=daughter-a]")
    expect(application).to_contain_text("R. Salazar")
    expect(application).to_contain_text("Videollamada")
    expect(application).to_contain_text("Aprobado/a")
    # The notice of her approval, in her words; no notice about a rule is hers.
    about = page.locator("#about-you ~ table")
    expect(about).to_contain_text("Está aprobado/a para visitar a R. Salazar")
    expect(about).not_to_contain_text("sam-children")
    check_axe(page)
    shoot(page, "family-home-es")

    page.click("nav >> text=Reservar una visita")
    expect(page.locator("h1")).to_have_text("Reservar una visita")
    tuesday = next_tuesday()
    choice = page.locator(f"input[name=slot][value='video-tue/{tuesday.isoformat()}']")
    expect(choice).to_have_count(1)
    check_axe(page)
    shoot(page, "family-book-es")
    # Sending no choice is refused beside the choices, in Spanish.
    page.click("text=Solicitar esta visita")
    expect(page.locator("#f-slot-error")).to_contain_text("Elija una sesión")
    check_axe(page)

    page.locator(f"input[name=slot][value='video-tue/{tuesday.isoformat()}']").check()
    page.click("text=Solicitar esta visita")
    expect(page).to_have_url(re.compile(r"/family/visits/\d+$"))
    booking_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator(".flash")).to_contain_text("Su visita está solicitada")
    # 17:00 in Denver is 18:00 in Mexico City in winter, 17:00 in summer
    # (Mexico City keeps no daylight saving time since 2022): from the zones.
    starts = datetime.combine(tuesday, datetime.min.time().replace(hour=17), DENVER)
    own = page.locator("td.own-time")
    expect(own).to_contain_text(f"{starts.astimezone(MEXICO):%H:%M}")
    expect(own).to_contain_text("America/Mexico_City")
    expect(page.locator("td.facility-time")).to_contain_text("17:00")
    expect(page.locator("main")).to_contain_text("Solicitada: a la espera del personal")
    check_axe(page)
    shoot(page, "family-visit-es")

    with page.expect_download() as waited:
        page.click("text=Añadir a mi calendario")
    saved = tmp_path / "visit.ics"
    waited.value.save_as(saved)
    ics = saved.read_text()
    assert f"DTSTART;TZID=America/Denver:{tuesday:%Y%m%d}T170000" in ics
    assert f"UID:visit-{booking_id}@{FACILITY}.kinline" in ics
    # Requested, not yet answered by staff: her calendar must not call it confirmed.
    assert "STATUS:TENTATIVE" in ics and "STATUS:CONFIRMED" not in ics
    assert "SEQUENCE:0" in ics

    page.goto("/family")
    expect(page.locator(f"tr.booking[data-booking='{booking_id}']")).to_contain_text(
        f"{starts.astimezone(MEXICO):%H:%M}"
    )

    # Cancelling asks why, then the visit is gone from her list.
    page.goto(f"/family/visits/{booking_id}")
    page.click("text=Cancelar la visita")
    expect(page.locator("#f-reason-error")).to_be_visible()
    page.fill("#f-reason", "Tengo examen ese día.")
    page.click("text=Cancelar la visita")
    expect(page).to_have_url(re.compile(r"/family$"))
    expect(page.locator(".flash")).to_have_text("Su visita está cancelada.")
    expect(page.locator(f"tr.booking[data-booking='{booking_id}']")).to_have_count(0)
    check_axe(page)


def test_her_sisters_visit_is_not_found_for_her(
    page: Page, server: DemoServer, sisters_visit: int
) -> None:
    enter(page, server)
    for path in (f"/family/visits/{sisters_visit}", f"/family/visits/{sisters_visit}/visit.ics"):
        answer = page.goto(path)
        assert answer is not None and answer.status == 404, path
    expect(page.locator("h1")).to_be_visible()
    check_axe(page)
    shoot(page, "family-not-found-es")
    page.goto("/family")
    expect(page.locator(f"tr.booking[data-booking='{sisters_visit}']")).to_have_count(0)


def test_her_applications_page(page: Page, server: DemoServer) -> None:
    enter(page, server)
    page.click("nav >> text=Solicitar visitar")
    expect(page.locator("h1")).to_have_text("Solicitar visitar")
    # Approved already: nothing more to apply for.
    expect(page.locator("main")).to_contain_text("Ya tiene una solicitud")
    check_axe(page)
    shoot(page, "family-apply-es")


def test_a_new_family_member_registers_and_applies_to_visit(page: Page, server: DemoServer) -> None:
    page.goto("/family/register")
    expect(page.locator("h1")).to_have_text("Abrir una cuenta familiar")
    check_axe(page)
    shoot(page, "family-register-es")
    page.select_option("#f-relationship", "sibling")
    page.fill("#f-person_id", "salazar")
    page.fill("#f-person_name", "Otro Nombre")  # not his name: refused, not confirmed
    page.fill("#f-name", "J. Salazar Ruiz")
    page.fill("#f-phone", "+52 55 1234 5678")
    page.fill("#f-email", "primo@example.org")
    page.fill("#f-password", "una frase larga de paso")
    page.click("text=Abrir mi cuenta")
    expect(page.locator("#f-person_id-error")).to_contain_text("ninguna persona recluida")
    expect(page.locator("#f-password")).to_have_value("")  # never sent back
    check_axe(page)
    shoot(page, "family-register-error-es")

    page.fill("#f-person_name", "r. salazar")
    page.fill("#f-password", "una frase larga de paso")
    page.click("text=Abrir mi cuenta")
    expect(page).to_have_url(re.compile(r"/signin\?next=%2Ffamily$"))
    expect(page.locator(".flash")).to_contain_text("Su cuenta está abierta")
    sign_in(page, "primo@example.org", "una frase larga de paso")
    expect(page).to_have_url(re.compile(r"/family$"))
    page.reload()
    mine = page.locator("tr.application")
    expect(mine).to_contain_text("A la espera de que el personal le apruebe como contacto")
    expect(mine).to_contain_text("No ha solicitado visitar")
    check_axe(page)
    shoot(page, "family-registered-es")

    page.click("nav >> text=Solicitar visitar")
    page.fill("#f-date_of_birth", "1999-02-30")
    page.click("text=Enviar mi solicitud")
    expect(page.locator("#f-date_of_birth-error")).to_contain_text("año-mes-día")
    check_axe(page)
    page.fill("#f-date_of_birth", "1999-02-28")
    page.fill("#f-address", "Calle Durango 12, Ciudad de México")
    page.fill("#f-country", "MX")
    page.fill("#f-timezone", "America/Mexico_City")
    page.click("text=Enviar mi solicitud")
    expect(page).to_have_url(re.compile(r"/family$"))
    expect(page.locator(".flash")).to_have_text("Su solicitud está enviada.")
    expect(page.locator("tr.application")).to_contain_text("a la espera de una decisión")
