"""Routes for staff: how each notice was delivered, and the print batches."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import BaseModel

from kinline.access import Access, allowed
from kinline.identity.model import Action
from kinline.notices.api import notice_target
from kinline.notices.delivery.model import Delivery, PrintBatch
from kinline.notices.delivery.service import list_deliveries, list_print_batches, print_batch_pdf

router = APIRouter(prefix="/v1", tags=["delivery"])
NoticeId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Notice id")]
BatchId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Print batch id")]


class AttemptOut(BaseModel):
    attempted_at: str
    outcome: str
    error: str | None


class DeliveryOut(BaseModel):
    id: int
    notice_id: int
    channel: str
    recipient: str
    status: str
    attempts: int
    next_attempt_at: str | None
    message_id: str | None
    last_error: str | None
    sent_at: str | None
    batch_id: int | None
    history: list[AttemptOut]


class PrintBatchOut(BaseModel):
    id: int
    housing_unit: str
    day: str
    notice_count: int
    size: int
    created_at: str


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        notice_id=d.notice_id,
        channel=d.channel,
        recipient=d.recipient,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=_iso(d.next_attempt_at),
        message_id=d.message_id,
        last_error=d.last_error,
        sent_at=_iso(d.sent_at),
        batch_id=d.batch_id,
        history=[
            AttemptOut(
                attempted_at=a.attempted_at.astimezone(UTC).isoformat(),
                outcome=a.outcome,
                error=a.error,
            )
            for a in d.history
        ],
    )


def _batch_out(b: PrintBatch) -> PrintBatchOut:
    return PrintBatchOut(
        id=b.id,
        housing_unit=b.housing_unit,
        day=b.day.isoformat(),
        notice_count=b.notice_count,
        size=b.size,
        created_at=b.created_at.astimezone(UTC).isoformat(),
    )


@router.get("/notices/{notice_id}/deliveries", response_model=list[DeliveryOut])
def notice_deliveries(
    notice_id: NoticeId,
    grant: Annotated[Access, allowed(Action.DELIVERY_READ, notice_target)],
) -> list[DeliveryOut]:
    """How a notice reached its person: the kiosk inbox, each email, the printed
    copy; each with its attempts."""
    return [_delivery_out(d) for d in list_deliveries(grant.db, grant.facility.id, notice_id)]


@router.get("/print-batches", response_model=list[PrintBatchOut])
def print_batches(
    grant: Annotated[Access, allowed(Action.DELIVERY_READ)],
) -> list[PrintBatchOut]:
    """The daily PDFs of notices, one per housing unit, oldest first."""
    return [_batch_out(b) for b in list_print_batches(grant.db, grant.facility.id)]


@router.get(
    "/print-batches/{batch_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The PDF"}},
)
def print_batch(
    batch_id: BatchId, grant: Annotated[Access, allowed(Action.DELIVERY_READ)]
) -> Response:
    """One print batch as a PDF, a notice a page."""
    pdf = print_batch_pdf(grant.db, grant.facility.id, batch_id)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="print-batch-{batch_id}.pdf"'},
    )
