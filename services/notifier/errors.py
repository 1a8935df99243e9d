"""notifier's domain errors; each becomes a problem+json answer."""

from __future__ import annotations

from shared.problems import Conflict, NotFound, Unprocessable


class NotificationNotFound(NotFound):
    slug, title = "notification-not-found", "Notification not found"


class SuppressionNotFound(NotFound):
    slug, title = "suppression-not-found", "Address is not suppressed"


class SubscriptionNotFound(NotFound):
    slug, title = "webhook-subscription-not-found", "Webhook subscription not found"


class DeliveryNotFound(NotFound):
    slug, title = "webhook-delivery-not-found", "Webhook delivery not found"


class AddressSuppressed(Conflict):
    slug, title = "address-suppressed", "The relay refused this address for good"


class DeliveryInFlight(Conflict):
    slug, title = "delivery-in-flight", "This delivery is being attempted right now"


class UnknownEventType(Unprocessable):
    slug, title = "unknown-event-type", "Not an event type webhooks can carry"


class RefusedWebhookUrl(Unprocessable):
    slug, title = "webhook-url-refused", "Webhooks may not go to this URL"
