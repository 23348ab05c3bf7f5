"""Counsel and court views in chromium, on the demo facility: counsel opens
their client and the compliance of the supermax case's order (entitled,
delivered, and the cause of a shortfall: the security measure that overrode
the order and the call it refused), in English and Spanish; the court of case
CV-17 sees its order; counsel for someone else is told the pages do not exist.
Every page is axe-checked and screenshotted."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from _browser import BROWSER, DemoServer, check_axe, shoot, sign_in
from playwright.sync_api import Page, expect

from kinline.changes.service import impose_rule
from kinline.db.engine import Database
from kinline.identity.model import Binding, Kind
from kinline.identity.service import add_subject
from kinline.identity.signin import set_password
from kinline.people.model import Person
from kinline.people.service import admit_person

pytestmark = BROWSER

ORDER = "/orders/usp-red-mesa/order-17?from=2024-03&to=2024-06"
OTHER_PASSWORD = "another counsel's long pass phrase"


@pytest.fixture(scope="module")
def other_counsel(server: DemoServer) -> str:
    """A second person at the facility and a counsel bound to them alone."""
    db = Database(server.server.database_url)
    now = datetime.now(UTC)
    try:
        admit_person(db, Person("usp-red-mesa", "okafor", "T. Okafor", "en"), at=now, actor="test")
        subject = add_subject(
            db,
            "Counsel for Okafor",
            Kind.COUNSEL,
            at=now,
            actor="test",
            bindings=(Binding("usp-red-mesa", person_id="okafor"),),
            login="okafor-counsel",
        )
        set_password(db, subject.id, OTHER_PASSWORD, at=now, actor="test")
    finally:
        db.dispose()
    return "okafor-counsel"


@pytest.fixture(scope="module")
def order_for_everyone(server: DemoServer) -> str:
    """A court order for every person held: its report counts everyone's calls."""
    db = Database(server.server.database_url)
    try:
        impose_rule(
            db,
            "usp-red-mesa",
            {
                "id": "order-all",
                "authority": "court_order",
                "kind": "grant",
                "channel": "phone",
                "person": "all",
                "contacts": {"relationships": ["child"]},
                "quota": {"count": 1, "per": "month"},
                "case_number": "CV-88",
                "text": "A call a month with one's children, for everyone.",
            },
            at=datetime.now(UTC),
            actor="test",
        )
    finally:
        db.dispose()
    return "/orders/usp-red-mesa/order-all"


def test_counsel_reads_the_order_compliance_and_its_causes(page: Page, server: DemoServer) -> None:
    sign_in(page, "counsel", server.demo.counsel_password)
    expect(page).to_have_url(f"{server.base_url}/counsel")
    expect(page.locator("h1")).to_have_text("The people you represent")
    check_axe(page)
    shoot(page, "counsel-home")

    page.get_by_role("link", name="R. Salazar").click()
    expect(page.locator("h1")).to_have_text("R. Salazar")
    expect(page.get_by_role("heading", name="Rules in force")).to_be_visible()
    # Counsel sees the privileged legal line to themselves.
    expect(page.locator("main")).to_contain_text("Law Office of D. Ruiz")
    check_axe(page)
    shoot(page, "counsel-person")

    order_link = page.get_by_role("link", name="Two 15-minute calls a month with his daughters.")
    expect(order_link).to_have_attribute("href", "/orders/usp-red-mesa/order-17")
    page.goto(ORDER)
    expect(page.locator("h1")).to_have_text("Court order compliance")
    summary = page.locator("p.summary")
    expect(summary).to_have_text(
        "From Mar 2024 to Jun 2024 the order entitled 8; 3 were delivered; 6 are missing."
    )
    # The table beside the chart: May 2024, entitled 2, delivered 0, one refusal, 2 short.
    may = page.locator("table.chart-table tr", has=page.locator("th", has_text="May 2024"))
    expect(may.locator("td")).to_have_text(["2", "0", "0", "1", "2"])
    # The charts are named for a screen reader.
    expect(page.locator("svg[role=img]")).to_have_count(2)
    expect(page.locator("svg[role=img] title").first).to_have_text(
        "Entitled against delivered, by period"
    )
    causes = page.locator("section.period", has=page.locator("h3", has_text="May 2024"))
    expect(causes).to_contain_text("a phone session with A. Salazar was refused")
    expect(causes).to_contain_text("This rule prohibits telephone calls with this contact.")
    expect(causes).to_contain_text(
        "“Calls with children suspended pending review.” (security measure) stood over the "
        "order on 31 days, from May 1, 2024 to May 31, 2024."
    )
    check_axe(page)
    shoot(page, "order-compliance-en")

    page.select_option("#lang-select", "es")
    page.click("form.language button[type=submit]")
    expect(page.locator("h1")).to_have_text("Cumplimiento de la orden judicial")
    expect(page.locator("p.summary")).to_contain_text("faltan 6")
    expect(page.locator("section.period").nth(1)).to_contain_text("se impuso a la orden 31 días")
    check_axe(page)
    shoot(page, "order-compliance-es")


def test_a_bad_range_is_an_error_beside_its_field(page: Page, server: DemoServer) -> None:
    sign_in(page, "counsel", server.demo.counsel_password)
    expect(page).to_have_url(f"{server.base_url}/counsel")
    page.goto("/orders/usp-red-mesa/order-17?from=2024-06&to=2024-03")
    expect(page.locator(".error-summary")).to_be_visible()
    expect(page.locator("#f-to")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-to-error")).to_contain_text("The last month comes before the first")
    check_axe(page)
    page.select_option("#lang-select", "es")
    page.click("form.language button[type=submit]")
    expect(page.locator("#f-to-error")).to_contain_text("El último mes es anterior al primero")
    # A rule that is not a court order has no compliance to show.
    response = page.goto("/orders/usp-red-mesa/sam-one-call")
    assert response is not None and response.status == 422
    expect(page.locator("main")).to_contain_text("no es una orden judicial")
    check_axe(page)


def test_the_court_sees_its_order(page: Page, server: DemoServer) -> None:
    sign_in(page, "court", server.demo.court_password)
    expect(page).to_have_url(f"{server.base_url}/court")
    expect(page.locator("h1")).to_have_text("Court orders")
    row = page.locator("tr", has=page.locator("td", has_text="CV-17"))
    expect(row).to_have_count(1)
    check_axe(page)
    shoot(page, "court-home")
    row.get_by_role("link").click()
    expect(page.locator("h1")).to_have_text("Court order compliance")
    expect(page.locator("table.facts")).to_contain_text("CV-17")
    check_axe(page)
    # A court never reads a person's record.
    response = page.goto("/counsel/people/salazar")
    assert response is not None and response.status == 404


def test_counsel_for_someone_else_finds_nothing(
    page: Page, server: DemoServer, other_counsel: str
) -> None:
    sign_in(page, other_counsel, OTHER_PASSWORD)
    expect(page).to_have_url(f"{server.base_url}/counsel")
    expect(page.locator("main")).to_contain_text("T. Okafor")
    for path in ("/counsel/people/salazar", ORDER):
        response = page.goto(path)
        assert response is not None and response.status == 404, path
        expect(page.locator("h1")).to_have_text("Page not found")
    check_axe(page)
    shoot(page, "counsel-other-404")
    page.goto("/court")
    expect(page.locator("main")).not_to_contain_text(re.compile("CV-17|daughters"))


def test_counsel_never_reads_an_order_for_everyone(
    page: Page, server: DemoServer, order_for_everyone: str
) -> None:
    """Counsel may read the rules for everyone, but not a report that counts
    every person's calls: the order is not listed and its page is not found."""
    sign_in(page, "counsel", server.demo.counsel_password)
    expect(page).to_have_url(f"{server.base_url}/counsel")
    page.goto("/court")
    expect(page.locator("main")).to_contain_text("Two 15-minute calls a month")
    expect(page.locator("main")).not_to_contain_text("for everyone")
    page.goto("/counsel/people/salazar?facility_id=usp-red-mesa")
    # His notices may quote the rule; his court orders do not list it, nor link its report.
    orders = page.locator("h2:has-text('Court orders') + ul")
    expect(orders).to_contain_text("Two 15-minute calls a month")
    expect(orders).not_to_contain_text("for everyone")
    expect(page.locator("a[href$='/order-all']")).to_have_count(0)
    response = page.goto(order_for_everyone)
    assert response is not None and response.status == 404
