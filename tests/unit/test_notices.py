"""Notice content is written in the person's language and states every required fact."""

from __future__ import annotations

from datetime import UTC, date, datetime

from kinline.notices.model import Addressee, Change, ChangeFacts, compose_notice

CHANGE = ChangeFacts(
    change=Change.IMPOSED,
    subject="sam-children",
    channel="phone",
    effective_at=datetime(2024, 5, 1, 14, tzinfo=UTC),
    authority="security_measure",
    rule_kind="deny",
    rule_text="Calls with children suspended pending review.",
    reason="Pending review.",
)
TO = Addressee("USP Red Mesa", "R. Salazar", datetime(2024, 5, 1, 8), date(2024, 5, 21))


def test_spanish_notice_states_the_rule_authority_dates_and_how_to_appeal() -> None:
    notice = compose_notice(CHANGE, TO, "es")
    assert notice.language == "es"
    assert notice.title == (
        "Nueva regla sobre sus llamadas telefónicas: Calls with children suspended pending review"
    )
    assert "sam-children" not in notice.title
    assert "Calls with children suspended pending review." in notice.body
    assert "medida de seguridad" in notice.body
    assert "Vigente desde: 2024-05-01 08:00" in notice.body
    assert "Puede apelar este cambio hasta el 2024-05-21." in notice.body
    assert "Cómo apelar" in notice.body
    assert "Motivo: Pending review." in notice.body


def test_english_notice_names_the_court_case() -> None:
    order = ChangeFacts(
        change=Change.LIFTED,
        subject="order-17",
        channel="phone",
        effective_at=datetime(2024, 6, 1, 6, tzinfo=UTC),
        authority="court_order",
        rule_text="Two calls a month.",
        case_number="2:23-cv-0117",
    )
    notice = compose_notice(order, TO, "en")
    assert notice.title == "Rule lifted on your telephone calls: Two calls a month"
    assert "(court order, case 2:23-cv-0117)" in notice.body
    assert "You may appeal this change until 2024-05-21." in notice.body


def test_a_language_without_a_catalog_falls_back_to_english() -> None:
    notice = compose_notice(CHANGE, TO, "vi")
    assert notice.language == "en"
    assert notice.body.startswith("To: R. Salazar, USP Red Mesa")


def test_an_approval_notice_names_the_contact() -> None:
    approval = ChangeFacts(
        change=Change.APPROVED,
        subject="wife:visit",
        channel="visit",
        effective_at=datetime(2024, 6, 10, 15, tzinfo=UTC),
        contact_name="E. Salazar",
    )
    assert compose_notice(approval, TO, "es").title == "E. Salazar aprobado/a para visitas"
    assert compose_notice(approval, TO, "en").title == "E. Salazar approved for visits"
