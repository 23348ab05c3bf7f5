"""Notice documents render to HTML and PDF in the person's language, with every fact
a person needs to understand and appeal the change, and survive hostile text."""

from __future__ import annotations

import shutil
import unicodedata
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from pypdf import PdfReader

import kinline.notices.messages as messages_module
import kinline.notices.render as render_module
from kinline.notices.document import NoticeDocument, OverriddenOrder
from kinline.notices.render import (
    languages,
    notice_text,
    render_html,
    render_pdf,
    resolve_language,
)

DENVER = ZoneInfo("America/Denver")
ORDER = NoticeDocument(
    notice_id=41,
    language="es",
    facility_id="usp-red-mesa",
    facility_name="USP Red Mesa",
    timezone="America/Denver",
    person_id="salazar",
    person_name="R. Salazar",
    change="imposed",
    subject="order-99",
    # 14:00 UTC is 08:00 in Denver, on daylight time (MDT) in May.
    effective_at=datetime(2024, 5, 1, 14, 0, tzinfo=UTC).astimezone(DENVER),
    appeal_deadline=date(2024, 5, 21),
    appeal_days=20,
    channel="phone",
    authority="court_order",
    rule_kind="grant",
    rule_text="Two 15-minute calls a month with his daughters.",
    case_number="1:23-cv-00456",
    reason="Ordered at the hearing of April 30.",
)
APPROVAL = replace(
    ORDER,
    notice_id=42,
    change="approved",
    subject="wife:visit",
    channel="visit",
    authority=None,
    rule_kind=None,
    rule_text=None,
    case_number=None,
    contact_name="E. Salazar",
    reason=None,
)
LOCALE = Path(render_module.__file__).with_name("locale")


def plain(text: str) -> str:
    """Compatibility forms folded (CLDR puts a narrow no-break space before AM)."""
    return unicodedata.normalize("NFKC", text)


def pdf_pages(data: bytes) -> list[str]:
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    return [plain(page.extract_text()) for page in PdfReader(BytesIO(data)).pages]


def test_spanish_html_states_rule_authority_case_times_and_how_to_appeal() -> None:
    html = plain(render_html(ORDER))
    assert '<html lang="es">' in html
    for expected in (
        "Aviso 41",
        "Nueva regla sobre sus llamadas telefónicas: Two 15-minute calls a month with his",
        "Centro",
        "USP Red Mesa",
        "R. Salazar",
        "Qué cambió",
        "Texto de la regla",
        "Two 15-minute calls a month with his daughters.",
        "Autoridad",
        "orden judicial",
        "Número de expediente",
        "1:23-cv-00456",
        "Motivo",
        "Ordered at the hearing of April 30.",
        "Vigente desde",
        "1 de mayo de 2024, 8:00 MDT",
        "Plazo para apelar",
        "21 de mayo de 2024",
        "Puede apelar este cambio hasta el 21 de mayo de 2024: 20 días",
        "Cómo apelar",
        "indicando el aviso 41",
    ):
        assert expected in html, expected
    assert "Appeal deadline" not in html


def test_english_html_uses_english_labels_and_dates() -> None:
    html = plain(render_html(replace(ORDER, language="en")))
    assert '<html lang="en">' in html
    for expected in (
        "Notice 41",
        "A new rule on your telephone calls: Two 15-minute calls a month with his daughters",
        "Authority",
        "court order",
        "Case number",
        "1:23-cv-00456",
        "May 1, 2024, 8:00 AM MDT",
        "Appeal deadline",
        "May 21, 2024",
        "You may appeal this change until May 21, 2024: 20 days",
        "How to appeal",
    ):
        assert expected in html, expected


def test_the_effective_time_is_the_facilitys_wall_time_with_its_zone() -> None:
    winter = replace(ORDER, effective_at=datetime(2024, 1, 15, 15, 30, tzinfo=UTC))
    assert ("Vigente desde", "15 de enero de 2024, 8:30 MST") in notice_text(winter).rows
    east = replace(winter, timezone="America/New_York", facility_name="FCI East")
    assert ("Vigente desde", "15 de enero de 2024, 10:30 EST") in notice_text(east).rows


def test_an_approval_names_the_contact_and_the_channel_not_a_rule() -> None:
    text = notice_text(APPROVAL)
    labels = dict(text.rows)
    assert text.headline == "E. Salazar está aprobado/a para visitas"
    assert labels["Contacto"] == "E. Salazar"
    assert labels["Medio"] == "visitas"
    assert labels["Qué cambió"] == "Ahora puede tener visitas con este contacto."
    assert "Autoridad" not in labels
    assert "Regla" not in labels


def test_an_unknown_language_falls_back_to_english() -> None:
    assert resolve_language("fr") == "en"
    assert resolve_language("es-MX") == "es"
    assert resolve_language("ES") == "es"
    assert resolve_language("pt-BR") == "en"
    text = notice_text(replace(ORDER, language="fr"))
    assert text.language == "en"
    assert text.heading == "Notice 41"
    assert '<html lang="en">' in render_html(replace(ORDER, language="fr"))


def test_languages_are_the_catalogs_in_the_locale_folder() -> None:
    assert {"en", "es"} <= languages()
    assert languages() == {path.name for path in LOCALE.iterdir() if path.is_dir()}


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_label_the_renderer_asks_for_is_in_each_catalog(language: str) -> None:
    asked = {
        message
        for module in (render_module, messages_module)  # notices, and emails of their own
        for _, message, _, _ in extract_from_file("python", module.__file__)
    }
    with (LOCALE / language / "LC_MESSAGES" / "kinline.po").open("rb") as po:
        catalog = read_po(po)
    listed = {message.id for message in catalog if message.id}
    assert asked == listed
    if language != "en":
        untranslated = [message.id for message in catalog if message.id and not message.string]
        assert untranslated == []


def test_html_escapes_hostile_text() -> None:
    hostile = '<script>alert("x")</script>'
    html = render_html(
        replace(
            ORDER,
            facility_name=f"Unit {hostile}",
            person_name=f'"><img src=x onerror=alert(1)>{hostile}',
            rule_text=hostile,
            reason=f"{hostile} & more",
            case_number=hostile,
        )
    )
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&amp; more" in html


def test_pdf_is_a_readable_letter_in_spanish() -> None:
    [page] = pdf_pages(render_pdf([ORDER]))
    for expected in (
        "Aviso 41",
        "Texto de la regla",
        "Two 15-minute calls a month with his daughters.",
        "orden judicial",
        "Número de expediente",
        "1:23-cv-00456",
        "1 de mayo de 2024, 8:00 MDT",
        "Plazo para apelar",
        "21 de mayo de 2024",
        "Cómo apelar",
    ):
        assert expected in page, expected


def test_pdf_puts_each_notice_on_its_own_page_in_its_own_language() -> None:
    english = replace(APPROVAL, notice_id=43, language="en")
    pages = pdf_pages(render_pdf([ORDER, english, APPROVAL]))
    assert len(pages) == 3
    assert "Aviso 41" in pages[0]
    assert "Notice 43" in pages[1]
    assert "E. Salazar is approved for visits" in pages[1]
    assert "May 21, 2024" in pages[1]
    assert "Aviso 42" in pages[2]
    assert "Notice" not in pages[0]


def test_pdf_draws_text_outside_latin_1_without_crashing() -> None:
    doc = replace(
        ORDER,
        person_name="Łukasz Żółć",
        rule_text="Llamadas: 2 al mes — ¿sí? ¡no! ñ € 漢字 \N{GRINNING FACE}",
    )
    [page] = pdf_pages(render_pdf([doc]))
    assert "Lukasz Zólc" in page
    assert "Llamadas: 2 al mes — ¿sí? ¡no! ñ €" in page
    assert "??" in page


def test_an_acknowledged_notice_says_by_whom_and_when() -> None:
    doc = replace(
        ORDER,
        acknowledged_at=datetime(2024, 5, 2, 16, 5, tzinfo=UTC),
        acknowledged_by="R. Salazar",
    )
    text = notice_text(doc)
    assert text.acknowledgement == "Acuse de recibo de R. Salazar el 2 de mayo de 2024, 10:05 MDT."
    assert "Acuse de recibo de R. Salazar" in pdf_pages(render_pdf([doc]))[0]
    assert notice_text(ORDER).acknowledgement is None


def test_pdf_of_no_notices_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one notice"):
        render_pdf([])


@pytest.fixture
def fresh_catalogs() -> Iterator[None]:
    render_module._languages.cache_clear()
    render_module._translations.cache_clear()
    yield
    render_module._languages.cache_clear()
    render_module._translations.cache_clear()


def test_adding_a_language_is_adding_a_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_catalogs: None
) -> None:
    shutil.copytree(LOCALE, tmp_path / "locale")
    portuguese = tmp_path / "locale" / "pt" / "LC_MESSAGES"
    portuguese.mkdir(parents=True)
    (portuguese / "kinline.po").write_text(
        'msgid ""\n'
        'msgstr ""\n'
        '"Content-Type: text/plain; charset=UTF-8\\n"\n'
        '"Language: pt\\n"\n\n'
        'msgid "Appeal deadline"\n'
        'msgstr "Prazo para recorrer"\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(render_module, "LOCALE_DIR", tmp_path / "locale")
    assert languages() == {"en", "es", "pt"}
    assert resolve_language("pt-BR") == "pt"
    text = notice_text(replace(ORDER, language="pt-BR"))
    assert text.language == "pt"
    labels = dict(text.rows)
    assert labels["Prazo para recorrer"] == "21 de maio de 2024"
    assert labels["Authority"] == "court order"  # not yet translated: English


# --- official particulars: letterhead, reference, issue, issuer, overridden order


OFFICIAL = replace(
    ORDER,
    change="imposed",
    subject="sam-daughters",
    authority="security_measure",
    rule_kind="deny",
    rule_text="No calls with the daughters while the report is investigated.",
    case_number=None,
    facility_address="1 Federal Way\nRed Mesa, AZ 86514",
    issued_at=datetime(2024, 5, 1, 14, 5, tzinfo=UTC).astimezone(DENVER),
    reference="USP-RED-MESA-2024-000041",
    issued_by="Maria Lopez",
    issuer_role="warden",
    overridden_orders=(OverriddenOrder("1:23-cv-00456", "Two calls a month with his daughters."),),
)


def test_the_letterhead_and_particulars_come_first_in_the_readers_language() -> None:
    spanish = notice_text(OFFICIAL)
    assert spanish.letterhead == ("USP Red Mesa", "1 Federal Way", "Red Mesa, AZ 86514")
    assert spanish.particulars == (
        ("Referencia", "USP-RED-MESA-2024-000041"),
        ("Fecha de emisión", "1 de mayo de 2024"),
        ("Emitido por", "Maria Lopez, Director/a del centro"),
    )
    assert (
        "Orden judicial que deja sin efecto",
        "expediente 1:23-cv-00456: Two calls a month with his daughters.",
    ) in spanish.rows
    english = notice_text(replace(OFFICIAL, language="en"))
    assert english.particulars[2] == ("Issued by", "Maria Lopez, Warden")
    assert (
        "Court order it overrides",
        "case 1:23-cv-00456: Two calls a month with his daughters.",
    ) in english.rows
    [page] = pdf_pages(render_pdf([OFFICIAL]))
    lines = page.splitlines()
    assert lines[:3] == ["USP Red Mesa", "1 Federal Way", "Red Mesa, AZ 86514"]
    assert page.index("Referencia: USP-RED-MESA-2024-000041") < page.index("Aviso 41")
    html = plain(render_html(replace(OFFICIAL, facility_address="<b>1 Way</b>")))
    assert "&lt;b&gt;1 Way&lt;/b&gt;" in html


def test_the_issuer_reads_as_kinline_itself_or_as_named_without_a_role() -> None:
    automatic = notice_text(replace(OFFICIAL, issued_by="kinline (automatic)", issuer_role=None))
    assert ("Emitido por", "kinline (automático)") in automatic.particulars
    bare = notice_text(replace(OFFICIAL, language="en", issued_by="scheduler", issuer_role=None))
    assert ("Issued by", "scheduler") in bare.particulars


def test_a_notice_from_before_references_shows_no_particulars() -> None:
    text = notice_text(ORDER)
    assert text.particulars == ()
    assert text.letterhead == ("USP Red Mesa",)


def test_a_headline_names_the_rule_by_its_text_or_its_authority_never_its_id() -> None:
    assert notice_text(OFFICIAL).headline == (
        "Nueva regla sobre sus llamadas telefónicas: "
        "No calls with the daughters while the report is investigated"
    )
    untitled = notice_text(replace(OFFICIAL, language="en", rule_text=None))
    assert untitled.headline == "A new rule on your telephone calls: security measure"
    long = notice_text(replace(OFFICIAL, rule_text="word " * 60))
    assert long.headline.endswith("…")
    assert "sam-daughters" not in long.headline
