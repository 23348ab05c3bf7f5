"""Adding the pages to kinline's app: each feature's router, /static, and HTML
answers for the pages' errors (the API keeps problem+json)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from kinline.web.account.pages import router as account_router
from kinline.web.counsel.pages import router as counsel_router
from kinline.web.family.pages import router as family_router
from kinline.web.guard import install_page_errors
from kinline.web.kiosk.pages import router as kiosk_router
from kinline.web.render import WEB
from kinline.web.staff.pages import router as staff_router

ROUTERS = (account_router, staff_router, counsel_router, kiosk_router, family_router)


def mount(app: FastAPI) -> None:
    """Call once the API's error handlers are installed."""
    install_page_errors(app)
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")
    for router in ROUTERS:
        app.include_router(router)
