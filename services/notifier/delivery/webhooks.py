"""Signed webhooks (Standard Webhooks): one delivery row per subscription that wants an event
(fan-out, in the consumer's transaction), then one signed POST per attempt on the retry
schedule."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from uuid import UUID

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import delivery_policy as policy
from services.notifier import repository as repo
from services.notifier import webhook_http
from services.notifier.context import Notifier
from services.notifier.delivery_policy import LEASE
from services.notifier.dispatch import DELIVER_WEBHOOK, Job
from services.notifier.models import (
    DeliveryState,
)
from services.notifier.webhook_signing import signed_headers
from shared import events as ev
from shared.ids import new_id

# Ticket events portals may subscribe to (internal messages are never sent).
WEBHOOK_EVENT_TYPES = frozenset(
    {
        ev.EventType.TICKET_CREATED,
        ev.EventType.TICKET_UPDATED,
        ev.EventType.TICKET_MESSAGE_ADDED,
        ev.EventType.TICKET_STATUS_CHANGED,
        ev.EventType.TICKET_CLOSED,
        ev.EventType.TICKET_TRIAGED,
    }
)


def webhook_body(event: ev.Event) -> str:
    """The Standard Webhooks payload shape: type, timestamp, data."""
    document = {"type": event.type, "timestamp": event.occurred_at.isoformat(), "data": event.data}
    return json.dumps(document, separators=(",", ":"), sort_keys=True, default=str)


async def fan_out_webhooks(
    session: AsyncSession, notifier: Notifier, event: ev.Event, organization_id: UUID | None
) -> int:
    """One delivery per active subscription that wants this event about this organization."""
    created = 0
    body: str | None = None
    for subscription in await repo.active_subscriptions(session):
        if event.type not in subscription.event_types:
            continue
        scope = subscription.organization_ids
        if scope is not None and (organization_id is None or str(organization_id) not in scope):
            continue
        body = body or webhook_body(event)
        delivery_id = new_id()
        now = notifier.clock()
        inserted = await repo.insert_delivery(
            session,
            {
                "id": delivery_id,
                "subscription_id": subscription.id,
                "event_id": event.id,
                "event_type": event.type,
                "body": body,
                "state": DeliveryState.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            },
        )
        if inserted:
            created += 1
            notifier.dispatcher.after_commit(session, Job(DELIVER_WEBHOOK, str(delivery_id), 0))
    return created


async def deliver_webhook(notifier: Notifier, delivery_id: UUID, attempt: int) -> str:
    """One signed POST of a delivery. 2xx succeeds; 410 disables the subscription; anything else
    is retried on the schedule (Retry-After honoured), then given up."""
    settings = notifier.settings
    now = notifier.clock()
    async with notifier.sessions() as session, session.begin():
        delivery = await repo.claim_delivery(session, delivery_id, attempt=attempt, now=now, lease=LEASE)
        if delivery is None:
            return "skipped"
        subscription = await repo.get_subscription(session, delivery.subscription_id)
        if subscription is None or not subscription.active:
            await repo.finish_delivery(
                session, delivery_id, state=DeliveryState.FAILED, last_error="subscription disabled"
            )
            return "failed"
        url, secret = subscription.url, subscription.secret
    body = delivery.body.encode()
    headers = {
        # The wall clock, always: receivers refuse timestamps more than minutes off (replays).
        **signed_headers([secret], str(delivery.id), int(time.time()), body),
        "content-type": "application/json",
        "user-agent": f"{settings.company_name} webhooks",
    }
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    excerpt: str | None = None
    retry_after_header: str | None = None
    permanent = False
    try:
        async with asyncio.timeout(settings.webhook_timeout_seconds):
            response = await webhook_http.post(
                notifier.webhook_client,
                url,
                body=body,
                headers=headers,
                allow_private=settings.webhook_allow_private_addresses,
            )
        status = response.status_code
        excerpt = response.text[:500] if response.content else None
        retry_after_header = response.headers.get("retry-after")
    except webhook_http.RefusedDestination as refused:
        error, permanent = f"refused destination: {refused}", True
    except (httpx.HTTPError, OSError, TimeoutError) as network_error:
        error = f"{type(network_error).__name__}: {network_error}"
    duration_ms = int((time.monotonic() - started) * 1000)
    finished = notifier.clock()
    async with notifier.sessions() as session, session.begin():
        await repo.add_attempt(
            session,
            {
                "delivery_id": delivery_id,
                "attempt": delivery.attempts,
                "started_at": now,
                "duration_ms": duration_ms,
                "status_code": status,
                "error": error,
                "response_excerpt": excerpt,
            },
        )
        if status is not None and policy.is_success(status):
            await repo.finish_delivery(
                session,
                delivery_id,
                state=DeliveryState.SENT,
                delivered_at=finished,
                last_status_code=status,
                last_error=None,
            )
            return "sent"
        if status is not None and policy.disables_endpoint(status):
            await repo.finish_delivery(
                session,
                delivery_id,
                state=DeliveryState.FAILED,
                last_status_code=status,
                last_error="410 Gone",
            )
            await disable_subscription(
                session, delivery.subscription_id, "endpoint answered 410 Gone", finished
            )
            return "disabled"
        wait = None if permanent else policy.webhook_retry_delay(delivery.attempts)
        if wait is not None and status is not None and (status == 429 or status >= 500):
            honoured = policy.retry_after(retry_after_header, finished)
            if honoured is not None:
                wait = max(wait, honoured)
        failure = error or f"HTTP {status}"
        if wait is None:
            await repo.finish_delivery(
                session, delivery_id, state=DeliveryState.FAILED, last_status_code=status, last_error=failure
            )
            return "failed"
        next_at = finished + wait
        await repo.finish_delivery(
            session,
            delivery_id,
            state=DeliveryState.PENDING,
            next_attempt_at=next_at,
            last_status_code=status,
            last_error=failure,
        )
        notifier.dispatcher.after_commit(
            session, Job(DELIVER_WEBHOOK, str(delivery_id), delivery.attempts, defer_until=next_at)
        )
    return "retry"


async def disable_subscription(
    session: AsyncSession, subscription_id: UUID, reason: str, now: datetime
) -> None:
    subscription = await repo.get_subscription(session, subscription_id)
    if subscription is not None and subscription.active:
        subscription.active = False
        subscription.disabled_reason = reason
        subscription.updated_at = now
        await session.flush()
