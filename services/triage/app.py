"""triage: Priority, business-hours SLA, assignment and escalation."""

from __future__ import annotations

from fastapi import FastAPI

from services.triage.models import outbox
from services.triage.settings import Settings
from shared.web import create_service_app, runtime_lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        title="Helpdesk triage",
        description="Priority, business-hours SLA, assignment and escalation.",
        version="1.0.0",
        lifespan=runtime_lifespan(settings, outbox),
        routers=[],
    )
