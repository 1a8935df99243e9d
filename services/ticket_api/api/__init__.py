"""ticket_api's routes, all under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from services.ticket_api.api import agents, contacts, organizations, tickets

router = APIRouter(prefix="/api/v1")
for module in (tickets, organizations, contacts, agents):
    router.include_router(module.router)
