from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from services.notifier import admin
from services.notifier import repository as repo
from services.notifier.deps import AppNotifier, Uow, WebhookManager
from services.notifier.models import DeliveryState, WebhookSubscription
from services.notifier.schemas import (
    WebhookAttemptPublic,
    WebhookDeliveryDetail,
    WebhookDeliveryPublic,
    WebhookSubscriptionCreate,
    WebhookSubscriptionCreated,
    WebhookSubscriptionPublic,
    WebhookSubscriptionUpdate,
)
from shared.pagination import Page, decode_cursor, page_of
from shared.problems import problem_responses

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
ONE = problem_responses(401, 403, 404, 422)


def _public(subscription: WebhookSubscription) -> WebhookSubscriptionPublic:
    return WebhookSubscriptionPublic.model_validate(subscription, from_attributes=True)


def _with_secret(subscription: WebhookSubscription) -> WebhookSubscriptionCreated:
    return WebhookSubscriptionCreated.model_validate(subscription, from_attributes=True)


@router.post("/subscriptions", status_code=201, responses=problem_responses(401, 403, 422))
async def create_subscription(
    body: WebhookSubscriptionCreate, uow: Uow, principal: WebhookManager, notifier: AppNotifier
) -> WebhookSubscriptionCreated:
    """Receive signed webhooks (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
    `webhook-signature`) for these event types about your organizations' tickets. The
    secret (`whsec_…`) is shown here and when rotated; verify every request with it."""
    subscription = await admin.create_subscription(uow, notifier, principal, body)
    await uow.commit()
    return _with_secret(subscription)


@router.get("/subscriptions", responses=problem_responses(401, 403, 422))
async def list_subscriptions(
    uow: Uow,
    principal: WebhookManager,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[WebhookSubscriptionPublic]:
    """Your subscriptions (admins: everyone's)."""
    admin.may_manage_webhooks(principal)
    rows = await repo.list_subscriptions(
        uow.session,
        client_id=None if principal.is_admin else principal.subject_id,
        limit=limit + 1,
        after=decode_cursor(cursor),
    )
    return page_of([_public(s) for s in rows], [s.id for s in rows], limit)


@router.get("/subscriptions/{subscription_id}", responses=ONE)
async def get_subscription(
    subscription_id: UUID, uow: Uow, principal: WebhookManager
) -> WebhookSubscriptionPublic:
    return _public(await admin.visible_subscription(uow.session, principal, subscription_id))


@router.patch("/subscriptions/{subscription_id}", responses=ONE)
async def update_subscription(
    subscription_id: UUID,
    body: WebhookSubscriptionUpdate,
    uow: Uow,
    principal: WebhookManager,
    notifier: AppNotifier,
) -> WebhookSubscriptionPublic:
    """Change the URL or event types, or switch it on and off (on again after a 410 disabled it)."""
    subscription = await admin.update_subscription(uow, notifier, principal, subscription_id, body)
    await uow.commit()
    return _public(subscription)


@router.post(
    "/subscriptions/{subscription_id}/rotate-secret", responses=problem_responses(401, 403, 404, 422)
)
async def rotate_secret(
    subscription_id: UUID, uow: Uow, principal: WebhookManager, notifier: AppNotifier
) -> WebhookSubscriptionCreated:
    """A new signing secret, used from the next attempt on."""
    subscription = await admin.rotate_secret(uow, notifier, principal, subscription_id)
    await uow.commit()
    return _with_secret(subscription)


@router.delete(
    "/subscriptions/{subscription_id}", status_code=204, responses=problem_responses(401, 403, 404, 422)
)
async def delete_subscription(subscription_id: UUID, uow: Uow, principal: WebhookManager) -> Response:
    await admin.delete_subscription(uow, principal, subscription_id)
    await uow.commit()
    return Response(status_code=204)


@router.get("/subscriptions/{subscription_id}/deliveries", responses=ONE)
async def list_deliveries(
    subscription_id: UUID,
    uow: Uow,
    principal: WebhookManager,
    state: DeliveryState | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[WebhookDeliveryPublic]:
    """The delivery log of a subscription: each event, its state, attempts and last answer."""
    await admin.visible_subscription(uow.session, principal, subscription_id)
    rows = await repo.list_deliveries(
        uow.session,
        subscription_id=subscription_id,
        state=state.value if state else None,
        limit=limit + 1,
        after=decode_cursor(cursor),
    )
    public = [WebhookDeliveryPublic.model_validate(d, from_attributes=True) for d in rows]
    return page_of(public, [d.id for d in rows], limit)


@router.get("/deliveries/{delivery_id}", responses=ONE)
async def get_delivery(delivery_id: UUID, uow: Uow, principal: WebhookManager) -> WebhookDeliveryDetail:
    """One delivery with its body and every attempt (status, duration, the answer's first bytes)."""
    delivery = await admin.visible_delivery(uow.session, principal, delivery_id)
    attempts = await repo.attempts_of(uow.session, delivery_id)
    return WebhookDeliveryDetail(
        **WebhookDeliveryPublic.model_validate(delivery, from_attributes=True).model_dump(),
        body=delivery.body,
        attempt_log=[WebhookAttemptPublic.model_validate(a, from_attributes=True) for a in attempts],
    )


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    status_code=202,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def redeliver(
    delivery_id: UUID, uow: Uow, principal: WebhookManager, notifier: AppNotifier
) -> WebhookDeliveryPublic:
    """Send a delivery again now, with the same `webhook-id` (receivers deduplicate on it)."""
    delivery = await admin.redeliver(uow, notifier, principal, delivery_id)
    await uow.commit()
    return WebhookDeliveryPublic.model_validate(delivery, from_attributes=True)
