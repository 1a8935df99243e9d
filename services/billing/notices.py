"""Notices, each sent once (a claimed row is the "once"): an agreement's allowance reaching
80 % and 100 % in a period, a prepaid balance running low or out; recorded as events for the
notifier to mail, and listed by the API."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from services.billing import repository as repo
from services.billing.charging import block_notices, thresholds_reached
from services.billing.models import BillingAccount, BillingPlan, Notice, NoticeKind, PlanKind
from services.billing.periods import parse_period_key, period_of
from services.billing.recipients import account_recipient
from services.billing.schemas import NoticePublic
from shared import events as ev
from shared.uow import UnitOfWork

if TYPE_CHECKING:
    from services.billing.settlement import Settlement


# (account, its plan, the period drawn from, the instant of the close that drew)
AllowanceTarget = tuple[BillingAccount, BillingPlan, str, datetime]


async def notify_allowances(uow: UnitOfWork, targets: list[AllowanceTarget]) -> None:
    """allowance.threshold_reached at 80 % and at 100 %, each once per (account, period): the
    notice row's key is the "once". Set-based, for the period close's thousands of accounts."""
    session = uow.session
    targets = [target for target in targets if PlanKind(target[1].kind) is PlanKind.AGREEMENT]
    used: dict[tuple[UUID, str], int] = {}
    for period_key in sorted({key for _, _, key, _ in targets}):
        organization_ids = [account.organization_id for account, _, key, _ in targets if key == period_key]
        for organization_id, minutes in (
            await repo.allowance_used(session, organization_ids, period_key)
        ).items():
            used[(organization_id, period_key)] = minutes
    candidates = []
    for account, plan, period_key, occurred_at in targets:
        minutes = used.get((account.organization_id, period_key), 0)
        for threshold in thresholds_reached(minutes, plan.allowance_minutes):
            candidates.append((account, plan, period_key, threshold, minutes, occurred_at))
    claimed = await repo.claim_notices(
        session,
        [
            {
                "organization_id": account.organization_id,
                "notice": f"allowance.{threshold}",
                "scope": key,
                "period_key": key,
                "occurred_at": occurred_at,
                "minutes": minutes,
                "of_minutes": plan.allowance_minutes,
                "threshold_percent": threshold,
            }
            for account, plan, key, threshold, minutes, occurred_at in candidates
        ],
    )
    events: list[tuple[ev.EventType, ev.Payload, str]] = []
    for account, plan, period_key, threshold, minutes, _ in candidates:
        if (account.organization_id, f"allowance.{threshold}", period_key) not in claimed:
            continue
        period = parse_period_key(period_key, account.timezone)
        payload = ev.AllowanceThresholdReachedV1(
            organization_id=account.organization_id,
            organization_name=account.name,
            billing_email=account_recipient(account).address,
            period=period_key,
            period_starts_at=period.starts_at,
            period_ends_at=period.ends_at,
            threshold=threshold,
            used_minutes=minutes,
            allowance_minutes=plan.allowance_minutes,
            overage_rate_per_hour=plan.overage_rate_per_hour,
            currency=plan.currency,
        )
        events.append(
            (ev.EventType.ALLOWANCE_THRESHOLD_REACHED, payload, f"organization:{account.organization_id}")
        )
    await uow.emit_many(events)


async def notify_blocks(uow: UnitOfWork, settlement: Settlement) -> None:
    """block.low and block.exhausted, each once per purchase (keyed by the newest block usable
    at the close, so a new block re-arms both); the low threshold is the plan's."""
    session = uow.session
    account, plan = settlement.account, settlement.plan
    remaining = sum(max(block.remaining, 0) for block in settlement.blocks)
    percent = plan.block_low_threshold_percent
    scope = str(settlement.newest_block_id) if settlement.newest_block_id else "none"
    rows = [
        {
            "organization_id": account.organization_id,
            "notice": f"block.{notice}",
            "scope": scope,
            "period_key": period_of(settlement.charged_at, account.timezone).key,
            "occurred_at": settlement.charged_at,
            "minutes": remaining,
            "of_minutes": settlement.purchased_minutes,
            "threshold_percent": percent,
        }
        for notice in block_notices(remaining, settlement.purchased_minutes, percent)
    ]
    claimed = await repo.claim_notices(session, rows)
    for row in rows:
        if (account.organization_id, row["notice"], scope) not in claimed:
            continue
        payload = ev.BlockBalanceV1(
            organization_id=account.organization_id,
            organization_name=account.name,
            billing_email=account_recipient(account).address,
            remaining_minutes=remaining,
            purchased_minutes=settlement.purchased_minutes,
            low_threshold_percent=percent,
            newest_block_id=settlement.newest_block_id,
            overage_rate_per_hour=plan.overage_rate_per_hour,
            currency=plan.currency,
        )
        event_type = ev.EventType.BLOCK_LOW if row["notice"] == "block.low" else ev.EventType.BLOCK_EXHAUSTED
        await uow.emit(event_type, payload, subject=f"organization:{account.organization_id}")


def notice_public(notice: Notice) -> NoticePublic:
    kind = NoticeKind(notice.notice)
    allowance = kind in (NoticeKind.ALLOWANCE_80, NoticeKind.ALLOWANCE_100)
    return NoticePublic(
        organization_id=notice.organization_id,
        kind=kind,
        period=notice.period_key if notice.period_key else (notice.scope if allowance else None),
        occurred_at=notice.occurred_at,
        sent_at=notice.sent_at,
        threshold_percent=notice.threshold_percent,
        used_minutes=notice.minutes if allowance else None,
        allowance_minutes=notice.of_minutes if allowance else None,
        remaining_minutes=None if allowance else notice.minutes,
        purchased_minutes=None if allowance else notice.of_minutes,
        newest_block_id=None if allowance or notice.scope == "none" else UUID(notice.scope),
    )
