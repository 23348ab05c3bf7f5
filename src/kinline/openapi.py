"""The OpenAPI document as kinline's machine clients build against it.

The telephony platform, a facility's records system and a monitoring service
generate their clients from ``/openapi.json``, so the document names operations
for people (``authorizeCall``, ``imposeRule``), not after Python functions, and
says how every error is answered once: Problem (RFC 9457) and its issue items
are schema components, and each error status is one response component that
every operation refers to. Inlining them (FastAPI's way for app-wide
``responses``) made a document of about a megabyte that did not validate: the
inlined schema's ``$defs`` cannot be reached from outside it.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from kinline.http import PROBLEM, PROBLEM_REF, PROBLEM_RESPONSES, problem_schemas

OPERATIONS: dict[tuple[str, str], str] = {
    # people and their contacts
    ("GET", "/v1/facilities"): "listFacilities",
    ("GET", "/v1/people"): "listPeople",
    ("POST", "/v1/people"): "admitPerson",
    ("GET", "/v1/people/{person_id}"): "getPerson",
    ("PATCH", "/v1/people/{person_id}"): "editPerson",
    ("POST", "/v1/people/{person_id}/transfer"): "transferPerson",
    ("POST", "/v1/people/{person_id}/release"): "releasePerson",
    ("GET", "/v1/contacts"): "listContacts",
    ("POST", "/v1/contacts"): "addContact",
    ("PATCH", "/v1/contacts/{contact_id}"): "editContact",
    ("POST", "/v1/contacts/{contact_id}/phones"): "addPhone",
    ("DELETE", "/v1/contacts/{contact_id}/phones/{e164}"): "removePhone",
    ("POST", "/v1/contacts/{contact_id}/approvals"): "approveContact",
    ("POST", "/v1/contacts/{contact_id}/approvals/{channel}/revoke"): "revokeApproval",
    # rules and decisions
    ("GET", "/v1/rules"): "listRulesInForce",
    ("POST", "/v1/rules"): "imposeRule",
    ("POST", "/v1/rules/{rule_id}/lift"): "liftRule",
    ("GET", "/v1/decisions"): "getDecision",
    # the call path
    ("POST", "/v1/calls/authorize"): "authorizeCall",
    ("POST", "/v1/calls/{hold_id}/connect"): "connectCall",
    ("POST", "/v1/calls/{hold_id}/end"): "endCall",
    ("POST", "/v1/calls/{hold_id}/release"): "releaseCall",
    ("GET", "/v1/calls/{hold_id}"): "getCall",
    # notices and their delivery
    ("GET", "/v1/notices"): "listNotices",
    ("GET", "/v1/notices/overdue"): "listOverdueNotices",
    ("GET", "/v1/notices/{notice_id}"): "getNotice",
    ("GET", "/v1/notices/{notice_id}/pdf"): "getNoticePdf",
    ("GET", "/v1/notices/{notice_id}/html"): "getNoticeHtml",
    ("POST", "/v1/notices/{notice_id}/acknowledge"): "acknowledgeNotice",
    ("GET", "/v1/notices/{notice_id}/deliveries"): "listNoticeDeliveries",
    ("GET", "/v1/print-batches"): "listPrintBatches",
    ("GET", "/v1/print-batches/{batch_id}/pdf"): "getPrintBatchPdf",
    # appeals
    ("POST", "/v1/appeals"): "fileAppeal",
    ("GET", "/v1/appeals"): "listAppeals",
    ("GET", "/v1/appeals/{appeal_id}"): "getAppeal",
    ("POST", "/v1/appeals/{appeal_id}/answer"): "answerAppeal",
    ("POST", "/v1/appeals/{appeal_id}/extend"): "extendAppeal",
    ("POST", "/v1/appeals/{appeal_id}/escalate"): "escalateAppeal",
    ("POST", "/v1/appeals/{appeal_id}/withdraw"): "withdrawAppeal",
    # sign-in
    ("POST", "/v1/auth/sign-in"): "signIn",
    ("POST", "/v1/auth/sign-out"): "signOut",
    ("GET", "/v1/auth/me"): "getMe",
    ("POST", "/v1/auth/totp"): "verifyTotp",
    ("POST", "/v1/auth/password-reset"): "requestPasswordReset",
    ("POST", "/v1/auth/password-reset/complete"): "completePasswordReset",
    # visitors
    ("GET", "/v1/visitors"): "listVisitors",
    ("POST", "/v1/visitors"): "applyToVisit",
    ("GET", "/v1/visitors/{visitor_id}"): "getVisitor",
    ("POST", "/v1/visitors/{visitor_id}/id-check"): "checkVisitorId",
    ("POST", "/v1/visitors/{visitor_id}/consent"): "recordVisitorConsent",
    ("POST", "/v1/visitors/{visitor_id}/withdraw"): "withdrawVisitorApplication",
    ("POST", "/v1/visitors/{visitor_id}/decision"): "decideVisitor",
    ("POST", "/v1/visitors/{visitor_id}/restrictions"): "restrictVisitor",
    (
        "POST",
        "/v1/visitors/{visitor_id}/restrictions/{restriction_id}/lift",
    ): "liftVisitorRestriction",
    ("GET", "/v1/visit-settings"): "getVisitSettings",
    ("PUT", "/v1/visit-settings"): "setVisitSettings",
    # visits
    ("POST", "/v1/visits/rooms"): "addVisitRoom",
    ("GET", "/v1/visits/rooms"): "listVisitRooms",
    ("POST", "/v1/visits/templates"): "addVisitTemplate",
    ("GET", "/v1/visits/templates"): "listVisitTemplates",
    ("POST", "/v1/visits/blocks"): "addVisitBlock",
    ("GET", "/v1/visits/slots"): "listVisitSlots",
    ("GET", "/v1/visits/availability"): "getVisitAvailability",
    ("POST", "/v1/visits/bookings"): "bookVisit",
    ("GET", "/v1/visits/bookings"): "listBookings",
    ("GET", "/v1/visits/bookings/{booking_id}"): "getBooking",
    ("POST", "/v1/visits/bookings/{booking_id}/confirm"): "confirmBooking",
    ("POST", "/v1/visits/bookings/{booking_id}/answer"): "answerBooking",
    ("POST", "/v1/visits/bookings/{booking_id}/cancel"): "cancelBooking",
    ("POST", "/v1/visits/bookings/{booking_id}/reschedule"): "rescheduleBooking",
    ("POST", "/v1/visits/bookings/{booking_id}/check-in"): "checkInBooking",
    ("POST", "/v1/visits/bookings/{booking_id}/complete"): "completeBooking",
    ("POST", "/v1/visits/bookings/{booking_id}/no-show"): "markBookingNoShow",
    ("POST", "/v1/visits/non-associations"): "addNonAssociation",
    ("POST", "/v1/visits/requests"): "submitVisitRequest",
    ("GET", "/v1/visits/requests"): "listVisitRequests",
    ("GET", "/v1/visits/requests/{request_id}"): "getVisitRequest",
    ("POST", "/v1/visits/requests/{request_id}/withdraw"): "withdrawVisitRequest",
    ("POST", "/v1/visits/allocations"): "allocateVisits",
    # webhooks
    ("POST", "/v1/facilities/{facility_id}/webhooks"): "createWebhook",
    ("GET", "/v1/facilities/{facility_id}/webhooks"): "listWebhooks",
    ("DELETE", "/v1/facilities/{facility_id}/webhooks/{webhook_id}"): "deleteWebhook",
    ("POST", "/v1/facilities/{facility_id}/webhooks/{webhook_id}/resume"): "resumeWebhook",
    # court orders
    ("POST", "/v1/facilities/{facility_id}/orders"): "recordCourtOrder",
    ("GET", "/v1/facilities/{facility_id}/orders"): "listCourtOrders",
    ("GET", "/v1/facilities/{facility_id}/orders/{order_id}"): "getCourtOrder",
    ("GET", "/v1/facilities/{facility_id}/orders/{order_id}/conflicts"): "listCourtOrderConflicts",
    ("PUT", "/v1/facilities/{facility_id}/orders/{order_id}/document"): "uploadCourtOrderDocument",
    ("GET", "/v1/facilities/{facility_id}/orders/{order_id}/document"): "getCourtOrderDocument",
    ("GET", "/v1/facilities/{facility_id}/orders/{order_id}/compliance"): "getOrderCompliance",
    ("GET", "/v1/facilities/{facility_id}/compliance-settings"): "getComplianceSettings",
    ("PUT", "/v1/facilities/{facility_id}/compliance-settings"): "setComplianceSettings",
    # the letterhead of notices, and the retaliation review
    ("GET", "/v1/letterhead"): "getLetterhead",
    ("PUT", "/v1/letterhead"): "setLetterhead",
    ("GET", "/v1/retaliation"): "listRetaliationFlags",
    ("POST", "/v1/people/{person_id}/retaliation/findings"): "recordRetaliationFinding",
    ("GET", "/v1/people/{person_id}/retaliation/pdf"): "getRetaliationReportPdf",
}
"""Every operation's id, by method and path: what a generated client calls it.
A route missing here keeps FastAPI's generated id, and tests/integration/
test_openapi.py fails until it is named."""

RESPONSE_NAMES: dict[str, str] = {
    "400": "BadRequest",
    "401": "Unauthenticated",
    "403": "Forbidden",
    "404": "NotFound",
    "409": "Conflict",
    "413": "ContentTooLarge",
    "422": "InvalidInput",
    "503": "ServiceUnavailable",
}
"""The response component of each error status: a Problem, described once."""

TAGS: list[dict[str, str]] = [
    {"name": "calls", "description": "The telephony platform's call path: authorize, connect, "
     "end, release; every set-up under an idempotency key."},
    {"name": "decisions", "description": "Whether a person may contact someone now, and why."},
    {"name": "rules", "description": "Rules in force; imposing and lifting them."},
    {"name": "people", "description": "Facilities, people in custody and their contacts."},
    {"name": "notices", "description": "Written notices of every change, in the person's "
     "language."},
    {"name": "delivery", "description": "How notices reached people: deliveries, print batches."},
    {"name": "appeals", "description": "Appeals against decisions and their answers."},
    {"name": "visitors", "description": "Visitor applications, checks and restrictions."},
    {"name": "visits", "description": "Visit rooms, sessions, bookings and weekly requests."},
    {"name": "sign-in", "description": "Staff and people sign in; password resets."},
    {"name": "webhooks", "description": "Signed HTTP deliveries of kinline's domain events."},
    {"name": "orders", "description": "Court orders as records: their rules, PDF and conflicts."},
    {"name": "retaliation", "description": "Flags of adverse actions soon after a protected "
     "activity, reviewers' findings, and the report for counsel."},
]  # fmt: skip


def build_document(app: FastAPI) -> dict[str, Any]:
    """The document FastAPI makes, with the operation ids of ``OPERATIONS`` and
    every Problem response a reference to its component."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        tags=TAGS,
        servers=app.servers,
    )
    components = document.setdefault("components", {})
    components.setdefault("schemas", {}).update(problem_schemas())
    responses = components.setdefault("responses", {})
    for status, declared in PROBLEM_RESPONSES.items():
        responses[RESPONSE_NAMES[str(status)]] = declared
    used_tags = set()
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            named = OPERATIONS.get((method.upper(), path))
            if named is not None:
                operation["operationId"] = named
            used_tags.update(operation.get("tags", []))
            for status, answer in operation.get("responses", {}).items():
                if status in RESPONSE_NAMES and _is_problem(answer):
                    operation["responses"][status] = {
                        "$ref": f"#/components/responses/{RESPONSE_NAMES[status]}"
                    }
    document["tags"] = [tag for tag in TAGS if tag["name"] in used_tags]
    for schema in document["components"]["schemas"].values():
        _whole_branches(schema)
    return _plain_schema_names(document)


def _whole_branches(schema: dict[str, Any]) -> None:
    """A body that names one of two fields (AuthorizeIn: ``dialed`` or
    ``contact_id``) says so as ``oneOf`` branches that only require one field;
    a generated client then builds each branch as a model with that field alone
    and loses the others. Each branch is made the whole object with its field
    required (and not null), which validates the same bodies."""
    branches = schema.get("oneOf")
    properties = schema.get("properties")
    if not branches or not properties or schema.get("type") != "object":
        return
    whole = {key: value for key, value in schema.items() if key not in ("oneOf", "examples")}
    made = []
    for branch in branches:
        if set(branch) - {"properties", "required"} or not branch.get("required"):
            return
        named = dict(properties)
        for name in branch["required"]:
            if name not in properties:
                return
            kinds = properties[name].get("anyOf", [properties[name]])
            present = [kind for kind in kinds if kind.get("type") != "null"]
            named[name] = {
                **{k: v for k, v in properties[name].items() if k != "anyOf"},
                **present[0],
            }
        first = branch["required"][0]
        made.append(
            {
                **whole,
                "title": f"{schema.get('title', '')}By{_camel(first)}",
                "properties": named,
                "required": [*branch["required"], *schema.get("required", [])],
            }
        )
    schema["oneOf"] = made


def _camel(name: str) -> str:
    return "".join(word.capitalize() for word in name.split("_"))


def _plain_schema_names(document: dict[str, Any]) -> dict[str, Any]:
    """Schemas two modules name alike (``AnswerIn`` of appeals and of bookings)
    get FastAPI's module-path names (``kinline__appeals__schemas__AnswerIn``),
    and a generated client refuses the second of two models titled alike. Each
    becomes its feature's name and its own (``AppealsAnswerIn``), title too."""
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    renamed = {old: _plain_name(old) for old in schemas if old.startswith("kinline__")}
    if not renamed:
        return document
    text = json.dumps(document)
    for old, new in renamed.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    plain: dict[str, Any] = json.loads(text)
    named = plain["components"]["schemas"]
    for old, new in renamed.items():
        named[new] = {**named.pop(old), "title": new}
    plain["components"]["schemas"] = dict(sorted(named.items()))
    return plain


def _plain_name(qualified: str) -> str:
    """``kinline__visits__booking_schemas__AnswerIn`` -> ``VisitsBookingAnswerIn``."""
    *modules, name = qualified.split("__")[1:]
    words = [w for m in modules for w in m.split("_") if w not in ("schemas", "api")]
    return "".join(word.capitalize() for word in words) + name


def _is_problem(answer: dict[str, Any]) -> bool:
    content = answer.get("content", {})
    return set(content) == {PROBLEM} and content[PROBLEM].get("schema") == {"$ref": PROBLEM_REF}


def install_openapi(app: FastAPI) -> None:
    """Serve ``build_document`` as /openapi.json (made once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
