"""``decide()``: whether one session may happen, and why (SPEC section 4).

One pure function over plain data. The API, the telephony hook, the CLI and
the scenario runner all call it; nothing else decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from kinline.rules.model import Channel, Contact, Kind, Monitoring, Reason, Rule, Setting
from kinline.rules.periods import closing_instant, elapsed, local, whole_minutes
from kinline.rules.usage import UsageSnapshot

NO_BOUND_MINUTES = 1440


@dataclass(frozen=True, slots=True)
class Request:
    person: str
    contact: Contact
    channel: Channel
    at: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: Reason | None
    rules: tuple[str, ...]
    charged_to: str | None = None
    max_minutes: int | None = None
    monitoring: Monitoring | None = None
    interpreter: str | None = None
    setting: Setting | None = None  # visits only
    conflicts: tuple[str, ...] = ()
    governed_by: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "allowed": self.allowed,
            "reason": None if self.reason is None else str(self.reason),
            "rules": list(self.rules),
            "charged_to": self.charged_to,
            "max_minutes": self.max_minutes,
            "monitoring": None if self.monitoring is None else str(self.monitoring),
            "interpreter": self.interpreter,
            "setting": None if self.setting is None else str(self.setting),
            "conflicts": list(self.conflicts),
        }


def refusal(reason: Reason, rules: Iterable[Rule] = ()) -> Decision:
    return Decision(allowed=False, reason=reason, rules=_ids(rules))


def _ids(rules: Iterable[Rule]) -> tuple[str, ...]:
    """Rule ids once each, in listing order."""
    unique = {rule.id: rule for rule in rules}
    return tuple(rule.id for rule in sorted(unique.values(), key=lambda r: r.order))


def grant_order_key(grant: Rule) -> tuple[int, int, int, float, str]:
    """Rank descending, selector specificity, earliest ``until`` (none last), id."""
    has_until = 0 if grant.ends_at is not None else 1
    until = grant.ends_at.timestamp() if grant.ends_at is not None else 0.0
    return (-grant.rank, grant.contacts.specificity, has_until, until, grant.id)


@dataclass(frozen=True, slots=True)
class _Failure:
    reason: Reason
    rules: tuple[Rule, ...]


def decide(
    request: Request,
    rules: Sequence[Rule],
    usage: UsageSnapshot,
    zone: ZoneInfo,
) -> Decision:
    """Decide one session. ``rules`` may hold any of the facility's rules; the
    ones that do not concern this person, channel, contact or moment are ignored."""
    contact, at = request.contact, request.at
    if request.channel not in contact.approved:
        return refusal(Reason.NOT_ON_LIST)

    grants: list[Rule] = []
    denies: list[Rule] = []
    limits: list[Rule] = []
    requires: list[Rule] = []
    by_kind = {Kind.GRANT: grants, Kind.DENY: denies, Kind.LIMIT: limits, Kind.REQUIRE: requires}
    for rule in rules:
        if (
            rule.channel is request.channel
            and rule.concerns(request.person)
            and rule.is_active(at)
            and rule.contacts.matches(contact)
        ):
            by_kind[rule.kind].append(rule)
    if not grants:
        return refusal(Reason.NO_GRANT)

    blocking: list[Rule] = []
    unblocked: list[Rule] = []
    for grant in grants:
        blockers = [deny for deny in denies if deny.applies_to(grant)]
        blocking.extend(blockers)
        if not blockers:
            unblocked.append(grant)
    if not unblocked:
        return refusal(Reason.DENIED, blocking)

    unblocked.sort(key=grant_order_key)
    first_failure: _Failure | None = None
    for grant in unblocked:
        governing = [limit for limit in limits if limit.applies_to(grant)]
        failure = _first_failing_stage(grant, governing, at, usage, zone)
        if failure is None:
            return _allowance(request, grant, governing, denies + limits, requires, usage, zone)
        if first_failure is None:
            first_failure = failure
    assert first_failure is not None
    return refusal(first_failure.reason, first_failure.rules)


def _first_failing_stage(
    grant: Rule,
    governing: Sequence[Rule],
    at: datetime,
    usage: UsageSnapshot,
    zone: ZoneInfo,
) -> _Failure | None:
    closed = [limit for limit in governing if not _window_open(limit, at, zone)]
    if closed:
        return _Failure(Reason.OUTSIDE_WINDOW, tuple(closed))
    too_soon = [limit for limit in governing if not _gap_kept(limit, at, usage)]
    if too_soon:
        return _Failure(Reason.TOO_SOON, tuple(too_soon))
    exhausted = [limit for limit in governing if not _quota_has_room(limit, at, usage)]
    if exhausted:
        return _Failure(Reason.QUOTA_EXHAUSTED, tuple(exhausted))
    if not _quota_has_room(grant, at, usage):
        return _Failure(Reason.QUOTA_EXHAUSTED, (grant,))
    return None


def _window_open(limit: Rule, at: datetime, zone: ZoneInfo) -> bool:
    """Open when the local start is in ``[opens, closes)`` with a whole minute left."""
    window = limit.window
    if window is None:
        return True
    wall_time = local(at, zone).time()
    if not window.opens <= wall_time < window.closes:
        return False
    return _window_minutes(limit, at, zone) >= 1


def _window_minutes(limit: Rule, at: datetime, zone: ZoneInfo) -> int:
    assert limit.window is not None
    return whole_minutes(elapsed(at, closing_instant(at, limit.window.closes, zone)))


def _gap_kept(limit: Rule, at: datetime, usage: UsageSnapshot) -> bool:
    if limit.min_gap_minutes is None:
        return True
    last_end = usage.last_end(limit.id)
    if last_end is None:
        return True
    return elapsed(last_end, at).total_seconds() >= limit.min_gap_minutes * 60


def _quota_has_room(rule: Rule, at: datetime, usage: UsageSnapshot) -> bool:
    quota = rule.quota
    if quota is None:
        return True
    used = usage.tally(rule.id, quota.per, at)
    if quota.count is not None and used.sessions >= quota.count:
        return False
    return quota.minutes is None or quota.minutes - used.minutes >= 1


def _minutes_left(rule: Rule, at: datetime, usage: UsageSnapshot) -> int | None:
    quota = rule.quota
    if quota is None or quota.minutes is None:
        return None
    return quota.minutes - usage.tally(rule.id, quota.per, at).minutes


def _allowance(
    request: Request,
    grant: Rule,
    governing: Sequence[Rule],
    constraints: Sequence[Rule],
    requires: Sequence[Rule],
    usage: UsageSnapshot,
    zone: ZoneInfo,
) -> Decision:
    at = request.at
    bounds: list[int] = []
    for rule in (grant, *governing):
        if rule.max_minutes is not None:
            bounds.append(rule.max_minutes)
        left = _minutes_left(rule, at, usage)
        if left is not None:
            bounds.append(left)
        if rule.window is not None and rule is not grant:
            bounds.append(_window_minutes(rule, at, zone))
    max_minutes = min(bounds) if bounds else NO_BOUND_MINUTES

    monitoring = Monitoring.NONE if request.contact.privileged else Monitoring.RECORDED
    interpreter: str | None = None
    setting = Setting.OPEN if request.channel is Channel.VISIT else None
    for require in sorted(requires, key=lambda r: r.order):
        if require.monitoring is not None and require.monitoring.level > monitoring.level:
            monitoring = require.monitoring
        if require.interpreter is not None:
            interpreter = require.interpreter
        if (
            setting is not None
            and require.setting is not None
            and require.setting.level > setting.level
        ):
            setting = require.setting

    conflicts = [rule for rule in constraints if not rule.applies_to(grant)]
    return Decision(
        allowed=True,
        reason=None,
        rules=(grant.id, *_ids(governing), *_ids(requires)),
        charged_to=grant.id,
        max_minutes=max_minutes,
        monitoring=monitoring,
        interpreter=interpreter,
        setting=setting,
        conflicts=_ids(conflicts),
        governed_by=_ids(governing),
    )
