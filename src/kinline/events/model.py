"""Domain events as kinline's machine clients read them: CloudEvents 1.0, pure.

Every audit event becomes one domain event (``cloud_event``), save the few
that are not news to anyone outside (``NOT_PUBLISHED``). Its type comes from
``TYPES``, one table from audit tag to event type; a tag not in it still
becomes an event, of the generic type ``kinline.<source>.<subject>.<action>``.

What an event carries is chosen, never copied: ``data`` holds only the fields
``DATA_FIELDS`` names for its type (and ``GENERIC_FIELDS`` for every type).
Events go to every client of a facility at once, with no access check per
reader, so nothing that a reader would need a right to see travels in them:
no contact (a legal call's event must not say who counsel is, and a contact
id, a number dialed or a decision's explanation would), no free text, no
personal details. A client that needs more reads it through the API, where
access control (``sees_privileged``) decides.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kinline.audit.chain import canonical_json, chain_facility

SPECVERSION = "1.0"
NAMESPACE = uuid.UUID("6f1c2d0e-8a4b-5c3d-9e7f-0a1b2c3d4e5f")
"""Event ids are uuid5(NAMESPACE, "<chain>#<seq>"): an audit event has one
domain event, and replaying it yields the same id (NATS drops the duplicate)."""

TYPES: dict[str, str] = {
    "calls:authorize:allowed": "kinline.call.authorized",
    "calls:authorize:refused": "kinline.call.refused",
    "calls:call:connected": "kinline.call.connected",
    "calls:call:ended": "kinline.call.ended",
    "calls:call:released": "kinline.call.released",
    "calls:call:expired": "kinline.call.expired",
    "calls:call:must_end": "kinline.call.must_end",
    "calls:session:completed": "kinline.session.completed",
    "calls:session:denied": "kinline.session.denied",
    "calls:session:held": "kinline.session.held",
    "calls:session:released": "kinline.session.released",
    "policy:rule:imposed": "kinline.rule.imposed",
    "policy:rule:lifted": "kinline.rule.lifted",
    "people:person:admitted": "kinline.person.admitted",
    "people:person:changed": "kinline.person.changed",
    "people:person:released": "kinline.person.released",
    "people:person:transferred": "kinline.person.transferred",
    "people:contact:added": "kinline.contact.added",
    "people:contact:changed": "kinline.contact.changed",
    "notices:notice:written": "kinline.notice.written",
    "notices:notice:acknowledged": "kinline.notice.acknowledged",
    # A tag ending in ":" maps every action of it: kinline.appeal.answered, ...
    "people:approval:": "kinline.approval.",
    "appeals:appeal:": "kinline.appeal.",
    "visits:booking:": "kinline.visit.",
    "events:webhook:": "kinline.webhook.",
    "courts:order:": "kinline.court_order.",  # recorded, document, overridden
    "courts:compliance_settings:configured": "kinline.compliance_settings.configured",
}
"""Audit tag -> CloudEvents type, for the events clients are known to act on."""

NOT_PUBLISHED: dict[str, str] = {
    "people:person:viewed": "a read, not a change",
    "people:contact:listed": "a read, not a change",
    "identity:": "sign-ins, tokens, passwords and second factors: the security "
    "log of callers, not news about the people kinline decides for",
}
"""Tags (or ``source:`` prefixes) that make no domain event, and why."""

GENERIC_FIELDS = frozenset(
    {
        "session_id",
        "hold_id",
        "channel",
        "status",
        "minutes",
        "person_id",
        "rule_id",
        "notice_id",
        "appeal_id",
        "booking_id",
        "request_id",
        "expires_at",
        "starts_at",
        "ends_at",
        "lifted_at",
        "connected_at",
        "ended_at",
        "settled_by",
    }
)
"""Identifiers, states and times: what any event may carry."""

DATA_FIELDS: dict[str, frozenset[str]] = {
    "kinline.call.must_end": frozenset({"rule_id", "authority"}),
    "kinline.person.transferred": frozenset({"to_facility_id", "from_facility_id"}),
    "kinline.appeal.answered": frozenset({"outcome", "level"}),
    "kinline.appeal.filed": frozenset({"level"}),
    "kinline.webhook.created": frozenset({"webhook_id"}),
    "kinline.webhook.deleted": frozenset({"webhook_id"}),
    "kinline.webhook.suspended": frozenset({"webhook_id", "attempts"}),
    "kinline.webhook.resumed": frozenset({"webhook_id"}),
}
"""Fields some types carry beyond ``GENERIC_FIELDS``."""

_RULE_FIELDS = ("id", "authority", "kind", "channel", "person")
_ESCAPED = re.compile("%25|%3A")


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """One event for the outbox: its id, where it goes and its CloudEvent body."""

    facility_id: str
    id: str
    chain: str
    seq: int
    type: str
    body: str


def event_type(tag: str) -> str | None:
    """The CloudEvents type of an audit tag; None if it makes no event."""
    if tag in NOT_PUBLISHED or f"{tag.partition(':')[0]}:" in NOT_PUBLISHED:
        return None
    if tag in TYPES:
        return TYPES[tag]
    source_subject, _, action = tag.rpartition(":")
    if f"{source_subject}:" in TYPES:
        return TYPES[f"{source_subject}:"] + action
    return "kinline." + tag.replace(":", ".")


def event_id(chain: str, seq: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{chain}#{seq}"))


def person_of(chain: str) -> str | None:
    """The person a ``person:<facility>:<person>`` chain is about."""
    kind, _, rest = chain.partition(":")
    parts = rest.split(":")
    if kind != "person" or len(parts) != 2:
        return None
    return _ESCAPED.sub(lambda found: {"%25": "%", "%3A": ":"}[found.group()], parts[1])


def event_data(kind: str, tag: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``payload`` an event of ``kind`` may carry (module docstring)."""
    allowed = GENERIC_FIELDS | DATA_FIELDS.get(kind, frozenset())
    data = {key: value for key, value in payload.items() if key in allowed}
    rule = payload.get("rule")
    if isinstance(rule, Mapping):
        # A rule's contacts selector may name counsel: only what the rule is.
        data["rule"] = {key: rule[key] for key in _RULE_FIELDS if key in rule}
        if "id" in rule:
            data.setdefault("rule_id", rule["id"])
    if tag.startswith("calls:authorize:"):
        data["allowed"] = tag.endswith(":allowed")
    return data


def cloud_event(
    facility_id: str,
    chain: str,
    seq: int,
    tag: str,
    payload_json: str,
    occurred_at_iso: str,
) -> DomainEvent | None:
    """The domain event of one audit event, or None if its tag makes none.

    ``payload_json`` is the audit payload as written (JSON types, instants in
    UTC); the event's ``time`` is the audit event's.
    """
    kind = event_type(tag)
    if kind is None:
        return None
    if chain_facility(chain) != facility_id:
        raise ValueError(f"chain {chain!r} is not a chain of facility {facility_id!r}")
    payload = json.loads(payload_json)
    data = event_data(kind, tag, payload if isinstance(payload, dict) else {})
    subject = person_of(chain) or (data.get("person_id") if "person_id" in data else None)
    identifier = event_id(chain, seq)
    body: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": identifier,
        "source": f"kinline/{facility_id}",
        "type": kind,
        "time": occurred_at_iso,
        "datacontenttype": "application/json",
        "partitionkey": facility_id,
        "sequence": str(seq),
        "data": data,
    }
    if isinstance(subject, str):
        body["subject"] = subject
    return DomainEvent(facility_id, identifier, chain, seq, kind, canonical_json(body))


def subject_name(facility_id: str, kind: str) -> str:
    """The NATS subject of an event: ``kinline.<facility>.<type without kinline.>``.

    A facility id may hold characters NATS gives meaning to (``.``, ``*``,
    ``>``, spaces): they become ``_``.
    """
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", facility_id)
    return f"kinline.{safe}.{kind.removeprefix('kinline.')}"
