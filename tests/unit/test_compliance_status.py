"""A court order's compliance status (courts.report): the facility's rule in
whole percentages, a requirement's worst period, and the rule's own checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinline.courts.report import (
    Requirement,
    RequirementPeriod,
    Status,
    StatusRule,
    StatusRuleError,
    reason_words,
    requirement_period,
    worst,
)

T = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("entitled", "delivered", "expected"),
    [
        (2, 2, Status.COMPLIANT),
        (2, 3, Status.COMPLIANT),
        (2, 1, Status.PARTIAL),  # exactly 50%
        (3, 1, Status.NON_COMPLIANT),  # 33%
        (4, 0, Status.NON_COMPLIANT),
        (0, 0, Status.NOT_DUE),
        (0, 5, Status.NOT_DUE),
    ],
)
def test_the_default_rule(entitled: int, delivered: int, expected: Status) -> None:
    assert StatusRule().status(entitled, delivered) is expected


def test_a_facilitys_rule_in_whole_numbers() -> None:
    rule = StatusRule(compliant_percent=75, partial_percent=25)
    assert rule.status(4, 3) is Status.COMPLIANT
    assert rule.status(4, 2) is Status.PARTIAL
    assert rule.status(4, 1) is Status.PARTIAL  # exactly 25%
    assert rule.status(4, 0) is Status.NON_COMPLIANT
    # 2 of 3 is 66.66...%: not 75, however floats would round it.
    assert rule.status(3, 2) is Status.PARTIAL
    assert StatusRule(100, 0).status(4, 0) is Status.PARTIAL


@pytest.mark.parametrize(
    ("compliant", "partial", "field"),
    [
        (0, 0, "compliant_percent"),
        (101, 50, "compliant_percent"),
        (100, -1, "partial_percent"),
        (50, 60, "partial_percent"),
    ],
)
def test_a_rule_that_is_not_one_names_its_field(compliant: int, partial: int, field: str) -> None:
    with pytest.raises(StatusRuleError) as raised:
        StatusRule(compliant, partial).check()
    assert raised.value.field == field


@given(
    st.integers(1, 100),
    st.integers(0, 100),
    st.integers(1, 50),
    st.integers(0, 60),
)
def test_more_delivered_is_never_a_worse_status(
    compliant: int, partial: int, entitled: int, delivered: int
) -> None:
    rule = StatusRule(compliant, min(partial, compliant))
    order = [Status.NON_COMPLIANT, Status.PARTIAL, Status.COMPLIANT]
    before = order.index(rule.status(entitled, delivered))
    after = order.index(rule.status(entitled, delivered + 1))
    assert after >= before
    if delivered >= entitled:
        assert rule.status(entitled, delivered) is Status.COMPLIANT


def _period(key: str, entitled: int, delivered: int, rule: StatusRule) -> RequirementPeriod:
    return requirement_period(
        rule,
        key=key,
        start=T,
        end=T,
        entitled=entitled,
        delivered=delivered,
        outside_policy=0,
        evidence=(),
    )


def test_a_requirement_takes_its_worst_period() -> None:
    rule = StatusRule()
    periods = tuple(
        _period(k, e, d, rule)
        for k, e, d in (("2024-01", 2, 5), ("2024-02", 2, 1), ("2024-03", 0, 0))
    )
    requirement = Requirement("o", "text", "phone", 2, "month", "any", periods)
    assert requirement.status is Status.PARTIAL
    # An extra call in one month does not make up for a missing one in another.
    assert requirement.delivered == 6 and requirement.entitled == 4
    assert requirement.shortfall == 1
    assert requirement.counts()[Status.NOT_DUE] == 1
    assert worst([]) is Status.NOT_DUE
    assert worst([Status.COMPLIANT, Status.NON_COMPLIANT, Status.PARTIAL]) is Status.NON_COMPLIANT


def test_reason_codes_in_words() -> None:
    assert reason_words("quota_exhausted").endswith("(quota_exhausted)")
    assert reason_words("something_new") == "something_new"
    assert reason_words(None) == "refused"
