"""Typed request dependencies: the unit of work, the notifier, and who calls (staff, an admin,
a webhook manager): a route names the caller it admits in its signature."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.notifier.context import Notifier
from shared.auth import CurrentPrincipal, StaffPrincipal, require_admin, require_scope
from shared.principal import Principal
from shared.runtime import Uow as Uow  # the unit of work, for this service's routes


def notifier_of(request: Request) -> Notifier:
    notifier: Notifier = request.app.state.notifier
    return notifier


AppNotifier = Annotated[Notifier, Depends(notifier_of)]


# An agent, admin or service (403 for portals and customers).
StaffCaller = StaffPrincipal


async def admin_caller(principal: CurrentPrincipal) -> Principal:
    require_admin(principal)
    return principal


AdminCaller = Annotated[Principal, Depends(admin_caller)]


async def webhook_manager(principal: CurrentPrincipal) -> Principal:
    require_scope(principal, "webhooks:manage")
    return principal


WebhookManager = Annotated[Principal, Depends(webhook_manager)]
