"""Every query of inbound email. Functions take the session explicitly and only flush."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.ticket_api.inbound.models import (
    EmailAttachment,
    EmailThread,
    InboundEmail,
    InboundKind,
    SlaDocumentReview,
    SlaReviewState,
    TicketLink,
)
from services.ticket_api.inbound.schemas import InboundEmailPublic
from services.ticket_api.tickets.models import Channel, Ticket
from shared.clock import utcnow
from shared.db import dialect_of, insert_ignoring_conflicts
from shared.ids import new_id


def _table(model: type[Any]) -> Any:
    return model.__table__


async def get_inbound_by_key(session: AsyncSession, message_key: str) -> InboundEmail | None:
    return (
        await session.scalars(select(InboundEmail).where(col(InboundEmail.message_key) == message_key))
    ).first()


async def get_inbound(session: AsyncSession, inbound_id: UUID) -> InboundEmail | None:
    return await session.get(InboundEmail, inbound_id)


async def claim_inbound(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert the record of a message; False when its ``message_key`` is already taken
    (a re-delivery, possibly a concurrent one)."""
    statement = insert_ignoring_conflicts(
        _table(InboundEmail), dialect_of(session), "message_key", returning=("id",)
    )
    return (await session.execute(statement, values)).first() is not None


# Built once; the row id and the new values come as parameters (the SET clause is the keys).
_UPDATE_INBOUND = update(_table(InboundEmail)).where(_table(InboundEmail).c.id == bindparam("b_id"))
# …returning the record as the API shows it (not the raw message), so nobody reads it again.
_FINISH_INBOUND = _UPDATE_INBOUND.returning(
    *(column for column in _table(InboundEmail).c if column.name in InboundEmailPublic.model_fields)
)


async def finish_inbound(session: AsyncSession, inbound_id: UUID, **values: Any) -> Row[Any]:
    """Write what became of a message; returns its record's public columns."""
    return (await session.execute(_FINISH_INBOUND, {"b_id": inbound_id, **values})).one()


async def purge_raw_messages(
    session: AsyncSession, *, older_than: datetime, now: datetime, limit: int
) -> int:
    """Delete the raw copies of up to ``limit`` messages received before ``older_than`` (oldest
    first); mail flagged for review keeps its copy. Returns how many were deleted."""
    table = _table(InboundEmail)
    due = (
        select(table.c.id)
        .where(
            table.c.received_at < older_than,
            table.c.raw_purged_at.is_(None),
            table.c.needs_review.is_(False),
        )
        .order_by(table.c.received_at)
        .limit(limit)
    )
    result = await session.execute(
        update(table).where(table.c.id.in_(due.scalar_subquery())).values(raw_message=b"", raw_purged_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def list_inbound(
    session: AsyncSession,
    *,
    needs_review: bool | None,
    kind: InboundKind | None,
    ticket_id: UUID | None,
    limit: int,
    before: UUID | None,
) -> Sequence[InboundEmail]:
    """Newest first (ids are time-ordered)."""
    query = select(InboundEmail).order_by(col(InboundEmail.id).desc()).limit(limit)
    if needs_review is not None:
        query = query.where(col(InboundEmail.needs_review) == needs_review)
    if kind is not None:
        query = query.where(col(InboundEmail.kind) == kind)
    if ticket_id is not None:
        query = query.where(col(InboundEmail.ticket_id) == ticket_id)
    if before is not None:
        query = query.where(col(InboundEmail.id) < before)
    return (await session.scalars(query)).all()


# --- threading ---------------------------------------------------------------------------


async def tickets_of_message_ids(
    session: AsyncSession, message_ids: Sequence[str]
) -> dict[str, tuple[UUID, str]]:
    """message id → (ticket id, direction) for the ids we know."""
    if not message_ids:
        return {}
    rows = await session.execute(
        select(col(EmailThread.message_id), col(EmailThread.ticket_id), col(EmailThread.direction)).where(
            col(EmailThread.message_id).in_(message_ids)
        )
    )
    return {row.message_id: (row.ticket_id, row.direction) for row in rows}


async def remember_message_id(
    session: AsyncSession, message_id: str, ticket_id: UUID, direction: str
) -> None:
    if not message_id or len(message_id) > 255:
        return
    statement = insert_ignoring_conflicts(_table(EmailThread), dialect_of(session), "message_id")
    row = {"message_id": message_id, "ticket_id": ticket_id, "direction": direction, "created_at": utcnow()}
    await session.execute(statement, row)


async def recent_email_tickets(session: AsyncSession, contact_id: UUID, since: datetime) -> int:
    """How many tickets this contact opened by email since ``since`` (the acknowledgment limit)."""
    count = await session.scalar(
        select(func.count())
        .select_from(Ticket)
        .where(
            col(Ticket.contact_id) == contact_id,
            col(Ticket.channel) == Channel.EMAIL,
            col(Ticket.created_at) >= since,
        )
    )
    return int(count or 0)


async def link_tickets(session: AsyncSession, ticket_id: UUID, linked_ticket_id: UUID, kind: str) -> None:
    statement = insert_ignoring_conflicts(
        _table(TicketLink), dialect_of(session), "ticket_id", "linked_ticket_id", "kind"
    ).values(
        id=new_id(),
        ticket_id=ticket_id,
        linked_ticket_id=linked_ticket_id,
        kind=kind,
        created_at=utcnow(),
    )
    await session.execute(statement)


async def links_of(session: AsyncSession, ticket_id: UUID) -> Sequence[TicketLink]:
    query = select(TicketLink).where(
        (col(TicketLink.ticket_id) == ticket_id) | (col(TicketLink.linked_ticket_id) == ticket_id)
    )
    return (await session.scalars(query.order_by(col(TicketLink.created_at)))).all()


# --- attachments ---------------------------------------------------------------------------


async def add_attachments(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(EmailAttachment), list(rows))


async def get_attachment(session: AsyncSession, attachment_id: UUID) -> EmailAttachment | None:
    return await session.get(EmailAttachment, attachment_id)


async def attachments_of_ticket(
    session: AsyncSession, ticket_id: UUID, *, include_internal: bool
) -> Sequence[EmailAttachment]:
    query = select(EmailAttachment).where(col(EmailAttachment.ticket_id) == ticket_id)
    if not include_internal:
        query = query.where(col(EmailAttachment.visibility) == "public")
    return (await session.scalars(query.order_by(col(EmailAttachment.id)).limit(1000))).all()


async def attachments_of_inbound(session: AsyncSession, inbound_id: UUID) -> Sequence[EmailAttachment]:
    query = select(EmailAttachment).where(col(EmailAttachment.inbound_email_id) == inbound_id)
    return (await session.scalars(query.order_by(col(EmailAttachment.id)))).all()


# --- SLA documents ---------------------------------------------------------------------------


async def add_sla_review(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(SlaDocumentReview).values(**values))


async def get_sla_review(
    session: AsyncSession, review_id: UUID, *, for_update: bool = False
) -> SlaDocumentReview | None:
    return await session.get(SlaDocumentReview, review_id, with_for_update=for_update)


async def list_sla_reviews(
    session: AsyncSession, *, state: SlaReviewState | None, organization_id: UUID | None, limit: int
) -> Sequence[SlaDocumentReview]:
    query = select(SlaDocumentReview).order_by(col(SlaDocumentReview.id).desc()).limit(limit)
    if state is not None:
        query = query.where(col(SlaDocumentReview.state) == state)
    if organization_id is not None:
        query = query.where(col(SlaDocumentReview.organization_id) == organization_id)
    return (await session.scalars(query)).all()


async def settle_sla_reviews(session: AsyncSession, organization_id: UUID, *, by: str, at: datetime) -> None:
    """Every pending review of the organization is settled by one confirmation."""
    await session.execute(
        update(SlaDocumentReview)
        .where(
            col(SlaDocumentReview.organization_id) == organization_id,
            col(SlaDocumentReview.state) == SlaReviewState.NEEDS_REVIEW,
        )
        .values(state=SlaReviewState.CONFIRMED, reviewed_at=at, reviewed_by=by)
    )
