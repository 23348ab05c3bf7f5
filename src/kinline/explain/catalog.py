"""The explanation's words: one gettext catalog per language, read once.

Catalogs live in ``locale/LANG/LC_MESSAGES/explain.po`` and are read at first
use (no build step), as the notices' are: adding a language is adding a
catalog. A language without a catalog reads English, whose catalog holds the
source words.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from io import BytesIO
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

DOMAIN = "explain"
FALLBACK = "en"
LOCALE_DIR = Path(__file__).with_name("locale")


@dataclass(frozen=True, slots=True)
class Words:
    """One language's catalog: ``gettext`` and ``ngettext`` (named so that the
    catalog's extraction finds every message), and its CLDR locale for dates."""

    language: str
    locale: str
    translations: Translations

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return self.translations.ngettext(singular, plural, count)


def languages() -> frozenset[str]:
    """The languages explanations are written in: those with a catalog."""
    return _languages()


@cache
def _languages() -> frozenset[str]:
    return frozenset(
        path.parent.parent.name for path in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")
    )


def resolve_language(code: str) -> str:
    """``code`` when it has a catalog (``es-MX`` reads ``es``), else English."""
    known = _languages()
    normalized = code.replace("-", "_")
    for candidate in (normalized, normalized.split("_")[0].lower()):
        if candidate in known:
            return candidate
    return FALLBACK


def words(language: str) -> Words:
    """The catalog for ``language``, resolved as ``resolve_language`` does."""
    return _words(resolve_language(language))


@cache
def _words(language: str) -> Words:
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    locale = _babel_locale(language)
    if not path.exists():
        return Words(language, locale, Translations())
    with path.open("rb") as po:
        catalog = read_po(po, locale=locale, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Words(language, locale, Translations(compiled, domain=DOMAIN))


def _babel_locale(language: str) -> str:
    try:
        Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        return FALLBACK
    return language
