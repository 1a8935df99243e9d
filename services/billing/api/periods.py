"""Closing billing periods now (admins): what the ``close_due_periods`` cron does every five
minutes, on demand — to invoice a month's overage without waiting for the next run, or to
catch up after an outage."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request

from services.billing.deps import BillingRules, Now
from services.billing.models import PeriodCloseResult
from services.billing.period_close import close_periods
from services.billing.tasks import PERIOD_CLOSE_TIME_BUDGET_SECONDS
from shared.auth import CurrentPrincipal, require_admin
from shared.problems import problem_responses
from shared.runtime import runtime_of

router = APIRouter(prefix="/periods", tags=["periods"])


@router.post("/close", responses=problem_responses(401, 403, 422))
async def close_due_periods(
    request: Request, principal: CurrentPrincipal, billing: BillingRules, now: Now
) -> PeriodCloseResult:
    """Close every account's last complete month (in its own timezone) that is not closed yet:
    draw what is still waiting, issue the overage invoices. Each (account, month) is closed
    once, whoever runs it; calling again changes nothing. Stops after 20 seconds of work
    (`finished: false`): call again to go on."""
    require_admin(principal)
    report = await close_periods(
        runtime_of(request).sessions, billing, now=now, time_budget_seconds=PERIOD_CLOSE_TIME_BUDGET_SECONDS
    )
    return PeriodCloseResult(**asdict(report))
