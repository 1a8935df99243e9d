"""notifier: email to people and signed webhooks to portals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.notifier.api import router
from services.notifier.models import outbox
from services.notifier.runtime import open_notifier
from services.notifier.settings import Settings
from shared.runtime import Runtime
from shared.web import Lifespan, create_service_app, runtime_lifespan

TAGS = [
    {"name": "notifications", "description": "Every email sent: to whom, when, and how it went."},
    {
        "name": "webhooks",
        "description": "Signed webhooks (Standard Webhooks) for portals: subscriptions, deliveries.",
    },
]


def notifier_lifespan(settings: Settings) -> Lifespan:
    """The service runtime, plus the notifier (queue dispatcher, HTTP clients) on top of it."""

    async def attach(app: FastAPI, runtime: Runtime) -> None:
        app.state.notifier = open_notifier(settings, runtime, worker=False)

    base = runtime_lifespan(settings, outbox, on_start=attach)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with base(app):
            try:
                yield
            finally:
                await app.state.notifier.close()

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        title="Helpdesk notifier",
        description="Email to people and signed webhooks to portals. Every answer other than 2xx is "
        "RFC 9457 problem+json.",
        version="1.0.0",
        lifespan=notifier_lifespan(settings),
        routers=[router],
        openapi_tags=TAGS,
    )
