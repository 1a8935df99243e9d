"""Typed request dependencies: the unit of work, billing's rules, the clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from services.billing.service import Billing
from services.billing.settings import Settings
from shared.clock import utcnow
from shared.runtime import runtime_of
from shared.uow import UnitOfWork


async def unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    """One session per request; the route commits. Whatever is not committed rolls back."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        yield UnitOfWork(session, runtime.outbox)


Uow = Annotated[UnitOfWork, Depends(unit_of_work)]


def billing_of(request: Request) -> Billing:
    runtime = runtime_of(request)
    assert isinstance(runtime.settings, Settings)
    return Billing(runtime.settings, runtime.outbox)


BillingRules = Annotated[Billing, Depends(billing_of)]


def clock(request: Request) -> datetime:
    """Now (tests replace this dependency to pin the time)."""
    return utcnow()


Now = Annotated[datetime, Depends(clock)]
