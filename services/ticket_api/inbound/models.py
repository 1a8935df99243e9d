"""The tables of inbound email: each message received, its attachments, the Message-IDs that
thread, links between tickets, received SLA documents."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from sqlalchemy import JSON, Column, Index, String, Text
from sqlmodel import Field

from services.ticket_api.db import Base
from services.ticket_api.tickets.models import Visibility
from shared.db import UtcDateTime, timestamp
from shared.ids import new_id


class InboundKind(StrEnum):
    """What sent a message: a person, or a machine we must never answer (RFC 3834)."""

    HUMAN = "human"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    LIST = "list"
    OWN = "own"
    UNKNOWN = "unknown"


class InboundOutcome(StrEnum):
    TICKET_CREATED = "ticket_created"
    MESSAGE_ADDED = "message_added"
    TICKET_REOPENED = "ticket_reopened"
    LINKED_TICKET_CREATED = "linked_ticket_created"
    RECORDED_ON_TICKET = "recorded_on_ticket"
    STORED = "stored"
    FLAGGED = "flagged"


class InboundEmail(Base, table=True):
    """Every message that came in, kept raw whatever became of it. ``message_key`` (the
    Message-ID, or the raw bytes' digest when it has none) makes a re-delivery a no-op."""

    __tablename__ = "inbound_email"
    __table_args__ = (
        Index("ix_inbound_email_needs_review_id", "needs_review", "id"),
        Index("ix_inbound_email_ticket_id", "ticket_id"),
    )

    id: UUID = Field(default_factory=new_id, primary_key=True)
    message_key: str = Field(max_length=255, unique=True)
    raw_sha256: str = Field(max_length=64)
    # Who, subject, text and attachments: a re-used Message-ID with other content is not a redelivery.
    content_sha256: str | None = Field(default=None, max_length=64)
    raw_size_bytes: int
    raw_message: bytes  # empty once deleted after the retention period (raw_purged_at)
    raw_purged_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    received_via: str = Field(max_length=8)
    envelope_sender: str | None = Field(default=None, max_length=320)
    envelope_recipients: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    from_address: str | None = Field(default=None, max_length=320)
    from_name: str | None = Field(default=None, max_length=200)
    subject: str = Field(default="", max_length=300)
    kind: InboundKind = Field(sa_type=String(16), nullable=False)
    kind_reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    outcome: InboundOutcome = Field(sa_type=String(32), nullable=False)
    matched_by: str | None = Field(default=None, max_length=32)
    ticket_id: UUID | None = Field(default=None, foreign_key="ticket.id")
    ticket_message_id: UUID | None = Field(default=None, foreign_key="message.id")
    contact_id: UUID | None = Field(default=None, foreign_key="contact.id")
    acknowledge: bool | None = None
    full_text: str = Field(default="", sa_type=Text)
    needs_review: bool = False
    review_reason: str | None = Field(default=None, sa_type=Text)
    malformed: bool = False
    defects: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    bounce_recipients: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    bounce_permanent: bool | None = None
    received_at: datetime = timestamp()


class EmailAttachment(Base, table=True):
    """A file that came with a message. The bytes live once in the content-addressed store
    (``sha256``); a refused one keeps its row with the reason and no bytes."""

    __tablename__ = "email_attachment"

    id: UUID = Field(default_factory=new_id, primary_key=True)
    inbound_email_id: UUID = Field(foreign_key="inbound_email.id", index=True)
    ticket_id: UUID | None = Field(default=None, foreign_key="ticket.id", index=True)
    visibility: Visibility = Field(default=Visibility.PUBLIC, sa_type=String(16), nullable=False)
    sha256: str | None = Field(default=None, max_length=64)
    size_bytes: int
    content_type: str = Field(max_length=127)
    filename: str = Field(max_length=255)
    inline: bool = False
    content_id: str | None = Field(default=None, max_length=255)
    refused_reason: str | None = Field(default=None, max_length=300)
    created_at: datetime = timestamp()


class EmailThread(Base, table=True):
    """A Message-ID that belongs to a ticket: mail we received (direction "in"), or, in rows from
    before our Message-IDs were checked by their MAC alone, mail we sent ("out")."""

    __tablename__ = "email_thread"

    message_id: str = Field(primary_key=True, max_length=255)
    ticket_id: UUID = Field(foreign_key="ticket.id", index=True)
    direction: str = Field(max_length=8)
    created_at: datetime = timestamp()


class TicketLink(Base, table=True):
    """``ticket_id`` follows up ``linked_ticket_id`` (a reply to a ticket closed too long ago)."""

    __tablename__ = "ticket_link"
    __table_args__ = (Index("ux_ticket_link", "ticket_id", "linked_ticket_id", "kind", unique=True),)

    id: UUID = Field(default_factory=new_id, primary_key=True)
    ticket_id: UUID = Field(foreign_key="ticket.id")
    linked_ticket_id: UUID = Field(foreign_key="ticket.id", index=True)
    kind: str = Field(max_length=32)
    created_at: datetime = timestamp()


class SlaReviewState(StrEnum):
    NEEDS_REVIEW = "needs_review"
    CONFIRMED = "confirmed"


class SlaDocumentReview(Base, table=True):
    """A PDF from an organization that has not signed its SLA: "signed SLA received — needs
    review" until an agent confirms it (then ``organization.sla_signed``)."""

    __tablename__ = "sla_document_review"

    id: UUID = Field(default_factory=new_id, primary_key=True)
    organization_id: UUID = Field(foreign_key="organization.id", index=True)
    inbound_email_id: UUID = Field(foreign_key="inbound_email.id")
    attachment_id: UUID = Field(foreign_key="email_attachment.id")
    state: SlaReviewState = Field(default=SlaReviewState.NEEDS_REVIEW, sa_type=String(16), nullable=False)
    created_at: datetime = timestamp()
    reviewed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    reviewed_by: str | None = Field(default=None, max_length=100)
