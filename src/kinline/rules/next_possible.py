"""When a refused session could next be allowed, from the same rules and usage.

Two questions, both answered beside the engine because they must agree with
it exactly:

- ``clears``: when one refusing rule stops refusing (a deny ends, a window
  opens, a gap has passed, a quota frees a place), for the sentence that
  explains that rule;
- ``next_allowed``: the earliest moment at which ``decide()`` would allow the
  session, every cause and every grant considered.

``next_allowed`` walks forward from the request. At each moment it asks the
engine, and when refused jumps to the earliest moment anything that refuses
could change: for every grant, when its blockers or its first failing stage
clear, and whenever a rule starts or a limit or deny ends. Each jump is a
lower bound (nothing can allow the session sooner), so the first moment the
engine allows is the earliest. Usage is taken as it is: no session is
assumed to happen meanwhile. Rules not given (a rule imposed later, a
contact approved later) cannot be foreseen: the answer is None when no
moment is found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from kinline.rules.decide import Request, _first_failing_stage, _window_open, decide
from kinline.rules.model import Kind, Reason, Rule
from kinline.rules.periods import local, rolling_start, span_of
from kinline.rules.usage import UsageSnapshot

MAX_STEPS = 200  # jumps before the answer is "unknown"; each jump is a day or more but for a few
_LOOKAHEAD_DAYS = 3  # a window swallowed by a DST gap opens again the next day


def clears(
    rule: Rule, reason: Reason, at: datetime, usage: UsageSnapshot, zone: ZoneInfo
) -> datetime | None:
    """The earliest moment after ``at`` at which ``rule`` no longer refuses for
    ``reason`` (usage as it is), or None when it never will or that cannot be
    known (a deny without an end)."""
    ending = rule.ends_at if rule.ends_at is not None and rule.ends_at > at else None
    cleared: datetime | None = None
    if reason is Reason.DENIED:
        return ending
    try:
        if reason is Reason.OUTSIDE_WINDOW:
            cleared = next_opening(rule, at, zone)
        elif reason is Reason.TOO_SOON:
            last_end = usage.last_end(rule.id)
            if last_end is not None and rule.min_gap_minutes is not None:
                cleared = last_end.astimezone(UTC) + timedelta(minutes=rule.min_gap_minutes)
        elif reason is Reason.QUOTA_EXHAUSTED:
            cleared = quota_frees(rule, at, usage, zone)
    except (OverflowError, ValueError):  # past the calendar's end
        cleared = None
    candidates = [moment for moment in (cleared, ending) if moment is not None]
    return min(candidates) if candidates else None


def next_opening(rule: Rule, at: datetime, zone: ZoneInfo) -> datetime | None:
    """The first moment after ``at`` at which the limit's window is open (with a
    whole minute left), on the facility's wall clock: a DST gap that swallows
    the opening time opens it at the change; a repeated hour opens it twice."""
    window = rule.window
    if window is None:
        return None
    day = local(at, zone).date()
    for offset in range(_LOOKAHEAD_DAYS):
        wall = datetime.combine(day + timedelta(days=offset), window.opens)
        for moment in _instants_of(wall, zone):
            if moment > at and _window_open(rule, moment, zone):
                return moment
    return None


def quota_frees(rule: Rule, at: datetime, usage: UsageSnapshot, zone: ZoneInfo) -> datetime | None:
    """When the rule's quota next has room for one more session of at least a
    minute: the next calendar period's start, or the moment enough counted
    sessions leave the rolling window. None for a quota of zero."""
    quota = rule.quota
    if quota is None:
        return None
    if quota.count == 0 or (quota.minutes is not None and quota.minutes < 1):
        return None
    if not quota.per.is_rolling:
        return span_of(quota.per, at, zone).end
    upto = at.astimezone(UTC)
    after = rolling_start(quota.per, at)
    counted = sorted(
        (started, minutes)
        for started, minutes in usage.rolling.get(rule.id, ())
        if after < started.astimezone(UTC) <= upto
    )
    sessions = len(counted)
    minutes_used = sum(minutes for _, minutes in counted)
    for started, minutes in counted:
        sessions -= 1
        minutes_used -= minutes
        if _has_room(quota.count, quota.minutes, sessions, minutes_used):
            return started.astimezone(UTC) + timedelta(days=quota.per.days)
    return None


def next_allowed(
    request: Request, rules: Sequence[Rule], usage: UsageSnapshot, zone: ZoneInfo
) -> datetime | None:
    """The earliest moment at or after ``request.at`` at which the engine allows
    the session, or None when none can be found (not on the list, an open-ended
    deny, a quota of zero, or beyond ``MAX_STEPS`` jumps)."""
    moment = request.at.astimezone(UTC)
    try:
        for _ in range(MAX_STEPS):
            decision = decide(replace(request, at=moment), rules, usage, zone)
            if decision.allowed:
                return moment
            if decision.reason is Reason.NOT_ON_LIST:
                return None
            following = _next_change(replace(request, at=moment), rules, usage, zone)
            if following is None or following <= moment:
                return None
            moment = following
    except (OverflowError, ValueError):  # walked past the calendar's end: no moment known
        return None
    return None


def _next_change(
    request: Request, rules: Sequence[Rule], usage: UsageSnapshot, zone: ZoneInfo
) -> datetime | None:
    """The earliest moment after ``request.at`` at which anything refusing the
    session could have changed: a lower bound on the next allowed moment."""
    at = request.at
    matching = [
        rule
        for rule in rules
        if rule.channel is request.channel
        and rule.concerns(request.person)
        and rule.contacts.matches(request.contact)
    ]
    candidates: list[datetime] = []
    for rule in matching:
        if rule.kind is Kind.GRANT and rule.starts_at is not None and rule.starts_at > at:
            candidates.append(rule.starts_at)
        if rule.kind in (Kind.DENY, Kind.LIMIT) and rule.is_active(at) and rule.ends_at:
            candidates.append(rule.ends_at)
    active = [rule for rule in matching if rule.is_active(at)]
    denies = [rule for rule in active if rule.kind is Kind.DENY]
    limits = [rule for rule in active if rule.kind is Kind.LIMIT]
    for grant in (rule for rule in active if rule.kind is Kind.GRANT):
        blockers = [deny for deny in denies if deny.applies_to(grant)]
        if blockers:
            ends = [deny.ends_at for deny in blockers]
            if all(end is not None for end in ends):
                candidates.append(max(end for end in ends if end is not None))
            continue
        governing = [limit for limit in limits if limit.applies_to(grant)]
        failure = _first_failing_stage(grant, governing, at, usage, zone)
        if failure is None:
            return at
        cleared = [clears(rule, failure.reason, at, usage, zone) for rule in failure.rules]
        if all(moment is not None for moment in cleared):
            candidates.append(max(moment for moment in cleared if moment is not None))
    later = [moment.astimezone(UTC) for moment in candidates if moment > at]
    return min(later) if later else None


def _has_room(count: int | None, minutes: int | None, sessions: int, used: int) -> bool:
    if count is not None and sessions >= count:
        return False
    return minutes is None or minutes - used >= 1


def _instants_of(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """The instants at which the local clock first reads ``wall`` or later: both
    readings of a repeated time, and the change itself for a time that a DST gap
    skips."""
    instants = {wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)}
    earliest = min(instants)
    if local(earliest, zone) != wall:  # skipped: find the change, to the second
        low, high = earliest - timedelta(hours=3), max(instants)
        while high - low > timedelta(seconds=1):
            middle = low + (high - low) / 2
            if local(middle, zone) >= wall:
                high = middle
            else:
                low = middle
        instants.add(high.replace(microsecond=0))
    return sorted(instants)
