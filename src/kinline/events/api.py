"""Routes for a facility's webhooks: create, list, delete, resume (admin only).

A webhook receives the facility's domain events (CloudEvents, one POST each,
in order) signed with its secret, which is shown once, when it is created.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from kinline.access import Access, Guard, check
from kinline.events import service
from kinline.http import admitted, bearer, facility_of, get_db, get_memo, in_thread
from kinline.identity.model import Action, Target

router = APIRouter(prefix="/v1/facilities/{facility_id}/webhooks", tags=["webhooks"])
FacilityId = Annotated[str, Path(max_length=64, description="The facility's id")]
WebhookId = Annotated[str, Path(max_length=40, description="The webhook's id")]


class FacilityGuard(Guard):
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
        check(subject, self.action, target)
        return Access(db, subject, place, self.action, target)


Manage = Annotated[Access, Depends(FacilityGuard(Action.WEBHOOK_MANAGE, None))]


class WebhookIn(BaseModel):
    url: str = Field(
        min_length=1,
        max_length=2000,
        description="Where to POST each event (http or https)",
        examples=["https://pbx.example.org/kinline/events"],
    )

    model_config = {
        "extra": "forbid",
        "json_schema_extra": {"examples": [{"url": "https://pbx.example.org/kinline/events"}]},
    }


class WebhookOut(BaseModel):
    id: str
    facility_id: str
    url: str
    created_at: datetime
    created_by: str
    suspended_at: datetime | None = Field(
        default=None,
        description=(
            "When deliveries stopped because one event failed too many times in a row"
            " (KINLINE_WEBHOOK_GIVE_UP_ATTEMPTS); null while it is live"
        ),
    )
    suspended_reason: str | None = Field(
        default=None, description="Which event failed, how often, and its last answer"
    )


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description=(
            "Signs every delivery: X-Kinline-Signature is sha256=<hex HMAC-SHA256 of "
            "'<X-Kinline-Timestamp>.' and the body>. Shown only now."
        )
    )


def _out(hook: service.Webhook) -> WebhookOut:
    return WebhookOut(
        id=hook.id,
        facility_id=hook.facility_id,
        url=hook.url,
        created_at=hook.created_at,
        created_by=hook.created_by,
        suspended_at=hook.suspended_at,
        suspended_reason=hook.suspended_reason,
    )


@router.post("", status_code=201, response_model=WebhookCreated, summary="Create a webhook")
async def create_webhook(body: WebhookIn, grant: Manage) -> WebhookCreated:
    """Subscribe ``url`` to the facility's domain events from now on."""
    hook, secret = await in_thread(
        service.create_webhook,
        grant.db,
        grant.facility.id,
        body.url,
        at=datetime.now(UTC),
        actor=grant.actor,
    )
    return WebhookCreated(**_out(hook).model_dump(), secret=secret)


@router.get("", response_model=list[WebhookOut], summary="List the webhooks")
async def list_webhooks(grant: Manage) -> list[WebhookOut]:
    """The facility's webhooks (without their secrets), suspended ones with why."""
    hooks = await in_thread(service.list_webhooks, grant.db, grant.facility.id)
    return [_out(hook) for hook in hooks]


@router.delete("/{webhook_id}", status_code=204, summary="Delete a webhook")
async def delete_webhook(webhook_id: WebhookId, grant: Manage) -> Response:
    """Stop sending events to the webhook."""
    await in_thread(
        service.delete_webhook,
        grant.db,
        grant.facility.id,
        webhook_id,
        at=datetime.now(UTC),
        actor=grant.actor,
    )
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/resume", response_model=WebhookOut, summary="Resume a suspended webhook"
)
async def resume_webhook(webhook_id: WebhookId, grant: Manage) -> WebhookOut:
    """Send events to a suspended webhook again, from the one it stopped at, in
    order; each event's tries are counted afresh. 409 if it is not suspended."""
    hook = await in_thread(
        service.resume_webhook,
        grant.db,
        grant.facility.id,
        webhook_id,
        at=datetime.now(UTC),
        actor=grant.actor,
    )
    return _out(hook)
