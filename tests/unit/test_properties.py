"""Properties of ``decide()`` over generated facilities and usage histories.

A facility is a random list of grants, limits, denies and requires (authorities,
selectors, quotas, windows, gaps, overrides, active intervals) in the scenario
format; a history is a sequence of sessions, each decided and, when allowed,
recorded the way the call service records it (``min(asked, max_minutes)``).

Besides the properties asked of the engine, ``test_engine_agrees_with_the_spec``
compares every decision with a direct, unoptimised reading of SPEC section 4
that recounts usage from the session log instead of the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from kinline.rules.decide import Decision, Request, decide
from kinline.rules.model import (
    RELATIONSHIPS,
    Authority,
    Channel,
    Contact,
    Kind,
    Monitoring,
    Reason,
    Rule,
    Selector,
    Setting,
)
from kinline.rules.parse import parse_rule
from kinline.rules.periods import wall_to_instant
from kinline.rules.usage import UsageLedger, usage_change

ZONE = ZoneInfo("America/Denver")
PHONE, VIDEO, VISIT = Channel.PHONE, Channel.VIDEO, Channel.VISIT


def _contact(
    cid: str, person: str, relationship: str, *approved: Channel, privileged: bool = False
) -> Contact:
    return Contact(cid, person, relationship, privileged, frozenset(approved))


CONTACTS: dict[str, list[Contact]] = {
    "p": [
        _contact("wife", "p", "spouse", PHONE, VIDEO),
        _contact("kid", "p", "child", PHONE),
        _contact("bro", "p", "sibling", PHONE),
        _contact("kid2", "p", "child", PHONE, VIDEO),
        _contact("pal", "p", "friend", PHONE, VISIT),
        _contact("law", "p", "attorney", PHONE, VIDEO, privileged=True),
        _contact("gran", "p", "grandparent", VISIT),
    ],
    "q": [
        _contact("mom", "q", "parent", PHONE),
        _contact("qlaw", "q", "attorney", PHONE, privileged=True),
    ],
}
CONTACT_IDS = sorted(c.id for people in CONTACTS.values() for c in people)
RELATIONSHIP_CHOICES = sorted({c.relationship for people in CONTACTS.values() for c in people})
assert set(RELATIONSHIP_CHOICES) <= RELATIONSHIPS
# a Monday before the spring change, a week before the autumn change, a year end
BASES = [datetime(2024, 3, 4), datetime(2024, 10, 28), datetime(2024, 12, 27)]
HORIZON_MINUTES = 7 * 24 * 60
PROPERTY = settings(max_examples=150, deadline=None)


# --- generation --------------------------------------------------------------------------


def _local(base: datetime, minutes: int) -> str:
    return (base + timedelta(minutes=minutes)).isoformat()


@st.composite
def selectors(draw: st.DrawFn) -> object:
    form = draw(
        st.sampled_from(["any", "any", "any", "ids", "relationships", "privileged", "exclude"])
    )
    if form == "any":
        return "any"
    exclude = draw(st.lists(st.sampled_from(CONTACT_IDS), max_size=2, unique=True))
    out: dict[str, Any] = {}
    if form == "ids":
        out["ids"] = draw(
            st.lists(st.sampled_from(CONTACT_IDS), min_size=1, max_size=4, unique=True)
        )
    elif form == "relationships":
        out["relationships"] = draw(
            st.lists(st.sampled_from(RELATIONSHIP_CHOICES), min_size=1, max_size=3, unique=True)
        )
    elif form == "privileged":
        out["privileged"] = True
    if exclude or form == "exclude":
        out["exclude"] = exclude
    return out


quota_periods = st.sampled_from(
    ["day", "day", "week", "month", {"rolling_days": 1}, {"rolling_days": 3}]
)


@st.composite
def quotas(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"per": draw(quota_periods)}
    which = draw(st.sampled_from(["count", "minutes", "both"]))
    if which != "minutes":
        out["count"] = draw(st.integers(0, 4))
    if which != "count":
        out["minutes"] = draw(st.integers(0, 120))
    return out


@st.composite
def windows(draw: st.DrawFn) -> dict[str, str]:
    opens = draw(st.integers(0, 46))
    closes = draw(st.integers(opens + 1, 47))

    def clock(half_hours: int) -> str:
        return f"{half_hours // 2:02d}:{30 * (half_hours % 2):02d}"

    return {"from": clock(opens), "to": clock(closes)}


@st.composite
def rule_data(draw: st.DrawFn, rule_id: str, kind: str, base: datetime) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": rule_id,
        "kind": kind,
        "authority": draw(st.sampled_from(list(Authority) + [Authority.FACILITY_POLICY] * 2)).value,
        "channel": draw(st.sampled_from(["phone"] * 5 + ["video", "visit"])),
        "person": draw(st.sampled_from(["p", "p", "all", "all", "q"])),
        "contacts": draw(selectors()),
    }
    if (kind in ("limit", "deny") or rule_id == "g0") and draw(st.booleans()):
        # rules that concern everyone, so that most sessions meet a grant and a constraint
        data["channel"], data["person"], data["contacts"] = "phone", "all", "any"
    overrides = draw(
        st.lists(st.sampled_from([f"g{i}" for i in range(6)] + ["x-grant"]), max_size=2)
    )
    if overrides:
        data["overrides"] = sorted(set(overrides))
    if draw(st.integers(0, 4)) == 0:
        data["from"] = _local(base, draw(st.integers(-600, HORIZON_MINUTES)))
    if draw(st.integers(0, 4)) == 0:
        data["until"] = _local(base, draw(st.integers(1, HORIZON_MINUTES + 600)))
        if "from" in data and data["until"] <= data["from"]:
            del data["from"]
    if kind in ("grant", "limit"):
        if draw(st.booleans()):
            data["quota"] = draw(quotas())
        if draw(st.integers(0, 2)) == 0:
            data["max_minutes"] = draw(st.integers(1, 90))
    if kind == "limit":
        if draw(st.booleans()):
            data["window"] = draw(windows())
        if draw(st.booleans()):
            data["min_gap_minutes"] = draw(st.sampled_from([0, 30, 60, 120, 240]))
    if kind == "require":
        if draw(st.booleans()):
            data["monitoring"] = draw(st.sampled_from(list(Monitoring))).value
        if draw(st.booleans()):
            data["interpreter"] = draw(st.sampled_from(["es", "fr", "pt-BR"]))
        if data["channel"] == "visit" and draw(st.booleans()):
            data["setting"] = draw(st.sampled_from(list(Setting))).value
    return data


@dataclass(frozen=True)
class Session:
    person: str
    contact: Contact
    channel: Channel
    at: datetime
    minutes: int


@dataclass(frozen=True)
class World:
    base: datetime
    rules: list[Rule]
    history: list[Session]
    final: Session


@st.composite
def sessions_from(draw: st.DrawFn, start: datetime) -> Session:
    person = draw(st.sampled_from(["p"] * 5 + ["q"]))
    return Session(
        person=person,
        contact=draw(st.sampled_from(CONTACTS[person])),
        channel=draw(st.sampled_from([PHONE] * 8 + [VIDEO, VISIT])),
        at=start,
        minutes=draw(st.integers(1, 90)),
    )


def _step(draw: st.DrawFn) -> timedelta:
    minutes = draw(
        st.sampled_from([0, 1, 15, 30, 45, 60, 90, 119, 120, 240, 600, 1439, 1440, 4000])
    )
    seconds = draw(st.sampled_from([0, 0, 0, 30, 59]))
    return timedelta(minutes=minutes, seconds=seconds)


@st.composite
def worlds(draw: st.DrawFn, max_rules: int = 9, max_history: int = 12) -> World:
    base = draw(st.sampled_from(BASES))
    kind_choices = ["grant"] * 4 + ["limit"] * 4 + ["deny"] * 2 + ["require"]
    more = draw(st.lists(st.sampled_from(kind_choices), min_size=2, max_size=max_rules - 1))
    kinds = ["grant", *more]
    rules = [
        parse_rule(draw(rule_data(f"{kind[0]}{index}", kind, base)), ZONE, index)
        for index, kind in enumerate(kinds)
    ]
    at = wall_to_instant(base + timedelta(minutes=draw(st.integers(0, 24 * 60))), ZONE)
    history: list[Session] = []
    for _ in range(draw(st.integers(2, max_history))):
        history.append(draw(sessions_from(at)))
        at = at + _step(draw)
    final = draw(sessions_from(at))
    return World(base, rules, history, final)


def extra_rule(kind: str) -> st.SearchStrategy[Rule]:
    """One more rule of ``kind``, listed after every rule of the world."""
    return (
        st.sampled_from(BASES)
        .flatmap(lambda base: rule_data(f"x-{kind}", kind, base))
        .map(lambda data: parse_rule(data, ZONE, 1000))
    )


# --- replay ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Logged:
    """A recorded session, as the SPEC describes what counts."""

    person: str
    start: datetime
    minutes: int
    charged: str
    governed: frozenset[str]

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)


@dataclass
class Replay:
    rules: Sequence[Rule]
    ledger: UsageLedger = field(default_factory=lambda: UsageLedger(ZONE))
    log: list[Logged] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    def decide(self, session: Session, rules: Sequence[Rule] | None = None) -> Decision:
        request = Request(session.person, session.contact, session.channel, session.at)
        return decide(
            request,
            self.rules if rules is None else rules,
            self.ledger.snapshot(session.person),
            ZONE,
        )

    def record(self, session: Session, decision: Decision) -> None:
        self.decisions.append(decision)
        if not decision.allowed:
            return
        assert decision.max_minutes is not None
        assert decision.charged_to is not None
        by_id = {rule.id: rule for rule in self.rules}
        used = min(session.minutes, decision.max_minutes)
        change = usage_change(
            by_id[decision.charged_to],
            [by_id[i] for i in decision.governed_by],
            session.at,
            used,
            ZONE,
        )
        self.ledger.apply(session.person, change)
        self.log.append(
            Logged(
                session.person,
                session.at,
                used,
                decision.charged_to,
                frozenset(decision.governed_by),
            )
        )

    def run(self, sessions: Sequence[Session]) -> list[Decision]:
        for session in sessions:
            self.record(session, self.decide(session))
        return self.decisions


# --- (a) listing order -------------------------------------------------------------------


@PROPERTY
@given(world=worlds(), data=st.data())
def test_decisions_do_not_depend_on_the_listing(world: World, data: st.DataObject) -> None:
    # permuting the list keeps each rule's `order` (its place in the file, "later-listed")
    shuffled = data.draw(st.permutations(world.rules))
    sessions = [*world.history, world.final]
    assert Replay(world.rules).run(sessions) == Replay(shuffled).run(sessions)


# --- (b) and (c): one more deny or grant, for the same usage -------------------------------
#
# Both are checked for one decision over the SAME usage, which the SPEC guarantees: the
# stages of step 4 look at one grant, its limits and the usage, never at the other grants,
# so a new deny can only remove grants from the list (and all-blocked is `denied`), and a
# new grant, wherever it sorts, leaves the grant charged before still passing.
# Over a replayed history neither holds, and that follows from the SPEC itself (see the
# two example tests below): a deny that refuses an earlier session leaves a shared
# limit's quota unused, and a grant that allows an earlier session uses it up.


@PROPERTY
@given(world=worlds(), deny=extra_rule("deny"))
def test_adding_a_deny_never_turns_a_refusal_into_an_allowance(world: World, deny: Rule) -> None:
    replay = Replay(world.rules)
    with_deny = [*world.rules, deny]
    for session in [*world.history, world.final]:
        decision = replay.decide(session)
        extended = replay.decide(session, with_deny)
        if not decision.allowed:
            assert not extended.allowed, (decision, extended)
        elif extended.charged_to == decision.charged_to:
            # the deny did not block the charged grant: the same decision, perhaps one more conflict
            assert set(extended.conflicts) - set(decision.conflicts) <= {deny.id}
            assert extended.rules == decision.rules
            assert extended.max_minutes == decision.max_minutes
        replay.record(session, decision)


@PROPERTY
@given(world=worlds(), grant=extra_rule("grant"))
def test_adding_a_grant_never_turns_an_allowance_into_a_refusal(world: World, grant: Rule) -> None:
    replay = Replay(world.rules)
    with_grant = [*world.rules, grant]
    for session in [*world.history, world.final]:
        decision = replay.decide(session)
        extended = replay.decide(session, with_grant)
        if decision.allowed:
            assert extended.allowed, (decision, extended)
            assert extended.charged_to in (decision.charged_to, grant.id)
        replay.record(session, decision)


def _kin_facility(*extra: dict[str, Any]) -> list[Rule]:
    common = {"authority": "facility_policy", "channel": "phone", "person": "p"}
    datas = [
        {**common, "id": "g-wife", "kind": "grant", "contacts": {"ids": ["wife"]}},
        {
            **common,
            "id": "one-a-day",
            "kind": "limit",
            "contacts": "any",
            "quota": {"count": 1, "per": "day"},
        },
        *({**common, **more} for more in extra),
    ]
    return [parse_rule(data, ZONE, index) for index, data in enumerate(datas)]


KID_AT_TEN = Session(
    "p", CONTACTS["p"][1], PHONE, wall_to_instant(datetime(2024, 3, 4, 10), ZONE), 15
)
WIFE_AT_ELEVEN = Session(
    "p", CONTACTS["p"][0], PHONE, wall_to_instant(datetime(2024, 3, 4, 11), ZONE), 15
)


def test_over_a_history_a_new_grant_can_refuse_a_later_session() -> None:
    """SPEC counterexample to (c) over a replayed history: the kid's call has no grant
    without ``g-any``; with it the call is allowed, governed by ``one-a-day``, and the
    wife's later call finds the shared daily limit used up."""
    without = Replay(_kin_facility()).run([KID_AT_TEN, WIFE_AT_ELEVEN])
    assert [d.reason for d in without] == [Reason.NO_GRANT, None]
    grant = {"id": "g-any", "kind": "grant", "contacts": "any"}
    with_grant = Replay(_kin_facility(grant)).run([KID_AT_TEN, WIFE_AT_ELEVEN])
    assert with_grant[0].charged_to == "g-any"
    assert with_grant[1].reason is Reason.QUOTA_EXHAUSTED
    assert with_grant[1].rules == ("one-a-day",)


def test_over_a_history_a_new_deny_can_allow_a_later_session() -> None:
    """SPEC counterexample to (b) over a replayed history: denying the kid's call leaves
    the shared daily limit unused for the wife's later call."""
    grant = {"id": "g-any", "kind": "grant", "contacts": "any"}
    without = Replay(_kin_facility(grant)).run([KID_AT_TEN, WIFE_AT_ELEVEN])
    assert [d.reason for d in without] == [None, Reason.QUOTA_EXHAUSTED]
    deny = {"id": "d-kid", "kind": "deny", "contacts": {"ids": ["kid"]}}
    with_deny = Replay(_kin_facility(grant, deny)).run([KID_AT_TEN, WIFE_AT_ELEVEN])
    assert [d.reason for d in with_deny] == [Reason.DENIED, None]


# --- (d) determinism ----------------------------------------------------------------------


def _ledger_state(ledger: UsageLedger, person: str) -> object:
    snapshot = ledger.snapshot(person)
    rolling = {key: list(value) for key, value in snapshot.rolling.items()}
    return dict(snapshot.counters), rolling, dict(snapshot.gaps)


@PROPERTY
@given(world=worlds())
def test_the_same_inputs_give_the_same_decision(world: World) -> None:
    sessions = [*world.history, world.final]
    first = Replay(world.rules)
    for session in sessions:
        before = _ledger_state(first.ledger, session.person)
        decision = first.decide(session)
        assert first.decide(session) == decision
        assert _ledger_state(first.ledger, session.person) == before  # decide reads only
        first.record(session, decision)
    assert Replay(list(world.rules)).run(sessions) == first.decisions


# --- (e) and (f): the shape of a decision ---------------------------------------------------


@PROPERTY
@given(world=worlds())
def test_allowed_max_minutes_is_within_every_listed_bound(world: World) -> None:
    replay = Replay(world.rules)
    by_id = {rule.id: rule for rule in world.rules}
    for session in [*world.history, world.final]:
        decision = replay.decide(session)
        if decision.allowed:
            assert decision.max_minutes is not None
            assert 1 <= decision.max_minutes <= 1440
            for rule_id in decision.rules:
                bound = by_id[rule_id].max_minutes
                assert bound is None or decision.max_minutes <= bound
                left = _minutes_left(by_id[rule_id], session, replay.log)
                assert left is None or decision.max_minutes <= left
        replay.record(session, decision)


@PROPERTY
@given(world=worlds())
def test_refusals_carry_nothing_but_reason_and_rules(world: World) -> None:
    replay = Replay(world.rules)
    ids = {rule.id for rule in world.rules}
    for session in [*world.history, world.final]:
        decision = replay.decide(session)
        if decision.allowed:
            assert decision.reason is None
            assert decision.charged_to in decision.rules
            assert set(decision.governed_by) <= set(decision.rules)
            assert not set(decision.conflicts) & set(decision.rules)
        else:
            assert decision.reason is not None
            assert decision.charged_to is None
            assert decision.max_minutes is None
            assert decision.monitoring is None
            assert decision.interpreter is None
            assert decision.conflicts == ()
            assert decision.governed_by == ()
            named = decision.reason not in (Reason.NOT_ON_LIST, Reason.NO_GRANT)
            assert bool(decision.rules) == named
        assert set(decision.rules) <= ids
        assert set(decision.conflicts) <= ids
        replay.record(session, decision)


# --- a direct reading of SPEC section 4 ------------------------------------------------------

RANK = {
    "facility_policy": 1,
    "incentive": 2,
    "sanction": 3,
    "security_measure": 4,
    "court_order": 5,
}
LEVEL = {"none": 0, "recorded": 1, "live": 2}
SETTING_LEVEL = {"open": 0, "non_contact": 1, "closed": 2}


def _matches(selector: Selector, contact: Contact) -> bool:
    if contact.id in selector.exclude:
        return False
    if selector.ids is not None:
        return contact.id in selector.ids
    if selector.privileged:
        return contact.privileged
    if contact.privileged:
        return False
    return selector.relationships is None or contact.relationship in selector.relationships


def _applies(constraint: Rule, grant: Rule) -> bool:
    return (
        RANK[grant.authority.value] <= RANK[constraint.authority.value]
        or grant.id in constraint.overrides
    )


def _same_period(per: Any, started: datetime, at: datetime) -> bool:
    if per.is_rolling:
        return at - timedelta(hours=24 * per.days) < started <= at
    a, b = started.astimezone(ZONE), at.astimezone(ZONE)
    if per.kind == "day":
        return a.date() == b.date()
    if per.kind == "week":
        return a.isocalendar()[:2] == b.isocalendar()[:2]
    return (a.year, a.month) == (b.year, b.month)


def _counted(rule: Rule, session: Session, log: Sequence[Logged]) -> list[Logged]:
    """The person's logged sessions that ``rule``'s quota or gap counts."""
    if rule.kind is Kind.GRANT:
        return [e for e in log if e.person == session.person and e.charged == rule.id]
    return [e for e in log if e.person == session.person and rule.id in e.governed]


def _used(rule: Rule, session: Session, log: Sequence[Logged]) -> tuple[int, int]:
    assert rule.quota is not None
    inside = [
        e for e in _counted(rule, session, log) if _same_period(rule.quota.per, e.start, session.at)
    ]
    return len(inside), sum(e.minutes for e in inside)


def _minutes_left(rule: Rule, session: Session, log: Sequence[Logged]) -> int | None:
    if rule.quota is None or rule.quota.minutes is None:
        return None
    return rule.quota.minutes - _used(rule, session, log)[1]


def _to_close(rule: Rule, session: Session) -> int:
    assert rule.window is not None
    wall = session.at.astimezone(ZONE).replace(tzinfo=None)
    closes = datetime.combine(wall.date(), rule.window.closes).replace(tzinfo=ZONE)
    return int((closes.astimezone(UTC) - session.at.astimezone(UTC)).total_seconds() // 60)


def _gap_kept(limit: Rule, session: Session, log: Sequence[Logged]) -> bool:
    """SPEC 3.1, literally: the gap runs from the END of the previous governed
    session of this person (of the governed sessions recorded before this one,
    which all started at or before this start, the one that ends latest) to this
    start, in absolute time; it must be at least ``min_gap_minutes``, and a
    negative gap (a start before that end) is less than 0, so ``0`` refuses it."""
    if limit.min_gap_minutes is None:
        return True
    ends = [e.end for e in _counted(limit, session, log) if e.start <= session.at]
    if not ends:
        return True
    gap_seconds = (session.at.astimezone(UTC) - max(ends).astimezone(UTC)).total_seconds()
    return gap_seconds >= 60 * limit.min_gap_minutes


def _stage(
    grant: Rule, limits: list[Rule], session: Session, log: Sequence[Logged]
) -> tuple[str, set[str]] | None:
    wall_time = session.at.astimezone(ZONE).time().replace(tzinfo=None)
    closed = {
        limit.id
        for limit in limits
        if limit.window is not None
        and not (
            limit.window.opens <= wall_time < limit.window.closes and _to_close(limit, session) >= 1
        )
    }
    if closed:
        return "outside_window", closed
    soon = {limit.id for limit in limits if not _gap_kept(limit, session, log)}
    if soon:
        return "too_soon", soon

    def full(rule: Rule) -> bool:
        if rule.quota is None:
            return False
        sessions, minutes = _used(rule, session, log)
        if rule.quota.count is not None and sessions >= rule.quota.count:
            return True
        return rule.quota.minutes is not None and rule.quota.minutes - minutes < 1

    exhausted = {limit.id for limit in limits if full(limit)}
    if exhausted:
        return "quota_exhausted", exhausted
    if full(grant):
        return "quota_exhausted", {grant.id}
    return None


def spec_decide(rules: Sequence[Rule], session: Session, log: Sequence[Logged]) -> dict[str, Any]:
    def refused(reason: str, named: Iterable[str] = ()) -> dict[str, Any]:
        return {
            "allowed": False,
            "reason": reason,
            "rules": set(named),
            "charged_to": None,
            "max_minutes": None,
            "monitoring": None,
            "interpreter": None,
            "setting": None,
            "conflicts": set(),
        }

    contact = session.contact
    if session.channel not in contact.approved:
        return refused("not_on_list")
    relevant = [
        rule
        for rule in rules
        if rule.channel == session.channel
        and rule.person in (None, session.person)
        and (rule.starts_at is None or rule.starts_at <= session.at)
        and (rule.ends_at is None or session.at < rule.ends_at)
        and _matches(rule.contacts, contact)
    ]
    grants = [r for r in relevant if r.kind is Kind.GRANT]
    denies = [r for r in relevant if r.kind is Kind.DENY]
    limits = [r for r in relevant if r.kind is Kind.LIMIT]
    requires = sorted((r for r in relevant if r.kind is Kind.REQUIRE), key=lambda r: r.order)
    if not grants:
        return refused("no_grant")
    blockers = {g.id: {d.id for d in denies if _applies(d, g)} for g in grants}
    unblocked = [g for g in grants if not blockers[g.id]]
    if not unblocked:
        return refused("denied", set().union(*blockers.values()))

    def specificity(selector: Selector) -> int:
        if selector.ids is not None:
            return 0
        if selector.privileged:
            return 1
        return 2 if selector.relationships is not None else 3

    far = datetime.max.replace(tzinfo=UTC)
    unblocked.sort(
        key=lambda g: (-RANK[g.authority.value], specificity(g.contacts), g.ends_at or far, g.id)
    )
    failures = []
    for grant in unblocked:
        governing = [limit for limit in limits if _applies(limit, grant)]
        failure = _stage(grant, governing, session, log)
        if failure is not None:
            failures.append(failure)
            continue
        bounds = []
        for rule in (grant, *governing):
            if rule.max_minutes is not None:
                bounds.append(rule.max_minutes)
            left = _minutes_left(rule, session, log)
            if left is not None:
                bounds.append(left)
            if rule.window is not None:
                bounds.append(_to_close(rule, session))
        monitoring = "none" if contact.privileged else "recorded"
        interpreter = None
        for require in requires:
            if (
                require.monitoring is not None
                and LEVEL[require.monitoring.value] > LEVEL[monitoring]
            ):
                monitoring = require.monitoring.value
            interpreter = require.interpreter or interpreter
        setting = "open" if session.channel is VISIT else None
        for require in requires:
            wanted = None if require.setting is None else require.setting.value
            if setting is not None and wanted is not None:
                setting = max(setting, wanted, key=SETTING_LEVEL.__getitem__)
        return {
            "allowed": True,
            "reason": None,
            "rules": {grant.id} | {r.id for r in governing} | {r.id for r in requires},
            "charged_to": grant.id,
            "max_minutes": min(bounds) if bounds else 1440,
            "monitoring": monitoring,
            "interpreter": interpreter,
            "setting": setting,
            "conflicts": {r.id for r in denies + limits if not _applies(r, grant)},
        }
    return refused(*failures[0])


def _as_sets(decision: Decision) -> dict[str, Any]:
    out = decision.as_dict()
    out["rules"] = set(decision.rules)
    out["conflicts"] = set(decision.conflicts)
    return out


@settings(max_examples=200, deadline=None)
@given(world=worlds(max_history=16))
def test_engine_agrees_with_the_spec(world: World) -> None:
    replay = Replay(world.rules)
    for step, session in enumerate([*world.history, world.final]):
        decision = replay.decide(session)
        assert _as_sets(decision) == spec_decide(world.rules, session, replay.log), step
        if decision.allowed:
            limits = {rule.id for rule in world.rules if rule.kind is Kind.LIMIT}
            assert set(decision.governed_by) == limits & set(decision.rules)
        replay.record(session, decision)


def test_generated_worlds_reach_every_reason() -> None:
    """The generator is not vacuous: across a fixed sample every outcome appears."""
    seen: set[Reason | None] = set()

    @settings(max_examples=200, deadline=None, database=None, derandomize=True)
    @given(world=worlds())
    def collect(world: World) -> None:
        for decision in Replay(world.rules).run([*world.history, world.final]):
            seen.add(decision.reason)

    collect()
    assert seen == {None, *Reason}


# --- zero and small gaps, over overlapping sessions -------------------------------------------
#
# SPEC 3.1: `min_gap_minutes: 0` is a limit like any other, and still refuses a start
# before the end of the previous governed session. The worlds below give most limits a
# gap of 0 to 10 minutes and space sessions by less than their length, so that starts
# fall before, exactly at and just after the previous end, and on both sides of the
# spring-forward and fall-back changes.

GAP_BASES = [datetime(2024, 3, 4, 9), datetime(2024, 3, 10, 1), datetime(2024, 11, 3, 0, 30)]
GAP_PROPERTY = settings(max_examples=60, deadline=None)


@st.composite
def gap_rule_data(draw: st.DrawFn, rule_id: str, kind: str, base: datetime) -> dict[str, Any]:
    data = draw(rule_data(rule_id, kind, base))
    if kind in ("grant", "limit") and draw(st.integers(0, 2)) > 0:
        # mostly phone rules in force throughout, so that sessions are governed
        data["channel"] = "phone"
        data["person"] = draw(st.sampled_from(["p", "all"]))
        data.pop("from", None)
        data.pop("until", None)
        if draw(st.booleans()):
            data["contacts"] = "any"
    if kind in ("grant", "limit") and draw(st.integers(0, 2)) > 0:
        data.pop("quota", None)
    if kind == "limit":
        data.pop("window", None)  # a window mostly fails first and hides the gap stage
        if draw(st.integers(0, 5)) > 0:
            data["min_gap_minutes"] = draw(st.sampled_from([0, 0, 0, 1, 2, 5, 10]))
    if rule_id in ("g0", "l1"):
        # one grant and one gap limit that concern every phone call of everyone
        data.update(channel="phone", person="all", contacts="any")
        for key in ("from", "until", "quota", "overrides"):
            data.pop(key, None)
        if rule_id == "l1":
            data["authority"] = "court_order"  # applies to every grant
            data["min_gap_minutes"] = draw(st.sampled_from([0, 0, 1, 5, 10]))
    return data


def _gap_step(draw: st.DrawFn, length: int) -> timedelta:
    """To the next start: inside the last session (an overlap), or its end (as asked;
    the recorded end may be earlier) plus 0 to 11 minutes, or one second less."""
    if draw(st.integers(0, 3)) == 0:
        return timedelta(minutes=draw(st.integers(0, max(0, length - 1))))
    after = timedelta(minutes=length + draw(st.sampled_from([0, 0, 1, 2, 5, 5, 10, 10, 11])))
    return after - timedelta(seconds=draw(st.sampled_from([0, 0, 0, 1])))


@st.composite
def gap_worlds(draw: st.DrawFn, max_rules: int = 6, max_history: int = 10) -> World:
    base = draw(st.sampled_from(GAP_BASES))
    kind_choices = ["grant"] * 2 + ["limit"] * 6 + ["deny"]
    more = draw(st.lists(st.sampled_from(kind_choices), min_size=1, max_size=max_rules - 1))
    kinds = ["grant", "limit", *more]
    rules = [
        parse_rule(draw(gap_rule_data(f"{kind[0]}{index}", kind, base)), ZONE, index)
        for index, kind in enumerate(kinds)
    ]
    at = wall_to_instant(base + timedelta(minutes=draw(st.integers(0, 90))), ZONE)
    history: list[Session] = []
    for _ in range(draw(st.integers(2, max_history))):
        session = draw(sessions_from(at))
        # mostly phone calls of a few minutes to half an hour: sessions overlap
        minutes = draw(st.sampled_from([1, 2, 5, 10, 15, 30, session.minutes]))
        history.append(Session(session.person, session.contact, PHONE, at, minutes))
        at = at + _gap_step(draw, minutes)
    final = draw(sessions_from(at))
    return World(base, rules, history, Session(final.person, final.contact, PHONE, at, 5))


def _compared(decision: dict[str, Any]) -> dict[str, Any]:
    return {key: decision[key] for key in ("reason", "rules", "charged_to", "max_minutes")}


@GAP_PROPERTY
@given(world=gap_worlds())
def test_zero_and_small_gaps_agree_with_the_spec(world: World) -> None:
    replay = Replay(world.rules)
    for step, session in enumerate([*world.history, world.final]):
        decision = replay.decide(session)
        expected = spec_decide(world.rules, session, replay.log)
        assert _compared(_as_sets(decision)) == _compared(expected), step
        replay.record(session, decision)


def test_gap_worlds_reach_every_edge() -> None:
    """The generator is not vacuous: a zero gap refuses an overlapping start, a zero gap
    passes a start exactly at the previous end, and a small gap refuses and passes."""
    seen: set[str] = set()

    @settings(max_examples=40, deadline=None, database=None, derandomize=True)
    @given(world=gap_worlds())
    def collect(world: World) -> None:
        replay = Replay(world.rules)
        by_id = {rule.id: rule for rule in world.rules}
        for session in [*world.history, world.final]:
            decision = replay.decide(session)
            if decision.reason is Reason.TOO_SOON:
                gaps = {by_id[i].min_gap_minutes for i in decision.rules}
                seen.update("zero-refused" if gap == 0 else "small-refused" for gap in gaps)
            elif decision.allowed:
                for limit_id in decision.governed_by:
                    limit = by_id[limit_id]
                    ends = [
                        e.end
                        for e in replay.log
                        if e.person == session.person and limit_id in e.governed
                    ]
                    if limit.min_gap_minutes == 0 and session.at in ends:
                        seen.add("zero-at-end")
                    if limit.min_gap_minutes and ends:
                        seen.add("small-passed")
            replay.record(session, decision)

    collect()
    assert seen == {"zero-refused", "zero-at-end", "small-refused", "small-passed"}


# --- visit settings (SPEC 3.1, 4.6) ----------------------------------------------------------
#
# The worlds above rarely allow a visit (few rules and contacts are on that channel). These
# put most rules and sessions on it, approve every contact but one for it, and give most
# visit requires a setting, so that every setting is reached, by one rule or by several.

VISIT_CONTACTS: dict[str, list[Contact]] = {
    person: [
        contact
        if contact.id == "kid"
        else _contact(
            contact.id,
            person,
            contact.relationship,
            *contact.approved,
            VISIT,
            privileged=contact.privileged,
        )
        for contact in contacts
    ]
    for person, contacts in CONTACTS.items()
}


@st.composite
def visit_sessions_from(draw: st.DrawFn, start: datetime) -> Session:
    person = draw(st.sampled_from(["p"] * 5 + ["q"]))
    return Session(
        person=person,
        contact=draw(st.sampled_from(VISIT_CONTACTS[person])),
        channel=draw(st.sampled_from([VISIT] * 6 + [PHONE, VIDEO])),
        at=start,
        minutes=draw(st.integers(1, 90)),
    )


@st.composite
def visit_worlds(draw: st.DrawFn, max_rules: int = 9, max_history: int = 10) -> World:
    base = draw(st.sampled_from(BASES))
    kind_choices = ["grant"] * 3 + ["limit"] * 2 + ["deny"] + ["require"] * 4
    more = draw(st.lists(st.sampled_from(kind_choices), min_size=2, max_size=max_rules - 1))
    rules = []
    for index, kind in enumerate(["grant", *more]):
        data = draw(rule_data(f"{kind[0]}{index}", kind, base))
        if draw(st.integers(0, 3)) > 0:
            data["channel"] = "visit"
        if kind in ("grant", "require") and draw(st.booleans()):
            data.update(person="all", contacts="any")
        if kind == "require" and data["channel"] == "visit" and draw(st.integers(0, 3)) > 0:
            data["setting"] = draw(st.sampled_from(list(Setting))).value
        rules.append(parse_rule(data, ZONE, index))
    at = wall_to_instant(base + timedelta(minutes=draw(st.integers(0, 24 * 60))), ZONE)
    history: list[Session] = []
    for _ in range(draw(st.integers(1, max_history))):
        history.append(draw(visit_sessions_from(at)))
        at = at + _step(draw)
    return World(base, rules, history, draw(visit_sessions_from(at)))


@settings(max_examples=200, deadline=None)
@given(world=visit_worlds())
def test_visit_worlds_agree_with_the_spec(world: World) -> None:
    replay = Replay(world.rules)
    for step, session in enumerate([*world.history, world.final]):
        decision = replay.decide(session)
        assert _as_sets(decision) == spec_decide(world.rules, session, replay.log), step
        replay.record(session, decision)


@PROPERTY
@given(world=visit_worlds())
def test_only_allowed_visits_have_a_setting(world: World) -> None:
    replay = Replay(world.rules)
    by_id = {rule.id: rule for rule in world.rules}
    for session in [*world.history, world.final]:
        decision = replay.decide(session)
        if decision.allowed and session.channel is VISIT:
            assert decision.setting is not None
            named = [by_id[i].setting for i in decision.rules]
            levels = [0, *(setting.level for setting in named if setting is not None)]
            assert decision.setting.level == max(levels)
        else:
            assert decision.setting is None
        replay.record(session, decision)


def test_visit_worlds_reach_every_setting() -> None:
    """The generator is not vacuous: allowed visits in every setting, visits under both a
    non_contact and a closed require, and refused visits."""
    seen: set[object] = set()

    @settings(max_examples=400, deadline=None, database=None, derandomize=True)
    @given(world=visit_worlds())
    def collect(world: World) -> None:
        by_id = {rule.id: rule for rule in world.rules}
        sessions = [*world.history, world.final]
        for session, decision in zip(sessions, Replay(world.rules).run(sessions), strict=True):
            if session.channel is not VISIT:
                continue
            if not decision.allowed:
                seen.add("refused")
                continue
            seen.add(decision.setting)
            if {Setting.NON_CONTACT, Setting.CLOSED} <= {by_id[i].setting for i in decision.rules}:
                seen.add("non_contact+closed")

    collect()
    assert seen == {*Setting, "non_contact+closed", "refused"}
