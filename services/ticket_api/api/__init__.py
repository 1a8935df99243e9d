"""ticket_api's routes, all under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from services.ticket_api.api import (
    agents,
    appointments,
    auth,
    clients,
    contacts,
    feedback,
    organizations,
    session,
    ticket_status,
    tickets,
    time_entries,
)

router = APIRouter(prefix="/api/v1")
for module in (
    tickets,
    time_entries,
    appointments,
    feedback,
    ticket_status,
    organizations,
    contacts,
    agents,
    auth,
    session,
    clients,
):
    router.include_router(module.router)

well_known = auth.well_known

# Inbound email: the raw-message door, attachments, SLA documents (services/ticket_api/inbound/).
from services.ticket_api.api import inbound  # noqa: E402  (kept apart: a one-line edit)

router.include_router(inbound.router)
