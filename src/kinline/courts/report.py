"""A court order's compliance report in the form monitors of a consent decree
use: each requirement of the order, its status, and the evidence.

Pure: standard library only, so the status rule and the report's arithmetic
are tested without a database, and every format (JSON, CSV, HTML, PDF) is
written from the same values.

A requirement is one court-order grant of the order (an order record may
create several). For each period of its quota: what it entitled, what was
delivered (SPEC 7: every completed session with a contact it names, imported
calls the engine would have refused included; those are also counted apart as
delivered outside policy), the shortfall, a status by the facility's rule, and
the evidence the record holds for it: refused attempts with their reason and
rules, rules that stood over the order and on which days, holds released or
expired, visits cancelled, calls made outside policy.

The status rule is the facility's (``compliance_settings``): a period is
compliant when it delivered at least ``compliant_percent`` of what it
entitled, partial at least ``partial_percent``, else non-compliant; a period
that entitled nothing is not due. Percentages are compared in whole numbers
(``delivered * 100 >= percent * entitled``), never floats, so a status is
the same on every machine. A requirement's status is its worst period's: a
month with no call is not made up by a month with two extra; an order's is
its worst requirement's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Literal, NamedTuple


class Status(StrEnum):
    COMPLIANT = "compliant"
    PARTIAL = "partial"
    NON_COMPLIANT = "non_compliant"
    NOT_DUE = "not_due"


# From best to worst: a requirement or an order takes its worst part's status.
_RANK = (Status.NOT_DUE, Status.COMPLIANT, Status.PARTIAL, Status.NON_COMPLIANT)

STATUS_WORDS: dict[Status, str] = {
    Status.COMPLIANT: "Compliant",
    Status.PARTIAL: "Partial",
    Status.NON_COMPLIANT: "Non-compliant",
    Status.NOT_DUE: "Not due",
}


class StatusRuleError(ValueError):
    """A status rule that is not one; ``field`` names the setting."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class StatusRule:
    """When a period is compliant or partial, in percent of what it entitled."""

    compliant_percent: int = 100
    partial_percent: int = 50

    def check(self) -> StatusRule:
        """The rule itself, or ``StatusRuleError`` naming the setting at fault:
        both are whole percentages from 0 to 100, partial at most compliant."""
        if not 1 <= self.compliant_percent <= 100:
            raise StatusRuleError("must be from 1 to 100", "compliant_percent")
        if not 0 <= self.partial_percent <= 100:
            raise StatusRuleError("must be from 0 to 100", "partial_percent")
        if self.partial_percent > self.compliant_percent:
            raise StatusRuleError("must not be more than compliant_percent", "partial_percent")
        return self

    def status(self, entitled: int, delivered: int) -> Status:
        if entitled <= 0:
            return Status.NOT_DUE
        if delivered * 100 >= self.compliant_percent * entitled:
            return Status.COMPLIANT
        if delivered * 100 >= self.partial_percent * entitled:
            return Status.PARTIAL
        return Status.NON_COMPLIANT

    def words(self) -> str:
        """The rule as a reader of the report is told it."""
        return (
            f"A period is compliant when it delivered at least {self.compliant_percent}% of "
            f"what the order entitled, partial at least {self.partial_percent}%, "
            "otherwise non-compliant; a period that entitled nothing is not due."
        )


def worst(statuses: list[Status]) -> Status:
    """The worst of ``statuses`` (not due when there are none)."""
    return max(statuses, key=_RANK.index, default=Status.NOT_DUE)


EvidenceKind = Literal["refusal", "override", "lapsed", "cancelled", "outside_policy"]
EVIDENCE_WORDS: dict[str, str] = {
    "refusal": "Refused attempt",
    "override": "Rule over the order",
    "lapsed": "Hold not connected",
    "cancelled": "Visit cancelled",
    "outside_policy": "Delivered outside policy",
}


# The engine's reason codes (SPEC 4) as a court reads them.
REASON_WORDS: dict[str, str] = {
    "not_on_list": "the contact is not approved for this channel",
    "no_grant": "no rule grants this contact",
    "denied": "a rule denies it",
    "outside_window": "outside the hours allowed",
    "too_soon": "too soon after the last session",
    "quota_exhausted": "the allowance for the period was used up",
}


def reason_words(code: str | None) -> str:
    """A refusal's reason code in words (the code itself when it is not known)."""
    if code is None:
        return "refused"
    words = REASON_WORDS.get(code)
    return f"{words} ({code})" if words else code


class Evidence(NamedTuple):
    """One thing the record holds about a period's delivery.

    ``at``: when (an override: its first moment in the period, ``until`` its
    last); ``who``: the contact or visitors concerned; ``detail``: the reason
    as recorded; ``rules``: the rules responsible; ``by``: who decided (imposed,
    cancelled, settled); ``days``: an override's days in force in the period.

    A named tuple, immutable as the rest of the report: a report over years
    holds thousands, and a tuple is made four times faster than a frozen
    dataclass."""

    kind: EvidenceKind
    at: datetime
    who: str
    detail: str
    rules: tuple[str, ...] = ()
    by: str | None = None
    until: datetime | None = None
    days: int | None = None


@dataclass(frozen=True, slots=True)
class RequirementPeriod:
    key: str
    start: datetime
    end: datetime
    entitled: int
    delivered: int
    outside_policy: int
    shortfall: int
    status: Status
    evidence: tuple[Evidence, ...]

    @property
    def within_policy(self) -> int:
        return self.delivered - self.outside_policy

    @property
    def refused(self) -> int:
        return sum(1 for e in self.evidence if e.kind == "refusal")


def requirement_period(
    rule: StatusRule,
    *,
    key: str,
    start: datetime,
    end: datetime,
    entitled: int,
    delivered: int,
    outside_policy: int,
    evidence: tuple[Evidence, ...],
) -> RequirementPeriod:
    """A period's figures with its status and shortfall (SPEC 7: every completed
    session counts, outside policy too)."""
    return RequirementPeriod(
        key=key,
        start=start,
        end=end,
        entitled=entitled,
        delivered=delivered,
        outside_policy=outside_policy,
        shortfall=max(0, entitled - delivered),
        status=rule.status(entitled, delivered),
        evidence=evidence,
    )


@dataclass(frozen=True, slots=True)
class Requirement:
    """One court-order grant: ``count`` sessions ``per`` period on ``channel``
    with ``contacts`` (as its selector reads)."""

    rule_id: str
    text: str
    channel: str
    count: int
    per: str
    contacts: str
    periods: tuple[RequirementPeriod, ...]

    @property
    def entitled(self) -> int:
        return sum(p.entitled for p in self.periods)

    @property
    def delivered(self) -> int:
        return sum(p.delivered for p in self.periods)

    @property
    def outside_policy(self) -> int:
        return sum(p.outside_policy for p in self.periods)

    @property
    def shortfall(self) -> int:
        return sum(p.shortfall for p in self.periods)

    @property
    def status(self) -> Status:
        return worst([p.status for p in self.periods])

    def counts(self) -> dict[Status, int]:
        """How many periods have each status."""
        return {s: sum(1 for p in self.periods if p.status is s) for s in _RANK}


MarkKind = Literal["rule", "order", "call", "refusal", "visit", "activity"]


@dataclass(frozen=True, slots=True)
class Mark:
    """One thing on the report's timeline (a span, or a moment when ``end`` is
    None and it is not a rule or order; a rule or order with no end is in force)."""

    kind: MarkKind
    label: str
    start: datetime
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class Signature:
    """The signed audit checkpoint a report was built on: ``checkpoint`` is the
    file (``kinline audit verify --checkpoint``), ``digest`` its header's digest
    over every chain head, ``file_sha256`` the file's own hash."""

    taken_at: str
    key_id: str
    digest: str
    file_sha256: str
    chains: int
    checkpoint: bytes


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    facility_id: str
    facility_name: str
    zone: str
    order_id: str
    title: str
    case_number: str | None
    person_id: str | None
    first: str
    last: str
    start: datetime
    end: datetime
    built_at: datetime
    rule: StatusRule
    requirements: tuple[Requirement, ...]
    timeline: tuple[Mark, ...]
    signature: Signature | None
    court: str | None = None  # from the order's record, when there is one
    judge: str | None = None
    signed_on: date | None = None

    @property
    def status(self) -> Status:
        return worst([r.status for r in self.requirements])
