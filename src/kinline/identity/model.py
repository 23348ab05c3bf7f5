"""Who a caller is and what they may do: subjects, their bindings, and the one
access policy.

Every caller is a subject: staff with roles per facility, the incarcerated
person (bound to one person), a family member or visitor (bound to their own
contact records), counsel (bound to the people they represent), a court (bound
to the cases of its orders), or a machine client (bound to one facility and one
job). ``allows(subject, action, target)`` is the only place that decides
whether an action may touch an object; routes declare the action and say what
the object is, and nothing else looks at roles.

What a subject may not see is answered as not found (``visible``), so its
existence does not leak; what it may see but not do is refused (``allows``).
Pure: standard library only.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

TOKEN_PREFIX = "kl_"  # noqa: S105 (a prefix, not a secret)


class Kind(StrEnum):
    """The kinds of subject."""

    STAFF = "staff"
    PERSON = "person"
    FAMILY = "family"
    COUNSEL = "counsel"
    COURT = "court"
    MACHINE = "machine"


class Role(StrEnum):
    """A staff member's roles, each held at one facility. ``observer`` reads and
    changes nothing (what a read-scope token could do before subjects)."""

    RECORDS = "records"
    VISITING = "visiting"
    SECURITY = "security"
    WARDEN = "warden"
    ADMIN = "admin"
    OBSERVER = "observer"


class Job(StrEnum):
    """What a machine client is for."""

    TELEPHONY = "telephony"


class Action(StrEnum):
    """Everything a route can do, as the policy names it."""

    FACILITY_READ = "facility:read"
    PERSON_READ = "person:read"
    PERSON_MANAGE = "person:manage"
    CONTACT_READ = "contact:read"
    CONTACT_MANAGE = "contact:manage"
    APPROVAL_DECIDE = "approval:decide"
    RULE_READ = "rule:read"
    RULE_IMPOSE = "rule:impose"
    RULE_LIFT = "rule:lift"
    DECISION_READ = "decision:read"
    CALL_SETUP = "call:setup"
    CALL_READ = "call:read"
    NOTICE_READ = "notice:read"
    NOTICE_ACKNOWLEDGE = "notice:acknowledge"
    NOTICE_QUEUE = "notice:queue"
    DELIVERY_READ = "delivery:read"
    DELIVERY_RETRY = "delivery:retry"
    APPEAL_FILE = "appeal:file"
    APPEAL_READ = "appeal:read"
    APPEAL_ANSWER = "appeal:answer"
    APPEAL_EXTEND = "appeal:extend"
    APPEAL_ESCALATE = "appeal:escalate"
    APPEAL_WITHDRAW = "appeal:withdraw"
    APPEAL_LATE = "appeal:late"  # file or escalate late, or at another time than now
    COMPLIANCE_READ = "compliance:read"
    COMPLIANCE_SETTINGS = "compliance:settings"  # the facility's compliance status rule (admin)
    VISITOR_APPLY = "visitor:apply"  # apply to visit a person; read one's own application
    VISITOR_READ = "visitor:read"
    VISITOR_DECIDE = "visitor:decide"  # approve, refuse, restrict; record consent
    VISITOR_FLAGGED = "visitor:flagged"  # decide a flagged case (a former co-defendant)
    VISIT_READ = "visit:read"  # slots, bookings
    VISIT_BOOK = "visit:book"  # request, reserve, book, cancel one's own
    VISIT_MANAGE = "visit:manage"  # rooms, session templates, blocks, check-in, outcomes
    WEBHOOK_MANAGE = "webhook:manage"  # a facility's webhook subscriptions (admin only)
    FACILITY_MANAGE = "facility:manage"  # the letterhead: its postal address (admin only)
    RETALIATION_READ = "retaliation:read"  # a person's retaliation flags, findings, report
    RETALIATION_REVIEW = "retaliation:review"  # record a finding on a flag
    ORDER_READ = "order:read"  # a court order's record, its signed PDF and its conflicts
    ORDER_MANAGE = "order:manage"  # record a court order (its rules) and upload its PDF


_READS = frozenset(
    {
        Action.FACILITY_READ,
        Action.PERSON_READ,
        Action.CONTACT_READ,
        Action.RULE_READ,
        Action.DECISION_READ,
        Action.CALL_READ,
        Action.NOTICE_READ,
        Action.NOTICE_QUEUE,
        Action.DELIVERY_READ,
        Action.APPEAL_READ,
        Action.COMPLIANCE_READ,
        Action.VISITOR_READ,
        Action.VISIT_READ,
        Action.ORDER_READ,
    }
)
_APPEALS_STAFF = frozenset(
    {
        Action.APPEAL_FILE,
        Action.APPEAL_ANSWER,
        Action.APPEAL_EXTEND,
        Action.APPEAL_ESCALATE,
        Action.APPEAL_WITHDRAW,
        Action.APPEAL_LATE,
    }
)
ROLE_ACTIONS: Mapping[Role, frozenset[Action]] = {
    Role.OBSERVER: _READS,
    Role.RECORDS: _READS
    | _APPEALS_STAFF
    | {
        Action.PERSON_MANAGE,
        Action.CONTACT_MANAGE,
        Action.APPROVAL_DECIDE,
        Action.NOTICE_ACKNOWLEDGE,
        Action.DELIVERY_RETRY,
        Action.ORDER_MANAGE,
    },
    Role.VISITING: _READS
    | {
        Action.APPROVAL_DECIDE,
        Action.NOTICE_ACKNOWLEDGE,
        Action.VISITOR_DECIDE,
        Action.VISIT_BOOK,
        Action.VISIT_MANAGE,
    },
    Role.SECURITY: _READS | {Action.RULE_IMPOSE, Action.RULE_LIFT},
    Role.WARDEN: _READS
    | _APPEALS_STAFF
    | {
        Action.VISITOR_DECIDE,
        Action.VISITOR_FLAGGED,
        Action.VISIT_BOOK,
        Action.VISIT_MANAGE,
        Action.APPROVAL_DECIDE,
        Action.RULE_IMPOSE,
        Action.RULE_LIFT,
        Action.NOTICE_ACKNOWLEDGE,
        Action.ORDER_MANAGE,
        Action.RETALIATION_READ,
        Action.RETALIATION_REVIEW,
    },
    Role.ADMIN: frozenset(Action) - {Action.CALL_SETUP},
}
"""What each staff role may do at its facility. Setting up a call is the
telephony platform's alone."""

# Staff roles that see privileged (counsel) contacts: those who keep the lists
# and answer for them. Visiting and security staff have no need.
PRIVILEGED_ROLES = frozenset({Role.RECORDS, Role.WARDEN, Role.ADMIN})

# What the people concerned may do about themselves (the person at a kiosk) or
# for those they represent (counsel).
PERSON_ACTIONS = frozenset(
    {
        Action.FACILITY_READ,
        Action.PERSON_READ,
        Action.CONTACT_READ,
        Action.RULE_READ,
        Action.DECISION_READ,
        Action.NOTICE_READ,
        Action.NOTICE_ACKNOWLEDGE,
        Action.APPEAL_FILE,
        Action.APPEAL_READ,
        Action.APPEAL_ESCALATE,
        Action.APPEAL_WITHDRAW,
        Action.VISITOR_READ,
        Action.VISIT_READ,
        Action.VISIT_BOOK,
    }
)
COUNSEL_ACTIONS = PERSON_ACTIONS - {Action.NOTICE_ACKNOWLEDGE} | {
    Action.COMPLIANCE_READ,
    Action.ORDER_READ,
    Action.RETALIATION_READ,
}
# A family member sees their own contact record, the person it links to (by
# name), and decisions about calling or visiting that person; they may file an
# appeal for that person (where the facility accepts it: appeals.service).
FAMILY_ACTIONS = frozenset(
    {
        Action.FACILITY_READ,
        Action.PERSON_READ,
        Action.CONTACT_READ,
        Action.DECISION_READ,
        Action.APPEAL_FILE,
        Action.VISITOR_APPLY,
        Action.VISITOR_READ,
        Action.VISIT_READ,
        Action.VISIT_BOOK,
    }
)
# A court reads the orders of its cases and what they delivered; never
# monitoring data (calls, decisions) or notices.
COURT_ACTIONS = frozenset(
    {Action.FACILITY_READ, Action.RULE_READ, Action.COMPLIANCE_READ, Action.ORDER_READ}
)
MACHINE_ACTIONS: Mapping[Job, frozenset[Action]] = {
    Job.TELEPHONY: frozenset({Action.CALL_SETUP, Action.CALL_READ}),
}


@dataclass(frozen=True, slots=True)
class Binding:
    """One thing a subject is bound to at a facility: a staff role, the person a
    kiosk account is, a contact record of a family member, a person counsel
    represents, a court's case, or a machine's job."""

    facility_id: str
    role: Role | None = None
    person_id: str | None = None
    contact_id: str | None = None
    case_number: str | None = None
    job: Job | None = None


@dataclass(frozen=True, slots=True)
class Subject:
    """A caller, with everything it is bound to. ``facility_id`` narrows it to
    one facility (a token is issued for one)."""

    id: int
    name: str
    kind: Kind
    bindings: tuple[Binding, ...] = ()
    facility_id: str | None = None
    second_factor: bool = False  # signed in with a second factor (people only)

    def narrowed(self, facility_id: str | None) -> Subject:
        """The subject as a token for ``facility_id`` (None: every facility) sees it."""
        if facility_id is None:
            return self
        kept = tuple(b for b in self.bindings if b.facility_id == facility_id)
        return Subject(self.id, self.name, self.kind, kept, facility_id, self.second_factor)

    @property
    def actor(self) -> str:
        """How audit events name the subject."""
        return f"{self.kind}:{self.id}:{self.name}"

    def facilities(self) -> frozenset[str]:
        return frozenset(b.facility_id for b in self.bindings)

    def roles_at(self, facility_id: str) -> frozenset[Role]:
        return frozenset(
            b.role for b in self.bindings if b.facility_id == facility_id and b.role is not None
        )

    def people_at(self, facility_id: str) -> frozenset[str]:
        """The people a person, counsel or family account is bound to here."""
        return frozenset(
            b.person_id
            for b in self.bindings
            if b.facility_id == facility_id and b.person_id is not None
        )

    def contacts_at(self, facility_id: str) -> frozenset[str]:
        return frozenset(
            b.contact_id
            for b in self.bindings
            if b.facility_id == facility_id and b.contact_id is not None
        )

    def cases_at(self, facility_id: str) -> frozenset[str]:
        return frozenset(
            b.case_number
            for b in self.bindings
            if b.facility_id == facility_id and b.case_number is not None
        )

    def jobs_at(self, facility_id: str) -> frozenset[Job]:
        return frozenset(
            b.job for b in self.bindings if b.facility_id == facility_id and b.job is not None
        )


class Record(StrEnum):
    """The kinds of record an action can touch, besides the facility itself."""

    PERSON = "person"
    CONTACT = "contact"
    RULE = "rule"
    DECISION = "decision"
    CALL = "call"
    NOTICE = "notice"
    APPEAL = "appeal"
    ORDER = "order"
    VISITOR = "visitor"  # a visitor's application and approval: contact_id is the visitor's
    VISIT = "visit"  # a booking: person_id is the person visited; contact_id a visitor in it


@dataclass(frozen=True, slots=True)
class Target:
    """What an action touches: the facility itself (``record`` None), or one record
    in it with whose it is: a person's, a contact (privileged or not), a court
    case's."""

    facility_id: str
    record: Record | None = None
    person_id: str | None = None
    contact_id: str | None = None
    privileged: bool = False
    case_number: str | None = None


def actions_of(subject: Subject, facility_id: str) -> frozenset[Action]:
    """Every action the subject may take at the facility, on objects it may see."""
    if subject.facility_id is not None and subject.facility_id != facility_id:
        return frozenset()
    match subject.kind:
        case Kind.STAFF:
            allowed: frozenset[Action] = frozenset()
            for role in subject.roles_at(facility_id):
                allowed |= ROLE_ACTIONS[role]
            return allowed
        case Kind.PERSON:
            return PERSON_ACTIONS if subject.people_at(facility_id) else frozenset()
        case Kind.COUNSEL:
            return COUNSEL_ACTIONS if subject.people_at(facility_id) else frozenset()
        case Kind.FAMILY:
            return FAMILY_ACTIONS if subject.contacts_at(facility_id) else frozenset()
        case Kind.COURT:
            return COURT_ACTIONS if subject.cases_at(facility_id) else frozenset()
        case Kind.MACHINE:
            allowed = frozenset()
            for job in subject.jobs_at(facility_id):
                allowed |= MACHINE_ACTIONS[job]
            return allowed
    return frozenset()  # pragma: no cover (every kind is matched)


def visible(subject: Subject, target: Target) -> bool:
    """Whether the subject may know the target exists at all.

    Staff see their facilities' records, privileged contacts only in a role
    with need; the person sees their own records and the facility's rules for
    everyone; counsel the same for the people they represent; a family member
    their own contact records, decisions about them and the person they link
    to; a court the orders of its cases; a machine its facility's calls.
    """
    facility = target.facility_id
    if subject.facility_id is not None and subject.facility_id != facility:
        return False
    if facility not in subject.facilities():
        return False
    record = target.record
    if record is None:
        return True
    match subject.kind:
        case Kind.STAFF:
            roles = subject.roles_at(facility)
            return not target.privileged or bool(roles & PRIVILEGED_ROLES)
        case Kind.PERSON | Kind.COUNSEL:
            if target.person_id is None:
                return record is Record.RULE
            return target.person_id in subject.people_at(facility)
        case Kind.FAMILY:
            if record is Record.PERSON:
                return target.person_id in subject.people_at(facility)
            if record in (Record.CONTACT, Record.DECISION, Record.VISITOR, Record.VISIT):
                return target.contact_id in subject.contacts_at(facility)
            return False
        case Kind.COURT:
            if record in (Record.RULE, Record.ORDER):
                return target.case_number in subject.cases_at(facility)
            return False
        case Kind.MACHINE:
            return record is Record.CALL
    return False  # pragma: no cover


def allows(subject: Subject, action: Action, target: Target) -> bool:
    """Whether the subject may take ``action`` on ``target`` (which it may see)."""
    return visible(subject, target) and action in actions_of(subject, target.facility_id)


def people_in_view(subject: Subject, facility_id: str) -> frozenset[str] | None:
    """The people whose records a list shows this subject at the facility: None
    for all (staff), else the people it is bound to (maybe none)."""
    if subject.facility_id not in (None, facility_id):
        return frozenset()
    if subject.kind is Kind.STAFF and subject.roles_at(facility_id):
        return None
    return subject.people_at(facility_id)


def sees_privileged(subject: Subject, facility_id: str) -> bool:
    """Whether lists show this subject privileged contacts without asking each."""
    if subject.kind is Kind.STAFF:
        return bool(subject.roles_at(facility_id) & PRIVILEGED_ROLES)
    return subject.kind in (Kind.PERSON, Kind.COUNSEL)


def needs_second_factor(subject: Subject) -> bool:
    """Staff must sign in with a second factor (TOTP)."""
    return subject.kind is Kind.STAFF


def bindings_of(kind: Kind, bindings: Iterable[Binding]) -> tuple[Binding, ...]:
    """Check that each binding fits the subject's kind; the bindings, sorted."""
    checked: list[Binding] = []
    for binding in bindings:
        problem = binding_problem(kind, binding)
        if problem is not None:
            raise ValueError(problem)
        checked.append(binding)
    return tuple(sorted(set(checked), key=_binding_key))


def binding_problem(kind: Kind, binding: Binding) -> str | None:
    """Why ``binding`` does not fit a subject of ``kind``, or None."""
    wanted = {
        Kind.STAFF: "role",
        Kind.PERSON: "person_id",
        Kind.COUNSEL: "person_id",
        Kind.FAMILY: "contact_id",
        Kind.COURT: "case_number",
        Kind.MACHINE: "job",
    }[kind]
    given = [
        name
        for name in ("role", "person_id", "contact_id", "case_number", "job")
        if getattr(binding, name) is not None
    ]
    if kind is Kind.FAMILY and set(given) == {"contact_id", "person_id"}:
        return None
    if given != [wanted]:
        return f"a {kind} subject is bound by {wanted.replace('_id', '')}"
    return None


def _binding_key(binding: Binding) -> tuple[str, ...]:
    return (
        binding.facility_id,
        binding.role or "",
        binding.person_id or "",
        binding.contact_id or "",
        binding.case_number or "",
        binding.job or "",
    )


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(secret: str) -> str:
    """SHA-256 suffices: the secret is 256 random bits, not a password."""
    return hashlib.sha256(secret.encode()).hexdigest()
