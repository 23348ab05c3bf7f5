"""The rule model: authorities, kinds, selectors, quotas and the rule itself.

Plain frozen dataclasses over the standard library, so the engine can be
tested without a database and reproduced from the log. Every instant is a
timezone-aware ``datetime``; wall-clock reasoning happens in ``periods``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum


class Authority(StrEnum):
    FACILITY_POLICY = "facility_policy"
    INCENTIVE = "incentive"
    SANCTION = "sanction"
    SECURITY_MEASURE = "security_measure"
    COURT_ORDER = "court_order"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {
    Authority.FACILITY_POLICY: 1,
    Authority.INCENTIVE: 2,
    Authority.SANCTION: 3,
    Authority.SECURITY_MEASURE: 4,
    Authority.COURT_ORDER: 5,
}


class Kind(StrEnum):
    GRANT = "grant"
    LIMIT = "limit"
    DENY = "deny"
    REQUIRE = "require"


class Channel(StrEnum):
    PHONE = "phone"
    VIDEO = "video"
    VISIT = "visit"


class Monitoring(StrEnum):
    NONE = "none"
    RECORDED = "recorded"
    LIVE = "live"

    @property
    def level(self) -> int:
        return _MONITORING_LEVELS[self]


_MONITORING_LEVELS = {Monitoring.NONE: 0, Monitoring.RECORDED: 1, Monitoring.LIVE: 2}


class Setting(StrEnum):
    """Where a visit takes place, least restrictive first (SPEC 3.1)."""

    OPEN = "open"
    NON_CONTACT = "non_contact"
    CLOSED = "closed"

    @property
    def level(self) -> int:
        return _SETTING_LEVELS[self]


_SETTING_LEVELS = {Setting.OPEN: 0, Setting.NON_CONTACT: 1, Setting.CLOSED: 2}


class Reason(StrEnum):
    NOT_ON_LIST = "not_on_list"
    NO_GRANT = "no_grant"
    DENIED = "denied"
    OUTSIDE_WINDOW = "outside_window"
    TOO_SOON = "too_soon"
    QUOTA_EXHAUSTED = "quota_exhausted"


RELATIONSHIPS = frozenset(
    {
        "spouse",
        "partner",
        "child",
        "parent",
        "sibling",
        "grandparent",
        "other_family",
        "friend",
        "attorney",
        "clergy",
        "other",
    }
)


@dataclass(frozen=True, slots=True)
class Period:
    """``day``, ``week`` (ISO, Monday 00:00 local), ``month`` or ``rolling`` N×24 h."""

    kind: str
    days: int = 0

    @property
    def is_rolling(self) -> bool:
        return self.kind == "rolling"


DAY = Period("day")
WEEK = Period("week")
MONTH = Period("month")


def rolling(days: int) -> Period:
    return Period("rolling", days)


@dataclass(frozen=True, slots=True)
class Quota:
    per: Period
    count: int | None = None
    minutes: int | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """Sessions start at or after ``opens`` and before ``closes``, local time."""

    opens: time
    closes: time


@dataclass(frozen=True, slots=True)
class Contact:
    id: str
    person: str
    relationship: str
    privileged: bool = False
    approved: frozenset[Channel] = frozenset()


# Selector specificity, most specific first (SPEC 4, step 4).
SPECIFICITY_IDS = 0
SPECIFICITY_PRIVILEGED = 1
SPECIFICITY_RELATIONSHIPS = 2
SPECIFICITY_ANY = 3


@dataclass(frozen=True, slots=True)
class Selector:
    """Which of a person's contacts a rule matches.

    At most one of ``ids``, ``relationships`` and ``privileged`` is set; none
    set means ``any``. A privileged contact is matched only when named by id
    or by ``privileged``.
    """

    ids: frozenset[str] | None = None
    relationships: frozenset[str] | None = None
    privileged: bool = False
    exclude: frozenset[str] = frozenset()

    @property
    def specificity(self) -> int:
        if self.ids is not None:
            return SPECIFICITY_IDS
        if self.privileged:
            return SPECIFICITY_PRIVILEGED
        if self.relationships is not None:
            return SPECIFICITY_RELATIONSHIPS
        return SPECIFICITY_ANY

    def matches(self, contact: Contact) -> bool:
        if contact.id in self.exclude:
            return False
        if self.ids is not None:
            return contact.id in self.ids
        if self.privileged:
            return contact.privileged
        if contact.privileged:
            return False
        if self.relationships is not None:
            return contact.relationship in self.relationships
        return True


ANY = Selector()


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule as in force: ``ends_at`` is its ``until`` or its lifting, whichever is first.

    ``order`` is its place in the facility's listing ("later-listed" in the
    SPEC): the file's rules first, then rules imposed later.
    """

    id: str
    authority: Authority
    kind: Kind
    channel: Channel
    person: str | None  # None: every person of the facility, each alone
    contacts: Selector = ANY
    text: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    overrides: frozenset[str] = frozenset()
    quota: Quota | None = None
    max_minutes: int | None = None
    window: Window | None = None
    min_gap_minutes: int | None = None
    monitoring: Monitoring | None = None
    interpreter: str | None = None
    setting: Setting | None = None  # visits only
    order: int = 0
    case_number: str | None = field(default=None, compare=False)
    # The text per language (``{"en": ..., "es": ...}``) when it was written per
    # language; ``text`` is then the English one, else the first in code order.
    texts: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def rank(self) -> int:
        return self.authority.rank

    def is_active(self, at: datetime) -> bool:
        if self.starts_at is not None and at < self.starts_at:
            return False
        return self.ends_at is None or at < self.ends_at

    def text_in(self, language: str) -> str:
        """The rule's text in ``language`` (``es-MX`` falls back to ``es``), else ``text``."""
        normalized = language.replace("_", "-")
        for candidate in (normalized, normalized.split("-")[0].lower()):
            if candidate in self.texts:
                return self.texts[candidate]
        return self.text

    def concerns(self, person: str) -> bool:
        return self.person is None or self.person == person

    def applies_to(self, grant: Rule) -> bool:
        """Whether this deny or limit constrains ``grant`` (SPEC 3.3)."""
        if self.kind is Kind.REQUIRE:
            return True
        return grant.id in self.overrides or grant.rank <= self.rank
