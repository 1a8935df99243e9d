"""notifier's routes: ``/api/v1/notifications/…`` and ``/api/v1/webhooks/…`` (the gateway routes
these prefixes here)."""

from __future__ import annotations

from fastapi import APIRouter

from services.notifier.api import notifications, webhooks

router = APIRouter(prefix="/api/v1")
for module in (notifications, webhooks):
    router.include_router(module.router)
