"""Rules from plain data: every malformed field is named, and definitions round-trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinline.rules.model import (
    ANY,
    DAY,
    MONTH,
    RELATIONSHIPS,
    WEEK,
    Authority,
    Channel,
    Kind,
    Monitoring,
    Quota,
    Rule,
    Selector,
    Setting,
    Window,
    rolling,
)
from kinline.rules.parse import (
    RuleError,
    parse_rule,
    rule_definition,
    rule_from_definition,
)
from kinline.rules.periods import local, parse_period, wall_to_instant

ZONE = ZoneInfo("America/Denver")


def base(kind: str = "grant", **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "r1",
        "authority": "facility_policy",
        "kind": kind,
        "channel": "phone",
        "person": "salazar",
        "contacts": "any",
    }
    data.update(fields)
    return data


def without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


MALFORMED: list[tuple[str, object, str]] = [
    ("not-a-mapping", ["id", "r1"], "rule"),
    ("unknown-field", base(colour="red"), "rule.colour"),
    ("grant-with-window", base(window={"from": "08:00", "to": "09:00"}), "rule.window"),
    ("grant-with-gap", base(min_gap_minutes=5), "rule.min_gap_minutes"),
    ("grant-with-monitoring", base(monitoring="live"), "rule.monitoring"),
    ("deny-with-quota", base("deny", quota={"count": 1, "per": "day"}), "rule.quota"),
    ("deny-with-max", base("deny", max_minutes=5), "rule.max_minutes"),
    ("require-with-max", base("require", max_minutes=5), "rule.max_minutes"),
    ("limit-with-interpreter", base("limit", interpreter="es"), "rule.interpreter"),
    ("missing-id", without(base(), "id"), "rule.id"),
    ("id-with-space", base(id="order 17"), "rule.id"),
    ("id-leading-dash", base(id="-order"), "rule.id"),
    ("id-too-long", base(id="a" * 65), "rule.id"),
    ("id-number", base(id=17), "rule.id"),
    ("bad-authority", base(authority="warden"), "rule.authority"),
    ("missing-authority", without(base(), "authority"), "rule.authority"),
    ("authority-not-text", base(authority=5), "rule.authority"),
    ("authority-wrong-case", base(authority="Court_Order"), "rule.authority"),
    ("bad-kind", base(kind="allow"), "rule.kind"),
    ("bad-channel", base(channel="email"), "rule.channel"),
    ("missing-channel", without(base(), "channel"), "rule.channel"),
    ("missing-person", without(base(), "person"), "rule.person"),
    ("bad-person", base(person="R. Salazar"), "rule.person"),
    ("person-list", base(person=["a", "b"]), "rule.person"),
    ("missing-contacts", without(base(), "contacts"), "rule.contacts"),
    ("contacts-all", base(contacts="all"), "rule.contacts"),
    ("contacts-none", base(contacts=None), "rule.contacts"),
    ("contacts-list", base(contacts=["a"]), "rule.contacts"),
    ("zero-length-ids", base(contacts={"ids": []}), "rule.contacts.ids"),
    ("ids-not-list", base(contacts={"ids": "wife"}), "rule.contacts.ids"),
    ("bad-id-in-ids", base(contacts={"ids": ["wife", "the kids"]}), "rule.contacts.ids"),
    (
        "unknown-relationship",
        base(contacts={"relationships": ["cousin"]}),
        "rule.contacts.relationships",
    ),
    ("zero-relationships", base(contacts={"relationships": []}), "rule.contacts.relationships"),
    ("privileged-false", base(contacts={"privileged": False}), "rule.contacts.privileged"),
    ("privileged-text", base(contacts={"privileged": "yes"}), "rule.contacts.privileged"),
    (
        "two-selector-forms",
        base(contacts={"ids": ["a"], "relationships": ["child"]}),
        "rule.contacts",
    ),
    ("ids-and-privileged", base(contacts={"ids": ["a"], "privileged": True}), "rule.contacts"),
    ("unknown-selector-field", base(contacts={"names": ["a"]}), "rule.contacts.names"),
    ("exclude-not-list", base(contacts={"exclude": "wife"}), "rule.contacts.exclude"),
    ("bad-exclude-id", base(contacts={"exclude": ["x y"]}), "rule.contacts.exclude"),
    ("overrides-not-list", base(overrides="order-17"), "rule.overrides"),
    ("overrides-none", base(overrides=None), "rule.overrides"),
    ("bad-override-id", base(overrides=["order 17"]), "rule.overrides"),
    ("text-not-text", base(text=5), "rule.text"),
    ("case-number-not-text", base(case_number=17), "rule.case_number"),
    ("bad-from", base(**{"from": "yesterday"}), "rule.from"),
    ("from-with-offset", base(**{"from": "2024-03-04T10:00+01:00"}), "rule.from"),
    ("from-number", base(**{"from": 20240304}), "rule.from"),
    ("bad-until", base(until="2024-02-30"), "rule.until"),
    (
        "until-equals-from",
        base(**{"from": "2024-03-04", "until": "2024-03-04T00:00"}),
        "rule.until",
    ),
    ("until-before-from", base(**{"from": "2024-03-04", "until": "2024-03-03"}), "rule.until"),
    ("quota-not-mapping", base(quota="lots"), "rule.quota"),
    ("quota-without-per", base(quota={"count": 2}), "rule.quota.per"),
    ("quota-without-amount", base(quota={"per": "day"}), "rule.quota"),
    ("quota-unknown-field", base(quota={"count": 2, "per": "day", "hours": 1}), "rule.quota.hours"),
    ("quota-negative-count", base(quota={"count": -1, "per": "day"}), "rule.quota.count"),
    ("quota-bool-count", base(quota={"count": True, "per": "day"}), "rule.quota.count"),
    ("quota-float-count", base(quota={"count": 1.5, "per": "day"}), "rule.quota.count"),
    ("quota-text-minutes", base(quota={"minutes": "60", "per": "day"}), "rule.quota.minutes"),
    ("quota-negative-minutes", base(quota={"minutes": -5, "per": "day"}), "rule.quota.minutes"),
    ("per-year", base(quota={"count": 2, "per": "year"}), "rule.quota.per"),
    (
        "per-rolling-zero",
        base(quota={"count": 2, "per": {"rolling_days": 0}}),
        "rule.quota.per.rolling_days",
    ),
    (
        "per-rolling-text",
        base(quota={"count": 2, "per": {"rolling_days": "7"}}),
        "rule.quota.per.rolling_days",
    ),
    (
        "per-rolling-extra",
        base(quota={"count": 2, "per": {"rolling_days": 7, "x": 1}}),
        "rule.quota.per",
    ),
    ("per-week-capital", base(quota={"count": 2, "per": "Week"}), "rule.quota.per"),
    ("max-minutes-zero", base(max_minutes=0), "rule.max_minutes"),
    ("max-minutes-text", base(max_minutes="15"), "rule.max_minutes"),
    ("max-minutes-bool", base(max_minutes=True), "rule.max_minutes"),
    (
        "window-across-midnight",
        base("limit", window={"from": "22:00", "to": "06:00"}),
        "rule.window",
    ),
    ("window-empty", base("limit", window={"from": "08:00", "to": "08:00"}), "rule.window"),
    ("window-missing-to", base("limit", window={"from": "08:00"}), "rule.window"),
    (
        "window-extra",
        base("limit", window={"from": "08:00", "to": "09:00", "tz": "UTC"}),
        "rule.window",
    ),
    ("window-text", base("limit", window="08:00-09:00"), "rule.window"),
    (
        "window-from-one-digit",
        base("limit", window={"from": "8:00", "to": "09:00"}),
        "rule.window.from",
    ),
    ("window-to-24", base("limit", window={"from": "08:00", "to": "24:00"}), "rule.window.to"),
    (
        "window-to-minute-60",
        base("limit", window={"from": "08:00", "to": "09:60"}),
        "rule.window.to",
    ),
    ("window-to-number", base("limit", window={"from": "08:00", "to": 900}), "rule.window.to"),
    ("negative-gap", base("limit", min_gap_minutes=-1), "rule.min_gap_minutes"),
    ("bad-monitoring", base("require", monitoring="secret"), "rule.monitoring"),
    ("bad-interpreter", base("require", interpreter="Spanish"), "rule.interpreter"),
    ("interpreter-number", base("require", interpreter=3), "rule.interpreter"),
]


@pytest.mark.parametrize(
    ("data", "field"), [pytest.param(d, f, id=name) for name, d, f in MALFORMED]
)
def test_malformed_field_raises_rule_error_naming_it(data: object, field: str) -> None:
    with pytest.raises(RuleError) as raised:
        parse_rule(data, ZONE, 0)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")
    assert raised.value.message


def test_the_field_path_starts_at_the_given_prefix() -> None:
    data = base(quota={"count": 2, "per": {"rolling_days": 0}})
    with pytest.raises(RuleError) as raised:
        parse_rule(data, ZONE, 0, field="timeline[4].impose")
    assert raised.value.field == "timeline[4].impose.quota.per.rolling_days"


def test_rule_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^rule\.kind: "):
        parse_rule(base(kind="ban"), ZONE, 0)


# Regexes anchored with `$` would accept one trailing newline ("abc\n"); ids, clock
# times, language codes and period keys must match the whole string.


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (base(id="r1\n"), "rule.id"),
        (base(person="salazar\n"), "rule.person"),
        (base(contacts={"ids": ["wife\n"]}), "rule.contacts.ids"),
        (base(overrides=["g1\n"]), "rule.overrides"),
        (base("limit", window={"from": "08:00\n", "to": "09:00"}), "rule.window.from"),
        (base("require", interpreter="es\n"), "rule.interpreter"),
    ],
)
def test_a_trailing_newline_is_rejected(data: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleError) as raised:
        parse_rule(data, ZONE, 0)
    assert raised.value.field == field


@pytest.mark.parametrize("key", ["2024-03\n", "2024-W10\n", "2024-03-04\n"])
def test_a_period_key_with_a_trailing_newline_is_rejected(key: str) -> None:
    with pytest.raises(ValueError, match="period"):
        parse_period(key, ZONE)


# --- what a well-formed rule means -----------------------------------------------------


def test_a_full_grant() -> None:
    rule = parse_rule(
        base(
            id="order-17",
            authority="court_order",
            person="all",
            contacts={"ids": ["daughter-a", "daughter-b"], "exclude": ["x"]},
            quota={"count": 2, "minutes": 30, "per": "month"},
            max_minutes=15,
            overrides=["g2"],
            text="Two calls a month.",
            case_number="CV-17",
            **{"from": "2024-01-01", "until": "2024-12-31T12:00"},
        ),
        ZONE,
        7,
    )
    assert rule.authority is Authority.COURT_ORDER
    assert rule.kind is Kind.GRANT
    assert rule.channel is Channel.PHONE
    assert rule.person is None
    assert rule.contacts == Selector(
        ids=frozenset({"daughter-a", "daughter-b"}), exclude=frozenset({"x"})
    )
    assert rule.quota == Quota(MONTH, count=2, minutes=30)
    assert rule.max_minutes == 15
    assert rule.overrides == frozenset({"g2"})
    assert rule.starts_at == datetime(2024, 1, 1, 7, tzinfo=UTC)  # local midnight
    assert rule.ends_at == datetime(2024, 12, 31, 19, tzinfo=UTC)
    assert rule.order == 7
    assert rule.case_number == "CV-17"


def test_a_full_limit_and_require() -> None:
    limit = parse_rule(
        base(
            "limit",
            window={"from": "06:00", "to": "21:30"},
            min_gap_minutes=0,
            quota={"count": 0, "per": {"rolling_days": 7}},
        ),
        ZONE,
        0,
    )
    assert limit.window == Window(time(6), time(21, 30))
    assert limit.min_gap_minutes == 0
    assert limit.quota == Quota(rolling(7), count=0)
    require = parse_rule(base("require", monitoring="live", interpreter="pt-BR"), ZONE, 0)
    assert (require.monitoring, require.interpreter) == (Monitoring.LIVE, "pt-BR")


@pytest.mark.parametrize(
    ("contacts", "selector"),
    [
        ("any", ANY),
        ({"exclude": ["a"]}, Selector(exclude=frozenset({"a"}))),
        ({"privileged": True}, Selector(privileged=True)),
        (
            {"relationships": ["child", "parent"]},
            Selector(relationships=frozenset({"child", "parent"})),
        ),
        ({}, ANY),
    ],
)
def test_selectors(contacts: object, selector: Selector) -> None:
    assert parse_rule(base(contacts=contacts), ZONE, 0).contacts == selector


def test_from_in_a_dst_gap_is_read_with_fold_zero() -> None:
    rule = parse_rule(base(**{"from": "2024-03-10T02:30"}), ZONE, 0)
    assert rule.starts_at == datetime(2024, 3, 10, 9, 30, tzinfo=UTC)


def test_date_and_datetime_objects_are_accepted_as_yaml_gives_them() -> None:
    rule = parse_rule(
        base(**{"from": datetime(2024, 3, 4, 10), "until": datetime(2024, 3, 5).date()}), ZONE, 0
    )
    assert rule.starts_at == datetime(2024, 3, 4, 17, tzinfo=UTC)
    assert rule.ends_at == datetime(2024, 3, 5, 7, tzinfo=UTC)


# --- round trip ------------------------------------------------------------------------

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,20}", fullmatch=True)
id_sets = st.frozensets(ids, max_size=3)
periods = st.sampled_from([DAY, WEEK, MONTH]) | st.integers(1, 400).map(rolling)
quotas = st.builds(
    Quota,
    per=periods,
    count=st.none() | st.integers(0, 50),
    minutes=st.none() | st.integers(0, 5000),
).filter(lambda q: q.count is not None or q.minutes is not None)
selectors = st.one_of(
    st.builds(Selector, exclude=id_sets),
    st.builds(Selector, ids=st.frozensets(ids, min_size=1, max_size=3), exclude=id_sets),
    st.builds(
        Selector,
        relationships=st.frozensets(st.sampled_from(sorted(RELATIONSHIPS)), min_size=1, max_size=3),
        exclude=id_sets,
    ),
    st.builds(Selector, privileged=st.just(True), exclude=id_sets),
)
clock = st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60))
windows = st.tuples(clock, clock).filter(lambda pair: pair[0] < pair[1]).map(lambda p: Window(*p))
languages = st.from_regex(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}", fullmatch=True)
walls = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)).map(
    lambda naive: naive.replace(second=0, microsecond=0)
)
minimum = st.none() | st.integers(1, 600)


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    kind = draw(st.sampled_from(list(Kind)))
    # instants that a local wall time names (fold=0), so `from`/`until` can round-trip
    starts_at = draw(st.none() | walls.map(lambda w: wall_to_instant(w, ZONE)))
    ends_at = draw(st.none() | walls.map(lambda w: wall_to_instant(w, ZONE)))
    if starts_at is not None and ends_at is not None:
        starts_at, ends_at = min(starts_at, ends_at), max(starts_at, ends_at)
        if starts_at == ends_at:
            ends_at = None
    fields: dict[str, Any] = {}
    if kind in (Kind.GRANT, Kind.LIMIT):
        fields["quota"] = draw(st.none() | quotas)
        fields["max_minutes"] = draw(minimum)
    if kind is Kind.LIMIT:
        fields["window"] = draw(st.none() | windows)
        fields["min_gap_minutes"] = draw(st.none() | st.integers(0, 600))
    if kind is Kind.REQUIRE:
        fields["monitoring"] = draw(st.none() | st.sampled_from(list(Monitoring)))
        fields["interpreter"] = draw(st.none() | languages)
    return Rule(
        id=draw(ids),
        authority=draw(st.sampled_from(list(Authority))),
        kind=kind,
        channel=draw(st.sampled_from(list(Channel))),
        person=draw(st.none() | ids.filter(lambda i: i != "all")),
        contacts=draw(selectors),
        text=draw(st.text(max_size=30)),
        starts_at=starts_at,
        ends_at=ends_at,
        overrides=draw(id_sets),
        order=draw(st.integers(0, 10**6)),
        case_number=draw(st.none() | st.text(max_size=10)),
        **fields,
    )


@settings(max_examples=200, deadline=None)
@given(rule=rules())
def test_definition_round_trips(rule: Rule) -> None:
    definition = json.loads(json.dumps(rule_definition(rule)))
    again = rule_from_definition(
        definition, starts_at=rule.starts_at, ends_at=rule.ends_at, order=rule.order
    )
    assert again == rule
    assert again.case_number == rule.case_number
    assert rule_definition(again) == definition


@settings(max_examples=200, deadline=None)
@given(rule=rules())
def test_definition_with_local_times_parses_back(rule: Rule) -> None:
    data = rule_definition(rule)
    if rule.starts_at is not None:
        data["from"] = local(rule.starts_at, ZONE).isoformat()
    if rule.ends_at is not None:
        data["until"] = local(rule.ends_at, ZONE).isoformat()
    assert parse_rule(data, ZONE, rule.order) == rule


# --- visit settings (SPEC 3.1) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(base("require", setting="closed"), "visit", id="require-on-phone"),
        pytest.param(
            base("require", channel="video", setting="open"), "visit", id="require-on-video"
        ),
        pytest.param(base(channel="visit", setting="closed"), "grant", id="on-a-grant"),
        pytest.param(base("limit", channel="visit", setting="closed"), "limit", id="on-a-limit"),
        pytest.param(base("deny", channel="visit", setting="closed"), "deny", id="on-a-deny"),
        pytest.param(
            base("require", channel="visit", setting="behind-glass"), "non_contact", id="bad"
        ),
        pytest.param(base("require", channel="visit", setting="Closed"), "closed", id="case"),
        pytest.param(base("require", channel="visit", setting=2), "open", id="number"),
        pytest.param(base("require", channel="visit", setting=True), "open", id="bool"),
        pytest.param(base("require", channel="visit", setting=["closed"]), "open", id="list"),
    ],
)
def test_a_misplaced_or_bad_setting_names_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError) as raised:
        parse_rule(data, ZONE, 0, field="timeline[3].impose")
    assert raised.value.field == "timeline[3].impose.setting"
    assert str(raised.value).startswith("timeline[3].impose.setting: ")
    assert message in raised.value.message


@pytest.mark.parametrize("setting", list(Setting))
def test_a_visit_require_carries_a_setting(setting: Setting) -> None:
    rule = parse_rule(
        base("require", channel="visit", setting=setting.value, monitoring="live"), ZONE, 0
    )
    assert rule.setting is setting
    assert rule.monitoring is Monitoring.LIVE
    definition = json.loads(json.dumps(rule_definition(rule)))
    assert definition["setting"] == setting.value
    again = rule_from_definition(definition, starts_at=None, ends_at=None, order=0)
    assert again == rule
    assert again.setting is setting


def test_a_setting_alone_is_a_require_rule() -> None:
    rule = parse_rule(base("require", channel="visit", setting="non_contact"), ZONE, 0)
    assert (rule.setting, rule.monitoring, rule.interpreter) == (Setting.NON_CONTACT, None, None)


def test_settings_are_ordered_open_non_contact_closed() -> None:
    assert [s.value for s in sorted(Setting, key=lambda s: s.level)] == [
        "open",
        "non_contact",
        "closed",
    ]


def test_rules_without_a_setting_store_none() -> None:
    for data in (base(), base("require", monitoring="live"), base("require", channel="visit")):
        rule = parse_rule(data, ZONE, 0)
        assert rule.setting is None
        assert "setting" not in rule_definition(rule)
