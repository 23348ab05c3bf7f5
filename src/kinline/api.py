"""The FastAPI app: each feature's router, one database, problem+json errors."""

from __future__ import annotations

from fastapi import FastAPI

from kinline.calls.api import router as decisions_router
from kinline.db.engine import Database
from kinline.http import install_problem_handlers
from kinline.notices.api import router as notices_router
from kinline.people.api import router as people_router
from kinline.policy.api import router as rules_router


def create_app(db: Database | None = None) -> FastAPI:
    app = FastAPI(
        title="kinline",
        version="0.1.0",
        description=(
            "Decides whether an incarcerated person may call, video-call or visit a contact, "
            "explains every decision by the rules responsible, and records every change."
        ),
    )
    app.state.db = db or Database()
    install_problem_handlers(app)
    for router in (people_router, rules_router, decisions_router, notices_router):
        app.include_router(router)
    return app
