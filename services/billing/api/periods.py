"""Closing billing periods now (admins): what the ``close_due_periods`` cron does every five
minutes, on demand — to invoice a month's overage without waiting for the next run, to catch
up after an outage, or to close one organization as of a given instant (corrections, audits)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.billing import accounts
from services.billing.deps import Admin, BillingJobs, Now, Uow
from services.billing.errors import InvalidPeriod
from services.billing.models import IDEMPOTENCY
from services.billing.period_close import close_periods
from services.billing.schemas import PeriodCloseRequest, PeriodCloseResult
from services.billing.tasks import PERIOD_CLOSE_TIME_BUDGET_SECONDS
from shared.idempotency import IdempotencyKey
from shared.problems import problem_responses
from shared.runtime import runtime_of

router = APIRouter(prefix="/periods", tags=["periods"])


@router.post("/close", response_model=PeriodCloseResult, responses=problem_responses(401, 403, 404, 422))
async def close_due_periods(
    request: Request,
    uow: Uow,
    principal: Admin,
    billing: BillingJobs,
    now: Now,
    body: PeriodCloseRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Close every complete month (in each account's own timezone) that is not closed yet,
    oldest first: draw what is still waiting, issue the overage invoices (dated by the month's
    end). With `organization_id` and `as_of`, only that organization's months complete at that
    instant. Each (account, month) is closed once, whoever runs it; calling again changes
    nothing. Stops after 20 seconds of work (`finished: false`): call again to go on. Send an
    `Idempotency-Key` to retry safely."""
    chosen = body or PeriodCloseRequest()
    if chosen.as_of is not None and chosen.as_of > now:
        raise InvalidPeriod("as_of is in the future: only complete periods can be closed.")
    if chosen.organization_id is not None:
        await accounts.visible_account(uow.session, principal, chosen.organization_id)

    async def effect() -> str:
        # The close writes through sessions of its own, batch by batch: end this request's read
        # transaction first (on SQLite an open reader keeps their commits waiting: 'locked').
        await uow.session.commit()
        report = await close_periods(
            runtime_of(request).sessions,
            billing,
            now=now,
            as_of=chosen.as_of,
            organization_id=chosen.organization_id,
            time_budget_seconds=PERIOD_CLOSE_TIME_BUDGET_SECONDS,
        )
        return PeriodCloseResult(**asdict(report)).model_dump_json()

    return await IDEMPOTENCY.answer_once(
        uow,
        caller=principal.audit_ref,
        key=idempotency_key,
        request={"period_close": chosen.model_dump(mode="json")},
        status=200,
        effect=effect,
    )
