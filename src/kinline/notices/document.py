"""A notice as a document: every fact its printed or on-screen form shows.

The stored notice keeps the sentences it was written with; a document keeps
the facts instead, so it can be rendered again in any language with a
catalog (the person's own by default) without reading the store again.
Pure: no framework, no store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

# How a notice names kinline itself as the issuer (a sweep, an import); each
# language's catalog translates it.
AUTOMATIC_ISSUER = "kinline (automatic)"
# A change made on kinline's command line, by whoever ran it.
COMMAND_LINE_ISSUER = "kinline (command line)"


@dataclass(frozen=True, slots=True)
class NoticeDocument:
    """One notice, ready to render.

    ``effective_at`` is timezone-aware in the facility's zone (``timezone``), so
    the document shows the local wall time and its abbreviation; ``language``
    is the language to render in (an unknown one renders in English).
    ``channel``, ``rule_kind``, ``case_number`` and ``contact_name`` are what
    the store knows of the rule or contact the notice is about, when it does.
    """

    notice_id: int
    language: str
    facility_id: str
    facility_name: str
    timezone: str
    person_id: str
    person_name: str
    change: str  # a notices.model.Change: imposed, lifted, approved, released, ...
    subject: str  # a rule id, or CONTACT:CHANNEL for an approval
    effective_at: datetime
    appeal_deadline: date
    appeal_days: int
    channel: str | None = None
    authority: str | None = None
    rule_kind: str | None = None
    rule_text: str | None = None
    case_number: str | None = None
    contact_name: str | None = None
    reason: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    # What makes it an official document: the letterhead, the day it was
    # written, its reference number and who issued it (name, role at the
    # facility). A notice written before references existed has none.
    facility_address: str | None = None
    issued_at: datetime | None = None
    reference: str | None = None
    issued_by: str | None = None
    issuer_role: str | None = None
    # The court orders this rule overrides: (case number, the order's text).
    overridden_orders: tuple[OverriddenOrder, ...] = ()


@dataclass(frozen=True, slots=True)
class OverriddenOrder:
    """A court order a rule overrides, as the notice names it."""

    case_number: str | None
    text: str
