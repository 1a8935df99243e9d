"""Typed request dependencies: who may read billing, the unit of work, billing's rules, the clock."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from services.billing.service import Billing
from services.billing.settings import Settings
from shared.auth import CurrentPrincipal, require_scope
from shared.clock import utcnow
from shared.principal import Principal, PrincipalKind
from shared.problems import Forbidden
from shared.runtime import Uow as Uow  # the unit of work, for this service's routes
from shared.runtime import runtime_of


def billing_of(request: Request) -> Billing:
    runtime = runtime_of(request)
    assert isinstance(runtime.settings, Settings)
    return Billing(runtime.settings, runtime.outbox)


BillingRules = Annotated[Billing, Depends(billing_of)]


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
