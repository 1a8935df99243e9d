"""triage: priority, business-hours SLA, assignment and escalation."""

from __future__ import annotations

from fastapi import FastAPI

from services.triage.api import router
from services.triage.context import Clock
from services.triage.models import outbox
from services.triage.settings import Settings
from shared.web import create_service_app, runtime_lifespan

TAGS = [
    {
        "name": "tickets",
        "description": "Triage decisions with their breakdown, SLA status, triage on demand.",
    },
    {"name": "configuration", "description": "Priority matrix, SLA policies, business calendars."},
]


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """``clock`` replaces the wall clock (tests)."""
    settings = settings or Settings()
    app = create_service_app(
        title="Helpdesk triage",
        description="Priority, business-hours SLA, assignment and escalation. "
        "Every answer other than 2xx is RFC 9457 problem+json.",
        version="1.0.0",
        lifespan=runtime_lifespan(settings, outbox),
        routers=[router],
        openapi_tags=TAGS,
    )
    if clock is not None:
        app.state.clock = clock
    return app
