"""Decisions in plain words, in the reader's language.

    from kinline.explain import explain
    words = explain(decision, request, rules, usage, language="es", zone=facility.zone)
    words.headline, words.causes, words.next_possible

Pure: imports the engine and Babel only, and reads its own catalogs once.
"""

from kinline.explain.catalog import languages, resolve_language
from kinline.explain.explanation import Cause, Explanation, Named, Role, explain

__all__ = ["Cause", "Explanation", "Named", "Role", "explain", "languages", "resolve_language"]
