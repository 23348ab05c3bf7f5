"""Services on a real database: one transaction each, no silent change, no partial write."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from _databases import DbTemplate
from sqlalchemy import func, select

from kinline.calls.service import attempt_session, decide_contact
from kinline.changes.service import approve_contact, impose_rule, lift_rule, revoke_contact
from kinline.db.engine import Database
from kinline.db.tables import ApprovalRow, AuditEventRow, NoticeDeliveryRow, NoticeRow, RuleRow
from kinline.errors import Conflict, InvalidInput
from kinline.notices.service import list_notices
from kinline.people.model import Facility, Person
from kinline.people.repository import get_contact
from kinline.people.service import add_contact, admit_person, list_contacts, register_facility
from kinline.policy.repository import rules_for
from kinline.policy.service import rules_in_force
from kinline.rules.model import Channel, Contact, Rule

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
T1 = datetime(2024, 3, 5, 15, tzinfo=UTC)
ACTOR = "test"


def open_westbrook(db: Database) -> None:
    """Westbrook: two people, a contact each, and five calls a week for everyone."""
    register_facility(
        db, Facility("wcf", "Westbrook", "America/New_York", appeal_days=15), at=T0, actor=ACTOR
    )
    admit_person(db, Person("wcf", "okafor", "D. Okafor", "en"), at=T0, actor=ACTOR)
    admit_person(db, Person("wcf", "reyes", "L. Reyes", "es"), at=T0, actor=ACTOR)
    add_contact(
        db,
        "wcf",
        Contact("mother", "okafor", "parent", approved=frozenset({Channel.PHONE})),
        name="Mother",
        phones=["(404) 555-0134"],
        at=T0,
        actor=ACTOR,
    )
    add_contact(
        db,
        "wcf",
        Contact("partner", "reyes", "partner", approved=frozenset({Channel.PHONE})),
        name="Partner",
        phones=["+1 718 555 0123"],
        at=T0,
        actor=ACTOR,
    )
    impose_rule(
        db,
        "wcf",
        {
            "id": "phones",
            "authority": "facility_policy",
            "kind": "grant",
            "channel": "phone",
            "person": "all",
            "contacts": "any",
            "quota": {"count": 5, "per": "week"},
        },
        at=T0,
        actor=ACTOR,
        in_force_at_start=True,
    )


WESTBROOK = DbTemplate("services_westbrook", open_westbrook)


@pytest.fixture
def db_template() -> DbTemplate:
    return WESTBROOK


@pytest.fixture
def facility(db: Database) -> Database:
    """Westbrook opened (``db_template``)."""
    return db


def counts(db: Database) -> tuple[int, int, int]:
    with db.transaction() as session:
        return (
            session.scalar(select(func.count()).select_from(RuleRow)) or 0,
            session.scalar(select(func.count()).select_from(NoticeRow)) or 0,
            session.scalar(select(func.count()).select_from(AuditEventRow)) or 0,
        )


SANCTION = {
    "id": "sanction-1",
    "authority": "sanction",
    "kind": "deny",
    "channel": "phone",
    "person": "okafor",
    "contacts": "any",
    "text": "Loss of telephone privileges.",
}


def test_phone_numbers_are_stored_in_e164(facility: Database) -> None:
    views = list_contacts(facility, "wcf", "okafor", at=T1)
    assert [view.phones for view in views] == [["+14045550134"]]


def test_an_invalid_phone_number_names_the_field_and_writes_nothing(facility: Database) -> None:
    before = counts(facility)
    with pytest.raises(InvalidInput) as raised:
        add_contact(
            facility,
            "wcf",
            Contact("brother", "okafor", "sibling"),
            name="Brother",
            phones=["+1 404 555 0101", "12"],
            at=T1,
            actor=ACTOR,
        )
    assert raised.value.field == "contact.phones[1]"
    assert counts(facility) == before
    assert [view.contact.id for view in list_contacts(facility, "wcf", "okafor", at=T1)] == [
        "mother"
    ]


def test_imposing_writes_the_rule_its_notice_and_audit_together(facility: Database) -> None:
    rules, notices, events = counts(facility)
    impose_rule(facility, "wcf", SANCTION, at=T1, actor=ACTOR)
    assert counts(facility) == (rules + 1, notices + 1, events + 2)
    [notice] = list_notices(facility, "wcf", "okafor")
    assert notice.subject == "sanction-1"
    assert notice.rule_text == "Loss of telephone privileges."
    assert notice.appeal_deadline.isoformat() == "2024-03-20"


@pytest.mark.parametrize(
    "target",
    ["kinline.notices.repository.add_notice", "kinline.notices.service.record_event"],
)
def test_a_failure_while_writing_the_notice_leaves_no_change(
    facility: Database, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    """Invariant 1: the change and its notice commit together or not at all."""
    before = counts(facility)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(target, broken)
    with pytest.raises(RuntimeError):
        impose_rule(facility, "wcf", SANCTION, at=T1, actor=ACTOR)
    with pytest.raises(RuntimeError):
        revoke_contact(facility, "wcf", "mother", "phone", reason="x", at=T1, actor=ACTOR)
    with pytest.raises(RuntimeError):
        approve_contact(facility, "wcf", "mother", "video", at=T1, actor=ACTOR)
    monkeypatch.undo()
    assert counts(facility) == before
    assert decide_contact(facility, "wcf", "okafor", "mother", at=T1).decision.allowed


def full_counts(db: Database) -> tuple[object, ...]:
    """Everything a change to what a person may do writes, row by row."""
    with db.transaction() as session:
        return (
            *counts(db),
            session.scalar(select(func.count()).select_from(NoticeDeliveryRow)),
            session.scalar(select(RuleRow.lifted_at).where(RuleRow.id == "sanction-1")),
            sorted(
                (row.contact_id, row.channel, row.revoked_at)
                for row in session.scalars(select(ApprovalRow))
            ),
        )


CHANGES = {
    "impose": lambda db: impose_rule(
        db, "wcf", SANCTION | {"id": "sanction-2"}, at=T1, actor=ACTOR
    ),
    "lift": lambda db: lift_rule(db, "wcf", "sanction-1", reason="Served.", at=T1, actor=ACTOR),
    "approve": lambda db: approve_contact(db, "wcf", "mother", "video", at=T1, actor=ACTOR),
    "revoke": lambda db: revoke_contact(
        db, "wcf", "mother", "phone", reason="x", at=T1, actor=ACTOR
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize(
    "target",
    [
        # After the notice row, before its audit event.
        "kinline.notices.service.record_event",
        # After the notice and its event, before its deliveries are queued.
        "kinline.notices.service.enqueue_deliveries",
    ],
)
def test_every_change_commits_with_its_notice_or_not_at_all(
    facility: Database, monkeypatch: pytest.MonkeyPatch, target: str, change: str
) -> None:
    """Invariant 1, for each service that changes what a person may do: a failure
    between the change and its notice's last write leaves nothing behind."""
    impose_rule(facility, "wcf", SANCTION, at=T0, actor=ACTOR)
    before = full_counts(facility)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(target, broken)
    with pytest.raises(RuntimeError, match="the disk is full"):
        CHANGES[change](facility)
    monkeypatch.undo()
    assert full_counts(facility) == before
    # The same change then goes through whole: the failure was the only obstacle.
    CHANGES[change](facility)
    after = full_counts(facility)
    assert after != before
    assert after[1] == before[1] + 1  # one notice


def test_a_rule_for_everyone_gives_every_person_one_notice(facility: Database) -> None:
    impose_rule(
        facility,
        "wcf",
        {
            "id": "hours",
            "authority": "facility_policy",
            "kind": "limit",
            "channel": "phone",
            "person": "all",
            "contacts": "any",
            "window": {"from": "07:00", "to": "22:00"},
            "text": "Telephone hours.",
        },
        at=T1,
        actor=ACTOR,
    )
    okafor = list_notices(facility, "wcf", "okafor")
    reyes = list_notices(facility, "wcf", "reyes")
    assert [n.subject for n in okafor] == ["hours"]
    assert [n.subject for n in reyes] == ["hours"]
    assert reyes[0].language == "es"
    assert "Telephone hours." in reyes[0].body
    assert "Puede apelar" in reyes[0].body


def test_lifting_ends_the_rule_without_editing_it(facility: Database) -> None:
    impose_rule(facility, "wcf", SANCTION, at=T1, actor=ACTOR)
    assert not decide_contact(facility, "wcf", "okafor", "mother", at=T1).decision.allowed
    later = datetime(2024, 3, 6, 15, tzinfo=UTC)
    lift_rule(facility, "wcf", "sanction-1", reason="Served.", at=later, actor=ACTOR)
    assert decide_contact(facility, "wcf", "okafor", "mother", at=later).decision.allowed
    # History is exact: before the lifting the rule was in force.
    assert [r.id for r in rules_in_force(facility, "wcf", at=T1, person_id="okafor")] == [
        "phones",
        "sanction-1",
    ]
    assert not decide_contact(facility, "wcf", "okafor", "mother", at=T1).decision.allowed
    with pytest.raises(Conflict):
        lift_rule(facility, "wcf", "sanction-1", reason="Again.", at=later, actor=ACTOR)
    assert [n.change for n in list_notices(facility, "wcf", "okafor")] == ["imposed", "lifted"]


def test_a_reason_is_required_to_lift_or_revoke(facility: Database) -> None:
    with pytest.raises(InvalidInput) as lifted:
        lift_rule(facility, "wcf", "phones", reason=" ", at=T1, actor=ACTOR)
    assert lifted.value.field == "reason"
    with pytest.raises(InvalidInput) as revoked:
        revoke_contact(facility, "wcf", "mother", "phone", reason="", at=T1, actor=ACTOR)
    assert revoked.value.field == "reason"


def test_approving_twice_changes_nothing_the_second_time(facility: Database) -> None:
    first = approve_contact(facility, "wcf", "mother", "video", at=T1, actor=ACTOR)
    again = approve_contact(facility, "wcf", "mother", "video", at=T1, actor=ACTOR)
    assert first is not None
    assert again is None
    assert len(list_notices(facility, "wcf", "okafor")) == 1


def test_a_bad_rule_names_its_field_and_writes_nothing(facility: Database) -> None:
    before = counts(facility)
    bad = dict(SANCTION, window={"from": "22:00", "to": "06:00"})
    with pytest.raises(InvalidInput) as raised:
        impose_rule(facility, "wcf", bad, at=T1, actor=ACTOR)
    assert raised.value.field == "rule.window"
    with pytest.raises(InvalidInput) as unknown:
        impose_rule(facility, "wcf", dict(SANCTION, person="nobody"), at=T1, actor=ACTOR)
    assert unknown.value.field == "rule.person"
    assert counts(facility) == before


def test_sessions_count_against_the_weekly_quota_per_person(facility: Database) -> None:
    for day in range(4, 9):
        at = datetime(2024, 3, day, 15, tzinfo=UTC)
        assert attempt_session(
            facility, "wcf", "okafor", "mother", at=at, minutes=10, actor=ACTOR
        ).decision.decision.allowed
    refused = attempt_session(
        facility, "wcf", "okafor", "mother", at=T1.replace(day=9), minutes=5, actor=ACTOR
    )
    assert refused.status == "denied"
    assert refused.decision.decision.reason == "quota_exhausted"
    other = decide_contact(facility, "wcf", "reyes", "partner", at=T1.replace(day=9))
    assert other.decision.allowed


def test_statements_built_once_see_what_the_transaction_has_not_flushed(
    facility: Database,
) -> None:
    """The call path's prebuilt statements run on the session's connection; the
    session's pending writes must reach the database first, as an ORM query's
    autoflush would send them."""
    with facility.transaction() as session:
        session.add(
            ApprovalRow(facility_id="wcf", contact_id="mother", channel="video", approved_at=T0)
        )
        contact = get_contact(session, "wcf", "mother", T1)
    assert contact is not None
    assert contact.approved == frozenset({Channel.PHONE, Channel.VIDEO})


def test_a_lifted_rule_stops_deciding_at_once_though_parsed_rules_are_kept(
    facility: Database,
) -> None:
    before = decide_contact(facility, "wcf", "okafor", "mother", at=T1)
    assert before.decision.allowed
    assert [rule.ends_at for rule in in_force_at(facility, T0)] == [None]
    lift_rule(facility, "wcf", "phones", reason="closed for review", at=T1, actor=ACTOR)
    after = decide_contact(facility, "wcf", "okafor", "mother", at=T1)
    assert not after.decision.allowed
    earlier = decide_contact(facility, "wcf", "okafor", "mother", at=T0)
    assert earlier.decision.allowed  # the rule's past is unchanged
    assert [rule.ends_at for rule in in_force_at(facility, T0)] == [T1]


def in_force_at(db: Database, at: datetime) -> list[Rule]:
    """The rules a decision for okafor's phone calls reads at ``at``."""
    with db.transaction() as session:
        return rules_for(session, "wcf", person_id="okafor", channel=Channel.PHONE, active_at=at)
