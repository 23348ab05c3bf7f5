"""Court orders as records, and the rules that conflict with them.

An order is what a judge signed: the court, the case number, the judge, the
date, its words and its PDF, the counsel of record and where the court takes
notices. The rules it creates (court-order grants, and denies such as a
no-contact order) are linked to it, so a judge reading the order months later
sees what it made the facility do, and what stood against it: every rule in
force it outranks (the order prevails) and every rule that overrides one of its
grants (the facility prevails over the order), with who imposed it, when, why
and on what authority.

Creating an order imposes its rules, with their notices, so it is run by
``kinline.changes.court_orders`` in one transaction; this module writes and
reads the order's own records inside the transaction it is given.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from kinline.audit.service import facility_chain, person_chain, record_event
from kinline.bounds import REASON_CHARS
from kinline.courts import repository
from kinline.db.engine import Database
from kinline.db.tables import CourtOrderDocumentRow, CourtOrderRow, RuleCitationRow, RuleRow
from kinline.errors import AlreadyExists, BodyTooLarge, InvalidInput, NotFound
from kinline.people import repository as people_repository
from kinline.people.service import require_facility, require_person
from kinline.policy import repository as policy_repository
from kinline.rules.model import Authority, Contact, Kind, Rule

MAX_DOCUMENT_BYTES = 1024 * 1024
"""An order's PDF is at most 1 MiB: the API's body cap, held for the command too."""
PDF_TYPE = "application/pdf"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_FIELDS = frozenset(
    {
        "id",
        "court",
        "case_number",
        "judge",
        "signed_on",
        "text",
        "person",
        "counsel",
        "court_address",
        "court_email",
        "rules",
        "existing_rules",
        "reason",
    }
)


@dataclass(frozen=True, slots=True)
class Counsel:
    """Counsel of record: told when a rule overrides the order."""

    name: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class OrderDraft:
    """An order as given (a YAML file, a request body), checked but not yet written.

    ``rules``: the rules it creates, as plain data (SPEC 3), court-order
    authority, its case number; ``existing_rules``: court-order rules already
    imposed that this record is the order of (loading an order's paper after
    its rule). ``reason``: what the notices of its rules say (default: the
    order itself, by case, judge and date).
    """

    id: str
    court: str
    case_number: str
    judge: str
    signed_on: date
    text: str
    person: str | None = None
    counsel: tuple[Counsel, ...] = ()
    court_address: str | None = None
    court_email: str | None = None
    rules: tuple[Mapping[str, Any], ...] = ()
    existing_rules: tuple[str, ...] = ()
    reason: str | None = None

    @property
    def citation(self) -> str:
        """The authority its rules rest on: the order itself (what another order's
        court is told when one of them overrides that order)."""
        return (
            f"Court order {self.id}, {self.court}, case {self.case_number}, "
            f"signed {self.signed_on.isoformat()} by {self.judge}"
        )

    @property
    def notice_reason(self) -> str:
        return self.reason or (
            f"Ordered by {self.judge}, {self.court}, case {self.case_number}, "
            f"signed {self.signed_on.isoformat()}."
        )


@dataclass(frozen=True, slots=True)
class Document:
    """An order's PDF as uploaded (its bytes fetched apart)."""

    version: int
    sha256: str
    size_bytes: int
    content_type: str
    uploaded_at: datetime
    uploaded_by: str


@dataclass(frozen=True, slots=True)
class CourtOrder:
    id: str
    facility_id: str
    court: str
    case_number: str
    judge: str
    signed_on: date
    text: str
    person: str | None
    counsel: tuple[Counsel, ...]
    court_address: str | None
    court_email: str | None
    rules: tuple[str, ...]
    document: Document | None
    created_at: datetime
    created_by: str

    @property
    def recipients(self) -> list[str]:
        """Who is emailed when a rule overrides the order: the court, then counsel."""
        found: list[str] = []
        for address in [self.court_email, *(c.email for c in self.counsel)]:
            if address and address not in found:
                found.append(address)
        return found


@dataclass(frozen=True, slots=True)
class OrderConflict:
    """A rule in force that the order outranks (``outranked``: the order
    prevails) or that overrides one of the order's grants (``overrides``: it
    prevails over the order), with who imposed it, when, why and on what
    authority (the last only when it was required: an override)."""

    relation: str  # outranked, overrides
    order_rule: str
    rule: str
    authority: str
    kind: str
    channel: str
    person: str | None
    text: str
    starts_at: datetime | None
    ends_at: datetime | None
    imposed_by: str
    imposed_at: datetime | None
    reason: str | None
    authority_cited: str | None


# --- reading an order as given ---------------------------------------------


def parse_order(data: Mapping[str, Any]) -> OrderDraft:
    """An order from plain data; InvalidInput names the field that is wrong."""
    if not isinstance(data, Mapping):
        raise InvalidInput("must be a mapping of the order's fields", field="order")
    unknown = sorted(set(map(str, data)) - _FIELDS)
    if unknown:
        raise InvalidInput(
            f"unknown field; expected one of {', '.join(sorted(_FIELDS))}", field=unknown[0]
        )
    _no_nul(data, "")
    order_id = _text(data, "id", 64)
    if not _ID.match(order_id):
        raise InvalidInput("letters, digits, '.', '_', ':' and '-' only", field="id")
    case_number = _text(data, "case_number", 64)
    signed = data.get("signed_on")
    if isinstance(signed, datetime) or not isinstance(signed, date | str):
        raise InvalidInput("must be a date, YYYY-MM-DD", field="signed_on")
    if isinstance(signed, str):
        try:
            signed = date.fromisoformat(signed)
        except ValueError:
            raise InvalidInput("must be a date, YYYY-MM-DD", field="signed_on") from None
    person = _optional(data, "person", 64)
    rules = data.get("rules") or []
    if not isinstance(rules, list) or not all(isinstance(r, Mapping) for r in rules):
        raise InvalidInput("must be a list of rules (SPEC 3)", field="rules")
    existing = data.get("existing_rules") or []
    if not isinstance(existing, list) or not all(isinstance(r, str) and r for r in existing):
        raise InvalidInput("must be a list of rule ids", field="existing_rules")
    if not rules and not existing:
        raise InvalidInput("an order creates at least one rule", field="rules")
    checked = tuple(
        _order_rule(rule, index, case_number, person) for index, rule in enumerate(rules)
    )
    court_email = _optional(data, "court_email", 254)
    if court_email is not None and not _EMAIL.match(court_email):
        raise InvalidInput("must be an email address", field="court_email")
    return OrderDraft(
        id=order_id,
        court=_text(data, "court", 200),
        case_number=case_number,
        judge=_text(data, "judge", 200),
        signed_on=signed,
        text=_text(data, "text", 20_000),
        person=person,
        counsel=_counsel(data.get("counsel")),
        court_address=_optional(data, "court_address", 2_000),
        court_email=court_email,
        rules=checked,
        existing_rules=tuple(existing),
        reason=_optional(data, "reason", REASON_CHARS),
    )


def _no_nul(value: object, where: str) -> None:
    """No NUL character anywhere (PostgreSQL's text cannot hold one): the field
    that has one is named."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput("must not contain NUL characters", field=where or "order")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            name = f"{where}.{key}" if where else str(key)
            _no_nul(str(key), name)
            _no_nul(item, name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _no_nul(item, f"{where}[{index}]")


def _text(data: Mapping[str, Any], name: str, limit: int) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("is required (a non-empty text)", field=name)
    if len(value) > limit:
        raise InvalidInput(f"must be at most {limit} characters", field=name)
    if "\x00" in value:
        raise InvalidInput("must not contain NUL characters", field=name)
    return value.strip()


def _optional(data: Mapping[str, Any], name: str, limit: int) -> str | None:
    if data.get(name) is None:
        return None
    return _text(data, name, limit)


def _counsel(value: object) -> tuple[Counsel, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidInput("must be a list of {name, email}", field="counsel")
    found: list[Counsel] = []
    for index, item in enumerate(value):
        where = f"counsel[{index}]"
        if not isinstance(item, Mapping):
            raise InvalidInput("must be a mapping with name and email", field=where)
        extra = sorted(set(map(str, item)) - {"name", "email"})
        if extra:
            raise InvalidInput("unknown field; expected name, email", field=f"{where}.{extra[0]}")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise InvalidInput("is required (at most 200 characters)", field=f"{where}.name")
        email = item.get("email")
        if email is not None and (not isinstance(email, str) or not _EMAIL.match(email)):
            raise InvalidInput("must be an email address", field=f"{where}.email")
        found.append(Counsel(name.strip(), email))
    return tuple(found)


def _order_rule(
    rule: Mapping[str, Any], index: int, case_number: str, person: str | None
) -> Mapping[str, Any]:
    """A rule of the order: court-order authority, the order's case number, and
    the order's person unless it names one."""
    where = f"rules[{index}]"
    authority = rule.get("authority", str(Authority.COURT_ORDER))
    if authority != Authority.COURT_ORDER:
        raise InvalidInput(
            "an order's rules have the authority court_order", field=f"{where}.authority"
        )
    given = rule.get("case_number")
    if given is not None and given != case_number:
        raise InvalidInput(
            f"must be the order's case number {case_number!r}", field=f"{where}.case_number"
        )
    shaped = {**rule, "authority": str(Authority.COURT_ORDER), "case_number": case_number}
    if "person" not in shaped and person is not None:
        shaped["person"] = person
    return shaped


# --- writing, inside the caller's transaction ---------------------------------


def add_order(
    session: Session, facility_id: str, draft: OrderDraft, *, at: datetime, actor: str
) -> None:
    """Write the order's record and its audit event (its rules are linked after)."""
    require_facility(session, facility_id, lock=True)
    if draft.person is not None:
        try:
            require_person(session, facility_id, draft.person)
        except NotFound:
            raise InvalidInput(f"no person {draft.person!r}", field="person") from None
    if repository.get_order(session, facility_id, draft.id) is not None:
        raise AlreadyExists(f"an order {draft.id!r} is already recorded", field="id")
    repository.add_order(
        session,
        CourtOrderRow(
            facility_id=facility_id,
            id=draft.id,
            court=draft.court,
            case_number=draft.case_number,
            judge=draft.judge,
            signed_on=draft.signed_on,
            text=draft.text,
            person_id=draft.person,
            counsel=[{"name": c.name, "email": c.email or ""} for c in draft.counsel],
            court_address=draft.court_address,
            court_email=draft.court_email,
            created_at=at,
            created_by=actor,
        ),
    )
    record_event(
        session,
        facility_id=facility_id,
        chain=_chain(facility_id, draft.person),
        actor=actor,
        tag="courts:order:recorded",
        payload={
            "order_id": draft.id,
            "court": draft.court,
            "case_number": draft.case_number,
            "judge": draft.judge,
            "signed_on": draft.signed_on.isoformat(),
            "rules": [str(r.get("id")) for r in draft.rules],
            "existing_rules": list(draft.existing_rules),
        },
        at=at,
    )


def link_rule(
    session: Session, facility_id: str, draft: OrderDraft, rule_id: str, *, field: str
) -> None:
    """Link a court-order rule of the order's case (or of none named) to the order;
    a rule belongs to one order."""
    row = policy_repository.get_rule_row(session, facility_id, rule_id)
    if row is None:
        raise InvalidInput(f"no rule {rule_id!r}", field=field)
    rule = policy_repository.rule_from_row(row)
    if rule.authority is not Authority.COURT_ORDER:
        raise InvalidInput(f"rule {rule_id!r} is not a court order", field=field)
    if rule.case_number not in (None, draft.case_number):
        raise InvalidInput(
            f"rule {rule_id!r} is of case {rule.case_number!r}, not {draft.case_number!r}",
            field=field,
        )
    owner = repository.order_of_rule(session, facility_id, rule_id)
    if owner is not None:
        raise AlreadyExists(f"rule {rule_id!r} is already order {owner!r}'s", field=field)
    repository.link_rule(session, facility_id, draft.id, rule_id)


def store_document(
    session: Session,
    facility_id: str,
    order_id: str,
    content: bytes,
    content_type: str,
    *,
    at: datetime,
    actor: str,
) -> Document:
    """Keep a new version of the order's signed PDF (earlier ones stay)."""
    check_document(content, content_type)
    # Two uploads at once: the facility's lock gives them versions one after the other.
    require_facility(session, facility_id, lock=True)
    row = repository.get_order(session, facility_id, order_id)
    if row is None:
        raise NotFound(f"no order {order_id!r} in {facility_id!r}", field="order_id")
    latest = repository.latest_document(session, facility_id, order_id)
    digest = hashlib.sha256(content).hexdigest()
    document = CourtOrderDocumentRow(
        facility_id=facility_id,
        order_id=order_id,
        version=1 if latest is None else latest.version + 1,
        content=content,
        sha256=digest,
        size_bytes=len(content),
        content_type=PDF_TYPE,
        uploaded_at=at,
        uploaded_by=actor,
    )
    repository.add_document(session, document)
    record_event(
        session,
        facility_id=facility_id,
        chain=_chain(facility_id, row.person_id),
        actor=actor,
        tag="courts:order:document",
        payload={
            "order_id": order_id,
            "version": document.version,
            "sha256": digest,
            "size_bytes": len(content),
            "replaces": None if latest is None else latest.sha256,
        },
        at=at,
    )
    return _document(document)


def check_document(content: bytes, content_type: str) -> None:
    """A PDF (by its type and its first bytes), at most ``MAX_DOCUMENT_BYTES``."""
    if content_type.split(";")[0].strip().lower() != PDF_TYPE:
        raise InvalidInput(f"must be {PDF_TYPE}, not {content_type!r}", field="content-type")
    if len(content) > MAX_DOCUMENT_BYTES:
        raise BodyTooLarge(f"must be at most {MAX_DOCUMENT_BYTES} bytes", field="document")
    if not content.startswith(b"%PDF-"):
        raise InvalidInput("is not a PDF (it does not start with %PDF-)", field="document")


def cite(
    session: Session,
    facility_id: str,
    rule_id: str,
    authority_cited: str,
    reason: str | None,
    *,
    at: datetime,
    actor: str,
) -> None:
    """Keep the authority a rule's imposer relied on."""
    repository.add_citation(
        session,
        RuleCitationRow(
            facility_id=facility_id,
            rule_id=rule_id,
            authority_cited=authority_cited,
            reason=reason,
            cited_at=at,
            cited_by=actor,
        ),
    )


# --- reading ---------------------------------------------------------------


def get_order(db: Database, facility_id: str, order_id: str) -> CourtOrder:
    with db.transaction() as session:
        return order_in(session, facility_id, order_id)


def order_in(session: Session, facility_id: str, order_id: str) -> CourtOrder:
    row = repository.get_order(session, facility_id, order_id)
    if row is None:
        raise NotFound(f"no order {order_id!r} in {facility_id!r}", field="order_id")
    return _order(session, row)


def list_orders(db: Database, facility_id: str) -> list[CourtOrder]:
    with db.transaction() as session:
        require_facility(session, facility_id)
        return [_order(session, row) for row in repository.list_orders(session, facility_id)]


def order_document(db: Database, facility_id: str, order_id: str) -> tuple[Document, bytes]:
    """The order's newest PDF and its bytes."""
    with db.transaction() as session:
        if repository.get_order(session, facility_id, order_id) is None:
            raise NotFound(f"no order {order_id!r} in {facility_id!r}", field="order_id")
        row = repository.latest_document(session, facility_id, order_id, with_content=True)
        if row is None:
            raise NotFound(f"order {order_id!r} has no document yet", field="document")
        return _document(row), bytes(row.content)


def orders_of_rules(
    session: Session, facility_id: str, rule_ids: Iterable[str]
) -> dict[str, CourtOrder]:
    """The order record of each rule that has one."""
    found: dict[str, CourtOrder] = {}
    for rule_id in rule_ids:
        order_id = repository.order_of_rule(session, facility_id, rule_id)
        if order_id is not None:
            found[rule_id] = order_in(session, facility_id, order_id)
    return found


def _order(session: Session, row: CourtOrderRow) -> CourtOrder:
    rules = repository.order_rule_rows(session, row.facility_id, row.id)
    latest = repository.latest_document(session, row.facility_id, row.id)
    return CourtOrder(
        id=row.id,
        facility_id=row.facility_id,
        court=row.court,
        case_number=row.case_number,
        judge=row.judge,
        signed_on=row.signed_on,
        text=row.text,
        person=row.person_id,
        counsel=tuple(Counsel(c["name"], c.get("email") or None) for c in row.counsel),
        court_address=row.court_address,
        court_email=row.court_email,
        rules=tuple(r.id for r in rules),
        document=None if latest is None else _document(latest),
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _document(row: CourtOrderDocumentRow) -> Document:
    return Document(
        row.version, row.sha256, row.size_bytes, row.content_type, row.uploaded_at, row.uploaded_by
    )


def _chain(facility_id: str, person_id: str | None) -> str:
    return (
        facility_chain(facility_id) if person_id is None else person_chain(facility_id, person_id)
    )


# --- conflicts ---------------------------------------------------------------


def overrides_grant(rule: Rule, grant: Rule, contacts: Sequence[Contact]) -> bool:
    """Whether a deny or limit constrains a court-order grant: it names the grant
    in ``overrides`` or does not rank below it, and reaches one of its contacts."""
    if rule.id == grant.id or rule.channel != grant.channel:
        return False
    if rule.kind not in (Kind.DENY, Kind.LIMIT):
        return False
    if grant.id not in rule.overrides and rule.rank < grant.rank:
        return False
    return _overlap(rule, grant, contacts)


def outranked_by(rule: Rule, order_rule: Rule, contacts: Sequence[Contact]) -> bool:
    """Whether the order's rule prevails over ``rule``: a lower deny or limit not
    naming the order's grant, or a lower grant the order's deny or limit refuses."""
    if rule.id == order_rule.id or rule.channel != order_rule.channel:
        return False
    if rule.rank >= order_rule.rank:
        return False
    if order_rule.kind is Kind.GRANT:
        if rule.kind not in (Kind.DENY, Kind.LIMIT) or order_rule.id in rule.overrides:
            return False
    elif order_rule.kind in (Kind.DENY, Kind.LIMIT):
        if rule.kind is not Kind.GRANT:
            return False
    else:
        return False
    return _overlap(rule, order_rule, contacts)


def _overlap(one: Rule, other: Rule, contacts: Sequence[Contact]) -> bool:
    """Whether the two rules reach one contact of one person they both concern."""
    for contact in contacts:
        if not (one.concerns(contact.person) and other.concerns(contact.person)):
            continue
        if one.contacts.matches(contact) and other.contacts.matches(contact):
            return True
    return False


def contacts_for(session: Session, facility_id: str, rule: Rule) -> list[Contact]:
    """The contacts a rule may reach: its person's, or everyone's."""
    if rule.person is not None:
        return [
            c
            for c, _d, _p in people_repository.contacts_of_person(session, facility_id, rule.person)
        ]
    return [
        c for c, _d, _p in people_repository.list_contacts(session, facility_id, datetime.now(UTC))
    ]


def overridden_grants(session: Session, facility_id: str, rule: Rule) -> list[Rule]:
    """The grants of order records that ``rule`` overrides at some moment it is in force."""
    if rule.kind not in (Kind.DENY, Kind.LIMIT):
        return []
    found: list[Rule] = []
    contacts = contacts_for(session, facility_id, rule)
    for row in repository.ordered_grant_rows(session, facility_id, str(rule.channel)):
        grant = policy_repository.rule_from_row(row)
        if not _meet(rule, grant):
            continue
        if overrides_grant(rule, grant, contacts):
            found.append(grant)
    return found


def _meet(one: Rule, other: Rule) -> bool:
    """Whether two rules are in force at some common moment."""
    if one.ends_at is not None and other.starts_at is not None and one.ends_at <= other.starts_at:
        return False
    return not (
        other.ends_at is not None and one.starts_at is not None and other.ends_at <= one.starts_at
    )


def order_conflicts(
    db: Database, facility_id: str, order_id: str, at: datetime
) -> list[OrderConflict]:
    """Every rule in force at ``at`` that the order outranks, and every one that
    overrides one of its grants, in listing order of the order's rules."""
    with db.transaction() as session:
        require_facility(session, facility_id)
        order = order_in(session, facility_id, order_id)
        found: list[OrderConflict] = []
        for row in repository.order_rule_rows(session, facility_id, order.id):
            order_rule = policy_repository.rule_from_row(row)
            if not order_rule.is_active(at):
                continue
            contacts = contacts_for(session, facility_id, order_rule)
            others = policy_repository.rules_for(
                session, facility_id, person_id=order_rule.person, channel=order_rule.channel
            )
            for other in others:
                if other.id in order.rules or not other.is_active(at):
                    continue
                if order_rule.kind is Kind.GRANT and overrides_grant(other, order_rule, contacts):
                    relation = "overrides"
                elif outranked_by(other, order_rule, contacts):
                    relation = "outranked"
                else:
                    continue
                found.append(_conflict(session, facility_id, relation, order_rule, other))
        return found


def _conflict(
    session: Session, facility_id: str, relation: str, order_rule: Rule, other: Rule
) -> OrderConflict:
    row: RuleRow | None = policy_repository.get_rule_row(session, facility_id, other.id)
    assert row is not None
    cited = repository.citation(session, facility_id, other.id)
    reason = cited.reason if cited is not None and cited.reason else None
    if reason is None:
        reason = repository.imposed_reason(session, facility_id, other.id)
    return OrderConflict(
        relation=relation,
        order_rule=order_rule.id,
        rule=other.id,
        authority=str(other.authority),
        kind=str(other.kind),
        channel=str(other.channel),
        person=other.person,
        text=other.text,
        starts_at=other.starts_at,
        ends_at=other.ends_at,
        imposed_by=row.imposed_by,
        imposed_at=row.imposed_at,
        reason=reason,
        authority_cited=None if cited is None else cited.authority_cited,
    )
