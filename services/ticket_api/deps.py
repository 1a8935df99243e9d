"""Typed request dependencies: the unit of work, the authenticated caller (any, staff, admin),
sign-in resources."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request

from services.ticket_api.caller import Caller, require_admin, require_staff
from services.ticket_api.identity.service import Identity
from services.ticket_api.settings import Settings
from shared.auth import CurrentPrincipal, require_scope
from shared.logging import request_id_var
from shared.runtime import Uow as Uow  # the unit of work, for this service's routes
from shared.runtime import runtime_of


def settings_of(request: Request) -> Settings:
    settings = runtime_of(request).settings
    assert isinstance(settings, Settings)
    return settings


AppSettings = Annotated[Settings, Depends(settings_of)]


def identity_of(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity


SignIn = Annotated[Identity, Depends(identity_of)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def caller_with(scope: str) -> Callable[[CurrentPrincipal], Coroutine[Any, Any, Caller]]:
    """A dependency giving the authenticated caller, refusing portals without ``scope``."""

    async def dependency(principal: CurrentPrincipal) -> Caller:
        require_scope(principal, scope)
        return Caller(principal=principal, request_id=request_id_var.get())

    return dependency


CurrentCaller = Annotated[Caller, Depends(caller_with("tickets:read"))]
WritingCaller = Annotated[Caller, Depends(caller_with("tickets:write"))]


async def staff_caller(caller: CurrentCaller) -> Caller:
    """The caller, when an agent, an admin or a service (403 otherwise)."""
    require_staff(caller)
    return caller


async def admin_caller(caller: CurrentCaller) -> Caller:
    """The caller, when an admin or a service (403 otherwise)."""
    require_admin(caller)
    return caller


StaffCaller = Annotated[Caller, Depends(staff_caller)]
AdminCaller = Annotated[Caller, Depends(admin_caller)]
