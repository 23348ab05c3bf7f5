"""Routes for court orders as records: record one (with its rules), read them,
upload and fetch the signed PDF, and list the rules that conflict with one.

The routes name their facility in the path. Staff read every order of their
facility (records, wardens and admins record them); a court reads the orders of
its cases; counsel the orders about the people they represent. An order a
caller may not see is answered 404, as if it were not there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field

from kinline.access import Access, Guard, Locator, check
from kinline.bounds import REASON_CHARS, TIME_CHARS
from kinline.changes.court_orders import record_order, upload_document
from kinline.courts import orders
from kinline.courts.orders import CourtOrder, OrderConflict
from kinline.db.engine import Database
from kinline.errors import InvalidInput, NotFound
from kinline.http import admitted, bearer, facility_of, get_db, get_memo, in_thread, moment
from kinline.identity.model import Action, Record, Target
from kinline.people.model import Facility

router = APIRouter(prefix="/v1/facilities/{facility_id}/orders", tags=["orders"])
FacilityId = Annotated[str, Path(max_length=64, description="The facility's id")]
OrderId = Annotated[str, Path(max_length=64, description="The order's id")]


class OrderGuard(Guard):
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
        params: dict[str, str] = {**request.query_params, **request.path_params}
        target = Target(place.id)
        if self.locate is not None:
            try:
                target = await in_thread(self.locate, db, place, params)
            except NotFound:
                raise NotFound("no order with that id is known", field="order_id") from None
        check(subject, self.action, target)
        return Access(db, subject, place, self.action, target)


def order_target(db: Database, place: Facility, params: dict[str, str] | Any) -> Target:
    """The order named by ``order_id``: its person's and its case's."""
    return _target(orders.get_order(db, place.id, params["order_id"]))


def _target(order: CourtOrder) -> Target:
    return Target(
        order.facility_id, Record.ORDER, person_id=order.person, case_number=order.case_number
    )


def _guard(action: Action, locate: Locator | None = None) -> Any:
    return Depends(OrderGuard(action, locate))


class CounselIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="Counsel of record")
    email: str | None = Field(
        default=None, max_length=254, description="Emailed when a rule overrides the order"
    )

    model_config = ConfigDict(extra="forbid")


class OrderIn(BaseModel):
    id: str = Field(
        min_length=1, max_length=64, description="The order's id here", examples=["cv-17"]
    )
    court: str = Field(min_length=1, max_length=200)
    case_number: str = Field(min_length=1, max_length=64, examples=["CV-17"])
    judge: str = Field(min_length=1, max_length=200)
    signed_on: date = Field(description="The date the order was signed")
    text: str = Field(min_length=1, max_length=20_000, description="The order's words")
    person: str | None = Field(
        default=None, max_length=64, description="The person it is about; none: everyone"
    )
    counsel: list[CounselIn] = Field(default_factory=list, max_length=20)
    court_address: str | None = Field(
        default=None, max_length=2_000, description="Postal address for notices"
    )
    court_email: str | None = Field(
        default=None, max_length=254, description="Email for notices to the court"
    )
    rules: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=50,
        description="The rules it creates (SPEC 3): court-order grants and denies; their "
        "authority and case number are the order's",
    )
    existing_rules: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Court-order rules of this case already imposed, to link to the order",
    )
    reason: str | None = Field(
        default=None,
        max_length=REASON_CHARS,
        description="What the notices of its rules say; default: the order by judge and date",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "cv-17",
                    "court": "United States District Court for the District of Colorado",
                    "case_number": "CV-17",
                    "judge": "Hon. M. Alvarez",
                    "signed_on": "2023-06-20",
                    "person": "salazar",
                    "text": "Two 15-minute calls a month with his daughters.",
                    "counsel": [{"name": "D. Ruiz", "email": "druiz@ruizlaw.example"}],
                    "court_email": "cv17-chambers@cod.uscourts.example",
                    "existing_rules": ["order-17"],
                }
            ]
        },
    )


class CounselOut(BaseModel):
    name: str
    email: str | None


class DocumentOut(BaseModel):
    version: int
    sha256: str
    size_bytes: int
    content_type: str
    uploaded_at: datetime
    uploaded_by: str


class OrderOut(BaseModel):
    id: str
    facility_id: str
    court: str
    case_number: str
    judge: str
    signed_on: date
    text: str
    person: str | None
    counsel: list[CounselOut]
    court_address: str | None
    court_email: str | None
    rules: list[str]
    document: DocumentOut | None
    created_at: datetime
    created_by: str


class ConflictOut(BaseModel):
    relation: str = Field(
        description="outranked: the order prevails over the rule; overrides: the rule "
        "prevails over the order's grant"
    )
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


def order_out(order: CourtOrder) -> OrderOut:
    document = order.document
    return OrderOut(
        id=order.id,
        facility_id=order.facility_id,
        court=order.court,
        case_number=order.case_number,
        judge=order.judge,
        signed_on=order.signed_on,
        text=order.text,
        person=order.person,
        counsel=[CounselOut(name=c.name, email=c.email) for c in order.counsel],
        court_address=order.court_address,
        court_email=order.court_email,
        rules=list(order.rules),
        document=None
        if document is None
        else DocumentOut(
            version=document.version,
            sha256=document.sha256,
            size_bytes=document.size_bytes,
            content_type=document.content_type,
            uploaded_at=document.uploaded_at,
            uploaded_by=document.uploaded_by,
        ),
        created_at=order.created_at,
        created_by=order.created_by,
    )


def conflict_out(conflict: OrderConflict) -> ConflictOut:
    return ConflictOut(
        relation=conflict.relation,
        order_rule=conflict.order_rule,
        rule=conflict.rule,
        authority=conflict.authority,
        kind=conflict.kind,
        channel=conflict.channel,
        person=conflict.person,
        text=conflict.text,
        starts_at=conflict.starts_at,
        ends_at=conflict.ends_at,
        imposed_by=conflict.imposed_by,
        imposed_at=conflict.imposed_at,
        reason=conflict.reason,
        authority_cited=conflict.authority_cited,
    )


@router.post("", status_code=201, response_model=OrderOut, summary="Record a court order")
async def create_order(
    facility_id: FacilityId,
    body: OrderIn,
    grant: Annotated[Access, _guard(Action.ORDER_MANAGE)],
) -> OrderOut:
    """Record the order and impose the rules it creates, with their notices, in
    one transaction: a wrong field and nothing is kept."""
    data = body.model_dump(mode="json", exclude_none=True)
    data["counsel"] = [
        {k: v for k, v in c.items() if v is not None} for c in data.get("counsel", [])
    ]
    order = await in_thread(
        record_order, grant.db, grant.facility.id, data, at=datetime.now(UTC), actor=grant.actor
    )
    return order_out(order)


@router.get("", response_model=list[OrderOut], summary="List the court orders")
async def list_orders(
    facility_id: FacilityId, grant: Annotated[Access, _guard(Action.ORDER_READ)]
) -> list[OrderOut]:
    """The facility's orders the caller may see, by date signed."""
    found = await in_thread(orders.list_orders, grant.db, grant.facility.id)
    return [order_out(order) for order in found if grant.sees(_target(order))]


@router.get("/{order_id}", response_model=OrderOut, summary="Get a court order")
async def get_order(
    facility_id: FacilityId,
    order_id: OrderId,
    grant: Annotated[Access, _guard(Action.ORDER_READ, order_target)],
) -> OrderOut:
    """The order: its court, judge, text, counsel, rules and document."""
    return order_out(await in_thread(orders.get_order, grant.db, grant.facility.id, order_id))


@router.get(
    "/{order_id}/conflicts",
    response_model=list[ConflictOut],
    summary="The rules in force that conflict with a court order",
)
async def get_conflicts(
    facility_id: FacilityId,
    order_id: OrderId,
    grant: Annotated[Access, _guard(Action.ORDER_READ, order_target)],
    at: Annotated[
        str | None,
        Query(max_length=TIME_CHARS, description="Local wall time; default now"),
    ] = None,
) -> list[ConflictOut]:
    """Every rule in force that the order outranks, and every rule that
    overrides one of its grants, with who imposed it, when, why and on what
    authority."""
    when = moment(at, grant.facility)
    found = await in_thread(orders.order_conflicts, grant.db, grant.facility.id, order_id, when)
    return [conflict_out(conflict) for conflict in found]


@router.put(
    "/{order_id}/document",
    response_model=DocumentOut,
    summary="Upload a court order's signed PDF",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {orders.PDF_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def put_document(
    facility_id: FacilityId,
    order_id: OrderId,
    request: Request,
    grant: Annotated[Access, _guard(Action.ORDER_MANAGE, order_target)],
) -> DocumentOut:
    """Keep the PDF (the body, ``application/pdf``, at most 1 MiB) as the
    order's newest document; earlier uploads are kept."""
    content = await request.body()
    if not content:
        raise InvalidInput("the body must be the order's PDF", field="document")
    kept = await in_thread(
        upload_document,
        grant.db,
        grant.facility.id,
        order_id,
        content,
        request.headers.get("content-type", ""),
        at=datetime.now(UTC),
        actor=grant.actor,
    )
    return DocumentOut(
        version=kept.version,
        sha256=kept.sha256,
        size_bytes=kept.size_bytes,
        content_type=kept.content_type,
        uploaded_at=kept.uploaded_at,
        uploaded_by=kept.uploaded_by,
    )


@router.get(
    "/{order_id}/document",
    response_class=Response,
    summary="Get a court order's signed PDF",
    responses={200: {"content": {orders.PDF_TYPE: {}}, "description": "The PDF"}},
)
async def get_document(
    facility_id: FacilityId,
    order_id: OrderId,
    grant: Annotated[Access, _guard(Action.ORDER_READ, order_target)],
) -> Response:
    """The newest PDF uploaded; its sha256 in the ETag."""
    document, content = await in_thread(
        orders.order_document, grant.db, grant.facility.id, order_id
    )
    return Response(
        content,
        media_type=orders.PDF_TYPE,
        headers={
            "ETag": f'"{document.sha256}"',
            "Content-Disposition": f'inline; filename="{order_id}.pdf"',
        },
    )
