"""The call path, on SQLite and PostgreSQL: holds on the allowance, settlement,
release, expiry, idempotency, and the HTTP contract for the telephony platform.

Service-level tests pass explicit instants, so expiry and settlement can be
tried at any moment; API tests decide at the server's clock, so their rules are
in force at any time of day (no windows, rolling quotas).
"""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from _databases import DbTemplate, scenario_template
from sqlalchemy import func, select

from kinline.api import create_app
from kinline.audit.service import verify_log
from kinline.calls.path import (
    Status,
    authorize,
    connect,
    end,
    end_grace,
    get_call,
    hold_timeout,
    release,
    sweep,
)
from kinline.calls.service import decide_contact
from kinline.db.engine import Database
from kinline.db.tables import AuditEventRow, GapMarkRow, SessionRow, UsageCounterRow
from kinline.errors import Conflict, InvalidInput, NotFound
from kinline.identity.service import create_token

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

FACILITY = "fci-test"
T0 = datetime(2025, 3, 4, 17, 0, tzinfo=UTC)  # 10:00 in Denver


def scenario(rules: str) -> DbTemplate:
    """Two people and their contacts in FCI Test, under ``rules``."""
    return scenario_template(
        textwrap.dedent(
            """\
            scenario: calls
            facility: {id: fci-test, name: FCI Test, timezone: America/Denver}
            people:
              - {id: ana, name: A. Ana, language: en}
              - {id: ben, name: B. Ben, language: es}
            contacts:
              - {id: mom, person: ana, relationship: parent, phones: ["+1 303 555 0100"],
                 approved: [phone, video]}
              - {id: aunt, person: ana, relationship: other_family,
                 phones: ["+1 303 555 0101", "+52 667 555 0111"], approved: [phone]}
              - {id: lawyer, person: ana, relationship: attorney, phones: ["+1 303 555 0199"],
                 approved: [phone], privileged: true}
              - {id: wife, person: ben, relationship: spouse, phones: ["+1 303 555 0100"],
                 approved: [phone]}
            rules:
            """
        )
        + textwrap.indent(textwrap.dedent(rules), "  ")
    )


TWO_CALLS = """\
- {id: g-phone, authority: facility_policy, kind: grant, channel: phone, person: all,
   contacts: any, quota: {count: 2, per: {rolling_days: 30}}, max_minutes: 15,
   text: Two calls of up to 15 minutes in any 30 days.}
"""

MINUTES_AND_GAP = """\
- {id: g-phone, authority: facility_policy, kind: grant, channel: phone, person: all,
   contacts: any, quota: {minutes: 40, per: month}, max_minutes: 20,
   text: Forty minutes a month.}
- {id: l-gap, authority: facility_policy, kind: limit, channel: phone, person: all,
   contacts: any, min_gap_minutes: 60, quota: {count: 5, per: week},
   text: An hour between calls.}
"""


@pytest.fixture
def two_calls(fresh_db: Callable[[DbTemplate], Database]) -> Database:
    return fresh_db(scenario(TWO_CALLS))


@pytest.fixture
def minutes_and_gap(fresh_db: Callable[[DbTemplate], Database]) -> Database:
    return fresh_db(scenario(MINUTES_AND_GAP))


def take(db: Database, key: str, at: datetime, dialed: str = "+1 303 555 0100", **kw: Any) -> Any:
    return authorize(
        db, FACILITY, kw.pop("person", "ana"), dialed=dialed, idempotency_key=key,
        actor="test", at=at, **kw,
    )  # fmt: skip


def counters(db: Database, person: str = "ana") -> dict[tuple[str, str], tuple[int, int]]:
    with db.transaction() as session:
        return {
            (row.rule_id, row.period_key): (row.sessions, row.minutes)
            for row in session.scalars(
                select(UsageCounterRow).where(UsageCounterRow.person_id == person)
            )
        }


def assert_log_verifies(db: Database) -> None:
    report = verify_log(db)
    assert report.problem is None, report


# --- holds and settlement -----------------------------------------------------


def test_an_allowed_setup_holds_the_allowance_until_it_ends(two_calls: Database) -> None:
    db = two_calls
    first = take(db, "k1", T0)
    assert first.allowed and first.state == Status.HELD
    assert first.hold_id.startswith("h_")
    assert first.decision.charged_to == "g-phone"
    assert first.decision.max_minutes == 15
    assert first.expires_at == T0 + hold_timeout()
    # The hold counts: a second set-up sees one call left, a third none.
    second = take(db, "k2", T0 + timedelta(seconds=5))
    assert second.allowed
    third = take(db, "k3", T0 + timedelta(seconds=10))
    assert not third.allowed
    assert third.decision.reason == "quota_exhausted"
    assert third.hold_id is None
    # Releasing the second gives its call back.
    released = release(db, FACILITY, second.hold_id, actor="test", at=T0 + timedelta(seconds=20))
    assert released.state == Status.RELEASED and released.minutes == 0
    assert take(db, "k4", T0 + timedelta(seconds=30)).allowed
    assert_log_verifies(db)


def test_end_charges_whole_minutes_rounded_up_never_above_max(minutes_and_gap: Database) -> None:
    db = minutes_and_gap
    call = take(db, "k1", T0)
    assert call.decision.max_minutes == 20
    assert counters(db)[("g-phone", "2025-03")] == (1, 20)  # held at its maximum
    connect(db, FACILITY, call.hold_id, actor="test", at=T0 + timedelta(seconds=10))
    ended = end(db, FACILITY, call.hold_id, 61, actor="test", at=T0 + timedelta(minutes=2))
    assert ended.state == Status.COMPLETED and ended.minutes == 2
    assert counters(db)[("g-phone", "2025-03")] == (1, 2)
    assert counters(db)[("l-gap", "2025-W10")] == (1, 2)
    # The gap runs from the end of what was charged: start + 2 minutes.
    with db.transaction() as session:
        mark = session.get(GapMarkRow, (FACILITY, "ana", "l-gap"))
        assert mark is not None
        assert mark.last_end == T0 + timedelta(minutes=2)
    later = T0 + timedelta(minutes=62)
    assert not take(db, "k2", later - timedelta(minutes=1)).allowed  # too soon
    capped = take(db, "k3", later)
    assert capped.allowed
    connect(db, FACILITY, capped.hold_id, actor="test", at=later)
    done = end(db, FACILITY, capped.hold_id, 3 * 3600, actor="test", at=later + timedelta(hours=3))
    assert done.minutes == 20  # never above max_minutes
    assert counters(db)[("g-phone", "2025-03")] == (2, 22)
    # 18 minutes left of 40: the next call may last 18.
    nxt = take(db, "k4", later + timedelta(hours=4))
    assert nxt.allowed and nxt.decision.max_minutes == 18
    assert_log_verifies(db)


def test_the_same_end_twice_is_one_charge_and_a_different_end_is_a_conflict(
    minutes_and_gap: Database,
) -> None:
    db = minutes_and_gap
    call = take(db, "k1", T0)
    connect(db, FACILITY, call.hold_id, actor="test", at=T0)
    first = end(db, FACILITY, call.hold_id, 300, actor="test", at=T0 + timedelta(minutes=5))
    again = end(db, FACILITY, call.hold_id, 300, actor="test", at=T0 + timedelta(minutes=6))
    assert (first.minutes, again.minutes) == (5, 5)
    assert again.replayed
    with pytest.raises(Conflict, match="already ended with 5 minutes"):
        end(db, FACILITY, call.hold_id, 900, actor="test", at=T0 + timedelta(minutes=7))
    assert counters(db)[("g-phone", "2025-03")] == (1, 5)


def test_release_gives_back_the_gap_mark_and_the_counters(minutes_and_gap: Database) -> None:
    db = minutes_and_gap
    done = take(db, "k1", T0)
    connect(db, FACILITY, done.hold_id, actor="test", at=T0)
    end(db, FACILITY, done.hold_id, 600, actor="test", at=T0 + timedelta(minutes=10))
    later = T0 + timedelta(hours=2)
    held = take(db, "k2", later)
    assert held.allowed
    assert counters(db)[("g-phone", "2025-03")] == (2, 30)
    release(db, FACILITY, held.hold_id, actor="test", at=later + timedelta(seconds=30))
    assert counters(db)[("g-phone", "2025-03")] == (1, 10)
    assert counters(db)[("l-gap", "2025-W10")] == (1, 10)
    with db.transaction() as session:
        mark = session.get(GapMarkRow, (FACILITY, "ana", "l-gap"))
        assert mark is not None
        assert mark.last_end == T0 + timedelta(minutes=10)
    # Releasing again is the same answer; ending a released call is a conflict.
    again = release(db, FACILITY, held.hold_id, actor="test", at=later + timedelta(minutes=1))
    assert again.state == Status.RELEASED and again.replayed
    with pytest.raises(Conflict, match="it is released"):
        end(db, FACILITY, held.hold_id, 60, actor="test", at=later + timedelta(minutes=2))
    assert_log_verifies(db)


def test_a_first_gap_mark_is_removed_when_its_hold_is_released(
    minutes_and_gap: Database,
) -> None:
    db = minutes_and_gap
    held = take(db, "k1", T0)
    with db.transaction() as session:
        assert session.get(GapMarkRow, (FACILITY, "ana", "l-gap")) is not None
    release(db, FACILITY, held.hold_id, actor="test", at=T0 + timedelta(seconds=5))
    with db.transaction() as session:
        assert session.get(GapMarkRow, (FACILITY, "ana", "l-gap")) is None
    assert take(db, "k2", T0 + timedelta(seconds=10)).allowed  # not too soon


def test_an_end_without_a_connect_connects_and_ends(two_calls: Database) -> None:
    db = two_calls
    call = take(db, "k1", T0)
    at = T0 + timedelta(seconds=100)
    ended = end(db, FACILITY, call.hold_id, 95, actor="test", at=at)
    assert ended.state == Status.COMPLETED and ended.minutes == 2
    assert ended.connected_at == at - timedelta(seconds=95)


def test_connected_calls_cannot_be_released_and_held_ones_connect_once(
    two_calls: Database,
) -> None:
    db = two_calls
    call = take(db, "k1", T0)
    first = connect(db, FACILITY, call.hold_id, actor="test", at=T0 + timedelta(seconds=3))
    again = connect(db, FACILITY, call.hold_id, actor="test", at=T0 + timedelta(seconds=9))
    assert first.connected_at == again.connected_at == T0 + timedelta(seconds=3)
    assert first.expires_at == T0 + timedelta(seconds=3, minutes=15) + end_grace()
    with pytest.raises(Conflict, match=r"cannot release .* it is connected"):
        release(db, FACILITY, call.hold_id, actor="test", at=T0 + timedelta(minutes=1))


def test_a_past_moment_measures_the_gap_from_the_session_before_it(
    minutes_and_gap: Database,
) -> None:
    """SPEC 3.1: the gap runs from the end of the previous governed session; a
    session recorded later does not make an earlier moment too soon."""
    db = minutes_and_gap
    first = take(db, "k1", T0)
    connect(db, FACILITY, first.hold_id, actor="test", at=T0)
    end(db, FACILITY, first.hold_id, 600, actor="test", at=T0 + timedelta(minutes=10))
    next_day = T0 + timedelta(days=1)
    second = take(db, "k2", next_day)
    connect(db, FACILITY, second.hold_id, actor="test", at=next_day)
    end(db, FACILITY, second.hold_id, 300, actor="test", at=next_day + timedelta(minutes=5))
    held = take(db, "k3", next_day + timedelta(hours=3))  # still held: counts at max
    assert held.allowed

    def decided(at: datetime) -> tuple[bool, str | None]:
        d = decide_contact(db, FACILITY, "ana", "mom", at=at).decision
        return d.allowed, None if d.reason is None else str(d.reason)

    assert decided(T0 + timedelta(minutes=30)) == (False, "too_soon")  # 20 min after the first
    assert decided(T0 + timedelta(minutes=70)) == (True, None)  # 60 min after it ended
    assert decided(next_day + timedelta(minutes=30)) == (False, "too_soon")
    assert decided(next_day + timedelta(minutes=65)) == (True, None)
    # The held call counts at its 20 held minutes until it is settled.
    assert decided(next_day + timedelta(hours=3, minutes=79)) == (False, "too_soon")
    assert decided(next_day + timedelta(hours=3, minutes=80)) == (True, None)


# --- expiry and the sweep -----------------------------------------------------


def test_the_sweep_expires_unconnected_holds_and_settles_unended_calls(
    minutes_and_gap: Database,
) -> None:
    db = minutes_and_gap
    lapsed = take(db, "k1", T0)
    later = T0 + timedelta(hours=2)
    talking = take(db, "k2", later)
    connect(db, FACILITY, talking.hold_id, actor="test", at=later + timedelta(seconds=20))
    assert counters(db)[("g-phone", "2025-03")] == (2, 40)
    # Nothing is due yet.
    report = sweep(db, at=T0 + hold_timeout() - timedelta(seconds=1))
    assert (report.expired, report.settled) == (0, 0)
    report = sweep(db, at=later + timedelta(minutes=1))
    assert (report.expired, report.settled) == (1, 0)
    assert get_call(db, FACILITY, lapsed.hold_id).state == Status.EXPIRED
    assert counters(db)[("g-phone", "2025-03")] == (1, 20)
    # The connected call never reports its end: settled at its max when time is up.
    due = later + timedelta(seconds=20, minutes=20) + end_grace()
    assert sweep(db, at=due - timedelta(seconds=1)).settled == 0
    report = sweep(db, at=due)
    assert (report.expired, report.settled) == (0, 1)
    settled = get_call(db, FACILITY, talking.hold_id)
    assert settled.state == Status.COMPLETED
    assert (settled.minutes, settled.settled_by) == (20, "timeout")
    assert counters(db)[("g-phone", "2025-03")] == (1, 20)
    # A sweep later finds nothing more.
    assert sweep(db, at=due + timedelta(days=30)) == type(report)(0, 0)
    # The platform's late end report corrects the charge to what was used.
    corrected = end(db, FACILITY, talking.hold_id, 420, actor="test", at=due + timedelta(hours=1))
    assert (corrected.minutes, corrected.settled_by) == (7, "platform")
    assert counters(db)[("g-phone", "2025-03")] == (1, 7)
    assert_log_verifies(db)


@pytest.mark.parametrize("report", ["connect", "end"])
def test_a_late_report_on_an_expired_hold_is_a_conflict_and_gives_the_call_back(
    two_calls: Database, report: str
) -> None:
    db = two_calls
    held = take(db, "k1", T0)
    take(db, "k2", T0)
    assert not take(db, "k3", T0).allowed
    late = T0 + hold_timeout()
    action = connect if report == "connect" else partial(end, seconds=30)
    with pytest.raises(Conflict, match="expired before the call connected"):
        action(db, FACILITY, held.hold_id, actor="test", at=late)
    assert get_call(db, FACILITY, held.hold_id).state == Status.EXPIRED
    assert take(db, "k4", late).allowed
    assert_log_verifies(db)


# --- idempotency and resolution -----------------------------------------------


def test_the_same_key_gives_the_same_answer_and_never_a_second_hold(
    two_calls: Database,
) -> None:
    db = two_calls
    first = take(db, "k1", T0)
    again = take(db, "k1", T0 + timedelta(seconds=1), dialed="(303) 555-0100")
    assert again.replayed and not first.replayed
    assert (again.hold_id, again.decision) == (first.hold_id, first.decision)
    refused = [take(db, f"r{i}", T0, dialed="+1 303 555 0199", channel="video") for i in range(2)]
    assert refused[0].decision.reason == "not_on_list"  # the lawyer: phone only
    assert take(db, "r0", T0, dialed="+1 303 555 0199", channel="video").replayed
    with pytest.raises(Conflict, match="different call set-up"):
        take(db, "k1", T0, dialed="+1 303 555 0101")
    with pytest.raises(Conflict, match="different call set-up"):
        take(db, "k1", T0, person="ben")
    with db.transaction() as session:
        held = session.scalar(
            select(func.count()).select_from(SessionRow).where(SessionRow.status == "held")
        )
        assert held == 1
    assert_log_verifies(db)


def test_dialed_numbers_resolve_to_the_callers_own_contact(two_calls: Database) -> None:
    db = two_calls
    assert take(db, "a", T0, dialed="+52 667 555 0111").contact_id == "aunt"
    assert take(db, "b", T0, dialed="303-555-0100", person="ben").contact_id == "wife"
    unknown = take(db, "c", T0, dialed="+1 303 555 0177")
    assert not unknown.allowed
    assert unknown.decision.reason == "not_on_list"
    assert unknown.contact_id is None
    assert unknown.dialed == "+13035550177"
    with db.transaction() as session:
        tags = list(session.scalars(select(AuditEventRow.tag).order_by(AuditEventRow.id)))
    assert tags[-3:] == [
        "calls:authorize:allowed",
        "calls:authorize:allowed",
        "calls:authorize:refused",
    ]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"dialed": "not a number"}, "dialed"),
        ({"dialed": None}, "dialed"),
        ({"dialed": "+1 303 555 0100", "contact_id": "mom"}, "dialed"),
        ({"channel": "fax"}, "channel"),
        ({"channel": "visit"}, "channel"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "x" * 201}, "idempotency_key"),
        ({"idempotency_key": "a\nb"}, "idempotency_key"),
    ],
)
def test_bad_set_ups_name_the_field_and_write_nothing(
    two_calls: Database, kwargs: dict[str, Any], field: str
) -> None:
    db = two_calls
    request: dict[str, Any] = {"dialed": "+1 303 555 0100", "idempotency_key": "k"} | kwargs
    with db.transaction() as session:
        before = session.scalar(select(func.count()).select_from(AuditEventRow))
    with pytest.raises(InvalidInput) as caught:
        authorize(db, FACILITY, "ana", actor="test", at=T0, **request)
    assert caught.value.field == field
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(SessionRow)) == 0
        assert session.scalar(select(func.count()).select_from(AuditEventRow)) == before


def test_unknown_people_and_holds_are_not_found(two_calls: Database) -> None:
    with pytest.raises(NotFound) as caught:
        take(two_calls, "k", T0, person="nobody")
    assert caught.value.field == "person_id"
    with pytest.raises(NotFound) as caught:
        end(two_calls, FACILITY, "h_missing", 60, actor="test", at=T0)
    assert caught.value.field == "hold_id"


def test_a_completed_call_counts_like_a_recorded_session(two_calls: Database) -> None:
    db = two_calls
    for key in ("k1", "k2"):
        call = take(db, key, T0)
        end(db, FACILITY, call.hold_id, 60, actor="test", at=T0 + timedelta(minutes=1))
    decided = decide_contact(db, FACILITY, "ana", "mom", at=T0 + timedelta(minutes=5))
    assert not decided.decision.allowed
    assert str(decided.decision.reason) == "quota_exhausted"


# --- over HTTP ----------------------------------------------------------------

NOW_RULES = """\
- {id: g-phone, authority: facility_policy, kind: grant, channel: phone, person: all,
   contacts: any, quota: {count: 1, per: {rolling_days: 7}}, max_minutes: 15,
   text: One call of up to 15 minutes a week.}
- {id: g-legal, authority: facility_policy, kind: grant, channel: phone, person: all,
   contacts: {privileged: true}, text: Legal calls.}
"""


@pytest.fixture
def client(
    fresh_db: Callable[[DbTemplate], Database],
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    db = fresh_db(scenario(NOW_RULES))
    tokens = {
        role: create_token(db, f"{role}-client", role, at=datetime.now(UTC))[1]
        for role in ("read", "staff", "telephony")
    }
    with TestClient(create_app(db), raise_server_exceptions=False) as test_client:
        yield test_client, tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_telephony_flow_over_http(client: tuple[TestClient, dict[str, str]]) -> None:
    http, tokens = client
    h = bearer(tokens["telephony"])
    body = {"person_id": "ana", "dialed": "+1 (303) 555-0100", "idempotency_key": "pbx-1"}
    answer = http.post("/v1/calls/authorize", json=body, headers=h)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["allowed"] is True
    assert got["rules"] == ["g-phone"]
    assert got["charged_to"] == "g-phone"
    assert got["max_minutes"] == 15
    assert got["monitoring"] == "recorded"
    assert got["contact_id"] == "mom"
    assert got["replayed"] is False
    hold = got["hold_id"]
    replay = http.post("/v1/calls/authorize", json=body, headers=h).json()
    assert replay["hold_id"] == hold and replay["replayed"] is True
    refused = http.post(
        "/v1/calls/authorize", json={**body, "idempotency_key": "pbx-2"}, headers=h
    ).json()
    assert (refused["allowed"], refused["reason"], refused["hold_id"]) == (
        False,
        "quota_exhausted",
        None,
    )
    legal = http.post(
        "/v1/calls/authorize",
        json={"person_id": "ana", "contact_id": "lawyer", "idempotency_key": "pbx-3"},
        headers=h,
    ).json()
    assert legal["allowed"] is True and legal["monitoring"] == "none"
    connected = http.post(f"/v1/calls/{hold}/connect", headers=h)
    assert connected.status_code == 200 and connected.json()["state"] == "connected"
    ended = http.post(f"/v1/calls/{hold}/end", json={"seconds": 421}, headers=h)
    assert ended.status_code == 200, ended.text
    assert ended.json()["state"] == "completed"
    assert ended.json()["minutes"] == 8
    read = http.get(f"/v1/calls/{hold}", headers=bearer(tokens["read"]))
    assert read.json() == ended.json()
    released = http.post(f"/v1/calls/{legal['hold_id']}/release", headers=h).json()
    assert (released["state"], released["minutes"]) == ("released", 0)


def test_call_endpoints_need_the_telephony_scope(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    http, tokens = client
    body = {"person_id": "ana", "dialed": "+1 303 555 0100", "idempotency_key": "k"}
    for path, payload in (
        ("/v1/calls/authorize", body),
        ("/v1/calls/h_x/connect", None),
        ("/v1/calls/h_x/end", {"seconds": 1}),
        ("/v1/calls/h_x/release", None),
    ):
        none = http.post(path, json=payload)
        assert none.status_code == 401
        assert none.headers["content-type"] == "application/problem+json"
        for role in ("read", "staff"):
            # Staff, even an admin, do not set up calls: that is the platform's job.
            wrong = http.post(path, json=payload, headers=bearer(tokens[role]))
            assert wrong.status_code == 403
            assert wrong.json()["detail"] == "a staff subject here may not call:setup"
    hold = http.post("/v1/calls/authorize", json=body, headers=bearer(tokens["telephony"]))
    assert hold.json()["allowed"] is True  # the 403s wrote nothing: the call was still there


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dialed": "+1 303 555 0100", "idempotency_key": "k"}, "person_id"),
        ({"person_id": "ana", "dialed": "+1 303 555 0100"}, "idempotency_key"),
        ({"person_id": "ana", "dialed": "+13035550100", "idempotency_key": ""}, "idempotency_key"),
        ({"person_id": "ana", "dialed": "x\x00", "idempotency_key": "k"}, "dialed"),
        ({"person_id": "ana", "dialed": "12", "idempotency_key": "k"}, "dialed"),
        ({"person_id": "ana", "dialed": 5, "idempotency_key": "k"}, "dialed"),
        ({"person_id": "ana", "idempotency_key": "k"}, "dialed"),
        ({"person_id": "ana", "dialed": "+1 303 555 0100", "idempotency_key": "k", "x": 1}, "x"),
        ({"person_id": "ana", "dialed": "+13035550100", "idempotency_key": "k", "channel": "sms"},
         "channel"),
    ],
)  # fmt: skip
def test_malformed_authorize_is_a_422_naming_the_field(
    client: tuple[TestClient, dict[str, str]], body: dict[str, Any], field: str
) -> None:
    http, tokens = client
    response = http.post("/v1/calls/authorize", json=body, headers=bearer(tokens["telephony"]))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field


@pytest.mark.parametrize("body", [{"seconds": -1}, {"seconds": "ten"}, {}, {"seconds": 1.5}, []])
def test_malformed_end_is_a_422_and_charges_nothing(
    client: tuple[TestClient, dict[str, str]], body: object
) -> None:
    http, tokens = client
    h = bearer(tokens["telephony"])
    hold = http.post(
        "/v1/calls/authorize",
        json={"person_id": "ana", "dialed": "+1 303 555 0100", "idempotency_key": "k"},
        headers=h,
    ).json()["hold_id"]
    response = http.post(f"/v1/calls/{hold}/end", json=body, headers=h)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert http.get(f"/v1/calls/{hold}", headers=h).json()["state"] == "held"
