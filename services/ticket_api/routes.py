"""ticket_api's routes, all under ``/api/v1``: each room's ``routes.py``, in one router."""

from __future__ import annotations

from fastapi import APIRouter

from services.ticket_api.customer_pages import routes as customer_pages
from services.ticket_api.feedback import routes as feedback
from services.ticket_api.identity import routes as identity
from services.ticket_api.inbound import routes as inbound
from services.ticket_api.organizations import routes as organizations
from services.ticket_api.scheduling import routes as scheduling
from services.ticket_api.tickets import routes as tickets

router = APIRouter(prefix="/api/v1")
for room_router in (
    tickets.router,
    tickets.time_entries_router,
    scheduling.router,
    customer_pages.feedback_router,
    feedback.router,
    customer_pages.router,
    organizations.router,
    organizations.contacts_router,
    identity.agents_router,
    identity.router,
    identity.session_router,
    identity.clients_router,
    inbound.router,
):
    router.include_router(room_router)

well_known = identity.well_known
