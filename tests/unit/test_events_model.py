"""The domain event of an audit event, pure: its type, its stable id, its subject
and subject name, and the fields it may carry."""

from __future__ import annotations

import json

import pytest

from kinline.audit.chain import canonical_json, facility_chain, person_chain
from kinline.events.model import cloud_event, event_id, event_type, person_of, subject_name

AT = "2026-12-02T13:00:00+00:00"


def event(tag: str, payload: dict[str, object], chain: str | None = None) -> dict[str, object]:
    made = cloud_event(
        "usp", chain or person_chain("usp", "ana"), 7, tag, canonical_json(payload), AT
    )
    assert made is not None
    return dict(json.loads(made.body))


@pytest.mark.parametrize(
    ("tag", "kind"),
    [
        ("calls:authorize:allowed", "kinline.call.authorized"),
        ("calls:call:must_end", "kinline.call.must_end"),
        ("policy:rule:imposed", "kinline.rule.imposed"),
        ("appeals:appeal:answered", "kinline.appeal.answered"),
        ("visits:booking:no_show", "kinline.visit.no_show"),
        ("courts:activity:recorded", "kinline.courts.activity.recorded"),
        ("people:person:viewed", None),
        ("identity:token:issued", None),
    ],
)
def test_each_tag_has_its_type_or_none(tag: str, kind: str | None) -> None:
    assert event_type(tag) == kind


def test_the_id_is_the_chain_and_seq_and_nothing_else() -> None:
    chain = person_chain("usp", "ana")
    assert event_id(chain, 7) == event_id(chain, 7)
    assert event_id(chain, 7) != event_id(chain, 8)
    assert event_id(chain, 7) != event_id(person_chain("usp", "ben"), 7)
    first = event("calls:call:connected", {"hold_id": "h_1"})
    again = event("calls:call:connected", {"hold_id": "h_1", "session_id": 3})
    assert first["id"] == again["id"] == event_id(chain, 7)


def test_the_subject_is_the_person_of_the_chain() -> None:
    assert person_of(person_chain("usp", "a:b%c")) == "a:b%c"
    assert person_of(facility_chain("usp")) is None
    made = event("policy:rule:lifted", {"rule_id": "r", "reason": "x"}, facility_chain("usp"))
    assert "subject" not in made
    assert event("calls:call:ended", {"hold_id": "h"})["subject"] == "ana"


def test_an_event_carries_no_contact_and_no_free_text() -> None:
    made = event(
        "calls:authorize:allowed",
        {
            "session_id": 4,
            "hold_id": "h_4",
            "contact_id": "lawyer",
            "dialed": "+13035550199",
            "decision": {"contact_id": "lawyer", "monitoring": "none"},
            "idempotency_key": "pbx-1",
        },
    )
    assert made["data"] == {"session_id": 4, "hold_id": "h_4", "allowed": True}
    rule = event(
        "policy:rule:imposed",
        {
            "rule": {
                "id": "sm",
                "authority": "security_measure",
                "kind": "deny",
                "channel": "phone",
                "person": "ana",
                "contacts": {"ids": ["lawyer"]},
                "text": "No calls to counsel.",
            },
            "reason": "Named in the report.",
        },
    )
    assert "lawyer" not in json.dumps(rule) and "Named" not in json.dumps(rule)
    assert rule["data"] == {
        "rule": {
            "id": "sm",
            "authority": "security_measure",
            "kind": "deny",
            "channel": "phone",
            "person": "ana",
        },
        "rule_id": "sm",
    }


def test_the_subject_name_is_safe_for_nats() -> None:
    assert subject_name("usp-red-mesa", "kinline.call.must_end") == (
        "kinline.usp-red-mesa.call.must_end"
    )
    assert subject_name("a.b *>", "kinline.rule.imposed") == "kinline.a_b___.rule.imposed"


def test_a_chain_of_another_facility_is_refused() -> None:
    with pytest.raises(ValueError, match="not a chain of facility"):
        cloud_event("east", person_chain("usp", "ana"), 1, "calls:call:ended", "{}", AT)
