"""Court-order compliance (SPEC 7): entitled, delivered and shortfall for one period."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kinline.rules.compliance import (
    ComplianceError,
    DeliveredSession,
    compliance,
    order_period,
)
from kinline.rules.decide import Request, decide
from kinline.rules.model import Channel, Contact, Rule
from kinline.rules.parse import parse_rule
from kinline.rules.periods import wall_to_instant
from kinline.rules.usage import UsageLedger, usage_change

ZONE = ZoneInfo("America/Denver")
PERSON = "salazar"
DAUGHTER = Contact("daughter", PERSON, "child", approved=frozenset({Channel.PHONE, Channel.VIDEO}))
SON = Contact("son", PERSON, "child", approved=frozenset({Channel.PHONE}))
WIFE = Contact("wife", PERSON, "spouse", approved=frozenset({Channel.PHONE}))
COUNSEL = Contact(
    "counsel", PERSON, "attorney", privileged=True, approved=frozenset({Channel.PHONE})
)


def at(wall: str) -> datetime:
    return wall_to_instant(datetime.fromisoformat(wall), ZONE)


def order(**fields: Any) -> Rule:
    data: dict[str, Any] = {
        "id": "order-17",
        "authority": "court_order",
        "kind": "grant",
        "channel": "phone",
        "person": PERSON,
        "contacts": {"relationships": ["child"]},
        "quota": {"count": 2, "per": "month"},
    }
    if "from_" in fields:
        fields["from"] = fields.pop("from_")
    data.update(fields)
    return parse_rule(data, ZONE, 0)


def session(
    contact: Contact, when: str, channel: str = "phone", person: str = PERSON
) -> DeliveredSession:
    return DeliveredSession(person, contact, channel, at(when))


def report(rule: Rule, period: str, sessions: list[DeliveredSession]) -> tuple[int, int, int]:
    result = compliance(rule, order_period(rule, period, ZONE), sessions)
    return result.entitled, result.delivered, result.shortfall


# --- which orders and periods can be reported on ---------------------------------------


@pytest.mark.parametrize(
    ("rule", "period"),
    [
        pytest.param(order(authority="security_measure"), "2024-03", id="not-a-court-order"),
        pytest.param(order(kind="limit"), "2024-03", id="a-limit"),
        pytest.param(order(quota=None), "2024-03", id="no-quota"),
        pytest.param(order(quota={"minutes": 30, "per": "month"}), "2024-03", id="minutes-only"),
        pytest.param(order(), "2024-W10", id="week-for-a-month-order"),
        pytest.param(order(), "2024-03-04", id="day-for-a-month-order"),
        pytest.param(order(quota={"count": 1, "per": "week"}), "2024-03", id="month-for-week"),
        pytest.param(order(quota={"count": 1, "per": "day"}), "2024-W10", id="week-for-day"),
        pytest.param(
            order(quota={"count": 1, "per": {"rolling_days": 30}}), "2024-03", id="rolling"
        ),
        pytest.param(order(), "2024-3", id="malformed"),
        pytest.param(order(), "2024-13", id="no-such-month"),
        pytest.param(order(quota={"count": 1, "per": "week"}), "2024-W53", id="no-such-week"),
        pytest.param(order(), "March 2024", id="words"),
    ],
)
def test_order_period_refuses(rule: Rule, period: str) -> None:
    with pytest.raises(ComplianceError, match=r"\S"):
        order_period(rule, period, ZONE)


@pytest.mark.parametrize(
    ("per", "period", "hours"),
    [("month", "2024-03", 743), ("week", "2024-W10", 167), ("day", "2024-03-10", 23)],
)
def test_order_period_gives_the_local_span(per: str, period: str, hours: int) -> None:
    span = order_period(order(quota={"count": 1, "per": per}), period, ZONE)
    assert span.key == period
    assert span.end - span.start == timedelta(hours=hours)


# --- entitled ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "entitled"),
    [
        ({}, 2),
        ({"from_": "2024-04-01"}, 0),
        ({"until": "2024-03-01"}, 0),  # until is exclusive: not active in March
        ({"from_": "2023-01-01", "until": "2024-03-01T00:01"}, 2),  # the first minute
        ({"from_": "2024-03-31T23:59"}, 2),  # the last minute
        ({"from_": "2024-03-10", "until": "2024-03-11"}, 2),
        ({"from_": "2024-01-01", "until": "2024-02-15"}, 0),
    ],
)
def test_entitled_when_active_at_any_moment_of_the_period(
    fields: dict[str, Any], entitled: int
) -> None:
    assert report(order(**fields), "2024-03", [])[0] == entitled


def test_inactive_order_has_no_shortfall() -> None:
    assert report(order(until="2024-02-01"), "2024-03", []) == (0, 0, 0)
    assert report(
        order(until="2024-02-01"), "2024-03", [session(DAUGHTER, "2024-03-05T10:00")]
    ) == (
        0,
        1,
        0,
    )


# --- delivered and shortfall -------------------------------------------------------------


def test_delivered_counts_matching_sessions_on_the_channel_in_the_period() -> None:
    sessions = [
        session(DAUGHTER, "2024-03-04T10:00"),
        session(SON, "2024-03-31T23:30"),  # 2024-04-01 05:30 UTC: still March locally
        session(DAUGHTER, "2024-03-05T10:00", channel="video"),  # other channel
        session(WIFE, "2024-03-06T10:00"),  # not a child
        session(DAUGHTER, "2024-04-01T00:00"),  # April
        session(DAUGHTER, "2024-02-29T23:59"),  # February
    ]
    assert report(order(), "2024-03", sessions) == (2, 2, 0)
    assert report(order(), "2024-04", sessions) == (2, 1, 1)
    assert report(order(), "2024-02", sessions) == (2, 1, 1)


def test_shortfall_is_never_negative() -> None:
    sessions = [session(DAUGHTER, f"2024-03-0{day}T10:00") for day in range(1, 6)]
    assert report(order(), "2024-03", sessions) == (2, 5, 0)
    assert report(order(), "2024-03", sessions[:1]) == (2, 1, 1)
    assert report(order(), "2024-03", []) == (2, 0, 2)


def test_delivered_uses_the_selector_privileged_rules() -> None:
    sessions = [session(COUNSEL, "2024-03-04T10:00"), session(WIFE, "2024-03-05T10:00")]
    assert report(order(contacts="any"), "2024-03", sessions)[1] == 1
    assert report(order(contacts={"ids": ["counsel"]}), "2024-03", sessions)[1] == 1
    assert report(order(contacts={"exclude": ["wife"]}), "2024-03", sessions)[1] == 0


def test_delivered_ignores_other_peoples_sessions() -> None:
    stranger = Contact("daughter", "other", "child", approved=frozenset({Channel.PHONE}))
    sessions = [session(stranger, "2024-03-04T10:00", person="other")]
    assert report(order(), "2024-03", sessions)[1] == 0


def test_week_period() -> None:
    rule = order(quota={"count": 3, "per": "week"})
    sessions = [
        session(DAUGHTER, "2024-03-03T23:59"),  # Sunday: W09
        session(DAUGHTER, "2024-03-04T00:00"),  # Monday: W10
        session(SON, "2024-03-10T23:00"),  # Sunday after the DST change: W10
    ]
    assert report(rule, "2024-W10", sessions) == (3, 2, 1)


def test_delivered_counts_sessions_whichever_grant_was_charged() -> None:
    court = order(quota={"count": 1, "per": "month"})
    policy = parse_rule(
        {
            "id": "policy-phone",
            "authority": "facility_policy",
            "kind": "grant",
            "channel": "phone",
            "person": "all",
            "contacts": "any",
        },
        ZONE,
        1,
    )
    rules = [court, policy]
    ledger = UsageLedger(ZONE)
    delivered: list[DeliveredSession] = []
    charged: list[str | None] = []
    for contact, when in [
        (DAUGHTER, "2024-03-04T10:00"),
        (SON, "2024-03-11T10:00"),
        (WIFE, "2024-03-12T10:00"),
    ]:
        instant = at(when)
        decision = decide(
            Request(PERSON, contact, Channel.PHONE, instant), rules, ledger.snapshot(PERSON), ZONE
        )
        assert decision.allowed
        grant = court if decision.charged_to == court.id else policy
        ledger.apply(PERSON, usage_change(grant, [], instant, 15, ZONE))
        delivered.append(DeliveredSession(PERSON, contact, "phone", instant))
        charged.append(decision.charged_to)
    assert charged == ["order-17", "policy-phone", "policy-phone"]
    # the son's call was charged to facility policy and still delivers on the order
    assert report(court, "2024-03", delivered) == (1, 2, 0)
