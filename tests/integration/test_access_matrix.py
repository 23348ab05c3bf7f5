"""Every route, every kind of caller, their own object and someone else's.

The routes come from the app itself: a route that declares no action fails the
first test, so a new route cannot be added without saying who may use it. For
each subject below, each route is tried on the subject's own records and on
another's: on its own, the table ``MAY`` says whether it is let through (any
answer but 401, 403 or 404) or refused (403, or 404 where it may not see the
record); on another's it is always refused, as 404 wherever a record or a
facility is named, so a record's existence never leaks.

The database: the supermax scenario, plus a second person at the same facility
(okafor) and a second facility (fci-east, with cruz), each with a contact, a
notice, an appeal, a court order with its case number and a held call.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from _databases import SHARED, DbTemplate
from fastapi.routing import APIRoute
from sqlalchemy import select

from kinline.access import AcrossFacilities, Guard
from kinline.api import create_app
from kinline.appeals.service import file_appeal, list_appeals
from kinline.calls.path import authorize
from kinline.changes.service import approve_contact, impose_rule
from kinline.db.engine import Database
from kinline.db.tables import SessionRow
from kinline.identity.model import Action, Binding, Job, Kind, Role
from kinline.identity.service import add_subject, issue_token, revoke_token
from kinline.identity.signin import enroll_totp, set_password, sign_in
from kinline.notices.service import list_notices
from kinline.people.model import Facility, Person
from kinline.people.service import add_contact, admit_person, register_facility
from kinline.rules.model import Contact
from kinline.scenario import load_into

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

USP, EAST = "usp-red-mesa", "fci-east"
T = datetime(2024, 6, 20, 16, 0, tzinfo=UTC)  # 10:00 in Denver and 12:00 in the east
# Routes anyone may call: signing in and out, and the API's own documents.
PUBLIC = re.compile(r"^/(v1/auth/|docs|redoc|openapi\.json)")
# Pages anyone may open or send: signing in and out, choosing the language,
# a family member's registration.
PUBLIC_PAGES = re.compile(r"^/(signin|signout|language|family/register)$")


def court_order(rule_id: str, person: str, case: str) -> dict[str, Any]:
    return {
        "id": rule_id,
        "authority": "court_order",
        "kind": "grant",
        "channel": "phone",
        "person": person,
        "contacts": "any",
        "quota": {"count": 8, "per": "month"},
        "max_minutes": 15,
        "case_number": case,
        "text": f"Calls ordered in case {case}.",
    }


def sanction(rule_id: str, person: str) -> dict[str, Any]:
    return {
        "id": rule_id,
        "authority": "sanction",
        "kind": "deny",
        "channel": "video",
        "person": person,
        "contacts": "any",
        "text": "No video calls this month.",
    }


def build(db: Database) -> None:
    load_into(str(SHARED / "supermax-family-contact.yaml"), db)
    at, actor = T - timedelta(days=30), "setup"
    register_facility(db, Facility(EAST, "FCI East", "America/New_York"), at=at, actor=actor)
    for facility, person, contact, number in (
        (USP, "okafor", "okafor-sister", "+1 303 555 0111"),
        (EAST, "cruz", "cruz-mother", "+1 212 555 0122"),
    ):
        admit_person(db, Person(facility, person, person.title(), "en"), at=at, actor=actor)
        add_contact(
            db,
            facility,
            Contact(contact, person, "sibling", False, frozenset()),
            name=f"{person.title()} family",
            phones=[number],
            at=at,
            actor=actor,
        )
        approve_contact(db, facility, contact, "phone", at=at, actor=actor, reason="Verified.")
    for facility, person, case in (
        (USP, "salazar", "CV-17"),
        (USP, "okafor", "CV-99"),
        (EAST, "cruz", "CV-55"),
    ):
        order = court_order(f"order-{case.lower()}", person, case)
        impose_rule(db, facility, order, at=at, actor=actor, reason="Ordered.")
        impose_rule(db, facility, sanction(f"video-{person}", person), at=at, actor=actor)
        notice = max(n.id for n in list_notices(db, facility, person))
        file_appeal(
            db,
            facility,
            person_id=person,
            notice_id=notice,
            filed_by="person",
            filer=person.title(),
            text="Please explain.",
            at=at + timedelta(days=1),
            actor=actor,
        )
    for facility, person, contact in ((USP, "okafor", "okafor-sister"), (EAST, "cruz", None)):
        authorize(
            db,
            facility,
            person,
            contact_id=contact or "cruz-mother",
            idempotency_key=f"matrix-{person}",
            actor=actor,
            at=T,
        )


MATRIX = DbTemplate("access_matrix", build)


@dataclass(frozen=True)
class World:
    """The records one request names: a facility, a person and theirs."""

    facility: str
    person: str
    contact: str
    rule: str
    notice: int
    appeal: int
    hold: str
    phone: str


def world(
    db: Database, facility: str, person: str, contact: str, rule: str, phone: str, hold_of: str
) -> World:
    """``hold_of``: whose held call stands for the facility's call path."""
    notices = [n.id for n in list_notices(db, facility, person)]
    appeals = [a.id for a in list_appeals(db, facility, at=T, person_id=person)]
    with db.transaction() as session:
        hold = session.scalars(
            select(SessionRow.hold_id).where(
                SessionRow.facility_id == facility,
                SessionRow.idempotency_key == f"matrix-{hold_of}",
            )
        ).one()
    assert hold is not None
    return World(facility, person, contact, rule, max(notices), max(appeals), hold, phone)


# What each subject may do to its own records (its own person, contact, case or
# facility). Everything else is refused.
READS = {
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
APPEALS = {
    Action.APPEAL_FILE,
    Action.APPEAL_ANSWER,
    Action.APPEAL_EXTEND,
    Action.APPEAL_ESCALATE,
    Action.APPEAL_WITHDRAW,
    Action.APPEAL_LATE,
}
MAY: dict[str, set[Action]] = {
    "observer": READS,
    "records": READS
    | APPEALS
    | {
        Action.PERSON_MANAGE,
        Action.CONTACT_MANAGE,
        Action.APPROVAL_DECIDE,
        Action.NOTICE_ACKNOWLEDGE,
        Action.DELIVERY_RETRY,
        Action.ORDER_MANAGE,
    },
    "visiting": READS
    | {
        Action.APPROVAL_DECIDE,
        Action.NOTICE_ACKNOWLEDGE,
        Action.VISITOR_DECIDE,
        Action.VISIT_BOOK,
        Action.VISIT_MANAGE,
    },
    "security": READS | {Action.RULE_IMPOSE, Action.RULE_LIFT},
    "warden": READS
    | APPEALS
    | {
        Action.APPROVAL_DECIDE,
        Action.RULE_IMPOSE,
        Action.RULE_LIFT,
        Action.NOTICE_ACKNOWLEDGE,
        Action.VISITOR_DECIDE,
        Action.VISITOR_FLAGGED,
        Action.VISIT_BOOK,
        Action.VISIT_MANAGE,
        Action.ORDER_MANAGE,
        Action.RETALIATION_READ,
        Action.RETALIATION_REVIEW,
    },
    "admin": set(Action) - {Action.CALL_SETUP},
    "person": {
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
    },
    "counsel": {
        Action.FACILITY_READ,
        Action.PERSON_READ,
        Action.CONTACT_READ,
        Action.RULE_READ,
        Action.DECISION_READ,
        Action.NOTICE_READ,
        Action.APPEAL_FILE,
        Action.APPEAL_READ,
        Action.APPEAL_ESCALATE,
        Action.APPEAL_WITHDRAW,
        Action.COMPLIANCE_READ,
        Action.ORDER_READ,
        Action.RETALIATION_READ,
        Action.VISITOR_READ,
        Action.VISIT_READ,
        Action.VISIT_BOOK,
    },
    "family": {
        Action.FACILITY_READ,
        Action.PERSON_READ,
        Action.CONTACT_READ,
        Action.DECISION_READ,
        Action.APPEAL_FILE,
        Action.VISITOR_APPLY,
        Action.VISITOR_READ,
        Action.VISIT_READ,
        Action.VISIT_BOOK,
    },
    "court": {Action.FACILITY_READ, Action.RULE_READ, Action.COMPLIANCE_READ, Action.ORDER_READ},
    "telephony": {Action.CALL_SETUP, Action.CALL_READ},
}
# Records each kind of caller never sees even its own of (so a refusal there is
# a 404, not a 403): which path and query names name such a record.
BINDINGS: dict[str, tuple[Kind, tuple[Binding, ...]]] = {
    **{
        role.value: (Kind.STAFF, (Binding(USP, role=role),))
        for role in (
            Role.OBSERVER,
            Role.RECORDS,
            Role.VISITING,
            Role.SECURITY,
            Role.WARDEN,
            Role.ADMIN,
        )
    },
    "person": (Kind.PERSON, (Binding(USP, person_id="salazar"),)),
    "counsel": (Kind.COUNSEL, (Binding(USP, person_id="salazar"),)),
    "family": (Kind.FAMILY, (Binding(USP, contact_id="wife"),)),
    "court": (Kind.COURT, (Binding(USP, case_number="CV-17"),)),
    "telephony": (Kind.MACHINE, (Binding(USP, job=Job.TELEPHONY),)),
}
# Staff and machines are bound to a facility: someone else's is another
# facility's. The people concerned are bound to a person: someone else's is
# another person's at the same facility.
FACILITY_BOUND = {"observer", "records", "visiting", "security", "warden", "admin", "telephony"}


@pytest.fixture
def db_template() -> DbTemplate:
    return MATRIX


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    action: Action
    across: bool = False  # over every facility the caller is bound to, not one

    @property
    def names_a_record(self) -> bool:
        return "{" in self.path

    @property
    def probes(self) -> bool:
        """Names a record the worlds here have none of, or no print batch: a
        let-through request may then answer 404."""
        names = set(re.findall(r"{(\w+)", self.path))
        return bool(names - KNOWN) or "batch_id" in names


def _api_routes(routes: Any) -> Iterator[APIRoute]:
    """Every route, also those of included routers (kept as routers of their own)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)


def routes_of(app: Any, *, pages: bool = False) -> list[Route]:
    """The API's routes (bearer or session), or with ``pages`` the web pages'
    (include_in_schema=False, a session cookie only)."""
    found: list[Route] = []
    for route in _api_routes(app.routes):
        if route.include_in_schema == pages or PUBLIC.match(route.path):
            continue
        if pages and PUBLIC_PAGES.match(route.path):
            continue
        guards = [
            dependency.call
            for dependency in _dependencies(route.dependant)
            if isinstance(dependency.call, Guard | AcrossFacilities)
        ]
        action = guards[0].action if guards else None
        across = any(isinstance(guard, AcrossFacilities) for guard in guards)
        for method in sorted(route.methods):
            found.append(Route(method, route.path, action, across))  # type: ignore[arg-type]
    return found


def _dependencies(dependant: Any) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


class _Probe(dict[str, object]):
    """Path values; a name no world holds (a record kinline has no fixture for
    here) gets an id nothing has."""

    def __missing__(self, key: str) -> str:
        return "2147483000"


KNOWN = {
    "person_id",
    "contact_id",
    "rule_id",
    "notice_id",
    "appeal_id",
    "hold_id",
    "batch_id",
    "e164",
    "channel",
}


@dataclass
class Caller:
    client: TestClient
    token: str

    def send(self, route: Route, values: World, *, person_filter: bool = True) -> int:
        path = route.path.format_map(
            _Probe(
                person_id=values.person,
                contact_id=values.contact,
                rule_id=values.rule,
                notice_id=values.notice,
                appeal_id=values.appeal,
                hold_id=values.hold,
                batch_id=1,
                e164=values.phone,
                channel="phone",
            )
        )
        params = {"facility_id": values.facility}
        if person_filter and route.method == "GET" and not route.names_a_record:
            params["person_id"] = values.person
        if route.path == "/v1/decisions":
            params["contact_id"] = values.contact
        headers = {"Authorization": f"Bearer {self.token}"}
        body = None if route.method in ("GET", "DELETE") else {}
        response = self.client.request(
            route.method, path, params=params, json=body, headers=headers
        )
        assert response.status_code != 500, (route, response.text)
        return response.status_code


@pytest.fixture
def app_client(db: Database) -> Iterator[tuple[TestClient, Database]]:
    with TestClient(create_app(db), raise_server_exceptions=False) as client:
        yield client, db


def caller_for(db: Database, client: TestClient, label: str, facility: str | None = None) -> Caller:
    kind, bindings = BINDINGS[label]
    subject = add_subject(db, f"{label}-caller", kind, at=T, actor="test", bindings=bindings)
    secret = issue_token(db, subject.id, facility_id=facility, at=T, actor="test")[1]
    return Caller(client, secret)


def worlds(db: Database) -> dict[str, World]:
    return {
        "salazar": world(db, USP, "salazar", "wife", "order-cv-17", "+12135550147", "okafor"),
        "okafor": world(
            db, USP, "okafor", "okafor-sister", "order-cv-99", "+13035550111", "okafor"
        ),
        "cruz": world(db, EAST, "cruz", "cruz-mother", "order-cv-55", "+12125550122", "cruz"),
    }


def test_every_route_declares_its_action(app_client: tuple[TestClient, Database]) -> None:
    client, _db = app_client
    undeclared = [(r.method, r.path) for r in routes_of(client.app) if r.action is None]
    assert undeclared == []
    assert len(routes_of(client.app)) >= 40


@pytest.mark.parametrize("label", sorted(BINDINGS))
def test_each_caller_on_its_own_records_and_on_someone_elses(
    app_client: tuple[TestClient, Database], label: str
) -> None:
    client, db = app_client
    places = worlds(db)
    caller = caller_for(db, client, label)
    own = places["salazar"]
    other = places["cruz"] if label in FACILITY_BOUND else places["okafor"]
    routes = sorted(routes_of(client.app), key=lambda r: (r.method != "GET", r.path))
    wrong: list[tuple[str, str, str, int]] = []
    for route in routes:
        # A court's own records are its case's, not a person's: its lists are
        # asked unfiltered.
        status = caller.send(route, own, person_filter=label != "court")
        if route.action in MAY[label]:
            if status in (401, 403) or (status == 404 and not route.probes):
                wrong.append(("own, let through", route.method, route.path, status))
        elif status not in (403, 404):
            wrong.append(("own, refused", route.method, route.path, status))
        if route.across or (label not in FACILITY_BOUND and not route.names_a_record):
            continue  # the facility itself: not another's, for the people concerned
        status = caller.send(route, other, person_filter=label != "court")
        refused = {404} if label in FACILITY_BOUND or route.action in MAY[label] else {403, 404}
        if status not in refused:
            wrong.append(("another's", route.method, route.path, status))
    assert not wrong, "\n".join(map(str, wrong))


# --- what lists show ----------------------------------------------------------


def _get(caller: Caller, url: str, **params: str) -> Any:
    response = caller.client.get(
        url, params=params, headers={"Authorization": f"Bearer {caller.token}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_lists_show_each_caller_only_its_own(app_client: tuple[TestClient, Database]) -> None:
    client, db = app_client
    person = caller_for(db, client, "person")
    assert [p["id"] for p in _get(person, "/v1/people")] == ["salazar"]
    assert {n["person_id"] for n in _get(person, "/v1/notices")} == {"salazar"}
    assert {a["person_id"] for a in _get(person, "/v1/appeals")} == {"salazar"}
    rules = _get(person, "/v1/rules", at="2024-06-20T10:00")
    assert {r["person"] for r in rules} == {"salazar", "all"}
    counsel = caller_for(db, client, "counsel")
    assert {a["person_id"] for a in _get(counsel, "/v1/appeals")} == {"salazar"}
    # Counsel sees the privileged contact of the person they represent.
    contacts = {c["id"]: c for c in _get(counsel, "/v1/contacts")}
    assert contacts["counsel"]["phones"] == ["+12125550199"]
    family = caller_for(db, client, "family")
    assert [c["id"] for c in _get(family, "/v1/contacts")] == ["wife"]
    assert [p["id"] for p in _get(family, "/v1/people")] == ["salazar"]
    court = caller_for(db, client, "court")
    ordered = _get(court, "/v1/rules", at="2024-06-20T10:00")
    assert [r["id"] for r in ordered] == ["order-cv-17"]
    # Security staff have no need of counsel's contact: it is not listed to them.
    security = caller_for(db, client, "security")
    listed = {c["id"] for c in _get(security, "/v1/contacts", person_id="salazar")}
    assert "counsel" not in listed
    assert "wife" in listed
    admin = caller_for(db, client, "admin")
    assert {p["id"] for p in _get(admin, "/v1/people")} == {"salazar", "okafor"}
    assert [f["id"] for f in _get(admin, "/v1/facilities")] == [USP]


# --- the abuses that were possible with scopes ----------------------------------


def _post(caller: Caller, url: str, body: dict[str, Any], **params: str) -> int:
    response = caller.client.post(
        url, json=body, params=params, headers={"Authorization": f"Bearer {caller.token}"}
    )
    assert response.status_code != 500, response.text
    return response.status_code


def test_no_one_acts_for_someone_else(app_client: tuple[TestClient, Database]) -> None:
    client, db = app_client
    places = worlds(db)
    mine, theirs = places["salazar"], places["okafor"]
    observer = caller_for(db, client, "observer")
    telephony = caller_for(db, client, "telephony")
    person = caller_for(db, client, "person")
    filing = {"filed_by": "person", "filer": "x", "text": "Please explain."}
    # An observer files no appeal for anyone, nor acknowledges anyone's notice.
    assert _post(observer, "/v1/appeals", {**filing, "person_id": "okafor"}) == 403
    assert _post(observer, f"/v1/notices/{theirs.notice}/acknowledge", {"by": "x"}) == 403
    # The telephony platform withdraws no one's appeal: to it, appeals are not there.
    assert _post(telephony, f"/v1/appeals/{theirs.appeal}/withdraw", {"reason": "x"}) == 404
    # The person acts for themself only: another's appeal, notice or filing is not there.
    assert _post(person, f"/v1/appeals/{theirs.appeal}/withdraw", {"reason": "x"}) == 404
    assert _post(person, f"/v1/notices/{theirs.notice}/acknowledge", {"by": "x"}) == 404
    assert _post(person, "/v1/appeals", {**filing, "person_id": "okafor"}) == 404
    assert _post(person, f"/v1/notices/{mine.notice}/acknowledge", {"by": "R. Salazar"}) == 200
    admin = caller_for(db, client, "admin")
    appeals = {a["id"]: a for a in _get(admin, "/v1/appeals")}
    assert appeals[theirs.appeal]["status"] != "withdrawn"
    notices = {n["id"]: n for n in _get(admin, "/v1/notices")}
    assert notices[theirs.notice]["acknowledged"] is False
    assert notices[mine.notice]["acknowledged"] is True


# --- tokens that can be stopped -------------------------------------------------


def test_a_revoked_token_is_refused_on_the_next_request(
    app_client: tuple[TestClient, Database],
) -> None:
    client, db = app_client
    kind, bindings = BINDINGS["observer"]
    subject = add_subject(db, "revoked", kind, at=T, actor="test", bindings=bindings)
    info, secret = issue_token(db, subject.id, facility_id=USP, at=T, actor="test")
    caller = Caller(client, secret)
    assert _get(caller, "/v1/people")
    revoke_token(db, info.id, at=datetime.now(UTC), actor="test")
    response = client.get("/v1/people", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401


def test_an_expired_token_is_refused(app_client: tuple[TestClient, Database]) -> None:
    client, db = app_client
    kind, bindings = BINDINGS["admin"]
    subject = add_subject(db, "expiring", kind, at=T, actor="test", bindings=bindings)
    secret = issue_token(
        db, subject.id, facility_id=USP, at=T, actor="test", expires_at=T + timedelta(days=1)
    )[1]
    response = client.get("/v1/people", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_a_token_for_one_facility_does_not_reach_another(
    app_client: tuple[TestClient, Database],
) -> None:
    client, db = app_client
    # An admin at both facilities, with a token for the east one only.
    both = (Binding(USP, role=Role.ADMIN), Binding(EAST, role=Role.ADMIN))
    subject = add_subject(db, "regional", Kind.STAFF, at=T, actor="test", bindings=both)
    secret = issue_token(db, subject.id, facility_id=EAST, at=T, actor="test")[1]
    caller = Caller(client, secret)
    assert [p["id"] for p in _get(caller, "/v1/people")] == ["cruz"]
    response = client.get(
        "/v1/people",
        params={"facility_id": USP},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 404
    assert response.json()["field"] == "facility_id"


# --- the web pages: a session cookie only --------------------------------------


def test_every_page_declares_its_action(app_client: tuple[TestClient, Database]) -> None:
    client, _db = app_client
    pages = routes_of(client.app, pages=True)
    assert ("GET", "/") in {(r.method, r.path) for r in pages}
    assert [(r.method, r.path) for r in pages if r.action is None] == []


def _page_path(route: Route, values: World) -> str:
    return route.path.format_map(
        _Probe(
            person_id=values.person,
            contact_id=values.contact,
            rule_id=values.rule,
            notice_id=values.notice,
            appeal_id=values.appeal,
            hold_id=values.hold,
            e164=values.phone,
            channel="phone",
        )
    )


def test_a_page_sends_a_caller_without_a_session_to_sign_in(
    app_client: tuple[TestClient, Database],
) -> None:
    """Anonymous, or with a bearer token (which opens no page): 303 to /signin."""
    client, db = app_client
    own = worlds(db)["salazar"]
    token = caller_for(db, client, "admin").token
    for route in routes_of(client.app, pages=True):
        path = _page_path(route, own)
        for headers in ({}, {"Authorization": f"Bearer {token}"}):
            answer = client.request(route.method, path, headers=headers, follow_redirects=False)
            assert answer.status_code == 303, (route, headers, answer.text)
            assert answer.headers["location"].startswith("/signin?next=%2F"), route


def _session_for(db: Database, label: str) -> tuple[str, str]:
    """A signed-in session of a new subject of kind ``label``: cookie and CSRF token."""
    kind, bindings = BINDINGS[label]
    login, now = f"{label}-page-caller", datetime.now(UTC)
    subject = add_subject(db, login, kind, at=T, actor="test", bindings=bindings, login=login)
    set_password(db, subject.id, "a long pass phrase 42", at=T, actor="test")
    code = None
    if kind is Kind.STAFF:
        code = pyotp.TOTP(enroll_totp(db, subject.id, at=T, actor="test").secret).now()
    made = sign_in(db, login, "a long pass phrase 42", code, at=now)
    return made.secret, made.csrf_token


@pytest.mark.parametrize("label", sorted(set(BINDINGS) - {"telephony"}))
def test_each_signed_in_caller_on_each_page(
    app_client: tuple[TestClient, Database], label: str
) -> None:
    """The pages answer as the API does: let through what the table ``MAY``
    allows; otherwise 403 (an HTML page) or 404 where the record is hidden."""
    client, db = app_client
    own = worlds(db)["salazar"]
    secret, csrf = _session_for(db, label)
    headers = {"Cookie": f"kinline_session={secret}"}
    wrong: list[tuple[str, str, int]] = []
    for route in routes_of(client.app, pages=True):
        data = None if route.method == "GET" else {"csrf_token": csrf}
        answer = client.request(
            route.method,
            _page_path(route, own),
            params={"facility_id": own.facility},
            headers=headers,
            data=data,
            follow_redirects=False,
        )
        status = answer.status_code
        assert status != 500, (route, answer.text)
        if route.action in MAY[label]:
            if (
                status in (401, 403)
                or (status == 404 and not route.probes)
                or (status == 303 and answer.headers["location"].startswith("/signin"))
            ):
                wrong.append((route.method, route.path, status))
        elif status not in (403, 404):
            wrong.append((route.method, route.path, status))
        else:
            assert answer.headers["content-type"].startswith("text/html"), route
    assert not wrong, wrong
