"""billing: hourly invoices, monthly agreements and prepaid blocks."""

from __future__ import annotations

from fastapi import FastAPI

from services.billing.api import router
from services.billing.models import outbox
from services.billing.settings import Settings
from shared.web import create_service_app, runtime_lifespan

TAGS = [
    {
        "name": "accounts",
        "description": "Billing accounts: plans (versioned), prepaid blocks, usage, ledger.",
    },
    {"name": "invoices", "description": "Invoices: numbered INV-<year>-<n>, PDF, paid, void."},
    {"name": "tickets", "description": "What closing a ticket would charge."},
    {"name": "notices", "description": "Allowance 80 %/100 % and prepaid block low/exhausted notices."},
    {"name": "periods", "description": "Closing months: overage invoices, as of now or of an instant."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        title="Helpdesk billing",
        description="Hourly invoices, monthly agreements and prepaid blocks. Every answer other than 2xx is "
        "RFC 9457 problem+json.",
        version="1.0.0",
        lifespan=runtime_lifespan(settings, outbox),
        routers=[router],
        openapi_tags=TAGS,
    )
