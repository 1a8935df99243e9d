"""ticket_api: the system of record (organizations, contacts, agents, tickets, messages)."""

from __future__ import annotations

from fastapi import FastAPI

from services.ticket_api.db import outbox
from services.ticket_api.identity import revocations
from services.ticket_api.identity.service import Identity
from services.ticket_api.routes import router, well_known
from services.ticket_api.settings import Settings
from shared.runtime import Runtime
from shared.tokens import KeyStore, TokenIssuer
from shared.web import create_service_app, runtime_lifespan

TAGS = [
    {"name": "tickets", "description": "Open, read, list, update and work tickets."},
    {"name": "time entries", "description": "Time worked on tickets; billing charges it by tier."},
    {"name": "appointments", "description": "Consultants' free slots, bookings with invites, call tasks."},
    {"name": "feedback", "description": "The satisfaction links of the closure mail."},
    {"name": "ticket status", "description": "The page behind the track-your-ticket link of customer mail."},
    {"name": "authentication", "description": "Access tokens: client credentials, agent sign-in, JWKS."},
    {"name": "clients", "description": "OAuth clients of portals and services (admins)."},
    {"name": "organizations", "description": "Customer organizations: support tier, SLA, email domains."},
    {"name": "contacts", "description": "People who open tickets."},
    {"name": "agents", "description": "Consultants: skills, timezone, working hours, capacity."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    async def start_identity(app: FastAPI, runtime: Runtime) -> None:
        keys = KeyStore(settings.keys_dir)
        if settings.env != "prod":
            keys.ensure_key()  # production mounts its keys; development makes one
        if settings.jwks_file is not None and not settings.jwks_url:
            keys.publish(settings.jwks_file)
        issuer = TokenIssuer(keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
        app.state.identity = Identity(issuer=issuer, redis=runtime.redis, settings=settings)
        runtime.start_background(revocations.keep_loaded(runtime.sessions, runtime.redis))

    return create_service_app(
        title="Helpdesk ticket API",
        description="The system of record. Every answer other than 2xx is RFC 9457 problem+json.",
        version="1.0.0",
        lifespan=runtime_lifespan(settings, outbox, on_start=start_identity),
        routers=[router, well_known],
        openapi_tags=TAGS,
    )
