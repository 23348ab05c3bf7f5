"""Bounds on the numbers, times and text of a rule (``kinline.bounds``): a value
past one is refused where the rule is parsed, naming the field; a value at one
is accepted, and the engine decides with it at the earliest and the latest
instant allowed without overflowing."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kinline.bounds import (
    CASE_NUMBER_CHARS,
    COUNT_MAX,
    MINUTES_MAX,
    ROLLING_DAYS_MAX,
    RULE_TEXT_CHARS,
    YEAR_MAX,
    YEAR_MIN,
)
from kinline.rules.decide import Request, decide
from kinline.rules.model import Channel, Contact
from kinline.rules.parse import RuleError, parse_instant, parse_rule, parse_wall_time
from kinline.rules.usage import UsageLedger, usage_change

ZONE = ZoneInfo("America/Denver")
WIFE = Contact("wife", "salazar", "spouse", approved=frozenset({Channel.PHONE}))
BASE: dict[str, Any] = {
    "id": "r",
    "authority": "facility_policy",
    "kind": "limit",
    "channel": "phone",
    "person": "salazar",
    "contacts": "any",
}


def roll(days: int) -> dict[str, int]:
    return {"rolling_days": days}


def refused(data: dict[str, Any], field: str) -> str:
    with pytest.raises(RuleError) as caught:
        parse_rule({**BASE, **data}, ZONE, 0)
    assert caught.value.field == field, caught.value
    return caught.value.message


# Each: the field, its largest accepted value, and the rule around it.
NUMBERS: list[tuple[str, int, Any]] = [
    (
        "rule.quota.per.rolling_days",
        ROLLING_DAYS_MAX,
        lambda n: {"quota": {"count": 1, "per": roll(n)}},
    ),
    ("rule.quota.minutes", MINUTES_MAX, lambda n: {"quota": {"minutes": n, "per": "month"}}),
    ("rule.quota.count", COUNT_MAX, lambda n: {"quota": {"count": n, "per": "week"}}),
    ("rule.max_minutes", MINUTES_MAX, lambda n: {"max_minutes": n}),
    ("rule.min_gap_minutes", MINUTES_MAX, lambda n: {"min_gap_minutes": n}),
]


@pytest.mark.parametrize(("field", "largest", "shape"), NUMBERS, ids=[n[0] for n in NUMBERS])
def test_a_number_past_its_bound_names_the_field(field: str, largest: int, shape: Any) -> None:
    parse_rule({**BASE, **shape(largest)}, ZONE, 0)
    for value in (largest + 1, 1_000_000_000, 10**30):
        message = refused(shape(value), field)
        assert message == f"must be at most {largest}"


@pytest.mark.parametrize("field", [n[0] for n in NUMBERS])
def test_a_float_is_not_a_number_of_minutes_or_days(field: str) -> None:
    shape = next(s for f, _, s in NUMBERS if f == field)
    assert refused(shape(1e30), field) == "must be a whole number"


def test_text_past_its_bound_names_the_field() -> None:
    parse_rule({**BASE, "text": "x" * RULE_TEXT_CHARS}, ZONE, 0)
    message = refused({"text": "x" * (RULE_TEXT_CHARS + 1)}, "rule.text")
    assert f"at most {RULE_TEXT_CHARS} characters" in message
    parse_rule({**BASE, "case_number": "c" * CASE_NUMBER_CHARS}, ZONE, 0)
    refused({"case_number": "c" * (CASE_NUMBER_CHARS + 1)}, "rule.case_number")
    refused({"kind": "require", "interpreter": "es" + "-abcdefgh" * 40}, "rule.interpreter")


@pytest.mark.parametrize(
    "wall", ["0001-01-01", f"{YEAR_MIN - 1}-12-31T23:59", f"{YEAR_MAX + 1}-01-01", "9998-01-01"]
)
def test_an_instant_outside_the_years_allowed_names_the_field(wall: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_instant(wall, ZONE, "at")
    assert caught.value.field == "at"
    assert f"years {YEAR_MIN} to {YEAR_MAX}" in caught.value.message
    refused({"from": wall}, "rule.from")
    refused({"until": wall}, "rule.until")


def test_the_years_allowed_are_accepted() -> None:
    assert parse_wall_time(f"{YEAR_MIN}-01-01", "at") == datetime(YEAR_MIN, 1, 1)
    assert parse_wall_time(f"{YEAR_MAX}-12-31T23:59", "at") == datetime(YEAR_MAX, 12, 31, 23, 59)


@pytest.mark.parametrize("wall", [f"{YEAR_MIN}-01-01T00:00", f"{YEAR_MAX}-12-31T23:59"])
def test_the_engine_decides_with_every_bound_at_the_edges_of_time(wall: str) -> None:
    """The largest rolling window, gap, cap and quotas, at the first and the last
    instant allowed: a decision, a session recorded, and the decision after it."""
    grant = parse_rule(
        {
            **BASE,
            "id": "g",
            "kind": "grant",
            "quota": {"count": COUNT_MAX, "minutes": MINUTES_MAX, "per": "month"},
            "max_minutes": MINUTES_MAX,
        },
        ZONE,
        0,
    )
    limit = parse_rule(
        {
            **BASE,
            "id": "l",
            "quota": {"count": COUNT_MAX, "minutes": MINUTES_MAX, "per": roll(ROLLING_DAYS_MAX)},
            "min_gap_minutes": MINUTES_MAX,
        },
        ZONE,
        1,
    )
    instant = parse_instant(wall, ZONE, "at")
    ledger = UsageLedger(ZONE)
    request = Request("salazar", WIFE, Channel.PHONE, instant)
    first = decide(request, [grant, limit], ledger.snapshot("salazar"), ZONE)
    assert first.allowed, first
    assert first.max_minutes == MINUTES_MAX
    ledger.apply("salazar", usage_change(grant, [limit], instant, 10, ZONE))
    again = decide(request, [grant, limit], ledger.snapshot("salazar"), ZONE)
    assert not again.allowed
    assert again.reason is not None and again.reason.value == "too_soon"
