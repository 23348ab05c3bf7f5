"""Every bound kinline puts on input, in one place: the API's schemas, the
services (for the CLI and scenario files) and the rules parser read them here.

They protect the service, not policy: each is far above anything a real
facility writes, and low enough that the database column, the engine's date
arithmetic and a page showing the text never overflow. Standard library only
(``kinline.rules`` imports it).
"""

from __future__ import annotations

from typing import Final

# --- free text, in characters -------------------------------------------------
ID_CHARS: Final = 64
"""An id: a person, a contact, a rule, a facility."""
NAME_CHARS: Final = 200
"""A name: a person's, a contact's, a filer's, who acknowledged a notice."""
CODE_CHARS: Final = 32
"""A short word: a channel, a language, a relationship, an outcome."""
CASE_NUMBER_CHARS: Final = 100
"""A court's case number."""
REASON_CHARS: Final = 2_000
"""Why a change is made, a note, an extension's reason: a paragraph."""
RULE_TEXT_CHARS: Final = 2_000
"""The words of a rule that a person reads in a notice."""
LONG_TEXT_CHARS: Final = 20_000
"""An appeal, an answer to one: a letter of a few pages."""
TIME_CHARS: Final = 64
"""A wall time as text (ISO 8601 is at most about 32)."""

# --- numbers in rules ---------------------------------------------------------
ROLLING_DAYS_MAX: Final = 3_660
"""A rolling window of at most ten years."""
MINUTES_MAX: Final = 100_000
"""Minutes in a quota, a session's cap or a gap between sessions (about 69 days)."""
COUNT_MAX: Final = 100_000
"""Sessions in a quota."""
YEAR_MIN: Final = 1900
"""The earliest year of an instant: a rolling window back from it still fits."""
YEAR_MAX: Final = 2999
"""The latest year of an instant: a period or a gap forward from it still fits."""

# --- identifiers stored as 32-bit integers --------------------------------------
SERIAL_MAX: Final = 2**31 - 1
"""The largest id of a notice, an appeal, a session or a print batch (PostgreSQL
``integer``): a larger one names nothing, and the database would refuse it."""
