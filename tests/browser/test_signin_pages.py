"""Signing in and out through the pages, in chromium: the form, the language,
the errors beside their fields, the redirect to sign-in, and CSRF."""

from __future__ import annotations

import re

import httpx
import pyotp
import pytest
from _browser import BROWSER, DemoServer, check_axe, shoot, sign_in
from playwright.sync_api import Page, expect

pytestmark = BROWSER


def test_staff_signs_in_reads_spanish_and_signs_out(page: Page, server: DemoServer) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/signin\?next=%2F$"))
    expect(page.locator("h1")).to_have_text("Sign in")
    check_axe(page)
    shoot(page, "signin-en")

    demo = server.demo
    sign_in(page, "staff", demo.staff_password, pyotp.TOTP(demo.totp_secret).now())
    # Staff start at their facility's console.
    expect(page).to_have_url(f"{server.base_url}/staff/usp-red-mesa")
    expect(page.locator("h1")).to_have_text("Staff console")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    check_axe(page)
    shoot(page, "home-staff-en")

    page.select_option("#lang-select", "es")
    page.click("form.language button[type=submit]")
    expect(page.locator("h1")).to_have_text("Consola del personal")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("form.signout button")).to_have_text("Cerrar sesión")
    check_axe(page)
    shoot(page, "home-staff-es")

    page.click("form.signout button[type=submit]")
    expect(page).to_have_url(re.compile(r"/signin$"))
    expect(page.locator(".flash")).to_have_text("Ha cerrado la sesión.")
    expect(page.locator("h1")).to_have_text("Iniciar sesión")
    check_axe(page)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/signin\?next=%2F$"))


def test_a_wrong_password_is_shown_beside_the_password(page: Page) -> None:
    page.goto("/signin")
    sign_in(page, "salazar", "not-the-password")
    error = page.locator("#f-password-error")
    expect(error).to_contain_text("The login or password is not right")
    expect(page.locator("#f-password")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-login")).to_have_value("salazar")
    expect(page.locator(".error-summary a[href='#f-password']")).to_be_visible()
    check_axe(page)
    shoot(page, "signin-wrong-password")


def test_an_empty_login_is_shown_beside_the_login(page: Page) -> None:
    page.goto("/signin")
    sign_in(page, "", "whatever")
    expect(page.locator("#f-login-error")).to_contain_text("Enter your login")
    check_axe(page)


def test_signing_in_goes_back_to_the_page_asked_for(page: Page, server: DemoServer) -> None:
    page.goto("/me?from=kiosk")
    expect(page).to_have_url(re.compile(r"/signin\?next=%2Fme%3Ffrom%3Dkiosk$"))
    sign_in(page, "salazar", server.demo.person_password)
    expect(page).to_have_url(f"{server.base_url}/me?from=kiosk")
    expect(page.locator("h1")).to_contain_text("R. Salazar")


def test_an_unknown_page_is_an_html_not_found(page: Page) -> None:
    response = page.goto("/no-such-page")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Page not found")
    check_axe(page)


# --- over plain HTTP ---------------------------------------------------------


@pytest.mark.parametrize(
    ("login", "attribute", "start"),
    [
        ("daughter", "family_password", "/family"),
        ("counsel", "counsel_password", "/counsel"),
        ("court", "court_password", "/court"),
    ],
)
def test_each_demo_login_signs_in(
    server: DemoServer, login: str, attribute: str, start: str
) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        token = _form_token(client)
        password = getattr(server.demo, attribute)
        sent = client.post(
            "/signin", data={"login": login, "password": password, "csrf_token": token}
        )
        assert sent.status_code == 303, sent.text
        assert client.cookies.get("kinline_session")
        home = client.get("/")
        assert home.status_code == 303
        assert home.headers["location"] == start
        landed = client.get(start)
        assert landed.status_code == 200
        assert "/signin" not in str(landed.url)


def _form_token(client: httpx.Client) -> str:
    page = client.get("/signin")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_a_form_without_its_csrf_token_is_refused(server: DemoServer) -> None:
    demo = server.demo
    with httpx.Client(base_url=server.base_url) as client:
        token = _form_token(client)
        form = {"login": "salazar", "password": demo.person_password}
        refused = client.post("/signin", data=form)
        assert refused.status_code == 403
        assert "text/html" in refused.headers["content-type"]
        assert client.post("/signin", data={**form, "csrf_token": "forged"}).status_code == 403
        assert client.cookies.get("kinline_session") is None

        assert client.post("/signin", data={**form, "csrf_token": token}).status_code == 303
        assert client.post("/language", data={"lang": "es"}).status_code == 403
        assert client.post("/signout", data={}).status_code == 403
        assert client.get("/me").status_code == 200  # still signed in
        assert client.post("/signout", data={"csrf_token": token}).status_code == 303
        signed_out = client.get("/me")
        assert signed_out.status_code == 303
        assert signed_out.headers["location"].startswith("/signin")


def test_a_bearer_token_does_not_open_a_page(server: DemoServer) -> None:
    headers = {"Authorization": f"Bearer {server.demo.token}"}
    with httpx.Client(base_url=server.base_url, headers=headers) as client:
        assert client.get("/v1/people").status_code == 200
        home = client.get("/")
        assert home.status_code == 303
        assert home.headers["location"] == "/signin?next=%2F"


def test_the_language_comes_from_accept_language_until_chosen(server: DemoServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        spanish = client.get("/signin", headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
        assert '<html lang="es">' in spanish.text
        assert "Iniciar sesión" in spanish.text
        token = _form_token(client)
        chosen = client.post(
            "/language",
            data={"lang": "en", "next": "/signin", "csrf_token": token},
            headers={"Accept-Language": "es"},
        )
        assert chosen.status_code == 303
        assert chosen.headers["location"] == "/signin"
        assert "max-age=31536000" in chosen.headers["set-cookie"].lower()
        again = client.get("/signin", headers={"Accept-Language": "es"})
        assert '<html lang="en">' in again.text
        elsewhere = client.post(
            "/language", data={"lang": "es", "next": "//evil.example/", "csrf_token": token}
        )
        assert elsewhere.headers["location"] == "/"
