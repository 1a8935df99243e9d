from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlmodel import SQLModel

from services.billing import accounts
from services.billing import ledger as usage_ledger
from services.billing import repository as repo
from services.billing.deps import Admin, BillingSettings, Now, Reader, Uow
from services.billing.models import IDEMPOTENCY, UsageKind
from services.billing.schemas import (
    AccountPublic,
    AccountUpdate,
    BlockCreate,
    BlockPublic,
    PlanCreate,
    PlanPublic,
    UsageEntryPublic,
    UsageSummary,
)
from shared.idempotency import IdempotencyKey
from shared.pagination import Page, decode_cursor, page_of
from shared.problems import problem_responses

router = APIRouter(prefix="/accounts", tags=["accounts"])

PeriodKey = Annotated[
    str | None, Query(pattern=r"^\d{4}-\d{2}$", description="2026-11 (default: the current month)")
]


@router.get("", responses=problem_responses(401, 422))
async def list_accounts(
    uow: Uow,
    principal: Reader,
    now: Now,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[AccountPublic]:
    """Billing accounts the caller may see (all for staff, their own organizations' for others)."""
    found = await repo.list_accounts(
        uow.session, scope=principal.org_scope(), limit=limit + 1, after=decode_cursor(cursor)
    )
    items = [await accounts.account_public(uow.session, account, now=now) for account in found]
    return page_of(items, [account.organization_id for account in found], limit)


@router.get("/{organization_id}", responses=problem_responses(401, 404, 422))
async def get_account(organization_id: UUID, uow: Uow, principal: Reader, now: Now) -> AccountPublic:
    """The plan in force, this month's allowance use (agreements) or prepaid minutes left (blocks)."""
    account = await accounts.visible_account(uow.session, principal, organization_id)
    return await accounts.account_public(uow.session, account, now=now)


@router.patch("/{organization_id}", responses=problem_responses(401, 403, 404, 422))
async def update_account(
    organization_id: UUID, body: AccountUpdate, uow: Uow, principal: Admin, now: Now
) -> AccountPublic:
    """Where invoices and notices go (admins)."""
    account = await accounts.visible_account(uow.session, principal, organization_id)
    if "billing_email" in body.model_fields_set:
        account.billing_email = body.billing_email
    await uow.session.flush()
    await uow.commit()
    return await accounts.account_public(uow.session, account, now=now)


async def _created_once(
    uow: Uow,
    principal: Reader,
    key: str | None,
    what: str,
    body: SQLModel,
    effect: Callable[[], Awaitable[str]],
) -> Response:
    """201 with what ``effect`` created, once per Idempotency-Key (a retry replays the answer)."""
    request = {"creates": what, **body.model_dump(mode="json")}
    return await IDEMPOTENCY.answer_once(
        uow, caller=principal.audit_ref, key=key, request=request, status=201, effect=effect
    )


@router.get("/{organization_id}/plans", responses=problem_responses(401, 404, 422))
async def list_plans(organization_id: UUID, uow: Uow, principal: Reader) -> list[PlanPublic]:
    """Every version of the account's plan, oldest first."""
    account = await accounts.visible_account(uow.session, principal, organization_id)
    return [
        accounts.plan_public(plan) for plan in await repo.plans_of(uow.session, [account.organization_id])
    ]


@router.post(
    "/{organization_id}/plans",
    status_code=201,
    response_model=PlanPublic,
    responses=problem_responses(401, 403, 404, 422),
)
async def add_plan(
    organization_id: UUID,
    body: PlanCreate,
    uow: Uow,
    principal: Admin,
    settings: BillingSettings,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Change the plan from a date (admins). Earlier charges keep the plan they were made under.
    `increment_minutes` is required. Send an `Idempotency-Key` to retry safely."""

    async def effect() -> str:
        account = await accounts.visible_account(uow.session, principal, organization_id)
        plan = await accounts.add_plan(uow.session, settings, principal, account, body)
        return accounts.plan_public(plan).model_dump_json()

    return await _created_once(uow, principal, idempotency_key, f"plan for {organization_id}", body, effect)


@router.get("/{organization_id}/blocks", responses=problem_responses(401, 404, 422))
async def list_blocks(organization_id: UUID, uow: Uow, principal: Reader, now: Now) -> list[BlockPublic]:
    """Prepaid blocks, oldest first (drawn in that order), with what is left of each."""
    account = await accounts.visible_account(uow.session, principal, organization_id)
    return await accounts.blocks_public(uow.session, account.organization_id, now=now)


@router.post(
    "/{organization_id}/blocks",
    status_code=201,
    response_model=BlockPublic,
    responses=problem_responses(401, 403, 404, 422),
)
async def add_block(
    organization_id: UUID,
    body: BlockCreate,
    uow: Uow,
    principal: Admin,
    settings: BillingSettings,
    now: Now,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Record a purchased block of prepaid minutes (admins). It covers time from its purchase
    instant (`purchased_at`, default now) until it expires. Send an `Idempotency-Key` to retry
    safely: a retried purchase with the same key creates one block."""

    async def effect() -> str:
        account = await accounts.visible_account(uow.session, principal, organization_id)
        block = await accounts.add_block_for(uow.session, settings, principal, account, body, now=now)
        (public,) = [
            b
            for b in await accounts.blocks_public(uow.session, account.organization_id, now=now)
            if b.id == block.id
        ]
        return public.model_dump_json()

    return await _created_once(uow, principal, idempotency_key, f"block for {organization_id}", body, effect)


@router.get("/{organization_id}/usage", responses=problem_responses(401, 404, 422))
async def usage(
    organization_id: UUID, uow: Uow, principal: Reader, now: Now, period: PeriodKey = None
) -> UsageSummary:
    """Time worked in a month (by when it started, in the organization's timezone), what was
    charged, the allowance (agreements) and what was invoiced."""
    account = await accounts.visible_account(uow.session, principal, organization_id)
    return await usage_ledger.usage_summary(
        uow.session, account, usage_ledger.period_for(account, period, now=now)
    )


@router.get(
    "/{organization_id}/usage.csv",
    responses={
        200: {"content": {"text/csv": {}}, "description": "One row per time entry"},
        **problem_responses(401, 404, 422),
    },
    response_class=Response,
)
async def usage_csv(
    organization_id: UUID, uow: Uow, principal: Reader, now: Now, period: PeriodKey = None
) -> Response:
    """The month's usage as CSV: one row per time entry, net of corrections."""
    account = await accounts.visible_account(uow.session, principal, organization_id)
    chosen = usage_ledger.period_for(account, period, now=now)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(
        await usage_ledger.usage_csv_rows(uow.session, account, chosen)
    )
    filename = f"usage-{account.organization_id}-{chosen.key}.csv"
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/{organization_id}/ledger", responses=problem_responses(400, 401, 404, 422))
async def ledger(
    organization_id: UUID,
    uow: Uow,
    principal: Reader,
    now: Now,
    period: PeriodKey = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> Page[UsageEntryPublic]:
    """The usage ledger, oldest first: each time entry revision adds its minutes once, and the
    next revision reverses them (negative minutes) before adding its own."""
    account = await accounts.visible_account(uow.session, principal, organization_id)
    chosen = usage_ledger.period_for(account, period, now=now) if period else None
    entries = await repo.list_usage(
        uow.session,
        account.organization_id,
        starts_at=chosen.starts_at if chosen else None,
        ends_at=chosen.ends_at if chosen else None,
        limit=limit + 1,
        after=decode_cursor(cursor),
    )
    items = [UsageEntryPublic.model_validate({**e.model_dump(), "kind": UsageKind(e.kind)}) for e in entries]
    return page_of(items, [e.id for e in entries], limit)
