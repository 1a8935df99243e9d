"""Billing accounts and their plans: an account per organization (name, tier, timezone) kept
from organization events and opened with its tier's default plan (and prepaid block); plan
versions from a date, prepaid blocks, and what the API shows of an account (plan in force,
allowance used, prepaid minutes left)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import repository as repo
from services.billing.errors import AccountNotFound, InvalidPlan
from services.billing.models import BillingAccount, BillingPlan, PlanKind, PrepaidBlock
from services.billing.money import cents, ppm
from services.billing.periods import Period, local_date, period_of
from services.billing.recipients import account_recipient
from services.billing.schemas import (
    AccountPublic,
    AllowancePublic,
    BlockCreate,
    BlockPublic,
    PlanCreate,
    PlanPublic,
)
from services.billing.settings import Settings
from shared import events as ev
from shared.auth import require_admin
from shared.clock import utcnow
from shared.principal import Principal
from shared.vocabulary import SupportTier

log = logging.getLogger(__name__)

# The first plan of an account applies from the start of time: events may arrive in any order.
FIRST_PLAN_DATE = date(2000, 1, 1)
# ... and so does its initial prepaid block (a block otherwise covers from its purchase instant).
ACCOUNT_START = datetime(2000, 1, 1, tzinfo=UTC)


# The plan each support tier is billed by.
PLAN_OF_TIER = {
    SupportTier.HOURLY: PlanKind.HOURLY,
    SupportTier.AGREEMENT: PlanKind.AGREEMENT,
    SupportTier.BLOCK: PlanKind.BLOCK,
}


def plan_kind_for_tier(tier: str) -> PlanKind:
    """The plan kind of a support tier; a tier billing does not know is billed hourly."""
    try:
        return PLAN_OF_TIER[SupportTier(tier)]
    except ValueError:
        log.warning("unknown support tier %r; billing it hourly", tier)
        return PlanKind.HOURLY


def default_plan(settings: Settings, kind: PlanKind) -> dict[str, Any]:
    """The plan values a new account (or a tier change) gets; see the BILLING_DEFAULT_* knobs."""
    overage = {
        PlanKind.HOURLY: settings.default_hourly_rate,
        PlanKind.AGREEMENT: settings.default_agreement_overage_rate,
        PlanKind.BLOCK: settings.default_block_overage_rate,
    }[kind]
    return {
        "kind": kind.value,
        "currency": settings.default_currency.upper(),
        "rate_per_hour_cents": cents(settings.default_hourly_rate),
        "increment_minutes": settings.default_increment_minutes,
        "minimum_minutes_per_ticket": settings.default_minimum_minutes_per_ticket
        if kind is PlanKind.HOURLY
        else 0,
        "tax_rate_ppm": ppm(settings.default_tax_rate),
        "payment_terms_days": settings.default_payment_terms_days,
        "allowance_minutes": settings.default_agreement_allowance_minutes
        if kind is PlanKind.AGREEMENT
        else 0,
        "overage_rate_per_hour_cents": cents(overage),
        "block_low_threshold_percent": settings.block_low_threshold_percent,
    }


async def add_plan_version(
    session: AsyncSession,
    organization_id: UUID,
    values: dict[str, Any],
    *,
    effective_from: date,
    created_by: str,
) -> BillingPlan:
    version = await repo.last_plan_version(session, organization_id) + 1
    plan = BillingPlan(
        organization_id=organization_id,
        version=version,
        effective_from=effective_from,
        created_by=created_by,
        **values,
    )
    session.add(plan)
    await session.flush()
    return plan


async def ensure_account(
    session: AsyncSession,
    settings: Settings,
    *,
    organization_id: UUID,
    name: str,
    support_tier: str,
    timezone: str,
    changed_at: datetime,
    billing_contact_email: str | None = None,
    primary_contact_email: str | None = None,
) -> bool:
    """Create the account with its tier's default plan (and prepaid block) unless it exists."""
    created = await repo.insert_account_if_missing(
        session,
        {
            "organization_id": organization_id,
            "name": name,
            "support_tier": support_tier,
            "timezone": timezone,
            "billing_contact_email": billing_contact_email,
            "primary_contact_email": primary_contact_email,
            "source_changed_at": changed_at,
            "opened_at": changed_at,
            "created_at": utcnow(),
            "updated_at": utcnow(),
        },
    )
    if not created:
        await repo.open_account_from(session, organization_id, changed_at)
        return False
    kind = plan_kind_for_tier(support_tier)
    await add_plan_version(
        session,
        organization_id,
        default_plan(settings, kind),
        effective_from=FIRST_PLAN_DATE,
        created_by="default",
    )
    if kind is PlanKind.BLOCK and settings.default_block_minutes > 0:
        await add_block(
            session,
            organization_id,
            minutes=settings.default_block_minutes,
            purchased_at=ACCOUNT_START,
            expires_at=default_expiry(settings, changed_at),
            reference="initial block",
            created_by="default",
        )
    return True


def default_expiry(settings: Settings, purchased_at: datetime) -> datetime | None:
    """``BILLING_DEFAULT_BLOCK_VALID_DAYS`` after the purchase (None: blocks never expire)."""
    if not settings.default_block_valid_days:
        return None
    return purchased_at + timedelta(days=settings.default_block_valid_days)


async def add_block(
    session: AsyncSession,
    organization_id: UUID,
    *,
    minutes: int,
    purchased_at: datetime,
    expires_at: datetime | None,
    reference: str,
    created_by: str,
) -> PrepaidBlock:
    block = PrepaidBlock(
        organization_id=organization_id,
        minutes=minutes,
        purchased_at=purchased_at,
        expires_at=expires_at,
        reference=reference,
        created_by=created_by,
    )
    session.add(block)
    await session.flush()
    return block


async def apply_organization(
    session: AsyncSession, settings: Settings, organization: ev.OrganizationV1, changed_at: datetime
) -> None:
    """organization.created / updated / sla_signed: keep the account's name, tier and timezone.
    A tier change brings that tier's default plan from the (local) day of the change."""
    fields = {
        "name": organization.name,
        "support_tier": organization.support_tier,
        "timezone": organization.timezone,
        "billing_contact_email": organization.billing_contact.email if organization.billing_contact else None,
        "primary_contact_email": organization.primary_contact.email if organization.primary_contact else None,
    }
    if await ensure_account(
        session, settings, organization_id=organization.organization_id, changed_at=changed_at, **fields
    ):
        return
    before = await repo.get_account(session, organization.organization_id, for_update=True)
    if not await repo.update_account_if_newer(session, organization.organization_id, changed_at, fields):
        return
    if before is not None and before.support_tier != organization.support_tier:
        kind = plan_kind_for_tier(organization.support_tier)
        effective = local_date(changed_at, organization.timezone)
        current = await repo.plan_in_force(session, organization.organization_id, effective)
        if current is None or current.kind != kind:
            await add_plan_version(
                session,
                organization.organization_id,
                default_plan(settings, kind),
                effective_from=effective,
                created_by="tier change",
            )


def plan_at(plans: list[BillingPlan], on: date) -> BillingPlan:
    """The version in force on ``on`` among ``plans`` (sorted by date, then version)."""
    current = plans[0]
    for plan in plans:
        if plan.effective_from <= on:
            current = plan
    return current


def plan_public(plan: BillingPlan) -> PlanPublic:
    return PlanPublic(
        id=plan.id,
        version=plan.version,
        kind=PlanKind(plan.kind),
        effective_from=plan.effective_from,
        currency=plan.currency,
        rate_per_hour=plan.rate_per_hour,
        increment_minutes=plan.increment_minutes,
        minimum_minutes_per_ticket=plan.minimum_minutes_per_ticket,
        tax_rate=plan.tax_rate,
        payment_terms_days=plan.payment_terms_days,
        allowance_minutes=plan.allowance_minutes,
        overage_rate_per_hour=plan.overage_rate_per_hour,
        block_low_threshold_percent=plan.block_low_threshold_percent,
        created_by=plan.created_by,
        created_at=plan.created_at,
    )


async def visible_account(
    session: AsyncSession, principal: Principal, organization_id: UUID
) -> BillingAccount:
    """The account, if the caller may see it (another organization's answers 404, as a missing one)."""
    account = await repo.get_account(session, organization_id)
    if account is None or not principal.can_see_organization(organization_id):
        raise AccountNotFound(f"No billing account for organization {organization_id}.")
    assert isinstance(account, BillingAccount)
    return account


async def allowance_in(
    session: AsyncSession, account: BillingAccount, plan: BillingPlan, period: Period
) -> AllowancePublic:
    used = (await repo.allowance_used(session, [account.organization_id], period.key)).get(
        account.organization_id, 0
    )
    return AllowancePublic(
        period=period.key,
        allowance_minutes=plan.allowance_minutes,
        used_minutes=used,
        remaining_minutes=plan.allowance_minutes - used,
    )


async def blocks_public(session: AsyncSession, organization_id: UUID, *, now: datetime) -> list[BlockPublic]:
    return [
        BlockPublic(
            id=block.id,
            minutes=block.minutes,
            used_minutes=used,
            remaining_minutes=block.minutes - used,
            purchased_at=block.purchased_at,
            expires_at=block.expires_at,
            expired=block.expires_at is not None and block.expires_at <= now,
            reference=block.reference,
        )
        for block, used in await repo.blocks_with_use(session, organization_id)
    ]


def prepaid_remaining(blocks: list[BlockPublic]) -> int:
    """What is left to draw: the unexpired blocks' remaining minutes."""
    return sum(max(block.remaining_minutes, 0) for block in blocks if not block.expired)


async def account_public(session: AsyncSession, account: BillingAccount, *, now: datetime) -> AccountPublic:
    plan = await repo.plan_in_force(session, account.organization_id, local_date(now, account.timezone))
    assert plan is not None
    kind = PlanKind(plan.kind)
    allowance = (
        await allowance_in(session, account, plan, period_of(now, account.timezone))
        if kind is PlanKind.AGREEMENT
        else None
    )
    prepaid = (
        prepaid_remaining(await blocks_public(session, account.organization_id, now=now))
        if kind is PlanKind.BLOCK
        else None
    )
    recipient = account_recipient(account)
    return AccountPublic(
        organization_id=account.organization_id,
        name=account.name,
        support_tier=account.support_tier,
        timezone=account.timezone,
        billing_email=account.billing_email,
        notices_to=recipient.address,
        notices_to_source=recipient.source,
        plan=plan_public(plan),
        allowance=allowance,
        prepaid_remaining_minutes=prepaid,
        closed_through=account.closed_through,
    )


async def add_plan(
    session: AsyncSession, settings: Settings, principal: Principal, account: BillingAccount, data: PlanCreate
) -> BillingPlan:
    """A new plan version from ``effective_from``. Unset fields keep the values of the plan in
    force that day when it is of the same kind, else the defaults of the new kind."""
    require_admin(principal)
    current = await repo.plan_in_force(session, account.organization_id, data.effective_from)
    base = default_plan(settings, data.kind)
    if current is not None and current.kind == data.kind.value:
        base = {key: getattr(current, key) for key in base}
    changes = data.model_dump(exclude_unset=True, exclude={"kind", "effective_from"})
    money_fields = {
        "rate_per_hour": "rate_per_hour_cents",
        "overage_rate_per_hour": "overage_rate_per_hour_cents",
    }
    for name, value in changes.items():
        if value is None:
            continue
        if name in money_fields:
            base[money_fields[name]] = cents(value)
        elif name == "tax_rate":
            base["tax_rate_ppm"] = ppm(value)
        else:
            base[name] = value
    base["kind"] = data.kind.value
    if data.kind is PlanKind.AGREEMENT and base["allowance_minutes"] <= 0:
        raise InvalidPlan("An agreement includes some minutes a month (allowance_minutes > 0).")
    return await add_plan_version(
        session,
        account.organization_id,
        base,
        effective_from=data.effective_from,
        created_by=principal.audit_ref,
    )


async def add_block_for(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    account: BillingAccount,
    data: BlockCreate,
    *,
    now: datetime,
) -> PrepaidBlock:
    require_admin(principal)
    purchased_at = data.purchased_at or now
    if data.expires_at is not None and data.expires_at <= purchased_at:
        raise InvalidPlan("A block expires after it is bought.")
    return await add_block(
        session,
        account.organization_id,
        minutes=data.minutes,
        purchased_at=purchased_at,
        expires_at=data.expires_at or default_expiry(settings, purchased_at),
        reference=data.reference,
        created_by=principal.audit_ref,
    )
