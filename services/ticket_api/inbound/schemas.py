"""What the inbound-email routes answer."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlmodel import Field, SQLModel

from services.ticket_api.inbound.models import InboundKind, InboundOutcome, SlaReviewState


class InboundEmailPublic(SQLModel):
    id: UUID
    message_key: str
    received_via: str
    from_address: str | None
    subject: str
    kind: InboundKind
    kind_reasons: list[str]
    outcome: InboundOutcome
    matched_by: str | None
    ticket_id: UUID | None
    ticket_message_id: UUID | None
    acknowledge: bool | None
    needs_review: bool
    review_reason: str | None
    malformed: bool
    bounce_recipients: list[str]
    bounce_permanent: bool | None
    received_at: datetime
    raw_purged_at: datetime | None = Field(
        default=None, description="when the raw copy was deleted (TICKET_API_INBOUND_RAW_RETENTION_DAYS)"
    )
    duplicate: bool = Field(default=False, description="true when this Message-ID had already arrived")


class EmailAttachmentPublic(SQLModel):
    id: UUID
    inbound_email_id: UUID
    ticket_id: UUID | None
    sha256: str | None
    size_bytes: int
    content_type: str
    filename: str
    inline: bool
    refused_reason: str | None
    created_at: datetime
    download_url: str | None = None


class SlaDocumentReviewPublic(SQLModel):
    id: UUID
    organization_id: UUID
    inbound_email_id: UUID
    attachment_id: UUID
    state: SlaReviewState
    created_at: datetime
    reviewed_at: datetime | None
    reviewed_by: str | None
