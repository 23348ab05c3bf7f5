"""Every query of the compliance reports' own: the facility's status rule, and
the sessions an order's report counts, read as plain values.

Beside ``courts.repository`` rather than in it: a separate module keeps the
reports' store apart from the orders' (the two grew at the same time), and
services reach both the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any, NamedTuple

from sqlalchemy import (
    and_,
    bindparam,
    case,
    func,
    literal_column,
    null,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import CompoundSelect, Select
from sqlalchemy.sql.elements import BindParameter

from kinline.db.tables import (
    ApprovalRow,
    ComplianceSettingsRow,
    ContactRow,
    CourtOrderRow,
    FacilityRow,
    RuleRow,
    SessionRow,
)
from kinline.rules.model import Channel, Contact


def status_rule(session: Session, facility_id: str) -> tuple[int, int] | None:
    """The facility's (compliant_percent, partial_percent), or None for the defaults."""
    row = session.get(ComplianceSettingsRow, facility_id)
    if row is None:
        return None
    return row.compliant_percent, row.partial_percent


class ReportContext(NamedTuple):
    """What a report reads first, by one statement: the facility, its status
    rule (None: the defaults), the rule of the report's id if there is one
    (loaded into the session, so ``session.get`` finds it), and whether an
    order record has that id."""

    facility: FacilityRow
    status_rule: tuple[int, int] | None
    rule: RuleRow | None
    has_record: bool


def report_context(session: Session, facility_id: str, order_id: str) -> ReportContext | None:
    """The facility's report context for ``order_id``, or None for no such facility."""
    statement = _report_context()
    found = session.execute(
        statement, {"facility_id": facility_id, "order_id": order_id}
    ).one_or_none()
    if found is None:
        return None
    facility, settings, rule, has_record = found
    rule_of_status = (
        None if settings is None else (settings.compliant_percent, settings.partial_percent)
    )
    return ReportContext(facility, rule_of_status, rule, bool(has_record))


@lru_cache(maxsize=1)
def _report_context() -> Select[FacilityRow, ComplianceSettingsRow, RuleRow, bool]:
    """``report_context``'s statement, built once (``facility_id`` and
    ``order_id`` bound)."""
    facility_id: BindParameter[str] = bindparam("facility_id")
    order_id: BindParameter[str] = bindparam("order_id")
    record = (
        select(CourtOrderRow.id)
        .where(CourtOrderRow.facility_id == facility_id, CourtOrderRow.id == order_id)
        .exists()
    )
    return (
        select(FacilityRow, ComplianceSettingsRow, RuleRow, record.label("has_record"))
        .outerjoin(
            ComplianceSettingsRow,
            and_(
                ComplianceSettingsRow.facility_id == FacilityRow.id,
                ComplianceSettingsRow.facility_id == facility_id,
            ),
        )
        .outerjoin(
            RuleRow,
            and_(
                RuleRow.facility_id == FacilityRow.id,
                RuleRow.facility_id == facility_id,
                RuleRow.id == order_id,
            ),
        )
        .where(FacilityRow.id == facility_id)
    )


def store_status_rule(
    session: Session,
    facility_id: str,
    compliant_percent: int,
    partial_percent: int,
    *,
    at: datetime,
    actor: str,
) -> None:
    row = session.get(ComplianceSettingsRow, facility_id)
    if row is None:
        row = ComplianceSettingsRow(facility_id=facility_id)
        session.add(row)
    row.compliant_percent = compliant_percent
    row.partial_percent = partial_percent
    row.updated_at = at
    row.updated_by = actor
    session.flush()


class SessionFacts(NamedTuple):
    """What a compliance report reads of a session. ``decision`` and
    ``governed_by`` are read for refused sessions only (a report explains its
    refusals; the rest it counts). A named tuple: a report reads thousands, and
    a tuple is made several times faster than a frozen dataclass."""

    id: int
    person_id: str
    contact_id: str
    channel: str
    started_at: datetime
    minutes: int
    status: str
    reason: str | None
    charged_to: str | None
    source: str
    settled_by: str | None
    decision: dict[str, object] | None
    governed_by: list[str] | None
    rule_ids: tuple[str, ...] | None = None  # the rules ``decision`` names, when read alone


_FACTS = (
    SessionRow.id,
    SessionRow.person_id,
    SessionRow.contact_id,
    SessionRow.channel,
    SessionRow.started_at,
    SessionRow.minutes,
    SessionRow.status,
    SessionRow.reason,
    SessionRow.charged_to,
    SessionRow.source,
    SessionRow.settled_by,
)


def session_facts_between(
    session: Session,
    facility_id: str,
    person_id: str | None,
    channel: str,
    start: datetime,
    end: datetime,
    *,
    governed_by: bool = True,
) -> list[SessionFacts]:
    """Every session of the person, or of everyone, on ``channel``, started in
    ``[start, end)``, in time order: plain columns by one Core statement, and the
    stored decisions of the refused ones by a second. (A report without a
    timeline reads only its evidence and counts the rest: ``order_sessions``.)
    ``governed_by`` False: the refused sessions' rules that governed them are
    not read (None), for a report that does not rebuild their decisions."""
    where = [
        SessionRow.facility_id == facility_id,
        SessionRow.channel == channel,
        SessionRow.started_at >= start,
        SessionRow.started_at < end,
    ]
    if person_id is not None:
        where.append(SessionRow.person_id == person_id)
    # The connection, not the ORM session: plain rows, without the ORM's
    # per-row loading (most of the cost of a large read).
    connection = session.connection()
    rows = connection.execute(
        select(*_FACTS).where(*where).order_by(SessionRow.started_at, SessionRow.id)
    ).all()
    refused = {
        row.id: (row.decision, row.governed_by if governed_by else None)
        for row in connection.execute(
            select(SessionRow.id, SessionRow.decision, SessionRow.governed_by).where(
                *where, SessionRow.status == "denied"
            )
        ).all()
    }
    none = (None, None)
    return [SessionFacts(*row, *refused.get(row[0], none)) for row in rows]


class PeriodCount(NamedTuple):
    """How many completed sessions a person had with a contact in one period
    (``period``: its index in the bounds given)."""

    period: int
    person_id: str
    contact_id: str
    completed: int


# Periods one counting statement sorts sessions into; a longer range (a daily
# order over years) takes one statement per this many periods.
PERIODS_PER_STATEMENT = 64


def contacts_of(
    session: Session, facility_id: str, person_id: str | None, at: datetime
) -> list[tuple[Contact, str]]:
    """The person's contacts (everyone's when None), each with the channels it
    is approved for at ``at`` (as ``people.repository.get_contact`` reads them)
    and its name, in id order: one statement, a row per approval in force."""
    statement = _contacts_select(facility_id, person_id, at)
    return _contacts(session.connection().execute(statement).all())


def _contacts_select(
    facility_id: Any, person_id: Any | None, at: Any, *leading: Any
) -> Select[Any]:
    """The person's contacts (everyone's when None) with their names and each
    channel approved at ``at``: a row per approval in force, or one with the
    channel NULL for a contact approved for none; after the ``leading``
    columns."""
    approved = and_(
        ApprovalRow.facility_id == ContactRow.facility_id,
        ApprovalRow.contact_id == ContactRow.id,
        ApprovalRow.approved_at <= at,
        or_(ApprovalRow.revoked_at.is_(None), ApprovalRow.revoked_at > at),
    )
    statement = (
        select(
            *leading,
            ContactRow.id,
            ContactRow.person_id,
            ContactRow.relationship,
            ContactRow.privileged,
            ContactRow.name,
            ApprovalRow.channel,
        )
        .outerjoin(ApprovalRow, approved)
        .where(ContactRow.facility_id == facility_id)
    )
    if person_id is not None:
        statement = statement.where(ContactRow.person_id == person_id)
    return statement


def _contacts(rows: Sequence[Sequence[Any]]) -> list[tuple[Contact, str]]:
    """Contacts with their names, in id order, from rows of (id, person,
    relationship, privileged, name, a channel approved or None)."""
    found: dict[str, tuple[tuple[str, str, str, bool, str], set[Channel]]] = {}
    for contact_id, person, relationship, privileged, name, channel in rows:
        one = found.get(contact_id)
        if one is None:
            values = (contact_id, person, relationship, bool(privileged), name)
            one = found[contact_id] = (values, set())
        if channel is not None:
            one[1].add(Channel(channel))
    contacts = []
    for contact_id in sorted(found):
        (c, p, r, v, n), channels = found[contact_id]
        contact = Contact(
            id=c, person=p, relationship=r, privileged=v, approved=frozenset(channels)
        )
        contacts.append((contact, n))
    return contacts


class RuleFacts(NamedTuple):
    """A rule as stored, with who imposed and lifted it (``RuleRow``'s columns)."""

    seq: int
    definition: str
    starts_at: datetime | None
    ends_at: datetime | None
    lifted_at: datetime | None
    imposed_at: datetime | None
    imposed_by: str
    lifted_by: str | None
    lift_reason: str | None


class Surroundings(NamedTuple):
    """What an order's report reads besides its sessions: the person's contacts
    with their names (as ``contacts_of``), and every rule on the order's
    channel in force at some moment of the range, in listing order (as
    ``courts.repository.rule_rows_between``)."""

    contacts: list[tuple[Contact, str]]
    rules: list[RuleFacts]


_RULE_FACTS = (
    RuleRow.seq,
    RuleRow.definition,
    RuleRow.starts_at,
    RuleRow.ends_at,
    RuleRow.lifted_at,
    RuleRow.imposed_at,
    RuleRow.imposed_by,
    RuleRow.lifted_by,
    RuleRow.lift_reason,
)
_CONTACT_FACTS = (
    ContactRow.id,
    ContactRow.person_id,
    ContactRow.relationship,
    ContactRow.privileged,
    ContactRow.name,
    ApprovalRow.channel,
)


def order_surroundings(
    session: Session,
    facility_id: str,
    person_id: str | None,
    at: datetime,
    channel: str,
    start: datetime,
    end: datetime,
) -> Surroundings:
    """The person's contacts (everyone's when None) as they are at ``at``, and
    the rules on ``channel`` in force at some moment of ``[start, end)``, by one
    statement: both reads' rows in one result, each padded with NULL in the
    other's columns (a rule's ``seq`` is never NULL, a contact's is), which
    saves a round trip."""
    values = {
        "facility_id": facility_id,
        "person_id": person_id,
        "at": at,
        "channel": channel,
        "start": start,
        "end": end,
    }
    found: list[RuleFacts] = []
    approvals: list[Sequence[Any]] = []
    statement = _surroundings(person_id is not None)
    for row in session.connection().execute(statement, values).all():
        if row[0] is None:
            approvals.append(row[9:])
        else:
            found.append(RuleFacts(*row[:9]))
    found.sort(key=_SEQ)
    return Surroundings(_contacts(approvals), found)


@lru_cache(maxsize=2)
def _surroundings(person: bool) -> CompoundSelect[Any]:
    """``order_surroundings``' statement, built once per shape, its values bound
    (``facility_id``, ``person_id``, ``at``, ``channel``, ``start``, ``end``)."""
    # The rules first: a union's columns take the first branch's types, so the
    # contacts' columns there are NULLs of their types.
    rules = select(
        *_RULE_FACTS,
        *(type_coerce(null(), column.type).label(f"c_{column.key}") for column in _CONTACT_FACTS),
    ).where(
        RuleRow.facility_id == bindparam("facility_id"),
        RuleRow.channel == bindparam("channel"),
        or_(RuleRow.starts_at.is_(None), RuleRow.starts_at < bindparam("end")),
        or_(RuleRow.ends_at.is_(None), RuleRow.ends_at > bindparam("start")),
        or_(RuleRow.lifted_at.is_(None), RuleRow.lifted_at > bindparam("start")),
    )
    contacts = _contacts_select(
        bindparam("facility_id"),
        bindparam("person_id") if person else None,
        bindparam("at"),
        *(null().label(c.key) for c in _RULE_FACTS),
    )
    return union_all(rules, contacts)


_SEQ = attrgetter("seq")


class OrderSessions(NamedTuple):
    """What one statement reads of the sessions an order's report is about:
    the completed ones counted per period, person and contact, and the few it
    names one by one (``evidence``, in time order; completed calls imported
    outside policy are both counted and named)."""

    counts: list[PeriodCount]
    evidence: list[SessionFacts]


def order_sessions(
    session: Session,
    facility_id: str,
    person_id: str | None,
    channel: str,
    contact_ids: Sequence[str] | None,
    bounds: Sequence[tuple[datetime, datetime]],
) -> OrderSessions:
    """The sessions of the person, or of everyone, on ``channel``, with one of
    ``contact_ids`` (any contact when None), started in the periods ``bounds``
    (consecutive ``[start, end)``), by one statement per
    ``PERIODS_PER_STATEMENT`` periods: the completed ones counted per period,
    person and contact by the database, and the evidence (refused, released,
    expired, and completed calls imported outside policy) row by row, in time
    order. Refusals carry only the rules their stored decision names
    (``decision`` is ``{"rules": [...]}``, and ``rule_ids`` those rules, read
    as text and parsed once per distinct value) and no ``governed_by``: a
    report in figures rebuilds no decision."""
    counts, rows = _one_pass_rows(session, facility_id, person_id, channel, contact_ids, bounds)
    evidence: list[SessionFacts] = []
    rules_of = _RulesOf()
    for (
        _period,
        person,
        contact,
        _n,
        evidence_id,
        started_at,
        minutes,
        status,
        reason,
        charged_to,
        source,
        settled_by,
        rules,
    ) in rows:
        decision: dict[str, object] | None = None
        rule_ids: tuple[str, ...] | None = None
        if rules is not None:
            rule_ids = rules_of(rules)
            decision = {"rules": list(rule_ids)}
        evidence.append(
            SessionFacts(
                evidence_id,
                person,
                contact,
                channel,
                _utc(started_at),
                minutes,
                status,
                reason,
                charged_to,
                source,
                settled_by,
                decision,
                None,
                rule_ids,
            )
        )
    evidence.sort(key=_IN_TIME_ORDER)
    return OrderSessions(counts, evidence)


# One piece of evidence as ``order_evidence`` reads it: (started_at in UTC,
# id, person, contact, status, reason, outside_policy, settled_by, rules).
# A plain tuple, in time order as it compares: a report over years reads
# thousands, and each is made once and read once.
EvidenceFacts = tuple[datetime, int, str, str, str, str | None, bool, str | None, tuple[str, ...]]


class OrderEvidence(NamedTuple):
    """``order_sessions`` for a report in figures: the counts, and the evidence
    as plain tuples (``EvidenceFacts``), in time order."""

    counts: list[PeriodCount]
    evidence: list[EvidenceFacts]


def order_evidence(
    session: Session,
    facility_id: str,
    person_id: str | None,
    channel: str,
    contact_ids: Sequence[str] | None,
    bounds: Sequence[tuple[datetime, datetime]],
) -> OrderEvidence:
    """What ``order_sessions`` reads, by the same statement, with each piece of
    evidence as a plain tuple of what a report states of it: its instant in
    UTC, whether it was delivered outside policy (completed, imported,
    charged to no rule) and the rules of a refusal (none for the rest)."""
    counts, rows = _one_pass_rows(session, facility_id, person_id, channel, contact_ids, bounds)
    rules_of = _RulesOf()
    none: tuple[str, ...] = ()
    # The driver's instants as they are when already in UTC (PostgreSQL's, read
    # in UTC); else converted (SQLite's text).
    evidence: list[EvidenceFacts] = [
        (
            started_at
            if started_at.__class__ is datetime and started_at.tzinfo is UTC
            else _utc(started_at),
            evidence_id,
            person,
            contact,
            status,
            reason,
            status == "completed" and source == "import" and charged_to is None,
            settled_by,
            none if rules is None else rules_of(rules),
        )
        for (
            _period,
            person,
            contact,
            _n,
            evidence_id,
            started_at,
            _minutes,
            status,
            reason,
            charged_to,
            source,
            settled_by,
            rules,
        ) in rows
    ]
    evidence.sort()
    return OrderEvidence(counts, evidence)


class _RulesOf:
    """The rules a stored decision names, from their JSON text, each distinct
    text parsed once."""

    def __init__(self) -> None:
        self._parsed: dict[str, tuple[str, ...]] = {}

    def __call__(self, text: str) -> tuple[str, ...]:
        found = self._parsed.get(text)
        if found is None:
            named = json.loads(text)
            found = self._parsed[text] = tuple(map(str, named)) if isinstance(named, list) else ()
        return found


def _one_pass_rows(
    session: Session,
    facility_id: str,
    person_id: str | None,
    channel: str,
    contact_ids: Sequence[str] | None,
    bounds: Sequence[tuple[datetime, datetime]],
) -> tuple[list[PeriodCount], list[Sequence[Any]]]:
    """The counts, and the evidence as the driver gives its rows (``_NAMED``'s
    columns, the instant unconverted: text on SQLite), by one statement per
    ``PERIODS_PER_STATEMENT`` periods."""
    connection = session.connection()
    dialect = connection.dialect
    ids = sorted(contact_ids) if contact_ids is not None else None
    counts: list[PeriodCount] = []
    evidence: list[Sequence[Any]] = []
    for first in range(0, len(bounds), PERIODS_PER_STATEMENT):
        chunk = bounds[first : first + PERIODS_PER_STATEMENT]
        shape = (person_id is not None, None if ids is None else len(ids), len(chunk), first)
        compiled = _one_pass_sql(dialect.name, shape, dialect)
        values: dict[str, object] = {
            "facility_id": facility_id,
            "channel": channel,
            "start": chunk[0][0],
            "end": chunk[-1][1],
            "person_id": person_id,
        }
        for index, contact in enumerate(ids or ()):
            values[f"contact_{index}"] = contact
        for index, (_, end) in enumerate(chunk):
            values[f"end_{index}"] = end
        for name, process in compiled.processors.items():
            values[name] = process(values[name])
        values.update(compiled.constants)
        # The statement's text, compiled once per shape and dialect, run with
        # its values as the driver takes them: SQLAlchemy need not key its
        # cache by the statement's tree on every call. The driver's rows as
        # they are: no column needs converting but the instant, and a report
        # may read thousands.
        if compiled.names is None:
            result = connection.exec_driver_sql(compiled.sql, values)
        else:
            result = connection.exec_driver_sql(
                compiled.sql, tuple(values[n] for n in compiled.names)
            )
        rows = result.cursor.fetchall() if result.cursor is not None else []
        result.close()
        for row in rows:
            if row[4] is None:
                counts.append(PeriodCount(row[0], row[1], row[2], row[3]))
            else:
                evidence.append(row)
    return counts, evidence


_Shape = tuple[bool, int | None, int, int]


@lru_cache(maxsize=64)
def _one_pass_sql(dialect_name: str, shape: _Shape, dialect: Dialect) -> _Compiled:
    """``_one_pass``'s text for the dialect, with the names of its positional
    parameters in order (None: the driver takes them by name). Cached by the
    dialect's name: the dialect itself is not part of the key's meaning."""
    compiled = _one_pass(*shape, bucketed=dialect_name == "postgresql").compile(
        dialect=dialect, compile_kwargs={"render_postcompile": True}
    )
    # The statement's own constants (statuses, the decision's key) as the
    # driver takes them, once; the bind processors of the values given later
    # (the instants': ``UTCDateTime``'s, per dialect).
    # (Tuple-typed values have a sequence of processors; this statement has none.)
    processors: dict[str, Callable[[Any], Any]] = {
        name: process for name, process in compiled._bind_processors.items() if callable(process)
    }
    constants: dict[str, Any] = {}
    for name, value in compiled.params.items():
        if value is not None:
            process = processors.pop(name, None)
            constants[name] = value if process is None else process(value)
    names = tuple(compiled.positiontup or ()) if compiled.positional else None
    return _Compiled(compiled.string, names, constants, processors)


class _Compiled(NamedTuple):
    """A statement's text for one dialect: the names of its positional
    parameters in order (None: by name), its constants as the driver takes
    them, and the processors of the values given by name."""

    sql: str
    names: tuple[str, ...] | None
    constants: dict[str, Any]
    processors: dict[str, Callable[[Any], Any]]


def _bound(name: str) -> BindParameter[Any]:
    """A value bound by name, not required at compile time: ``_one_pass_sql``
    compiles the statement to its text before any value is known."""
    return bindparam(name, required=False)


@lru_cache(maxsize=64)
def _one_pass(
    person: bool, contacts: int | None, periods: int, first: int, *, bucketed: bool = False
) -> Select[Any]:
    """Counts (``evidence_id`` NULL) and evidence (``period`` NULL) in one
    statement, in the same columns (``_NAMED``): period, person, contact,
    count, then the evidence's id, facts and rules. Built once per shape; the
    values are bound (``facility_id``, ``channel``, ``start``, ``end``,
    ``person_id``, ``contact_<i>`` for each of ``contacts`` ids, and ``end_<i>``
    for each period's end)."""
    where = [
        SessionRow.facility_id == _bound("facility_id"),
        SessionRow.channel == _bound("channel"),
        SessionRow.started_at >= _bound("start"),
        SessionRow.started_at < _bound("end"),
    ]
    if person:
        where.append(SessionRow.person_id == _bound("person_id"))
    if contacts is not None:
        where.append(SessionRow.contact_id.in_([_bound(f"contact_{i}") for i in range(contacts)]))
    # The period's index is a number made here, never input: a literal.
    ends = [_bound(f"end_{index}") for index in range(periods)]
    if bucketed:
        # PostgreSQL's width_bucket: how many period ends the instant is at or
        # after, by a binary search (the sessions are all before the last).
        found = func.width_bucket(SessionRow.started_at, postgresql.array(ends))
        period = (found + literal_column(str(first))).label("period")
    else:
        period = case(
            *(
                (SessionRow.started_at < end, literal_column(str(first + index)))
                for index, end in enumerate(ends)
            ),
        ).label("period")
    empty = (null().label(name) for name in _NAMED[4:])
    counted = (
        select(period, SessionRow.person_id, SessionRow.contact_id, func.count().label("n"), *empty)
        .where(*where, SessionRow.status == "completed")
        # By position: the period's long CASE written once, which keeps the
        # text short enough for psycopg to cache its parse of it.
        .group_by(literal_column("1"), literal_column("2"), literal_column("3"))
    )
    rules = case((SessionRow.status == "denied", SessionRow.decision["rules"].as_string()))
    named = select(
        null().label("period"),
        SessionRow.person_id,
        SessionRow.contact_id,
        null().label("n"),
        SessionRow.id.label("evidence_id"),
        SessionRow.started_at,
        SessionRow.minutes,
        SessionRow.status,
        SessionRow.reason,
        SessionRow.charged_to,
        SessionRow.source,
        SessionRow.settled_by,
        rules.label("rules"),
    ).where(*where, _EVIDENCE)
    # The typed branch first: a union's columns take the first branch's types.
    # Not ordered: for an order naming no person the counts are many, and
    # sorting them with the evidence is most of the statement's work.
    both = union_all(named, counted).subquery()
    return select(both)


_IN_TIME_ORDER = attrgetter("started_at", "id")


def _utc(value: datetime | str) -> datetime:
    """An instant as the driver gives it (SQLite: text in UTC, without an
    offset), in UTC, as ``UTCDateTime`` reads it; the cheapest way for each
    (a report converts thousands)."""
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            return datetime.fromisoformat(value + "+00:00")  # UTC itself, as tzinfo
        return parsed.astimezone(UTC)
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# What a report names one by one: refusals, holds that lapsed, and completed
# calls imported that the engine would have refused (charged to no rule).
_EVIDENCE = or_(
    SessionRow.status.in_(("denied", "released", "expired")),
    and_(
        SessionRow.status == "completed",
        SessionRow.source == "import",
        SessionRow.charged_to.is_(None),
    ),
)
# The columns of both kinds of row.
_NAMED = (
    "period",
    "person_id",
    "contact_id",
    "n",
    "evidence_id",
    "started_at",
    "minutes",
    "status",
    "reason",
    "charged_to",
    "source",
    "settled_by",
    "rules",
)
