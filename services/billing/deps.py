"""Typed request dependencies: who may read billing and who may change it (admins), the unit
of work, the settings, a job's context (the period close on demand) and the clock."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from services.billing.context import Billing
from services.billing.settings import Settings
from shared.auth import CurrentPrincipal, require_admin, require_scope
from shared.clock import utcnow
from shared.principal import Principal, PrincipalKind
from shared.problems import Forbidden
from shared.runtime import Uow as Uow  # the unit of work, for this service's routes
from shared.runtime import runtime_of


def settings_of(request: Request) -> Settings:
    settings = runtime_of(request).settings
    assert isinstance(settings, Settings)
    return settings


BillingSettings = Annotated[Settings, Depends(settings_of)]


def billing_of(request: Request) -> Billing:
    """What a job run from a route needs: the settings and the runtime's outbox."""
    runtime = runtime_of(request)
    assert isinstance(runtime.settings, Settings)
    return Billing(runtime.settings, runtime.outbox)


BillingJobs = Annotated[Billing, Depends(billing_of)]


def clock(request: Request) -> datetime:
    """Now (tests replace this dependency to pin the time)."""
    return utcnow()


Now = Annotated[datetime, Depends(clock)]


class NotForCustomers(Forbidden):
    slug, title = "billing-not-for-customers", "Billing is read by staff and by portals"


async def billing_reader(principal: CurrentPrincipal) -> Principal:
    """Every billing route's gate: staff, or a portal holding ``billing:read`` (its organizations'
    accounts and invoices). A customer (one contact) never reads the organization's books, which
    list colleagues' tickets and time; their invoices reach the billing address by mail."""
    if principal.kind is PrincipalKind.CUSTOMER:
        raise NotForCustomers("Invoices are mailed to your organization's billing address.")
    require_scope(principal, "billing:read")
    return principal


Reader = Annotated[Principal, Depends(billing_reader)]


async def admin_caller(principal: CurrentPrincipal) -> Principal:
    """The caller, when an admin: only admins change plans, blocks, invoices and periods."""
    require_admin(principal)
    return principal


Admin = Annotated[Principal, Depends(admin_caller)]
