"""Typed request dependencies: the unit of work, the callers (staff, admins), the settings and
the clock of a triage step."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.triage.context import Clock, Context
from services.triage.settings import Settings
from shared.auth import CurrentPrincipal, StaffPrincipal, require_admin
from shared.clock import utcnow
from shared.principal import Principal
from shared.runtime import Uow as Uow  # the unit of work, for this service's routes
from shared.runtime import runtime_of


def context_of(request: Request) -> Context:
    settings = runtime_of(request).settings
    assert isinstance(settings, Settings)
    clock: Clock = getattr(request.app.state, "clock", utcnow)
    return Context(warning_share=settings.sla_warning_share, clock=clock)


TriageContext = Annotated[Context, Depends(context_of)]


async def admin_caller(principal: CurrentPrincipal) -> Principal:
    """The caller, when an admin (403 for everyone else)."""
    require_admin(principal)
    return principal


Staff = StaffPrincipal
"""The caller, when an agent, admin or service (403 for portals and customers)."""
Admin = Annotated[Principal, Depends(admin_caller)]
