"""What a person may still do with each contact (calls.allowances), on SQLite and
PostgreSQL: one row per approved contact and channel, each with the engine's own
decision and what each quota bounding it has used, and when that goes down."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from _databases import DbTemplate, scenario_template

from kinline.calls.allowances import allowances
from kinline.calls.path import authorize, connect, end
from kinline.calls.service import decide_contact
from kinline.db.engine import Database
from kinline.errors import NotFound
from kinline.explain import explain
from kinline.rules.decide import Request
from kinline.rules.model import Channel

FACILITY = "fci-test"
T0 = datetime(2025, 3, 4, 17, 0, tzinfo=UTC)  # Tuesday 10:00 in Denver

SCENARIO = scenario_template(
    textwrap.dedent(
        """\
        scenario: allowances
        facility: {id: fci-test, name: FCI Test, timezone: America/Denver}
        people:
          - {id: ana, name: A. Ana, language: es}
          - {id: ben, name: B. Ben, language: en}
        contacts:
          - {id: mom, person: ana, relationship: parent, phones: ["+1 303 555 0100"],
             approved: [phone, video]}
          - {id: aunt, person: ana, relationship: other_family,
             phones: ["+1 303 555 0101"], approved: []}
          - {id: lawyer, person: ana, relationship: attorney, phones: ["+1 303 555 0199"],
             approved: [phone], privileged: true}
          - {id: wife, person: ben, relationship: spouse, phones: ["+1 303 555 0102"],
             approved: [phone]}
        rules:
          - {id: g-phone, authority: facility_policy, kind: grant, channel: phone, person: all,
             contacts: any, quota: {count: 2, per: {rolling_days: 30}}, max_minutes: 15,
             text: Two calls of up to 15 minutes in any 30 days.}
          - {id: l-week, authority: facility_policy, kind: limit, channel: phone, person: all,
             contacts: any, quota: {minutes: 60, per: week}, text: An hour of calls a week.}
          - {id: g-legal, authority: facility_policy, kind: grant, channel: phone, person: all,
             contacts: {privileged: true}, text: Legal calls at any time.}
        """
    )
)


@pytest.fixture
def db(fresh_db: Callable[[DbTemplate], Database]) -> Database:
    return fresh_db(SCENARIO)


def call(db: Database, key: str, at: datetime, minutes: int) -> None:
    held = authorize(
        db, FACILITY, "ana", dialed="+1 303 555 0100", idempotency_key=key, actor="t", at=at
    )
    assert held.allowed and held.hold_id is not None
    connect(db, FACILITY, held.hold_id, actor="t", at=at)
    end(db, FACILITY, held.hold_id, minutes * 60, actor="t", at=at + timedelta(minutes=minutes))


def test_one_row_per_approved_contact_and_channel(db: Database) -> None:
    found = allowances(db, FACILITY, "ana", at=T0)
    assert [(a.contact_id, a.channel) for a in found] == [
        ("lawyer", Channel.PHONE),
        ("mom", Channel.PHONE),
        ("mom", Channel.VIDEO),
    ]  # the aunt has no approval; ben's wife is not ana's
    lawyer, mom_phone, mom_video = found
    assert lawyer.privileged and lawyer.relationship == "attorney"
    assert not mom_phone.privileged and mom_phone.contact_name
    assert mom_phone.decided.decision.allowed
    assert mom_phone.decided.decision.charged_to == "g-phone"
    assert mom_phone.decided.contact.id == "mom"
    assert not mom_video.decided.decision.allowed  # no rule grants video
    assert mom_video.uses == ()


def test_quota_uses_count_what_was_used_and_say_when_it_goes_down(db: Database) -> None:
    before = allowances(db, FACILITY, "ana", at=T0)
    phone = next(a for a in before if a.contact_id == "mom" and a.channel is Channel.PHONE)
    assert {use.rule_id: (use.used_sessions, use.resets_at) for use in phone.uses} == {
        "g-phone": (0, None),
        "l-week": (0, None),
    }
    call(db, "k1", T0, 10)
    call(db, "k2", T0 + timedelta(days=1), 12)
    later = T0 + timedelta(days=2)
    after = allowances(db, FACILITY, "ana", at=later)
    phone = next(a for a in after if a.contact_id == "mom" and a.channel is Channel.PHONE)
    uses = {use.rule_id: use for use in phone.uses}
    rolling, week = uses["g-phone"], uses["l-week"]
    assert (rolling.period, rolling.count, rolling.used_sessions) == ("rolling:30", 2, 2)
    assert rolling.used_minutes == 22
    assert rolling.resets_at == T0 + timedelta(days=30)  # the first call leaves the window
    assert (week.period, week.minutes, week.used_minutes) == ("week", 60, 22)
    # The ISO week ends Monday 00:00 in Denver: MDT (UTC-6) since Sunday's change.
    assert week.resets_at == datetime(2025, 3, 10, 6, 0, tzinfo=UTC)
    # Two calls used: the decision refuses, naming the quota, as the call path would.
    assert not phone.decided.decision.allowed
    assert phone.decided.decision == decide_contact(db, FACILITY, "ana", "mom", at=later).decision
    # The legal line is not bounded by the family quota.
    lawyer = next(a for a in after if a.contact_id == "lawyer")
    assert lawyer.decided.decision.allowed and lawyer.uses == ()


def test_each_row_explains_in_the_readers_language(db: Database) -> None:
    call(db, "k1", T0, 10)
    call(db, "k2", T0 + timedelta(hours=2), 10)
    at = T0 + timedelta(hours=4)
    phone = next(a for a in allowances(db, FACILITY, "ana", at=at) if a.channel is Channel.PHONE
                 and a.contact_id == "mom")  # fmt: skip
    e = phone.decided
    words = explain(
        e.decision, Request(e.person_id, e.contact, e.channel, e.at), e.rules, e.usage,
        language="es", zone=e.usage.zone,
    )  # fmt: skip
    assert words.next_possible == T0 + timedelta(days=30)
    assert "quota_exhausted" not in words.text and "g-phone" not in words.headline


def test_unknown_people_are_not_found_and_released_people_have_none(db: Database) -> None:
    with pytest.raises(NotFound):
        allowances(db, FACILITY, "nobody", at=T0)
    with pytest.raises(NotFound):
        allowances(db, "no-such-facility", "ana", at=T0)
    assert [a.contact_id for a in allowances(db, FACILITY, "ben", at=T0)] == ["wife"]
