"""The shapes of notifier's API: what its routes take and answer (the tables are in
``models.py``). Their names are the OpenAPI schema names the console's types are made from."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import AnyHttpUrl, ConfigDict, field_validator
from sqlmodel import Field, SQLModel


class NotificationPublic(SQLModel):
    id: UUID
    kind: str
    recipient: str
    subject: str
    event_type: str
    ticket_id: UUID | None
    ticket_number: str | None
    message_id: str
    state: str
    attempts: int
    last_error: str | None
    smtp_code: int | None
    resend_of: UUID | None
    created_at: datetime
    sent_at: datetime | None


class NotificationDetail(NotificationPublic):
    from_address: str
    reply_to: str | None
    in_reply_to: str | None
    reference_ids: list[str]
    auto_submitted: str | None
    text_body: str
    attachments: list[dict[str, Any]]


class SuppressionPublic(SQLModel):
    address: str
    reason: str
    smtp_code: int | None
    notification_id: UUID | None
    created_at: datetime


def _example(body: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [body]})


class WebhookSubscriptionCreate(SQLModel):
    model_config = _example(  # type: ignore[assignment]
        {
            "url": "https://portal.example.com/hooks/helpdesk",
            "event_types": ["ticket.created", "ticket.message_added", "ticket.closed"],
            "description": "Ticket updates for our customers",
        }
    )
    url: AnyHttpUrl
    event_types: list[str] = Field(min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=500)

    @field_validator("url")
    @classmethod
    def _length(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        if len(str(value)) > 2000:
            raise ValueError("at most 2000 characters")
        return value


class WebhookSubscriptionUpdate(SQLModel):
    model_config = _example({"active": True, "event_types": ["ticket.closed"]})  # type: ignore[assignment]
    url: AnyHttpUrl | None = None
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=500)
    active: bool | None = None


class WebhookSubscriptionPublic(SQLModel):
    id: UUID
    url: str
    event_types: list[str]
    description: str | None
    organization_ids: list[str] | None
    active: bool
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


class WebhookSubscriptionCreated(WebhookSubscriptionPublic):
    secret: str = Field(description="shown once: verify the webhook-signature header with it")


class WebhookDeliveryPublic(SQLModel):
    id: UUID
    subscription_id: UUID
    event_id: UUID
    event_type: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class WebhookAttemptPublic(SQLModel):
    attempt: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response_excerpt: str | None


class WebhookDeliveryDetail(WebhookDeliveryPublic):
    body: str = Field(description="the exact JSON that was signed and sent")
    attempt_log: list[WebhookAttemptPublic]
