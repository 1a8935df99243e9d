"""Typed request dependencies: the unit of work, the settings, the clock."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.triage.models import utcnow
from services.triage.service import Clock, Context
from services.triage.settings import Settings
from shared.runtime import Uow as Uow  # the unit of work, for this service's routes
from shared.runtime import runtime_of


def context_of(request: Request) -> Context:
    settings = runtime_of(request).settings
    assert isinstance(settings, Settings)
    clock: Clock = getattr(request.app.state, "clock", utcnow)
    return Context(warning_share=settings.sla_warning_share, clock=clock)


TriageContext = Annotated[Context, Depends(context_of)]
