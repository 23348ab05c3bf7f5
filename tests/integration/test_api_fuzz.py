"""Every operation of the OpenAPI document, sent requests made from its own
schemas by schemathesis (hypothesis underneath), by every kind of caller.

The callers, records and database are the access matrix's (``test_access_matrix``):
a staff member of each role, a person, counsel, family, a court and the
telephony platform, at a facility with a second person and beside a second
facility. Half of the requests name that world's own records (its facility,
person, contact, order, notice, appeal, held call) wherever a path or query
parameter of that name is asked for, so that they reach the route's work
rather than stopping at "no such facility"; the other half are as generated.
Requests are generated from the schemas, both as the schemas allow (text of
any characters, NUL and lone control characters included) and as they forbid
(wrong types, values out of range, missing fields, malformed parameters).

Whatever is sent, each answer must be the API's own: never a 5xx and never an
exception out of the app; and every refusal is problem+json whose ``status``
is the answer's. ``KINLINE_FUZZ_EXAMPLES`` sets the requests per operation and
caller (default 8).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import schemathesis
from _databases import DbTemplate
from _identity import token_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_access_matrix import BINDINGS, MATRIX, USP, world

from kinline.api import create_app
from kinline.db.engine import Database

NEGATIVE = schemathesis.GenerationMode.NEGATIVE
EXAMPLES = int(os.environ.get("KINLINE_FUZZ_EXAMPLES", "8"))
# The access matrix's world: salazar (with his wife, order and notices) at USP;
# okafor's held call stands for the facility's call path.
WORLD = ("salazar", "wife", "order-cv-17", "+1 213 555 0147", "okafor")

# The order's PDF is sent as its bytes.
schemathesis.serializer.alias("application/pdf", "application/octet-stream")


@pytest.fixture
def db_template() -> DbTemplate:
    return MATRIX


def known_records(db: Database) -> dict[str, str]:
    person, contact, order, phone, hold_of = WORLD
    found = world(db, USP, person, contact, order, phone, hold_of)
    return {
        "facility_id": found.facility,
        "person_id": found.person,
        "contact_id": found.contact,
        "rule_id": found.rule,
        "order_id": found.rule,
        "notice_id": str(found.notice),
        "appeal_id": str(found.appeal),
        "hold_id": found.hold,
        "e164": found.phone,
    }


def named(case: Any, known: dict[str, str]) -> None:
    """The world's own records in the case's path and query, where asked for."""
    for parameters in (case.path_parameters, case.query):
        for name in list(parameters or {}):
            if name in known:
                parameters[name] = known[name]


def fault(response: Any) -> str | None:
    """What is wrong with an answer, if anything."""
    status = response.status_code
    if status >= 500:
        return f"answered {status}: {response.text[:300]}"
    if status < 400:
        return None
    kind = ",".join(response.headers.get("content-type", []))  # each header's values
    if not kind.startswith("application/problem+json"):
        return f"refused {status} as {kind!r}, not problem+json"
    try:
        body = json.loads(response.text)
    except ValueError:
        return f"refused {status} with a body that is not JSON"
    if body.get("status") != status:
        return f"refused {status} with a problem of status {body.get('status')!r}"
    return None


@pytest.mark.parametrize("who", sorted(BINDINGS))
def test_every_operation_answers_every_caller_as_documented(db: Database, who: str) -> None:
    kind, bindings = BINDINGS[who]
    headers = {"Authorization": f"Bearer {token_for(db, who, kind, *bindings)}"}
    known = known_records(db)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(db))
    faults: dict[str, str] = {}
    sent: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=st.one_of(operation.as_strategy(), operation.as_strategy(NEGATIVE)))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def send(case: Any) -> None:
            label = case.operation.label
            sent[label] = sent.get(label, 0) + 1
            if sent[label] % 2:
                named(case, known)
            try:
                response = case.call(headers=headers)
            except Exception as error:  # an exception out of the app: the finding
                faults.setdefault(label, f"raised {error!r:.300} for {case.body!r:.200}")
                return
            found = fault(response)
            if found is not None:
                faults.setdefault(label, f"{found} for {case.path_parameters} {case.query}")

        send()
    documented = {
        f"{method.upper()} {path}"
        for path, item in create_app(db).openapi()["paths"].items()
        for method in item
    }
    assert set(sent) == documented  # every operation was sent requests
    assert not faults, "\n".join(f"{label}: {why}" for label, why in sorted(faults.items()))
