"""billing's routes, all under ``/api/v1/billing``."""

from __future__ import annotations

from fastapi import APIRouter

from services.billing.api import accounts, invoices, notices, periods, tickets

router = APIRouter(prefix="/api/v1/billing")
for module in (accounts, invoices, notices, periods, tickets):
    router.include_router(module.router)
