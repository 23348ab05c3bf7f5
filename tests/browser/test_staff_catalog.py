"""The staff console's Spanish catalog has every word its pages and handlers say:
each msgid of its templates (as Babel extracts them) and each message its
Python hands to a reader (``_()``, flashes, the form errors it raises)."""

from __future__ import annotations

import ast
from pathlib import Path

from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

STAFF = Path(__file__).parents[2] / "src" / "kinline" / "web" / "staff"
OPTIONS = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}


def _template_ids() -> set[str]:
    found: set[str] = set()
    for path in sorted((STAFF / "templates").glob("*.html")):
        with path.open("rb") as source:
            for _line, _func, message, _comments in babel_extract(
                source, ("_", "gettext", "ngettext"), [], OPTIONS
            ):
                found.add(message[0] if isinstance(message, tuple) else message)
    return found


def _python_ids() -> set[str]:
    """String literals given to ``_``, ``_back`` (its message) and ``InvalidInput``."""
    found: set[str] = set()
    for path in STAFF.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            args = [
                a for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
            ]
            if name in ("_", "InvalidInput") and args:
                found.add(args[0].value)
            elif name == "_back" and len(node.args) == 4 and args:
                found.add(args[-1].value)
            elif isinstance(node.func, ast.Call) and args:  # gettext_for(...)("...")
                found.add(args[0].value)
    return found


def test_every_word_of_the_console_is_in_spanish() -> None:
    with (STAFF / "locale" / "es" / "LC_MESSAGES" / "pages.po").open("rb") as po:
        catalog = read_po(po, locale="es")
    spanish = {(m.id[0] if isinstance(m.id, tuple) else m.id): m.string for m in catalog if m.id}
    wanted = _template_ids() | _python_ids()
    assert len(wanted) > 150  # the extraction found the pages' words
    missing = sorted(w for w in wanted if not spanish.get(w))
    assert missing == []
    for message in catalog:
        if isinstance(message.id, tuple):
            assert all(message.string), message.id
