"""The staff console in chromium, on the demo facility: a security officer finds
R. Salazar, imposes a rule through its what-if preview (which names the contact
it reaches and the court order it overrides), sees it in force with its notice,
reads it in Spanish, and lifts it; every queue page opens, each axe-checked and
screenshotted; a records clerk sees no impose button and is refused its POST."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyotp
import pytest
from _browser import BROWSER, DemoServer, check_axe, shoot, sign_in
from playwright.sync_api import Page, expect

from kinline.appeals.service import file_appeal
from kinline.db.engine import Database
from kinline.identity.model import Binding, Kind, Role
from kinline.identity.service import add_subject
from kinline.identity.signin import enroll_totp, set_password
from kinline.notices.service import list_notices
from kinline.visits.booking import book

pytestmark = BROWSER

F = "usp-red-mesa"
CONSOLE = f"/staff/{F}"
PASSWORD = "a long pass phrase 42"


@dataclass(frozen=True)
class Staff:
    login: str
    totp: str

    def sign_in(self, page: Page) -> None:
        sign_in(page, self.login, PASSWORD, pyotp.TOTP(self.totp).now())
        expect(page).to_have_url(re.compile(f"{CONSOLE}$"))


@pytest.fixture(scope="module")
def staff(server: DemoServer) -> dict[Role, Staff]:
    """A member of staff of each role the tests need, in the server's database;
    and something in each queue: an appeal, a visit booked next Thursday."""
    db = Database(server.server.database_url)
    now = datetime.now(UTC)
    made: dict[Role, Staff] = {}
    try:
        for role in (Role.SECURITY, Role.RECORDS, Role.WARDEN):
            login = f"{role}-officer"
            subject = add_subject(
                db, f"{role.title()} officer", Kind.STAFF, at=now, actor="test",
                bindings=(Binding(F, role=role),), login=login,
            )  # fmt: skip
            set_password(db, subject.id, PASSWORD, at=now, actor="test")
            made[role] = Staff(login, enroll_totp(db, subject.id, at=now, actor="test").secret)
        latest = max(list_notices(db, F, "salazar"), key=lambda n: n.created_at)
        file_appeal(
            db, F, person_id="salazar", filed_by="person", filer="R. Salazar",
            text="Please let my daughters call.", at=now, actor="test", notice_id=latest.id,
        )  # fmt: skip
        answer = book(
            db, F, "salazar", "video-thu", _thursday(), ["daughter-a"],
            booker="staff", actor="test", now=now,
        )  # fmt: skip
        assert answer.allowed, answer
    finally:
        db.dispose()
    return made


def _thursday() -> date:
    today = datetime.now(UTC).date() + timedelta(days=1)
    return today + timedelta(days=(3 - today.weekday()) % 7)


def test_security_imposes_a_rule_through_its_preview_and_lifts_it(
    page: Page, staff: dict[Role, Staff]
) -> None:
    staff[Role.SECURITY].sign_in(page)
    expect(page).to_have_url(re.compile(f"{CONSOLE}$"))
    expect(page.locator("h1")).to_have_text("Staff console")
    check_axe(page)
    shoot(page, "staff-console")

    page.fill("#f-q", "salaz")
    page.click("form[role=search] button")
    expect(page.locator("h1")).to_have_text("People")
    check_axe(page)
    shoot(page, "staff-people")
    page.click("text=R. Salazar")
    expect(page.locator("h1")).to_have_text("R. Salazar")
    rules = page.locator("#rules + table")
    expect(rules).to_contain_text("Calls with children suspended pending review.")
    expect(page.locator("#conflicts + ul")).to_contain_text("overrides the court order")
    expect(page.locator("#allowances + p + table, #allowances + table").first).to_contain_text(
        "E. Salazar"
    )
    # Security staff have no need to see counsel: the privileged contact is left out.
    expect(page.locator("#contacts + table")).not_to_contain_text("D. Ruiz")
    expect(page.locator("#timeline + .timeline svg")).to_be_visible()
    check_axe(page)
    shoot(page, "staff-person")

    page.click("#impose")
    expect(page.locator("h1")).to_have_text("Impose a rule")
    check_axe(page)
    shoot(page, "staff-impose-form")
    page.fill("#f-rule_id", "sam-daughter-a-video")
    page.select_option("#f-authority", "security_measure")
    page.select_option("#f-kind", "deny")
    page.select_option("#f-channel", "phone")
    page.get_by_label("A. Salazar").check()
    page.get_by_label(re.compile("Two 15-minute calls")).check()
    page.fill("#f-text_en", "Calls with A. Salazar suspended during the review.")
    page.fill("#f-text_es", "Llamadas con A. Salazar suspendidas durante la revisión.")
    page.click("text=Preview what it would change")
    # Without a reason, nothing is previewed: the error is beside the field.
    expect(page.locator("#f-reason-error")).to_contain_text("Give the reason")
    check_axe(page)
    page.fill("#f-reason", "Security review of calls abroad.")
    page.click("text=Preview what it would change")

    expect(page.locator("h1")).to_have_text("What this rule would change")
    outcomes = page.locator("table.outcomes")
    expect(outcomes).to_contain_text("A. Salazar")
    expect(outcomes).not_to_contain_text("E. Salazar")
    expect(page.locator("ul.overridden")).to_contain_text(
        "Two 15-minute calls a month with his daughters."
    )
    expect(page.locator("ul.overridden")).to_contain_text("order-17")
    check_axe(page)
    shoot(page, "staff-impose-preview")
    page.click("form.confirm button")
    # It overrides a recorded court order: saving asks for the authority relied on.
    expect(page.locator("#f-authority_cited-error")).to_be_visible()
    check_axe(page)
    page.fill("#f-authority_cited", "28 CFR 540.100(a)")
    page.click("text=Preview what it would change")
    expect(page.locator("h1")).to_have_text("What this rule would change")
    expect(page.locator("main")).to_contain_text("28 CFR 540.100(a)")
    page.click("form.confirm button")

    expect(page.locator("h1")).to_have_text("R. Salazar")
    expect(page.locator(".flash")).to_contain_text("The rule is in force")
    text = "Calls with A. Salazar suspended during the review."
    expect(page.locator("#rules + table")).to_contain_text(text)
    spanish = "Llamadas con A. Salazar suspendidas durante la revisión."
    # The notice written to him quotes the rule (in his language, Spanish, where given).
    expect(page.locator("#notices + table tr.notice").first).to_contain_text(
        re.compile(f"{re.escape(text)}|{re.escape(spanish)}")
    )
    expect(page.locator("#conflicts + ul")).to_contain_text(f"“{text}” overrides")

    page.select_option("#lang-select", "es")
    page.click("form.language button[type=submit]")
    expect(page.locator("#rules + table")).to_contain_text(
        "Llamadas con A. Salazar suspendidas durante la revisión."
    )
    check_axe(page)
    shoot(page, "staff-person-es")
    page.select_option("#lang-select", "en")
    page.click("form.language button[type=submit]")

    page.get_by_role("link", name=f"Lift {text}").click()
    expect(page.locator("h1")).to_have_text("Lift a rule")
    expect(page.locator("table.outcomes")).to_contain_text("A. Salazar")
    page.click("text=Lift the rule")
    expect(page.locator("#f-reason-error")).to_contain_text("Give the reason")
    check_axe(page)
    shoot(page, "staff-lift")
    page.fill("#f-reason", "Review finished.")
    page.click("text=Lift the rule")
    expect(page.locator(".flash")).to_contain_text("The rule is lifted")
    expect(page.locator("#rules + table")).not_to_contain_text(text)
    response = page.goto(f"{CONSOLE}/rules/sam-daughter-a-video/lift")
    assert response is not None and response.status == 409
    expect(page.locator("h1")).to_have_text("This rule has already ended")
    check_axe(page)

    # From the console: the person is chosen first, then their contacts are offered.
    page.goto(f"{CONSOLE}/rules/new")
    expect(page.locator("#f-contacts")).to_have_count(0)
    check_axe(page)
    page.select_option("#f-choose-person", "salazar")
    page.click("form.choose-person button")
    expect(page.locator("#f-contacts")).to_contain_text("M. Salazar")
    expect(page.locator("#f-person_id")).to_have_value("salazar")

    # A video deny would refuse the visit booked next Thursday: the preview says so.
    page.fill("#f-rule_id", "no-video-a")
    page.select_option("#f-channel", "video")
    page.get_by_label("A. Salazar").check()
    page.fill("#f-text_en", "No video calls with A. Salazar.")
    page.fill("#f-reason", "Review.")
    page.click("text=Preview what it would change")
    visits = page.locator("#bookings + table")
    expect(visits).to_contain_text("A. Salazar")
    expect(visits).to_contain_text("Video call not allowed")
    expect(visits.locator("td").last).to_have_text("Yes")
    check_axe(page)
    shoot(page, "staff-impose-preview-visit")


def test_every_queue_page(page: Page, staff: dict[Role, Staff]) -> None:
    staff[Role.WARDEN].sign_in(page)
    page.goto(f"{CONSOLE}/approvals")
    expect(page.locator("h1")).to_have_text("Approvals")
    expect(page.locator("main")).to_contain_text("E. Salazar")  # the wife's application
    check_axe(page)
    shoot(page, "staff-approvals")
    # The wife's application waits on her supervising officer's consent: approving
    # it now is refused, and the reason is shown beside the form.
    wife = page.locator("section.queue-item", has_text="E. Salazar")
    wife.locator("textarea").fill("Spouse; visits approved.")
    wife.locator("button").click()
    error = page.locator("section.queue-item", has_text="E. Salazar").locator(".error-message")
    expect(error).to_be_visible()
    expect(page.locator(".error-summary")).to_be_visible()
    check_axe(page)
    shoot(page, "staff-approvals-refused")
    row = page.locator("tr", has_text="J. Salazar")
    row.locator("textarea").fill("Brother; video calls approved.")
    row.locator("select").select_option("video")
    row.locator("button").click()
    expect(page.locator(".flash")).to_contain_text("Approved")
    expect(page.locator("tr", has_text="J. Salazar")).not_to_contain_text("Video")

    thursday = _thursday()
    page.goto(f"{CONSOLE}/visits?day={thursday.isoformat()}")
    expect(page.locator("h1")).to_contain_text("Visits on")
    table = page.locator("table", has_text="R. Salazar")
    expect(table).to_contain_text("A. Salazar")
    expect(table).to_contain_text("Booked")
    check_axe(page)
    shoot(page, "staff-visits")
    table.get_by_role("button", name=re.compile("Check in")).click()
    expect(page.locator(".flash")).to_contain_text("Checked in")
    expect(page.locator("table", has_text="R. Salazar")).to_contain_text("Checked in")

    page.goto(f"{CONSOLE}/rules")
    expect(page.locator("h1")).to_have_text("Rules in force")
    everyone = page.locator("tr", has_text="Standard telephone allowance.")
    expect(everyone).to_contain_text("Everyone at the facility")
    expect(everyone.get_by_role("link", name=re.compile("^Lift"))).to_be_visible()
    check_axe(page)
    shoot(page, "staff-rules")

    page.goto(f"{CONSOLE}/appeals")
    expect(page.locator("h1")).to_have_text("Appeals to answer")
    expect(page.locator("table")).to_contain_text("Please let my daughters call.")
    check_axe(page)
    shoot(page, "staff-appeals")

    page.goto(f"{CONSOLE}/notices/overdue")
    expect(page.locator("h1")).to_have_text("Notices nobody has acknowledged")
    expect(page.locator("table")).to_contain_text("R. Salazar")
    check_axe(page)
    shoot(page, "staff-overdue-notices")


def test_a_records_clerk_may_not_impose(page: Page, staff: dict[Role, Staff]) -> None:
    staff[Role.RECORDS].sign_in(page)
    page.goto(f"{CONSOLE}/people/salazar")
    expect(page.locator("h1")).to_have_text("R. Salazar")
    # Records keep the contact lists: counsel is shown to them.
    expect(page.locator("#contacts + table")).to_contain_text("D. Ruiz")
    expect(page.locator("#impose")).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("^Lift"))).to_have_count(0)
    check_axe(page)
    shoot(page, "staff-person-records")
    token = page.locator("form.signout input[name=csrf_token]").get_attribute("value")
    assert token
    answer = page.request.post(
        f"{CONSOLE}/rules",
        form={
            "csrf_token": token, "person_id": "salazar", "rule_id": "clerk-rule",
            "authority": "sanction", "kind": "deny", "channel": "phone", "reason": "x",
        },
        max_redirects=0,
    )  # fmt: skip
    assert answer.status == 403
    response = page.goto(f"{CONSOLE}/rules/new?person_id=salazar")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")
    check_axe(page)
    page.goto(f"{CONSOLE}/people/salazar")
    expect(page.locator("#rules + table")).not_to_contain_text("clerk-rule")
