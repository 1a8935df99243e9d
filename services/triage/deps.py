"""Typed request dependencies: the unit of work, the settings, the clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from services.triage.models import utcnow
from services.triage.service import Clock, Context
from services.triage.settings import Settings
from shared.runtime import runtime_of
from shared.uow import UnitOfWork


async def unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    """One session per request; the route commits. Whatever is not committed rolls back."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        yield UnitOfWork(session, runtime.outbox)


Uow = Annotated[UnitOfWork, Depends(unit_of_work)]


def context_of(request: Request) -> Context:
    settings = runtime_of(request).settings
    assert isinstance(settings, Settings)
    clock: Clock = getattr(request.app.state, "clock", utcnow)
    return Context(warning_share=settings.sla_warning_share, clock=clock)


TriageContext = Annotated[Context, Depends(context_of)]
