"""When a refused call or visit next becomes possible (``kinline.rules.next_possible``,
``Explanation.next_possible``), checked against the engine itself.

The claim is exact: at ``next_possible`` the engine allows the session (same
rules, same usage), and at every earlier moment it refuses, a minute before
included. Each cause's own moment is when that rule stops refusing for that
reason. Checked on DST changes in a facility zone, where wall clocks skip
and repeat an hour, on several grants at once, and on generated facilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from kinline.explain import Explanation, explain
from kinline.rules.decide import Decision, Request, decide
from kinline.rules.model import DAY, Authority, Channel, Contact, Kind, Quota, Reason, Rule
from kinline.rules.next_possible import next_allowed, next_opening
from kinline.rules.parse import parse_rule
from kinline.rules.periods import local, period_key, wall_to_instant
from kinline.rules.usage import Tally, UsageLedger, UsageSnapshot, usage_change

ZONE = ZoneInfo(
    "America/Denver"
)  # 2026: clocks skip 02:00-03:00 on 8 March, repeat 01:00-02:00 on 1 November
PERSON = "p-one"
WIFE = Contact("wife", PERSON, "spouse", approved=frozenset(Channel))


def at(wall: str) -> datetime:
    return wall_to_instant(datetime.fromisoformat(wall), ZONE)


def rule(rule_id: str, kind: str, order: int, **fields: Any) -> Rule:
    data: dict[str, Any] = {
        "id": rule_id,
        "kind": kind,
        "authority": "facility_policy",
        "channel": "phone",
        "person": PERSON,
        "contacts": "any",
        "text": f"Text of {rule_id}.",
    }
    if "from_" in fields:
        fields["from"] = fields.pop("from_")
    data.update(fields)
    return parse_rule(data, ZONE, order)


class World:
    def __init__(self, rules: Sequence[Rule], history: Sequence[tuple[datetime, int]] = ()) -> None:
        self.rules = list(rules)
        self.ledger = UsageLedger(ZONE)
        by_id = {r.id: r for r in self.rules}
        for started, minutes in history:
            decision = self.decide(started)
            if not decision.allowed:
                continue
            assert decision.max_minutes is not None
            charged = by_id[decision.charged_to or ""]
            governing = [by_id[i] for i in decision.governed_by]
            used = min(minutes, decision.max_minutes)
            self.ledger.apply(PERSON, usage_change(charged, governing, started, used, ZONE))

    def request(self, moment: datetime) -> Request:
        return Request(PERSON, WIFE, Channel.PHONE, moment)

    def decide(self, moment: datetime) -> Decision:
        return decide(self.request(moment), self.rules, self.ledger.snapshot(PERSON), ZONE)

    def explain(self, moment: datetime, language: str = "en") -> Explanation:
        return explain(
            self.decide(moment),
            self.request(moment),
            self.rules,
            self.ledger.snapshot(PERSON),
            language=language,
            zone=ZONE,
        )


def assert_first_allowed(world: World, start: datetime, moment: datetime | None) -> datetime:
    assert moment is not None
    assert moment > start
    assert world.decide(moment).allowed
    for before in (timedelta(minutes=1), timedelta(seconds=1)):
        if moment - before >= start:
            assert not world.decide(moment - before).allowed, moment - before
    return moment


# --- DST ----------------------------------------------------------------------------------


def test_a_window_opening_in_the_skipped_hour_opens_at_the_change() -> None:
    world = World(
        [rule("g", "grant", 0), rule("hours", "limit", 1, window={"from": "02:30", "to": "05:00"})]
    )
    start = at("2026-03-08T01:00")
    words = world.explain(start)
    moment = assert_first_allowed(world, start, words.next_possible)
    assert moment == datetime(
        2026, 3, 8, 9, 0, tzinfo=UTC
    )  # 03:00 MDT, the first wall time after 02:30
    assert local(moment, ZONE) == datetime(2026, 3, 8, 3, 0)
    assert words.causes[0].next_possible == moment
    assert "3:00\u202fAM MDT" in words.text


def test_the_morning_after_the_spring_change_opens_at_local_eight() -> None:
    world = World(
        [rule("g", "grant", 0), rule("hours", "limit", 1, window={"from": "08:00", "to": "21:00"})]
    )
    start = at("2026-03-07T22:00")
    moment = assert_first_allowed(world, start, world.explain(start).next_possible)
    assert local(moment, ZONE) == datetime(2026, 3, 8, 8, 0)
    assert moment - start == timedelta(hours=9)  # ten wall-clock hours, nine real ones


def test_a_daily_quota_starts_again_at_local_midnight_across_the_change() -> None:
    world = World(
        [rule("g", "grant", 0, quota={"count": 1, "per": "day"})], [(at("2026-03-07T09:00"), 10)]
    )
    start = at("2026-03-07T23:00")
    words = world.explain(start, "es")
    moment = assert_first_allowed(world, start, words.next_possible)
    assert local(moment, ZONE) == datetime(2026, 3, 8, 0, 0)
    assert "0:00 MST" in words.text


def test_a_rolling_day_counts_real_hours_across_the_change() -> None:
    world = World(
        [rule("g", "grant", 0, quota={"count": 1, "per": {"rolling_days": 1}})],
        [(at("2026-03-07T12:00"), 10)],
    )
    start = at("2026-03-08T11:30")
    moment = assert_first_allowed(world, start, world.explain(start).next_possible)
    assert moment == at("2026-03-07T12:00") + timedelta(hours=24)
    assert local(moment, ZONE) == datetime(2026, 3, 8, 13, 0)  # 12:00 MST + 24 h is 13:00 MDT


def test_a_gap_across_the_repeated_hour_is_real_minutes() -> None:
    world = World(
        [rule("g", "grant", 0), rule("gap", "limit", 1, min_gap_minutes=60)],
        [(datetime(2026, 11, 1, 7, 0, tzinfo=UTC), 30)],  # 01:00-01:30 MDT, the first 01:00
    )
    start = datetime(2026, 11, 1, 7, 45, tzinfo=UTC)  # 01:45 MDT
    words = world.explain(start)
    moment = assert_first_allowed(world, start, words.next_possible)
    assert moment == datetime(2026, 11, 1, 8, 30, tzinfo=UTC)  # 01:30 MST, the second 01:30
    assert "1:30\u202fAM MST" in words.text


def test_a_window_in_the_repeated_hour_agrees_with_the_engine() -> None:
    limit = rule("hours", "limit", 1, window={"from": "01:15", "to": "01:45"})
    world = World([rule("g", "grant", 0), limit])
    start = datetime(2026, 11, 1, 7, 50, tzinfo=UTC)  # 01:50 MDT, after the first window
    moment = assert_first_allowed(world, start, world.explain(start).next_possible)
    assert local(moment, ZONE).time().isoformat() == "01:15:00"
    assert next_opening(limit, start, ZONE) == moment


# --- several causes and grants --------------------------------------------------------------


def test_a_second_grant_that_opens_sooner_is_the_next_possible() -> None:
    world = World(
        [
            rule("order", "grant", 0, authority="court_order", quota={"count": 1, "per": "month"}),
            rule("base", "grant", 1),
            rule("hours", "limit", 2, window={"from": "08:00", "to": "21:00"}),
        ],
        [(at("2026-06-02T10:00"), 15)],
    )
    start = at("2026-06-10T22:00")
    words = world.explain(start)
    assert words.reason is Reason.QUOTA_EXHAUSTED  # the court order's, the first grant's failure
    assert words.causes[0].next_possible == at("2026-07-01T00:00")
    moment = assert_first_allowed(world, start, words.next_possible)
    assert moment == at("2026-06-11T08:00")
    assert world.decide(moment).charged_to == "base"


def test_overlapping_denies_end_when_the_last_one_ends() -> None:
    world = World(
        [
            rule("g", "grant", 0),
            rule("d1", "deny", 1, until="2026-06-15T00:00"),
            rule(
                "d2", "deny", 2, authority="sanction", from_="2026-06-12", until="2026-06-20T09:00"
            ),
        ]
    )
    start = at("2026-06-13T10:00")
    words = world.explain(start)
    assert {cause.rule_id: cause.next_possible for cause in words.causes} == {
        "d1": at("2026-06-15T00:00"),
        "d2": at("2026-06-20T09:00"),
    }
    assert assert_first_allowed(world, start, words.next_possible) == at("2026-06-20T09:00")
    early = at("2026-06-10T10:00")
    # blocked by the first until it ends, by then by the second too: the second's end
    assert assert_first_allowed(world, early, world.explain(early).next_possible) == at(
        "2026-06-20T09:00"
    )


def test_a_window_and_a_quota_together_wait_for_both() -> None:
    world = World(
        [
            rule("g", "grant", 0, quota={"count": 1, "per": "day"}),
            rule("hours", "limit", 1, window={"from": "08:00", "to": "21:00"}),
        ],
        [(at("2026-06-10T09:00"), 10)],
    )
    start = at("2026-06-10T12:00")
    moment = assert_first_allowed(world, start, world.explain(start).next_possible)
    assert moment == at("2026-06-11T08:00")


def test_never_is_none() -> None:
    world = World([rule("g", "grant", 0), rule("d", "deny", 1, authority="sanction")])
    assert world.explain(at("2026-06-10T10:00")).next_possible is None
    not_listed = Contact("wife", PERSON, "spouse", approved=frozenset({Channel.VIDEO}))
    request = Request(PERSON, not_listed, Channel.PHONE, at("2026-06-10T10:00"))
    assert next_allowed(request, world.rules, world.ledger.snapshot(PERSON), ZONE) is None


# --- generated facilities ------------------------------------------------------------------

BASE = datetime(2026, 10, 26, 6, 0)  # a Monday, six days before the autumn change
periods = st.sampled_from(["day", "week", "month", {"rolling_days": 1}, {"rolling_days": 3}])


@st.composite
def quotas(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"per": draw(periods)}
    if draw(st.booleans()):
        out["count"] = draw(st.integers(1, 3))
    if "count" not in out or draw(st.booleans()):
        out["minutes"] = draw(st.integers(20, 90))
    return out


def wall(minutes: int) -> str:
    return (BASE + timedelta(minutes=minutes)).isoformat()


@st.composite
def worlds(draw: st.DrawFn) -> tuple[World, datetime]:
    rules: list[Rule] = []
    grant: dict[str, Any] = {}
    if draw(st.booleans()):
        grant["quota"] = draw(quotas())
    if draw(st.booleans()):
        grant["max_minutes"] = draw(st.integers(10, 60))
    rules.append(rule("r-base", "grant", 0, **grant))
    if draw(st.booleans()):
        order: dict[str, Any] = {"authority": "court_order", "quota": draw(quotas())}
        if draw(st.booleans()):
            order["from_"] = wall(draw(st.integers(0, 6 * 24 * 60)))
        rules.append(rule("r-order", "grant", 1, **order))
    limit: dict[str, Any] = {}
    if draw(st.booleans()):
        opens = draw(st.integers(0, 22 * 60))
        closes = draw(st.integers(opens + 1, 24 * 60 - 1))
        limit["window"] = {
            "from": f"{opens // 60:02d}:{opens % 60:02d}",
            "to": f"{closes // 60:02d}:{closes % 60:02d}",
        }
    if draw(st.booleans()):
        limit["min_gap_minutes"] = draw(st.integers(0, 180))
    if draw(st.booleans()):
        limit["quota"] = draw(quotas())
    if limit:
        limit["authority"] = draw(st.sampled_from(["facility_policy", "court_order"]))
        rules.append(rule("r-limit", "limit", 2, **limit))
    if draw(st.booleans()):
        deny: dict[str, Any] = {"authority": draw(st.sampled_from(["sanction", "court_order"]))}
        start = draw(st.integers(0, 9 * 24 * 60))
        deny["from_"] = wall(start)
        if draw(st.integers(0, 4)):
            deny["until"] = wall(start + draw(st.integers(1, 4 * 24 * 60)))
        rules.append(rule("r-deny", "deny", 3, **deny))
    steps = sorted(draw(st.lists(st.integers(0, 8 * 24 * 60), max_size=8)))
    history = [(at(wall(step)), draw(st.integers(1, 90))) for step in steps]
    moment = at(wall(draw(st.integers(steps[-1] if steps else 0, 9 * 24 * 60))))
    return World(rules, history), moment


@settings(max_examples=250, deadline=None)
@given(world_at=worlds(), data=st.data())
def test_next_possible_is_exactly_the_first_allowed_moment(
    world_at: tuple[World, datetime], data: st.DataObject
) -> None:
    world, start = world_at
    words = world.explain(start, data.draw(st.sampled_from(["en", "es"])))
    for sentence in words.sentences:
        assert not any(r.id in sentence for r in world.rules), sentence
        assert not any(str(reason) in sentence for reason in Reason), sentence
    if words.allowed:
        assert words.next_possible is None
        return
    if words.next_possible is None:
        deny = next((r for r in world.rules if r.kind is Kind.DENY), None)
        open_ended = deny is not None and deny.ends_at is None
        assert open_ended, (words.reason, [c.sentence for c in words.causes])
        return
    moment = assert_first_allowed(world, start, words.next_possible)
    span = moment - start
    micros = span // timedelta(microseconds=1)
    for offset in data.draw(st.lists(st.integers(0, micros - 1), max_size=4)):
        assert not world.decide(start + timedelta(microseconds=offset)).allowed
    for cause in words.causes:
        if cause.next_possible is None:
            continue
        later = world.decide(cause.next_possible)
        assert not (later.reason is cause.reason and cause.rule_id in later.rules)


def test_a_refusal_at_the_calendars_end_has_no_next_moment_and_no_error() -> None:
    grant = Rule(
        id="g",
        authority=Authority.FACILITY_POLICY,
        kind=Kind.GRANT,
        channel=Channel.PHONE,
        person=PERSON,
        quota=Quota(per=DAY, count=1),
    )
    moment = datetime(9999, 12, 31, 12, 0, tzinfo=UTC)
    usage = UsageSnapshot(ZONE, counters={("g", period_key(DAY, moment, ZONE)): Tally(1, 10)})
    request = Request(PERSON, WIFE, Channel.PHONE, moment)
    decision = decide(request, [grant], usage, ZONE)
    assert decision.reason is Reason.QUOTA_EXHAUSTED
    words = explain(decision, request, [grant], usage, language="es", zone=ZONE)
    assert words.next_possible is None
    assert words.causes[0].next_possible is None
    assert words.next_sentence == "No se puede indicar una fecha para la próxima."
