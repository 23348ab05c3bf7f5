"""The FastAPI app: each feature's router, one database, problem+json errors."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from anyio import to_thread
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from kinline.appeals.api import router as appeals_router
from kinline.appeals.service import sweep_appeals
from kinline.calls.api import LeanCallPath, calls_router, decisions_router
from kinline.calls.path import sweep
from kinline.changes.api import router as changes_router
from kinline.changes.orders_api import router as orders_router
from kinline.changes.visitor_api import router as visitor_decisions_router
from kinline.courts.report_api import router as compliance_router
from kinline.courts.retaliation_api import router as retaliation_router
from kinline.db.engine import Database
from kinline.events.api import router as webhooks_router
from kinline.events.serve import start_publisher_from_env
from kinline.http import PROBLEM_RESPONSES, install_problem_handlers
from kinline.limits import BodyLimit, TextBodies
from kinline.notices.api import router as notices_router
from kinline.notices.delivery.api import router as delivery_router
from kinline.notices.delivery.worker import start_worker_from_env
from kinline.openapi import install_openapi
from kinline.people.api import router as people_router
from kinline.policy.api import router as rules_router
from kinline.signin_api import router as signin_router
from kinline.visits.api import router as visitors_router
from kinline.visits.booking_api import router as visits_router
from kinline.visits.request_api import router as visit_requests_router
from kinline.visits.upkeep import sweep_visits
from kinline.web.app import mount as mount_pages

log = logging.getLogger("kinline.sweep")


def sweep_interval() -> float:
    """Seconds between hold sweeps in the server (``KINLINE_SWEEP_SECONDS``, 30; 0: off)."""
    return float(os.environ.get("KINLINE_SWEEP_SECONDS", "30"))


def sweep_once(db: Database) -> None:
    now = datetime.now(UTC)
    sweep(db, at=now)
    sweep_appeals(db, at=now, actor="kinline:sweep")
    sweep_visits(db, now=now)


async def sweep_forever(db: Database, interval: float) -> None:
    """Every ``interval`` seconds: expire and settle call set-ups whose time is up,
    and deny by silence the appeals whose answer is past due.

    Each server process runs one; every settlement re-checks its call under the
    person's ledger lock, and appeals are taken with SKIP LOCKED, so several
    processes sweeping at once settle each once.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            await to_thread.run_sync(lambda: sweep_once(db))
        except Exception:
            log.exception("sweep failed; retrying at the next interval")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    interval = sweep_interval()
    task = asyncio.create_task(sweep_forever(app.state.db, interval)) if interval > 0 else None
    stop_worker = start_worker_from_env(app.state.db)  # `kinline serve --worker`
    stop_publisher = start_publisher_from_env(app.state.db)  # `kinline serve --publisher`
    try:
        yield
    finally:
        stop_worker()
        stop_publisher()
        if task is not None:
            task.cancel()


DOCS_ASSETS = "/docs-assets"
"""Where the Swagger UI and ReDoc scripts are served, by kinline itself: the
API's pages work with no internet (fastapi-offline ships the assets)."""


def create_app(db: Database | None = None) -> FastAPI:
    app = FastAPIOffline(
        static_url=DOCS_ASSETS,
        # Swagger UI would fetch a validity badge from validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
        lifespan=lifespan,
        responses=PROBLEM_RESPONSES,
        title="kinline",
        version="0.1.0",
        description=(
            "Decides whether an incarcerated person may call, video-call or visit a contact, "
            "explains every decision by the rules responsible, and records every change."
        ),
    )
    app.state.db = db or Database()
    install_problem_handlers(app)
    install_openapi(app)
    app.add_middleware(TextBodies)
    app.add_middleware(BodyLimit)
    # Outermost: authorize and end answered without the framework (kinline.calls.api).
    app.add_middleware(LeanCallPath)
    for router in (
        people_router,
        rules_router,
        changes_router,
        decisions_router,
        calls_router,
        notices_router,
        appeals_router,
        delivery_router,
        signin_router,
        visitors_router,
        visitor_decisions_router,
        visits_router,
        visit_requests_router,
        webhooks_router,
        orders_router,
        compliance_router,
        retaliation_router,
    ):
        app.include_router(router)
    mount_pages(app)
    return app
