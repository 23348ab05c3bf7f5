"""``decide()`` against SPEC section 4, one clause at a time.

Every rule is built from the scenario format with ``parse_rule``, so these
tests read like the scenario files they stand for. Times are local wall
times in America/Denver.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kinline.rules.decide import NO_BOUND_MINUTES, Decision, Request, decide, grant_order_key
from kinline.rules.model import Channel, Contact, Monitoring, Reason, Rule, Setting
from kinline.rules.parse import parse_rule
from kinline.rules.periods import wall_to_instant
from kinline.rules.usage import UsageLedger, usage_change

ZONE = ZoneInfo("America/Denver")
PERSON = "salazar"

WIFE = Contact("wife", PERSON, "spouse", approved=frozenset({Channel.PHONE}))
DAUGHTER = Contact("daughter", PERSON, "child", approved=frozenset({Channel.PHONE, Channel.VIDEO}))
BROTHER = Contact("brother", PERSON, "sibling", approved=frozenset({Channel.PHONE}))
COUNSEL = Contact(
    "counsel", PERSON, "attorney", privileged=True, approved=frozenset({Channel.PHONE})
)


def at(wall: str) -> datetime:
    return wall_to_instant(datetime.fromisoformat(wall), ZONE)


def rule(rule_id: str, kind: str, order: int = 0, **fields: Any) -> Rule:
    """A rule in scenario form; ``from_`` stands for ``from``. Defaults: a phone rule of
    facility policy for the one person, matching ``any`` contact."""
    data: dict[str, Any] = {
        "id": rule_id,
        "kind": kind,
        "authority": "facility_policy",
        "channel": "phone",
        "person": PERSON,
        "contacts": "any",
    }
    if "from_" in fields:
        fields["from"] = fields.pop("from_")
    data.update(fields)
    return parse_rule(data, ZONE, order)


class Facility:
    """Rules plus an in-memory ledger, recording sessions the way the call service does."""

    def __init__(self, *rules: Rule) -> None:
        self.rules = list(rules)
        self.ledger = UsageLedger(ZONE)

    def decide(
        self,
        contact: Contact,
        when: str | datetime,
        channel: Channel = Channel.PHONE,
        person: str = PERSON,
    ) -> Decision:
        instant = at(when) if isinstance(when, str) else when
        request = Request(person, contact, channel, instant)
        return decide(request, self.rules, self.ledger.snapshot(person), ZONE)

    def call(
        self,
        contact: Contact,
        when: str,
        minutes: int,
        channel: Channel = Channel.PHONE,
        person: str = PERSON,
    ) -> Decision:
        decision = self.decide(contact, when, channel, person)
        if decision.allowed:
            assert decision.max_minutes is not None
            by_id = {r.id: r for r in self.rules}
            charged = by_id[decision.charged_to or ""]
            governing = [by_id[i] for i in decision.governed_by]
            used = min(minutes, decision.max_minutes)
            self.ledger.apply(person, usage_change(charged, governing, at(when), used, ZONE))
        return decision


def refused(decision: Decision, reason: Reason, rules: Sequence[str] = ()) -> None:
    assert decision.allowed is False
    assert decision.reason is reason
    assert set(decision.rules) == set(rules)
    assert len(decision.rules) == len(set(decision.rules))
    assert decision.charged_to is None
    assert decision.max_minutes is None
    assert decision.monitoring is None
    assert decision.interpreter is None
    assert decision.conflicts == ()


# --- step 1: not_on_list ---------------------------------------------------------------


def test_not_on_list_comes_before_every_rule() -> None:
    facility = Facility(
        rule("g", "grant", channel="visit"),
        rule("d", "deny", authority="court_order", channel="visit"),
    )
    refused(facility.decide(WIFE, "2024-03-04T10:00", Channel.VISIT), Reason.NOT_ON_LIST)


def test_not_on_list_even_without_any_rule() -> None:
    refused(Facility().decide(WIFE, "2024-03-04T10:00", Channel.VIDEO), Reason.NOT_ON_LIST)


def test_approved_channel_passes_step_one() -> None:
    facility = Facility(rule("g", "grant", channel="video"))
    assert facility.decide(DAUGHTER, "2024-03-04T10:00", Channel.VIDEO).allowed


# --- step 2: no_grant ------------------------------------------------------------------


@pytest.mark.parametrize(
    "grant",
    [
        pytest.param(rule("g", "grant", channel="video"), id="other-channel"),
        pytest.param(rule("g", "grant", person="someone-else"), id="other-person"),
        pytest.param(rule("g", "grant", contacts={"ids": ["brother"]}), id="ids-not-matching"),
        pytest.param(rule("g", "grant", contacts={"relationships": ["child"]}), id="relationship"),
        pytest.param(rule("g", "grant", contacts={"exclude": ["wife"]}), id="excluded"),
        pytest.param(rule("g", "grant", contacts={"privileged": True}), id="privileged-only"),
        pytest.param(rule("g", "grant", from_="2024-03-05"), id="not-yet-active"),
        pytest.param(rule("g", "grant", until="2024-03-04T10:00"), id="until-is-exclusive"),
    ],
)
def test_no_eligible_grant_is_no_grant(grant: Rule) -> None:
    refused(Facility(grant).decide(WIFE, "2024-03-04T10:00"), Reason.NO_GRANT)


def test_a_deny_without_a_grant_is_no_grant_not_denied() -> None:
    facility = Facility(rule("d", "deny"), rule("g", "grant", channel="video"))
    refused(facility.decide(WIFE, "2024-03-04T10:00"), Reason.NO_GRANT)


def test_any_selector_never_matches_a_privileged_contact() -> None:
    refused(Facility(rule("g", "grant")).decide(COUNSEL, "2024-03-04T10:00"), Reason.NO_GRANT)


def test_privileged_contact_is_matched_by_id_and_by_privileged() -> None:
    by_id = Facility(rule("g", "grant", contacts={"ids": ["counsel"]}))
    by_flag = Facility(rule("g", "grant", contacts={"privileged": True}))
    assert by_id.decide(COUNSEL, "2024-03-04T10:00").charged_to == "g"
    assert by_flag.decide(COUNSEL, "2024-03-04T10:00").charged_to == "g"


def test_from_is_inclusive() -> None:
    facility = Facility(rule("g", "grant", from_="2024-03-04T10:00"))
    assert facility.decide(WIFE, "2024-03-04T10:00").allowed
    refused(facility.decide(WIFE, at("2024-03-04T10:00") - timedelta(seconds=1)), Reason.NO_GRANT)


def test_person_all_applies_to_every_person() -> None:
    other = Contact("friend", "other-person", "friend", approved=frozenset({Channel.PHONE}))
    facility = Facility(rule("g", "grant", person="all"))
    assert facility.decide(WIFE, "2024-03-04T10:00").charged_to == "g"
    assert facility.decide(other, "2024-03-04T10:00", person="other-person").charged_to == "g"


# --- step 3: denied --------------------------------------------------------------------


def test_denied_reports_the_union_of_the_denies_that_blocked_some_grant() -> None:
    facility = Facility(
        rule("g-court", "grant", authority="court_order", contacts={"ids": ["wife"]}),
        rule("g-sec", "grant", authority="security_measure"),
        # blocks g-court only through overrides (and not g-sec: lower rank, not listed)
        rule("d-over", "deny", overrides=["g-court"]),
        # blocks g-sec (equal rank), not g-court (outranks it)
        rule("d-sec", "deny", authority="security_measure"),
        # matches but blocks neither grant: not reported
        rule("d-inc", "deny", authority="incentive"),
        # would block both, but does not match the contact
        rule("d-other", "deny", authority="court_order", contacts={"ids": ["brother"]}),
        # would block both, but is no longer active
        rule("d-old", "deny", authority="court_order", until="2024-03-01"),
    )
    refused(facility.decide(WIFE, "2024-03-04T10:00"), Reason.DENIED, ["d-over", "d-sec"])


def test_denied_reports_each_blocking_deny_once() -> None:
    facility = Facility(
        rule("g1", "grant"),
        rule("g2", "grant", contacts={"ids": ["wife"]}),
        rule("d", "deny", authority="court_order"),
    )
    decision = facility.decide(WIFE, "2024-03-04T10:00")
    refused(decision, Reason.DENIED, ["d"])
    assert decision.rules == ("d",)


def test_one_unblocked_grant_is_enough_to_escape_denied() -> None:
    facility = Facility(
        rule("g-low", "grant"),
        rule("g-high", "grant", authority="court_order"),
        rule("d", "deny", authority="sanction"),
    )
    decision = facility.decide(WIFE, "2024-03-04T10:00")
    assert decision.allowed
    assert decision.charged_to == "g-high"
    assert set(decision.conflicts) == {"d"}


@pytest.mark.parametrize(
    ("grant_authority", "deny_authority", "blocked"),
    [
        ("facility_policy", "facility_policy", True),
        ("sanction", "sanction", True),
        ("court_order", "court_order", True),
        ("incentive", "sanction", True),
        ("sanction", "incentive", False),
        ("court_order", "security_measure", False),
    ],
)
def test_deny_applies_at_equal_or_higher_rank(
    grant_authority: str, deny_authority: str, blocked: bool
) -> None:
    facility = Facility(
        rule("g", "grant", authority=grant_authority),
        rule("d", "deny", authority=deny_authority),
    )
    decision = facility.decide(WIFE, "2024-03-04T10:00")
    if blocked:
        refused(decision, Reason.DENIED, ["d"])
    else:
        assert decision.allowed
        assert decision.conflicts == ("d",)


def test_overrides_makes_a_lower_deny_apply_to_that_grant_only() -> None:
    facility = Facility(
        rule("order", "grant", authority="court_order", contacts={"ids": ["daughter"]}),
        rule("d", "deny", authority="security_measure", overrides=["order"]),
    )
    refused(facility.decide(DAUGHTER, "2024-03-04T10:00"), Reason.DENIED, ["d"])
    other = Facility(
        rule("order", "grant", authority="court_order", contacts={"ids": ["daughter"]}),
        rule("d", "deny", authority="security_measure", overrides=["another-order"]),
    )
    assert other.decide(DAUGHTER, "2024-03-04T10:00").charged_to == "order"


def test_overrides_makes_a_lower_limit_govern_that_grant() -> None:
    grant = rule("order", "grant", authority="court_order")
    with_override = Facility(grant, rule("cap", "limit", max_minutes=10, overrides=["order"]))
    decision = with_override.decide(WIFE, "2024-03-04T10:00")
    assert decision.allowed
    assert decision.max_minutes == 10
    assert set(decision.rules) == {"order", "cap"}
    assert decision.governed_by == ("cap",)
    assert decision.conflicts == ()

    without = Facility(grant, rule("cap", "limit", max_minutes=10))
    decision = without.decide(WIFE, "2024-03-04T10:00")
    assert decision.max_minutes == NO_BOUND_MINUTES
    assert decision.rules == ("order",)
    assert decision.conflicts == ("cap",)


# --- step 4: ordering ------------------------------------------------------------------


def test_higher_rank_is_charged_first_whatever_the_listing() -> None:
    rules = [
        rule("a-policy", "grant", order=0, contacts={"ids": ["wife"]}),
        rule("z-court", "grant", order=1, authority="court_order"),
        rule("m-incentive", "grant", order=2, authority="incentive", contacts={"ids": ["wife"]}),
    ]
    assert Facility(*rules).decide(WIFE, "2024-03-04T10:00").charged_to == "z-court"
    reverse = Facility(*reversed(rules))
    assert reverse.decide(WIFE, "2024-03-04T10:00").charged_to == "z-court"


def test_at_equal_rank_ids_beat_relationships_beat_any() -> None:
    rules = [
        rule("a-any", "grant"),
        rule("b-rel", "grant", contacts={"relationships": ["child"]}),
        rule("c-ids", "grant", contacts={"ids": ["daughter"]}),
    ]
    assert Facility(*rules).decide(DAUGHTER, "2024-03-04T10:00").charged_to == "c-ids"
    assert Facility(*rules[:2]).decide(DAUGHTER, "2024-03-04T10:00").charged_to == "b-rel"


def test_at_equal_rank_ids_beat_privileged() -> None:
    rules = [
        rule("a-priv", "grant", contacts={"privileged": True}),
        rule("b-ids", "grant", contacts={"ids": ["counsel"]}),
    ]
    assert Facility(*rules).decide(COUNSEL, "2024-03-04T10:00").charged_to == "b-ids"


def test_specificity_order_ids_privileged_relationships_any() -> None:
    grants = [
        rule("a", "grant"),
        rule("b", "grant", contacts={"relationships": ["child"]}),
        rule("c", "grant", contacts={"privileged": True}),
        rule("d", "grant", contacts={"ids": ["x"], "exclude": ["y"]}),
        rule("e", "grant", contacts={"exclude": ["y"]}),
    ]
    assert [g.id for g in sorted(grants, key=grant_order_key)] == ["d", "c", "b", "a", "e"]


def test_rank_comes_before_specificity() -> None:
    facility = Facility(
        rule("ids-policy", "grant", contacts={"ids": ["wife"]}),
        rule("any-sanction", "grant", authority="sanction"),
    )
    assert facility.decide(WIFE, "2024-03-04T10:00").charged_to == "any-sanction"


def test_earliest_until_first_and_none_last() -> None:
    rules = [
        rule("a-open", "grant"),
        rule("b-late", "grant", until="2024-06-01"),
        rule("c-soon", "grant", until="2024-04-01"),
    ]
    assert Facility(*rules).decide(WIFE, "2024-03-04T10:00").charged_to == "c-soon"
    assert Facility(rules[0], rules[1]).decide(WIFE, "2024-03-04T10:00").charged_to == "b-late"


def test_specificity_comes_before_until() -> None:
    facility = Facility(
        rule("any-soon", "grant", until="2024-03-05"),
        rule("ids-open", "grant", contacts={"ids": ["wife"]}),
    )
    assert facility.decide(WIFE, "2024-03-04T10:00").charged_to == "ids-open"


def test_id_ascending_breaks_the_last_tie() -> None:
    rules = [rule("beta", "grant", order=0), rule("alpha", "grant", order=1)]
    assert Facility(*rules).decide(WIFE, "2024-03-04T10:00").charged_to == "alpha"
    assert Facility(*reversed(rules)).decide(WIFE, "2024-03-04T10:00").charged_to == "alpha"


def test_a_failing_grant_passes_the_session_to_the_next() -> None:
    facility = Facility(
        rule("order", "grant", authority="court_order", quota={"count": 1, "per": "month"}),
        rule("policy", "grant"),
    )
    assert facility.call(WIFE, "2024-03-04T10:00", 15).charged_to == "order"
    assert facility.call(WIFE, "2024-03-05T10:00", 15).charged_to == "policy"
    assert facility.call(WIFE, "2024-04-01T10:00", 15).charged_to == "order"


# --- step 4: stages --------------------------------------------------------------------


def stage_facility() -> Facility:
    return Facility(
        rule("g", "grant", quota={"count": 1, "per": "day"}),
        rule("hours", "limit", window={"from": "08:00", "to": "20:00"}),
        rule("gap", "limit", min_gap_minutes=120),
        rule("daily", "limit", quota={"count": 1, "per": "day"}),
    )


def test_outside_window_is_checked_before_gap_and_quota() -> None:
    facility = stage_facility()
    assert facility.call(WIFE, "2024-03-04T18:00", 30).allowed
    # 20:00 fails the window, the gap and both quotas: only the window is named
    refused(facility.decide(WIFE, "2024-03-04T20:00"), Reason.OUTSIDE_WINDOW, ["hours"])
    refused(facility.decide(WIFE, "2024-03-04T07:59"), Reason.OUTSIDE_WINDOW, ["hours"])


def test_too_soon_is_checked_before_quota() -> None:
    facility = stage_facility()
    assert facility.call(WIFE, "2024-03-04T10:00", 30).allowed
    refused(facility.decide(WIFE, "2024-03-04T12:29"), Reason.TOO_SOON, ["gap"])


def test_limit_quota_is_checked_before_the_grant_quota() -> None:
    facility = stage_facility()
    assert facility.call(WIFE, "2024-03-04T10:00", 30).allowed
    # gap kept (from 10:30), both the limit's and the grant's daily count used
    refused(facility.decide(WIFE, "2024-03-04T12:30"), Reason.QUOTA_EXHAUSTED, ["daily"])


def test_grant_quota_is_reported_only_when_every_limit_has_room() -> None:
    facility = Facility(
        rule("g", "grant", quota={"count": 1, "per": "day"}),
        rule("weekly", "limit", quota={"count": 5, "per": "week"}),
    )
    assert facility.call(WIFE, "2024-03-04T10:00", 30).allowed
    refused(facility.decide(WIFE, "2024-03-04T12:30"), Reason.QUOTA_EXHAUSTED, ["g"])


def test_every_rule_failing_at_the_stage_is_named() -> None:
    facility = Facility(
        rule("g", "grant"),
        rule("morning", "limit", window={"from": "08:00", "to": "12:00"}),
        rule("office", "limit", window={"from": "09:00", "to": "17:00"}),
        rule("evening", "limit", window={"from": "06:00", "to": "22:00"}),
    )
    refused(facility.decide(WIFE, "2024-03-04T07:00"), Reason.OUTSIDE_WINDOW, ["morning", "office"])


def test_window_start_inclusive_end_exclusive() -> None:
    facility = Facility(
        rule("g", "grant"), rule("w", "limit", window={"from": "08:00", "to": "20:00"})
    )
    assert facility.decide(WIFE, "2024-03-04T08:00").max_minutes == 12 * 60
    assert facility.decide(WIFE, "2024-03-04T19:59").max_minutes == 1
    refused(facility.decide(WIFE, "2024-03-04T20:00"), Reason.OUTSIDE_WINDOW, ["w"])


def test_window_with_less_than_a_minute_left_is_outside() -> None:
    # the session may not run past `to`, and a session is at least a whole minute
    facility = Facility(
        rule("g", "grant"), rule("w", "limit", window={"from": "08:00", "to": "20:00"})
    )
    refused(facility.decide(WIFE, "2024-03-04T19:59:01"), Reason.OUTSIDE_WINDOW, ["w"])


def test_min_gap_is_measured_from_the_recorded_end() -> None:
    facility = Facility(
        rule("g", "grant", max_minutes=20), rule("gap", "limit", min_gap_minutes=30)
    )
    # asks for 45 minutes, recorded as 20: ends 10:20
    assert facility.call(WIFE, "2024-03-04T10:00", 45).max_minutes == 20
    refused(facility.decide(WIFE, "2024-03-04T10:49:59"), Reason.TOO_SOON, ["gap"])
    assert facility.decide(WIFE, "2024-03-04T10:50").allowed


def test_min_gap_zero_allows_back_to_back() -> None:
    facility = Facility(rule("g", "grant"), rule("gap", "limit", min_gap_minutes=0))
    assert facility.call(WIFE, "2024-03-04T10:00", 15).allowed
    assert facility.decide(WIFE, "2024-03-04T10:15").allowed


def test_min_gap_zero_still_refuses_a_start_before_the_previous_end() -> None:
    # SPEC 3.1: `0` still refuses a start before that end (a negative gap is < 0)
    facility = Facility(rule("g", "grant"), rule("gap", "limit", min_gap_minutes=0))
    assert facility.call(WIFE, "2024-03-04T10:00", 60).governed_by == ("gap",)
    refused(facility.decide(WIFE, "2024-03-04T10:30"), Reason.TOO_SOON, ["gap"])
    refused(facility.decide(WIFE, "2024-03-04T10:59:59"), Reason.TOO_SOON, ["gap"])
    allowed = facility.decide(WIFE, "2024-03-04T11:00")
    assert allowed.allowed
    assert allowed.rules == ("g", "gap")


def test_min_gap_zero_is_not_dropped_from_the_recorded_usage() -> None:
    # a zero gap still leaves its mark: usage_change must not skip it as falsy
    zero = rule("gap", "limit", min_gap_minutes=0)
    change = usage_change(rule("g", "grant"), [zero], at("2024-03-04T10:00"), 60, ZONE)
    assert [(mark.rule_id, mark.ends_at) for mark in change.gaps] == [
        ("gap", at("2024-03-04T11:00"))
    ]


def test_min_gap_small_edge_is_inclusive() -> None:
    facility = Facility(rule("g", "grant"), rule("gap", "limit", min_gap_minutes=5))
    assert facility.call(WIFE, "2024-03-04T10:00", 15).allowed
    refused(facility.decide(WIFE, "2024-03-04T10:19"), Reason.TOO_SOON, ["gap"])
    refused(facility.decide(WIFE, "2024-03-04T10:19:59"), Reason.TOO_SOON, ["gap"])
    assert facility.decide(WIFE, "2024-03-04T10:20").allowed


# --- room for less than one minute / no more sessions ----------------------------------


def test_minute_quota_with_one_minute_left_allows_one_minute() -> None:
    facility = Facility(rule("g", "grant", quota={"minutes": 30, "per": "day"}))
    assert facility.call(WIFE, "2024-03-04T10:00", 29).max_minutes == 30
    assert facility.decide(WIFE, "2024-03-04T11:00").max_minutes == 1


def test_minute_quota_with_no_minute_left_fails() -> None:
    facility = Facility(rule("g", "grant", quota={"minutes": 30, "per": "day"}))
    assert facility.call(WIFE, "2024-03-04T10:00", 30).allowed
    refused(facility.decide(WIFE, "2024-03-04T11:00"), Reason.QUOTA_EXHAUSTED, ["g"])
    assert facility.decide(WIFE, "2024-03-05T00:00").max_minutes == 30


def test_limit_minute_quota_with_no_minute_left_fails() -> None:
    facility = Facility(
        rule("g", "grant"), rule("cap", "limit", quota={"minutes": 10, "per": "week"})
    )
    assert facility.call(WIFE, "2024-03-04T10:00", 10).allowed
    refused(facility.decide(WIFE, "2024-03-10T23:00"), Reason.QUOTA_EXHAUSTED, ["cap"])
    # Monday 00:00 local starts the next ISO week
    assert facility.decide(WIFE, "2024-03-11T00:00").max_minutes == 10


def test_zero_quotas_never_have_room() -> None:
    counts = Facility(rule("g", "grant", quota={"count": 0, "per": "month"}))
    refused(counts.decide(WIFE, "2024-03-04T10:00"), Reason.QUOTA_EXHAUSTED, ["g"])
    minutes = Facility(rule("g", "grant", quota={"minutes": 0, "per": "month"}))
    refused(minutes.decide(WIFE, "2024-03-04T10:00"), Reason.QUOTA_EXHAUSTED, ["g"])


def test_count_quota_with_no_session_left_fails() -> None:
    facility = Facility(rule("g", "grant", quota={"count": 2, "minutes": 600, "per": "month"}))
    assert facility.call(WIFE, "2024-03-04T10:00", 1).allowed
    assert facility.call(WIFE, "2024-03-05T10:00", 1).allowed
    refused(facility.decide(WIFE, "2024-03-06T10:00"), Reason.QUOTA_EXHAUSTED, ["g"])


def test_rolling_quota_counts_starts_in_the_half_open_window() -> None:
    facility = Facility(rule("g", "grant", quota={"count": 1, "per": {"rolling_days": 1}}))
    assert facility.call(WIFE, "2024-03-04T10:00", 15).allowed
    refused(facility.decide(WIFE, "2024-03-05T09:59"), Reason.QUOTA_EXHAUSTED, ["g"])
    assert facility.decide(WIFE, "2024-03-05T10:00").allowed


def test_rolling_quota_is_absolute_time_across_dst() -> None:
    # 2024-03-10 02:00 MST -> 03:00 MDT: 24 h after 03-09 10:00 MST is 03-10 11:00 MDT
    facility = Facility(rule("g", "grant", quota={"count": 1, "per": {"rolling_days": 1}}))
    assert facility.call(WIFE, "2024-03-09T10:00", 15).allowed
    refused(facility.decide(WIFE, "2024-03-10T10:59"), Reason.QUOTA_EXHAUSTED, ["g"])
    assert facility.decide(WIFE, "2024-03-10T11:00").allowed


# --- step 5: the first grant's failure -------------------------------------------------


def test_refusal_reports_the_first_grant_in_order() -> None:
    facility = Facility(
        rule("order", "grant", authority="court_order", quota={"count": 0, "per": "month"}),
        rule("policy", "grant"),
        rule("hours", "limit", window={"from": "08:00", "to": "20:00"}),
    )
    # policy fails at an earlier stage (window) but order comes first: its failure is reported
    refused(facility.decide(WIFE, "2024-03-04T21:00"), Reason.QUOTA_EXHAUSTED, ["order"])


def test_refusal_reports_the_first_grant_even_at_an_earlier_stage() -> None:
    facility = Facility(
        rule("order", "grant", authority="court_order"),
        rule("extra", "grant", authority="incentive"),
        rule("kin", "grant", authority="incentive", contacts={"relationships": ["spouse"]}),
        # applies to the order only (through overrides): outside_window for it
        rule("hours", "limit", window={"from": "08:00", "to": "20:00"}, overrides=["order"]),
        # applies to the incentive grants only: quota_exhausted for both
        rule("cap", "limit", authority="sanction", quota={"count": 0, "per": "day"}),
    )
    refused(facility.decide(WIFE, "2024-03-04T21:00"), Reason.OUTSIDE_WINDOW, ["hours"])
    assert facility.decide(WIFE, "2024-03-04T10:00").charged_to == "order"


def test_refusal_skips_blocked_grants_when_choosing_the_first() -> None:
    rules = [
        rule("order", "grant", authority="court_order", quota={"count": 0, "per": "month"}),
        rule("sam", "grant", authority="security_measure", quota={"count": 0, "per": "week"}),
    ]
    blocked = Facility(*rules, rule("d", "deny", authority="sanction", overrides=["order"]))
    refused(blocked.decide(WIFE, "2024-03-04T10:00"), Reason.QUOTA_EXHAUSTED, ["sam"])
    unblocked = Facility(*rules, rule("d", "deny", authority="sanction"))
    refused(unblocked.decide(WIFE, "2024-03-04T10:00"), Reason.QUOTA_EXHAUSTED, ["order"])


# --- step 6: max_minutes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("grant_max", "limit_max", "grant_left", "limit_left", "window_left", "expected"),
    [
        (15, 20, 30, 40, 50, 15),
        (25, 20, 30, 40, 50, 20),
        (35, 40, 30, 45, 50, 30),
        (35, 40, 45, 25, 50, 25),
        (35, 40, 45, 50, 7, 7),
    ],
)
def test_max_minutes_is_the_least_bound(
    grant_max: int,
    limit_max: int,
    grant_left: int,
    limit_left: int,
    window_left: int,
    expected: int,
) -> None:
    facility = Facility(
        rule("g", "grant", max_minutes=grant_max, quota={"minutes": grant_left + 5, "per": "day"}),
        rule("m", "limit", max_minutes=limit_max),
        rule("q", "limit", quota={"minutes": limit_left + 5, "per": "day"}),
        rule("w", "limit", window={"from": "06:00", "to": "20:00"}),
    )
    assert facility.call(WIFE, "2024-03-04T06:00", 5).allowed
    start = at("2024-03-04T20:00") - timedelta(minutes=window_left, seconds=30)
    decision = facility.decide(WIFE, start)
    assert decision.allowed
    assert decision.max_minutes == expected


def test_max_minutes_is_1440_without_any_bound() -> None:
    facility = Facility(rule("g", "grant", quota={"count": 3, "per": "day"}), rule("r", "require"))
    assert facility.decide(WIFE, "2024-03-04T10:00").max_minutes == NO_BOUND_MINUTES == 1440


def test_max_minutes_ignores_limits_that_do_not_apply() -> None:
    facility = Facility(
        rule("g", "grant", authority="court_order", max_minutes=45),
        rule("m", "limit", max_minutes=5),
        rule("w", "limit", window={"from": "06:00", "to": "10:10"}),
        rule("other", "limit", max_minutes=3, contacts={"ids": ["brother"]}),
    )
    decision = facility.decide(WIFE, "2024-03-04T10:00")
    assert decision.max_minutes == 45
    assert set(decision.conflicts) == {"m", "w"}


def test_window_bound_is_absolute_time_on_the_spring_forward_day() -> None:
    # 2024-03-10: 01:30 MST to 04:00 MDT is 90 minutes, not 150
    facility = Facility(
        rule("g", "grant"), rule("w", "limit", window={"from": "01:00", "to": "04:00"})
    )
    assert facility.decide(WIFE, "2024-03-10T01:30").max_minutes == 90


def test_window_bound_is_absolute_time_on_the_fall_back_day() -> None:
    # 2024-11-03: 00:30 MDT to 03:00 MST is 210 minutes, not 150
    facility = Facility(
        rule("g", "grant"), rule("w", "limit", window={"from": "00:00", "to": "03:00"})
    )
    assert facility.decide(WIFE, "2024-11-03T00:30").max_minutes == 210


# --- step 6: monitoring and interpreter ------------------------------------------------


def test_default_monitoring_is_none_for_privileged_and_recorded_otherwise() -> None:
    facility = Facility(rule("g", "grant", contacts={"ids": ["counsel", "wife"]}))
    assert facility.decide(COUNSEL, "2024-03-04T10:00").monitoring is Monitoring.NONE
    assert facility.decide(WIFE, "2024-03-04T10:00").monitoring is Monitoring.RECORDED


@pytest.mark.parametrize(
    ("contact", "required", "expected"),
    [
        (COUNSEL, "recorded", Monitoring.RECORDED),
        (COUNSEL, "live", Monitoring.LIVE),
        (COUNSEL, "none", Monitoring.NONE),
        (WIFE, "none", Monitoring.RECORDED),
        (WIFE, "live", Monitoring.LIVE),
    ],
)
def test_monitoring_is_the_highest_of_default_and_requires(
    contact: Contact, required: str, expected: Monitoring
) -> None:
    facility = Facility(
        rule("g", "grant", contacts={"ids": ["counsel", "wife"]}),
        rule("r", "require", contacts={"ids": ["counsel", "wife"]}, monitoring=required),
    )
    decision = facility.decide(contact, "2024-03-04T10:00")
    assert decision.monitoring is expected
    assert set(decision.rules) == {"g", "r"}


def test_monitoring_takes_the_highest_of_several_requires_in_any_listing() -> None:
    rules = [
        rule("g", "grant"),
        rule("r-live", "require", order=1, monitoring="live"),
        rule("r-rec", "require", order=2, monitoring="recorded"),
    ]
    assert Facility(*rules).decide(WIFE, "2024-03-04T10:00").monitoring is Monitoring.LIVE
    reverse = Facility(*reversed(rules))
    assert reverse.decide(WIFE, "2024-03-04T10:00").monitoring is Monitoring.LIVE


def test_requires_that_do_not_match_are_ignored() -> None:
    facility = Facility(
        rule("g", "grant"),
        rule("r-video", "require", channel="video", monitoring="live", interpreter="es"),
        rule("r-brother", "require", contacts={"ids": ["brother"]}, monitoring="live"),
        rule("r-old", "require", until="2024-03-01", interpreter="fr"),
        rule("r-other", "require", person="someone", interpreter="de"),
    )
    decision = facility.decide(WIFE, "2024-03-04T10:00")
    assert decision.monitoring is Monitoring.RECORDED
    assert decision.interpreter is None
    assert decision.rules == ("g",)


def test_require_applies_even_to_a_court_order_grant() -> None:
    facility = Facility(
        rule("order", "grant", authority="court_order"),
        rule("r", "require", monitoring="live", interpreter="es"),
    )
    decision = facility.decide(WIFE, "2024-03-04T10:00")
    assert (decision.monitoring, decision.interpreter) == (Monitoring.LIVE, "es")
    assert decision.conflicts == ()


def test_interpreter_comes_from_the_later_listed_require() -> None:
    first = rule("z-es", "require", order=1, interpreter="es")
    later = rule("a-fr", "require", order=2, interpreter="fr")
    grant = rule("g", "grant", order=0)
    for rules in ([grant, first, later], [later, grant, first]):
        decision = Facility(*rules).decide(WIFE, "2024-03-04T10:00")
        assert decision.interpreter == "fr"
        assert set(decision.rules) == {"g", "z-es", "a-fr"}


def test_a_require_without_interpreter_leaves_an_earlier_one() -> None:
    facility = Facility(
        rule("g", "grant"),
        rule("r-es", "require", order=1, interpreter="es"),
        rule("r-live", "require", order=2, monitoring="live"),
    )
    assert facility.decide(WIFE, "2024-03-04T10:00").interpreter == "es"


# --- step 6: conflicts -----------------------------------------------------------------


def test_conflicts_are_the_matching_rules_outranked_by_the_charged_grant() -> None:
    facility = Facility(
        rule("order", "grant", authority="court_order"),
        rule("d", "deny", authority="security_measure"),
        rule("l", "limit", authority="sanction", max_minutes=5),
        rule("l-over", "limit", max_minutes=30, overrides=["order"]),
        rule("d-brother", "deny", contacts={"ids": ["brother"]}),
        rule("l-video", "limit", channel="video", max_minutes=5),
        rule("l-old", "limit", until="2024-03-01", max_minutes=5),
        rule("l-later", "limit", from_="2024-03-05", max_minutes=5),
        rule("r", "require", interpreter="es"),
    )
    decision = facility.decide(WIFE, "2024-03-04T10:00")
    assert decision.allowed
    assert set(decision.conflicts) == {"d", "l"}
    assert set(decision.rules) == {"order", "l-over", "r"}
    assert decision.max_minutes == 30


def test_conflicts_empty_when_the_charged_grant_outranks_nothing() -> None:
    facility = Facility(
        rule("order", "grant", authority="court_order", quota={"count": 0, "per": "day"}),
        rule("policy", "grant"),
        rule("l", "limit", authority="sanction", max_minutes=5),
    )
    decision = facility.decide(WIFE, "2024-03-04T10:00")
    assert decision.charged_to == "policy"
    assert decision.conflicts == ()
    assert set(decision.rules) == {"policy", "l"}


# --- governing: limits count only what they govern -------------------------------------


def test_a_limit_counts_only_the_sessions_it_governs() -> None:
    facility = Facility(
        rule("order", "grant", authority="court_order", contacts={"ids": ["daughter"]}),
        rule("policy", "grant"),
        rule("one-a-day", "limit", quota={"count": 1, "per": "day"}),
    )
    first = facility.call(DAUGHTER, "2024-03-04T09:00", 15)
    assert first.charged_to == "order"
    assert first.conflicts == ("one-a-day",)
    assert first.governed_by == ()
    # invisible to the limit: the wife's call still has room
    second = facility.call(WIFE, "2024-03-04T10:00", 15)
    assert second.charged_to == "policy"
    assert second.governed_by == ("one-a-day",)
    refused(facility.decide(BROTHER, "2024-03-04T11:00"), Reason.QUOTA_EXHAUSTED, ["one-a-day"])
    assert facility.decide(DAUGHTER, "2024-03-04T11:00").charged_to == "order"


def test_a_grant_quota_counts_only_sessions_charged_to_it() -> None:
    facility = Facility(
        rule("order", "grant", authority="court_order", quota={"count": 1, "per": "month"}),
        rule("policy", "grant", quota={"count": 1, "per": "month"}),
    )
    assert facility.call(WIFE, "2024-03-04T10:00", 15).charged_to == "order"
    assert facility.call(WIFE, "2024-03-05T10:00", 15).charged_to == "policy"
    refused(facility.decide(WIFE, "2024-03-06T10:00"), Reason.QUOTA_EXHAUSTED, ["order"])


def test_gap_counts_only_governed_sessions() -> None:
    facility = Facility(
        rule("order", "grant", authority="court_order", contacts={"ids": ["daughter"]}),
        rule("policy", "grant"),
        rule("gap", "limit", min_gap_minutes=60),
    )
    assert facility.call(DAUGHTER, "2024-03-04T10:00", 15).charged_to == "order"
    assert facility.call(WIFE, "2024-03-04T10:20", 15).charged_to == "policy"
    refused(facility.decide(BROTHER, "2024-03-04T11:00"), Reason.TOO_SOON, ["gap"])


def test_quota_of_a_person_all_rule_is_counted_per_person() -> None:
    other = Contact("friend", "other", "friend", approved=frozenset({Channel.PHONE}))
    facility = Facility(rule("g", "grant", person="all", quota={"count": 1, "per": "day"}))
    assert facility.call(WIFE, "2024-03-04T10:00", 15).allowed
    assert facility.call(other, "2024-03-04T10:00", 15, person="other").allowed
    refused(facility.decide(WIFE, "2024-03-04T11:00"), Reason.QUOTA_EXHAUSTED, ["g"])


def test_usage_change_adds_to_the_charged_grant_and_governing_limits_only() -> None:
    grant = rule("g", "grant", quota={"count": 2, "per": "month"})
    counted = rule("month", "limit", quota={"minutes": 100, "per": "month"}, min_gap_minutes=5)
    rolling = rule("roll", "limit", quota={"count": 2, "per": {"rolling_days": 7}})
    outranked = rule("other", "limit", quota={"count": 2, "per": "day"})
    start = at("2024-03-31T23:30")
    change = usage_change(grant, [counted, rolling], start, 20, ZONE)
    assert {(c.rule_id, c.period_key, c.minutes) for c in change.counters} == {
        ("g", "2024-03", 20),
        ("month", "2024-03", 20),
    }
    assert [(e.rule_id, e.minutes) for e in change.entries] == [("roll", 20)]
    assert [(g.rule_id, g.ends_at) for g in change.gaps] == [
        ("month", start + timedelta(minutes=20))
    ]
    assert outranked.id not in {c.rule_id for c in change.counters}


# --- step 6: visit settings -------------------------------------------------------------

VISITS = frozenset({Channel.PHONE, Channel.VIDEO, Channel.VISIT})
V_WIFE = Contact("wife", PERSON, "spouse", approved=VISITS)
V_SON = Contact("son", PERSON, "child", approved=VISITS)
V_COUNSEL = Contact("counsel", PERSON, "attorney", privileged=True, approved=VISITS)


def visit_rule(rule_id: str, kind: str, order: int = 0, **fields: Any) -> Rule:
    return rule(rule_id, kind, order, channel="visit", **fields)


def test_a_visit_without_a_setting_rule_is_open() -> None:
    facility = Facility(
        visit_rule("g", "grant"),
        visit_rule("r-live", "require", order=1, monitoring="live"),
    )
    decision = facility.decide(V_WIFE, "2024-03-04T10:00", Channel.VISIT)
    assert decision.allowed
    assert decision.setting is Setting.OPEN
    assert decision.as_dict()["setting"] == "open"
    assert decision.rules == ("g", "r-live")


@pytest.mark.parametrize("order", [(1, 2), (2, 1)])
def test_the_most_restrictive_setting_wins_in_any_listing(order: tuple[int, int]) -> None:
    facility = Facility(
        visit_rule("g", "grant"),
        visit_rule("r-nc", "require", order=order[0], setting="non_contact"),
        visit_rule("r-closed", "require", order=order[1], setting="closed"),
    )
    decision = facility.decide(V_WIFE, "2024-03-04T10:00", Channel.VISIT)
    assert decision.setting is Setting.CLOSED
    assert decision.as_dict()["setting"] == "closed"
    assert set(decision.rules) == {"g", "r-nc", "r-closed"}


def test_a_require_asking_for_open_never_lowers_the_setting() -> None:
    facility = Facility(
        visit_rule("g", "grant"),
        visit_rule("r-nc", "require", order=1, setting="non_contact"),
        visit_rule("r-open", "require", order=2, setting="open"),
    )
    decision = facility.decide(V_WIFE, "2024-03-04T10:00", Channel.VISIT)
    assert decision.setting is Setting.NON_CONTACT


def test_setting_requires_that_do_not_match_are_not_counted() -> None:
    facility = Facility(
        visit_rule("g", "grant", contacts={"ids": ["wife", "son", "counsel"]}),
        visit_rule("r-son", "require", contacts={"ids": ["son"]}, setting="closed"),
        visit_rule("r-any", "require", setting="closed"),  # `any`: never counsel
        visit_rule("r-old", "require", until="2024-03-01", setting="closed"),
        visit_rule("r-later", "require", from_="2024-03-05", setting="closed"),
        visit_rule("r-other", "require", person="someone", setting="closed"),
    )
    decision = facility.decide(V_COUNSEL, "2024-03-04T10:00", Channel.VISIT)
    assert decision.setting is Setting.OPEN
    assert decision.rules == ("g",)
    assert facility.decide(V_SON, "2024-03-04T10:00", Channel.VISIT).setting is Setting.CLOSED


def test_a_setting_require_applies_even_to_a_court_order_grant() -> None:
    facility = Facility(
        visit_rule("order", "grant", authority="court_order"),
        visit_rule("r", "require", setting="non_contact"),
    )
    decision = facility.decide(V_WIFE, "2024-03-04T10:00", Channel.VISIT)
    assert (decision.charged_to, decision.setting) == ("order", Setting.NON_CONTACT)
    assert decision.conflicts == ()


@pytest.mark.parametrize("channel", [Channel.PHONE, Channel.VIDEO])
def test_phone_and_video_have_no_setting(channel: Channel) -> None:
    facility = Facility(
        rule("g", "grant", channel=str(channel)),
        rule("r", "require", channel=str(channel), monitoring="live"),
        visit_rule("g-visit", "grant"),
        visit_rule("r-visit", "require", setting="closed"),
    )
    decision = facility.decide(V_WIFE, "2024-03-04T10:00", channel)
    assert decision.allowed
    assert decision.setting is None
    assert decision.as_dict()["setting"] is None
    assert set(decision.rules) == {"g", "r"}


def test_a_refused_visit_has_no_setting() -> None:
    not_approved = Contact("friend", PERSON, "friend", approved=frozenset({Channel.PHONE}))
    facility = Facility(
        visit_rule("g", "grant", quota={"count": 1, "per": "day"}),
        visit_rule("d-son", "deny", contacts={"ids": ["son"]}),
        visit_rule("r", "require", setting="closed"),
    )
    assert facility.call(V_WIFE, "2024-03-04T10:00", 60, Channel.VISIT).setting is Setting.CLOSED
    refusals = [
        (facility.decide(not_approved, "2024-03-04T12:00", Channel.VISIT), Reason.NOT_ON_LIST),
        (facility.decide(V_SON, "2024-03-05T12:00", Channel.VISIT), Reason.DENIED),
        (facility.decide(V_WIFE, "2024-03-04T12:00", Channel.VISIT), Reason.QUOTA_EXHAUSTED),
        (Facility().decide(V_WIFE, "2024-03-04T12:00", Channel.VISIT), Reason.NO_GRANT),
    ]
    for decision, reason in refusals:
        assert decision.reason is reason
        assert decision.setting is None
        assert decision.as_dict()["setting"] is None
