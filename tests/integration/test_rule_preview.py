"""The what-if preview of imposing or lifting a rule predicts what the change then
does: every decision it shows "after" is the decision the call path takes once
the rule is saved (or lifted), on the supermax scenario, on SQLite and
PostgreSQL; it names the court orders a rule overrides, the visit bookings it
reaches, and it writes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from _databases import SUPERMAX, DbTemplate

from kinline.calls.service import decide_contact
from kinline.changes.preview import Preview, preview_impose, preview_lift
from kinline.changes.service import impose_rule, lift_rule
from kinline.db.engine import Database
from kinline.demo.visits import load_visits
from kinline.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from kinline.notices.service import list_notices
from kinline.policy.service import get_rule
from kinline.visits import booking

F = "usp-red-mesa"
# After the scenario's timeline: calls with the children suspended (sam-children,
# overriding order-17); a Thursday, 10:00 in Denver.
T = datetime(2024, 6, 20, 16, 0, tzinfo=UTC)


@pytest.fixture
def db_template() -> DbTemplate:
    return SUPERMAX


def _rule(rule_id: str, **fields: object) -> dict[str, object]:
    return {
        "id": rule_id,
        "authority": "sanction",
        "kind": "deny",
        "channel": "phone",
        "person": "salazar",
        "contacts": "any",
        "text": "A sanction.",
        **fields,
    }


def _holds(db: Database, preview: Preview) -> None:
    """Each "after" is what the call path now decides (the change saved)."""
    assert preview.outcomes
    for outcome in preview.outcomes:
        now = decide_contact(
            db, F, outcome.person.id, outcome.contact.id, outcome.after.channel, at=preview.at
        )
        assert now.decision == outcome.after.decision, outcome.contact.id


def test_imposing_a_deny_on_one_contact(db: Database) -> None:
    data = _rule("no-wife", contacts={"ids": ["wife"]})
    preview = preview_impose(db, F, data, at=T)
    assert [p.id for p in preview.people] == ["salazar"]
    assert [o.contact.id for o in preview.outcomes] == ["wife"]
    [wife] = preview.outcomes
    assert wife.before.decision.allowed
    assert not wife.after.decision.allowed
    assert wife.after.decision.rules == ("no-wife",)
    assert wife.changed and preview.changed == (wife,)
    assert preview.overridden == ()
    assert preview.rule.starts_at == T
    # Before: the rules in force decide as the call path does now.
    assert decide_contact(db, F, "salazar", "wife", at=T).decision == wife.before.decision

    impose_rule(db, F, data, at=T, actor="test", reason="Contraband.")
    _holds(db, preview)


def test_a_rule_overriding_a_court_order_names_it(db: Database) -> None:
    data = _rule(
        "sam-daughter-a",
        authority="security_measure",
        contacts={"ids": ["daughter-a"]},
        overrides=["order-17"],
    )
    preview = preview_impose(db, F, data, at=T)
    assert [r.id for r in preview.overridden] == ["order-17"]
    [daughter] = preview.outcomes
    assert daughter.contact.id == "daughter-a"
    # Already refused (sam-children); now by both rules: the person is told of both.
    assert not daughter.before.decision.allowed and not daughter.after.decision.allowed
    assert "sam-daughter-a" in daughter.after.decision.rules
    assert daughter.changed
    impose_rule(db, F, data, at=T, actor="test", reason="Security review.")
    _holds(db, preview)


def test_a_rule_for_everyone_reaches_every_approved_contact_it_selects(db: Database) -> None:
    data = _rule(
        "phone-hours",
        authority="facility_policy",
        kind="limit",
        person="all",
        contacts="any",
        window={"from": "12:00", "to": "13:00"},
    )
    preview = preview_impose(db, F, data, at=T)
    # Privileged contacts are selected only by id or privilege: counsel is not.
    assert {o.contact.id for o in preview.outcomes} == {
        "wife",
        "daughter-a",
        "daughter-b",
        "brother",
    }
    wife = next(o for o in preview.outcomes if o.contact.id == "wife")
    assert wife.before.decision.allowed and not wife.after.decision.allowed
    assert str(wife.after.decision.reason) == "outside_window"
    impose_rule(db, F, data, at=T, actor="test", reason="Staffing.")
    _holds(db, preview)


def test_lifting_a_rule(db: Database) -> None:
    preview = preview_lift(db, F, "sam-children", at=T)
    assert preview.lifting and preview.rule.ends_at == T
    assert [r.id for r in preview.overridden] == ["order-17"]
    by_contact = {o.contact.id: o for o in preview.outcomes}
    assert set(by_contact) == {"daughter-a", "daughter-b"}
    for outcome in by_contact.values():
        assert not outcome.before.decision.allowed
        assert outcome.after.decision.allowed
        assert outcome.after.decision.charged_to == "order-17"
    lift_rule(db, F, "sam-children", reason="Review done.", at=T, actor="test")
    _holds(db, preview)


def test_an_upcoming_visit_booking_it_would_refuse(db: Database) -> None:
    load_visits(db, F, at=T)
    answer = booking.book(
        db, F, "salazar", "video-thu", date(2024, 6, 27), ["daughter-a"],
        booker="staff", actor="test", now=T,
    )  # fmt: skip
    assert answer.allowed, answer
    data = _rule("no-video", channel="video", contacts={"ids": ["daughter-a"]})
    preview = preview_impose(db, F, data, at=T)
    [visit] = preview.bookings
    assert visit.booking_id == answer.booking.id  # type: ignore[union-attr]
    assert visit.contact_id == "daughter-a"
    assert visit.before.decision.allowed and not visit.after.decision.allowed
    assert visit.changed
    assert [o.contact.id for o in preview.outcomes] == ["daughter-a"]
    # A rule on another channel reaches no booking.
    assert preview_impose(db, F, _rule("no-phone"), at=T).bookings == ()


def test_a_preview_writes_nothing_and_refuses_as_imposing_does(db: Database) -> None:
    notices = len(list_notices(db, F, "salazar"))
    preview_impose(db, F, _rule("no-wife", contacts={"ids": ["wife"]}), at=T)
    preview_lift(db, F, "sam-children", at=T)
    with pytest.raises(NotFound):
        get_rule(db, F, "no-wife")
    assert get_rule(db, F, "sam-children").ends_at is None
    assert len(list_notices(db, F, "salazar")) == notices

    cases: list[tuple[dict[str, object], type[Exception], str]] = [
        (_rule("sam-children"), AlreadyExists, "rule.id"),
        (_rule("x", contacts={"ids": ["nobody"]}), InvalidInput, "rule.contacts"),
        (_rule("x", person="nobody"), InvalidInput, "rule.person"),
        (_rule("x", kind="forbid"), InvalidInput, "rule.kind"),
        (_rule("x", until="2024-06-01T00:00"), InvalidInput, "rule.until"),
    ]
    for data, kind, field in cases:
        with pytest.raises(kind) as seen:
            preview_impose(db, F, data, at=T)
        assert seen.value.field == field, data  # type: ignore[attr-defined]
        with pytest.raises(kind) as imposed:
            impose_rule(db, F, data, at=T, actor="test", reason="x")
        assert imposed.value.field == field  # type: ignore[attr-defined]
    with pytest.raises(NotFound):
        preview_lift(db, F, "nothing", at=T)
    lift_rule(db, F, "policy-gap", reason="Gone.", at=T, actor="test")
    with pytest.raises(Conflict):
        preview_lift(db, F, "policy-gap", at=T)
