"""billing: Hourly invoices, monthly agreements and prepaid blocks."""

from __future__ import annotations

from fastapi import FastAPI

from services.billing.models import outbox
from services.billing.settings import Settings
from shared.web import create_service_app, runtime_lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        title="Helpdesk billing",
        description="Hourly invoices, monthly agreements and prepaid blocks.",
        version="1.0.0",
        lifespan=runtime_lifespan(settings, outbox),
        routers=[],
    )
