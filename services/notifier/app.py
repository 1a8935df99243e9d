"""notifier: Email to people and signed webhooks to portals."""

from __future__ import annotations

from fastapi import FastAPI

from services.notifier.models import outbox
from services.notifier.settings import Settings
from shared.web import create_service_app, runtime_lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        title="Helpdesk notifier",
        description="Email to people and signed webhooks to portals.",
        version="1.0.0",
        lifespan=runtime_lifespan(settings, outbox),
        routers=[],
    )
