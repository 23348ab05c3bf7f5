"""Retaliation flags: an adverse action that closely follows a protected activity (SPEC 7).

Days are counted on the facility's wall clock, as a person reading the
record would count them: a motion filed at 10:00 on 1 March and a sanction
at 10:00 on 11 March are ten days apart, whatever the clocks did between.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from kinline.rules.periods import local

PROTECTED_KINDS = frozenset({"pro_se_motion", "grievance", "lawsuit", "complaint", "appeal"})


@dataclass(frozen=True, slots=True)
class ProtectedActivity:
    id: str
    person: str
    kind: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AdverseAction:
    """``action`` is the rule id, or ``revoke:CONTACT:CHANNEL``; ``order`` breaks ties."""

    action: str
    person: str
    kind: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RetaliationFlag:
    action: str
    activity: str
    person: str
    days: int
    action_at: datetime
    activity_at: datetime


def retaliation_flags(
    actions: Iterable[AdverseAction],
    activities: Iterable[ProtectedActivity],
    window_days: int,
    zone: ZoneInfo,
) -> list[RetaliationFlag]:
    """Flag each action that follows one of the same person's activities within the window,
    naming the most recent such activity (the later-recorded one on a tie)."""
    by_person: dict[str, list[ProtectedActivity]] = {}
    for activity in activities:
        by_person.setdefault(activity.person, []).append(activity)
    window = timedelta(days=window_days)
    flags: list[RetaliationFlag] = []
    for action in actions:
        action_wall = local(action.at, zone)
        latest: ProtectedActivity | None = None
        for activity in by_person.get(action.person, ()):
            if activity.at > action.at:
                continue
            if action_wall - local(activity.at, zone) > window:
                continue
            if latest is None or activity.at >= latest.at:
                latest = activity
        if latest is not None:
            gap = action_wall - local(latest.at, zone)
            flags.append(
                RetaliationFlag(
                    action=action.action,
                    activity=latest.id,
                    person=action.person,
                    days=max(0, gap.days),
                    action_at=action.at,
                    activity_at=latest.at,
                )
            )
    return flags
