"""ticket_api: the system of record (organizations, contacts, agents, tickets, messages)."""

from __future__ import annotations

from fastapi import FastAPI

from services.ticket_api.api import router
from services.ticket_api.models import outbox
from services.ticket_api.settings import Settings
from shared.web import create_service_app, runtime_lifespan

TAGS = [
    {"name": "tickets", "description": "Open, read, list, update and work tickets."},
    {"name": "time entries", "description": "Time worked on tickets; billing charges it by tier."},
    {"name": "organizations", "description": "Customer organizations: support tier, SLA, email domains."},
    {"name": "contacts", "description": "People who open tickets."},
    {"name": "agents", "description": "Consultants: skills, timezone, working hours, capacity."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        title="Helpdesk ticket API",
        description="The system of record. Every answer other than 2xx is RFC 9457 problem+json.",
        version="1.0.0",
        lifespan=runtime_lifespan(settings, outbox),
        routers=[router],
        openapi_tags=TAGS,
    )
