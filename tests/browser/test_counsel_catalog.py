"""The counsel and court pages' words: every msgid of their templates has its
Spanish in the feature's catalog, and the charts say the same things in both
languages. No server: the templates and catalogs are read as files."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract
from babel.messages.pofile import read_po

from kinline.web.charts import WORDS

FEATURE = Path(__file__).parents[2] / "src" / "kinline" / "web" / "counsel"
OPTIONS = {
    "extensions": "jinja2.ext.i18n",
    "newstyle_gettext": "true",
    "trim_blocks": "true",
    "lstrip_blocks": "true",
}


def msgids() -> list[str]:
    found: list[str] = []
    for template in sorted((FEATURE / "templates").glob("*.html")):
        with template.open("rb") as source:
            for _line, message, _comments, _context in extract(
                "jinja2.ext.babel_extract", source, options=OPTIONS
            ):
                singular = message[0] if isinstance(message, tuple) else message
                if singular not in found:
                    found.append(singular)
    return found


def test_the_templates_ask_for_words() -> None:
    assert len(msgids()) > 50
    assert "Court order compliance" in msgids()


def test_every_msgid_has_its_spanish() -> None:
    with (FEATURE / "locale" / "es" / "LC_MESSAGES" / "pages.po").open("rb") as po:
        catalog = read_po(po, locale="es")
    missing = [
        msgid
        for msgid in msgids()
        if msgid not in catalog
        or not (
            all(catalog[msgid].string)
            if isinstance(catalog[msgid].string, tuple)
            else catalog[msgid].string
        )
    ]
    assert missing == []


@pytest.mark.parametrize("language", ["es"])
def test_the_charts_say_everything_in_each_language(language: str) -> None:
    assert set(WORDS[language]) == set(WORDS["en"])
    differ = [key for key in WORDS["en"] if WORDS[language][key] != WORDS["en"][key]]
    assert len(differ) >= len(WORDS["en"]) - 1  # only the dash is the same
