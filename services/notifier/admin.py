"""What the notifier's routes do (:mod:`services.notifier.api`): the notification log's
resend, suppressions, webhook subscriptions and their deliveries' redelivery."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import repository as repo
from services.notifier import webhook_http
from services.notifier.context import Notifier
from services.notifier.delivery.webhooks import WEBHOOK_EVENT_TYPES
from services.notifier.dispatch import DELIVER_WEBHOOK, SEND_EMAIL, Job
from services.notifier.errors import (
    AddressSuppressed,
    DeliveryInFlight,
    DeliveryNotFound,
    NotificationNotFound,
    RefusedWebhookUrl,
    SubscriptionNotFound,
    SuppressionNotFound,
    UnknownEventType,
)
from services.notifier.models import DeliveryState, Notification, WebhookDelivery, WebhookSubscription
from services.notifier.schemas import WebhookSubscriptionCreate, WebhookSubscriptionUpdate
from services.notifier.webhook_signing import new_secret
from shared.auth import require_admin
from shared.ids import new_id
from shared.mail_ids import make_message_id
from shared.principal import Principal, PrincipalKind
from shared.uow import UnitOfWork


async def visible_notification(
    session: AsyncSession, principal: Principal, notification_id: UUID
) -> Notification:
    """Staff see every notification (the routes admit no one else)."""
    notification = await repo.get_notification(session, notification_id)
    if notification is None or not principal.is_staff:
        raise NotificationNotFound(f"No notification {notification_id}.")
    return notification


async def resend_notification(
    uow: UnitOfWork, notifier: Notifier, principal: Principal, notification_id: UUID
) -> Notification:
    """Send a copy of a notification again (a new Message-ID in the same thread); the route
    admits staff only."""
    session = uow.session
    original = await visible_notification(session, principal, notification_id)
    suppression = await repo.get_suppression(session, original.recipient)
    if suppression is not None:
        raise AddressSuppressed(
            f"{original.recipient} is suppressed ({suppression.reason}); lift the suppression first.",
            address=original.recipient,
        )
    now = notifier.clock()
    copy_id = new_id()
    owner = original.ticket_id or copy_id
    references = await repo.thread_message_ids(session, original.ticket_id) if original.ticket_id else []
    message_id = make_message_id(owner, secret=notifier.secret, domain=notifier.settings.mail_domain)
    copied = {
        name: getattr(original, name)
        for name in (
            "event_type", "kind", "recipient", "ticket_id", "ticket_number", "organization_id", "from_name",
            "from_address", "reply_to", "subject", "text_body", "html_body", "auto_submitted", "attachments",
        )
    }  # fmt: skip
    await repo.insert_notification(
        session,
        {
            **copied,
            "id": copy_id,
            "dedupe_key": f"resend:{copy_id}",
            "message_id": message_id,
            "in_reply_to": references[-1] if references else None,
            "reference_ids": references,
            "state": DeliveryState.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "resend_of": original.id,
            "created_at": now,
            "updated_at": now,
        },
    )
    if original.ticket_id and await repo.is_thread_message(session, original.message_id):
        await repo.add_thread_message(session, original.ticket_id, message_id, now)
    notifier.dispatcher.after_commit(session, Job(SEND_EMAIL, str(copy_id), 0))
    copy = await repo.get_notification(session, copy_id)
    assert copy is not None
    return copy


async def lift_suppression(uow: UnitOfWork, principal: Principal, address: str) -> None:
    """Lift a suppression (the route has checked the caller is an admin)."""
    if not await repo.delete_suppression(uow.session, address):
        raise SuppressionNotFound(f"{address} is not suppressed.")


def may_manage_webhooks(principal: Principal) -> None:
    if principal.kind is not PrincipalKind.PORTAL:
        require_admin(principal)


async def _check_subscription_fields(
    notifier: Notifier, url: str | None, event_types: list[str] | None
) -> None:
    if event_types is not None:
        unknown = sorted(set(event_types) - WEBHOOK_EVENT_TYPES)
        if unknown:
            raise UnknownEventType(
                f"Unknown event types: {', '.join(unknown)}.",
                unknown=unknown,
                allowed=sorted(WEBHOOK_EVENT_TYPES),
            )
    if url is not None:
        try:
            await webhook_http.checked_destination(
                url, allow_private=notifier.settings.webhook_allow_private_addresses
            )
        except (webhook_http.RefusedDestination, OSError) as refused:
            raise RefusedWebhookUrl(str(refused)) from None


async def create_subscription(
    uow: UnitOfWork, notifier: Notifier, principal: Principal, data: WebhookSubscriptionCreate
) -> WebhookSubscription:
    """A portal subscribes for its own organizations; an admin's subscription sees every one."""
    may_manage_webhooks(principal)
    url = str(data.url)
    event_types = sorted(set(data.event_types))
    await _check_subscription_fields(notifier, url, event_types)
    now = notifier.clock()
    subscription = WebhookSubscription(
        client_id=principal.subject_id,
        organization_ids=None if principal.is_staff else sorted(str(o) for o in principal.organization_ids),
        url=url,
        event_types=event_types,
        secret=new_secret(),
        description=data.description,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(subscription)
    await uow.session.flush()
    return subscription


async def visible_subscription(
    session: AsyncSession, principal: Principal, subscription_id: UUID
) -> WebhookSubscription:
    may_manage_webhooks(principal)
    subscription = await repo.get_subscription(session, subscription_id)
    if subscription is None or not (principal.is_admin or subscription.client_id == principal.subject_id):
        raise SubscriptionNotFound(f"No webhook subscription {subscription_id}.")
    return subscription


async def update_subscription(
    uow: UnitOfWork,
    notifier: Notifier,
    principal: Principal,
    subscription_id: UUID,
    data: WebhookSubscriptionUpdate,
) -> WebhookSubscription:
    subscription = await visible_subscription(uow.session, principal, subscription_id)
    changes = data.model_dump(exclude_unset=True)
    url = str(data.url) if data.url is not None else None
    await _check_subscription_fields(notifier, url, data.event_types)
    if url is not None:
        subscription.url = url
    if data.event_types is not None:
        subscription.event_types = sorted(set(data.event_types))
    if "description" in changes:
        subscription.description = data.description
    if data.active is not None:
        subscription.active = data.active
        if data.active:
            subscription.disabled_reason = None
    subscription.updated_at = notifier.clock()
    await uow.session.flush()
    return subscription


async def rotate_secret(
    uow: UnitOfWork, notifier: Notifier, principal: Principal, subscription_id: UUID
) -> WebhookSubscription:
    subscription = await visible_subscription(uow.session, principal, subscription_id)
    subscription.secret = new_secret()
    subscription.updated_at = notifier.clock()
    await uow.session.flush()
    return subscription


async def delete_subscription(uow: UnitOfWork, principal: Principal, subscription_id: UUID) -> None:
    subscription = await visible_subscription(uow.session, principal, subscription_id)
    await uow.session.delete(subscription)
    await uow.session.flush()


async def visible_delivery(session: AsyncSession, principal: Principal, delivery_id: UUID) -> WebhookDelivery:
    delivery = await repo.get_delivery(session, delivery_id)
    if delivery is None:
        raise DeliveryNotFound(f"No webhook delivery {delivery_id}.")
    try:
        await visible_subscription(session, principal, delivery.subscription_id)
    except SubscriptionNotFound:
        raise DeliveryNotFound(f"No webhook delivery {delivery_id}.") from None
    return delivery


async def redeliver(
    uow: UnitOfWork, notifier: Notifier, principal: Principal, delivery_id: UUID
) -> WebhookDelivery:
    """Try a delivery again now (whatever its state), keeping its webhook-id."""
    delivery = await visible_delivery(uow.session, principal, delivery_id)
    now = notifier.clock()
    if delivery.state == DeliveryState.SENDING and delivery.lease_until and delivery.lease_until > now:
        raise DeliveryInFlight("This delivery is being attempted; look again in a few seconds.")
    await repo.finish_delivery(uow.session, delivery.id, state=DeliveryState.PENDING, next_attempt_at=now)
    notifier.dispatcher.after_commit(uow.session, Job(DELIVER_WEBHOOK, str(delivery.id), delivery.attempts))
    refreshed = await uow.session.get(WebhookDelivery, delivery.id, populate_existing=True)
    assert refreshed is not None
    return refreshed
