"""Routes for a court order's compliance report and the facility's status rule.

``GET /v1/facilities/{facility_id}/orders/{order_id}/compliance``: the report
(``courts.report``) for an order record, or a court-order rule, from the month
``from`` to ``to``, as JSON, CSV, PDF or a standalone HTML document
(``format``). With ``KINLINE_CHECKPOINT_KEY`` naming an Ed25519 private key
(PEM file), the report embeds a fresh signed audit checkpoint; otherwise it
says it is unsigned. An order for everyone counts everyone's calls: only
staff and its court read its report (as on the order's page).

``GET``/``PUT /v1/facilities/{facility_id}/compliance-settings``: the rule
for a period's status (admin only).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from kinline.access import Access, Guard, Locator, Params, check
from kinline.audit.checkpoint import load_private_key
from kinline.courts import report_render
from kinline.courts.compliance import (
    compliance_settings,
    configure_compliance_settings,
    order_report,
    report_subject,
)
from kinline.courts.report import StatusRule
from kinline.db.engine import Database
from kinline.errors import InvalidInput, NotFound
from kinline.http import admitted, bearer, facility_of, get_db, get_memo, in_thread
from kinline.identity.model import Action, Kind, Record, Target
from kinline.people.model import Facility

router = APIRouter(prefix="/v1/facilities/{facility_id}", tags=["orders"])
FacilityId = Annotated[str, Path(max_length=64, description="The facility's id")]
OrderId = Annotated[
    str, Path(max_length=64, description="An order record's id, or a court-order rule's id")
]
Month = Annotated[str, Query(max_length=20, pattern=r"^\d{4}-\d{2}$", examples=["2024-05"])]
KEY_ENV = "KINLINE_CHECKPOINT_KEY"


class InPath(Guard):
    """``Guard`` for a route that names its facility in the path."""

    async def __call__(  # type: ignore[override]
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        facility_id: FacilityId,
    ) -> Access:
        db, memo = await get_db(request), await get_memo(request)
        subject = await admitted(request, db, credentials)
        place = await facility_of(db, memo, subject, facility_id)
        target = Target(place.id)
        if self.locate is not None:
            params: dict[str, str] = {**request.query_params, **request.path_params}
            try:
                target = await in_thread(self.locate, db, place, params)
            except NotFound:
                raise NotFound("no order with that id is known", field="order_id") from None
        check(subject, self.action, target)
        return Access(db, subject, place, self.action, target)


def order_target(db: Database, place: Facility, params: Params) -> Target:
    """The order named in the path: whose it is and which court case made it."""
    subject = report_subject(db, place.id, params["order_id"])
    record = Record.ORDER if subject.record is not None else Record.RULE
    return Target(place.id, record, person_id=subject.person_id, case_number=subject.case_number)


_order: Locator = order_target
Read = Annotated[Access, Depends(InPath(Action.COMPLIANCE_READ, _order))]
Settings = Annotated[Access, Depends(InPath(Action.COMPLIANCE_SETTINGS, None))]

MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
    "html": "text/html; charset=utf-8",
}


@router.get(
    "/orders/{order_id}/compliance",
    summary="A court order's compliance report",
    responses={
        200: {
            "description": "The report, in the format asked for",
            "content": {
                "application/json": {},
                "text/csv": {},
                "application/pdf": {},
                "text/html": {},
            },
        }
    },
)
async def get_order_compliance(
    order_id: OrderId,
    grant: Read,
    first: Annotated[str, Query(alias="from", max_length=20, examples=["2024-01"])],
    last: Annotated[str, Query(alias="to", max_length=20, examples=["2024-12"])],
    format: Annotated[Literal["json", "csv", "pdf", "html"], Query()] = "json",
) -> Response:
    """Each requirement of the order with, per period, what it entitled, what was
    delivered (calls outside policy counted apart), the shortfall, a status by
    the facility's rule and the evidence: refused attempts, rules that stood
    over the order, holds that lapsed, visits cancelled. ``from`` and ``to`` are
    months (``YYYY-MM``)."""
    if grant.target.person_id is None and grant.subject.kind not in (Kind.STAFF, Kind.COURT):
        raise NotFound("no order with that id is known", field="order_id")
    key = await in_thread(_signing_key)
    report = await in_thread(
        order_report,
        grant.db,
        grant.facility.id,
        order_id,
        first,
        last,
        at=datetime.now(UTC),
        key=key,
        timeline=format in ("pdf", "html"),  # only the pages draw one
    )
    name = f"compliance-{order_id}-{first}-{last}"
    if format == "json":
        return Response(report_render.json_bytes(report), media_type="application/json")
    if format == "csv":
        body: bytes = report_render.as_csv(report).encode("utf-8")
    elif format == "pdf":
        body = await in_thread(report_render.as_pdf, report)
    else:
        body = (await in_thread(report_render.as_html, report)).encode("utf-8")
    headers = {"Content-Disposition": f'inline; filename="{name}.{format}"'}
    return Response(body, media_type=MEDIA[format], headers=headers)


def _signing_key() -> Ed25519PrivateKey | None:
    """The key named by ``KINLINE_CHECKPOINT_KEY`` (a PEM file), or None."""
    path = os.environ.get(KEY_ENV)
    if not path:
        return None
    try:
        pem = FilePath(path).read_bytes()
    except OSError as error:
        raise InvalidInput(
            f"the checkpoint key {KEY_ENV} names cannot be read ({error.strerror})", field="key"
        ) from None
    return load_private_key(pem)


class StatusRuleIO(BaseModel):
    compliant_percent: int = Field(
        ge=1, le=100, description="A period is compliant at this share of what it entitled"
    )
    partial_percent: int = Field(
        ge=0, le=100, description="A period is partial at this share; below it, non-compliant"
    )

    model_config = {
        "extra": "forbid",
        "json_schema_extra": {"examples": [{"compliant_percent": 100, "partial_percent": 50}]},
    }


@router.get(
    "/compliance-settings",
    response_model=StatusRuleIO,
    summary="The facility's compliance status rule",
)
async def get_compliance_settings(grant: Settings) -> StatusRuleIO:
    """When a period of a court order counts as compliant or partial (the
    defaults, 100% and 50%, where the facility set none)."""
    rule = await in_thread(compliance_settings, grant.db, grant.facility.id)
    return StatusRuleIO(
        compliant_percent=rule.compliant_percent, partial_percent=rule.partial_percent
    )


@router.put(
    "/compliance-settings",
    response_model=StatusRuleIO,
    summary="Set the facility's compliance status rule",
)
async def set_compliance_settings(body: StatusRuleIO, grant: Settings) -> StatusRuleIO:
    """Set both percentages at once (partial at most compliant); audited on the
    facility's chain."""
    rule = await in_thread(
        configure_compliance_settings,
        grant.db,
        grant.facility.id,
        StatusRule(body.compliant_percent, body.partial_percent),
        at=datetime.now(UTC),
        actor=grant.actor,
    )
    return StatusRuleIO(
        compliant_percent=rule.compliant_percent, partial_percent=rule.partial_percent
    )
