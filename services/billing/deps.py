"""Typed request dependencies: the unit of work, billing's rules, the clock."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from services.billing.service import Billing
from services.billing.settings import Settings
from shared.clock import utcnow
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
