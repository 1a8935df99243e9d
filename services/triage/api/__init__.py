"""triage's routes, all under ``/api/v1/triage`` (the gateway sends that prefix here)."""

from __future__ import annotations

from fastapi import APIRouter

from services.triage.api import configuration, tickets

router = APIRouter(prefix="/api/v1/triage")
for module in (tickets, configuration):
    router.include_router(module.router)
router.include_router(tickets.preview_router)
