"""Every query notifier runs. Functions take the session explicitly and only flush."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Table, and_, bindparam, delete, func, insert, or_, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.notifier.models import (
    AgentView,
    DeliveryState,
    Notification,
    Suppression,
    ThreadMessage,
    TicketSla,
    TicketView,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from shared.db import dialect_of, insert_ignoring_conflicts
from shared.ids import new_id

THREAD_REFERENCES = 10


def table_of(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


# Built once; the row id and the new values come as parameters (the SET clause is the keys).
_UPDATE_NOTIFICATION = update(Notification.__table__).where(  # type: ignore[attr-defined]
    Notification.__table__.c.id == bindparam("b_id")  # type: ignore[attr-defined]
)
_UPDATE_TICKET_VIEW = update(TicketView.__table__).where(  # type: ignore[attr-defined]
    TicketView.__table__.c.ticket_id == bindparam("b_ticket_id")  # type: ignore[attr-defined]
)


async def _upsert(
    session: AsyncSession, table: Table, values: dict[str, Any], key: str, *, newer: str | None = None
) -> None:
    """``INSERT … ON CONFLICT (key) DO UPDATE`` (only when ``newer`` grows, if given)."""
    statement = _upsert_statement(table, dialect_of(session), tuple(values), key, newer)
    await session.execute(statement, values)


@functools.cache
def _upsert_statement(
    table: Table, dialect_name: str, columns: tuple[str, ...], key: str, newer: str | None
) -> Any:
    """Built once per table, dialect and set of columns; the row comes as parameters."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(table)
    changes = {name: statement.excluded[name] for name in columns if name != key}
    where = (table.c[newer] <= statement.excluded[newer]) if newer else None
    return statement.on_conflict_do_update(index_elements=[key], set_=changes, where=where)


# --- projections ---------------------------------------------------------------------------


async def upsert_ticket_view(session: AsyncSession, values: dict[str, Any]) -> None:
    await _upsert(session, table_of(TicketView), values, "ticket_id", newer="updated_at")


async def update_ticket_view(session: AsyncSession, ticket_id: UUID, **values: Any) -> None:
    await session.execute(_UPDATE_TICKET_VIEW, {"b_ticket_id": ticket_id, **values})


async def get_ticket_view(session: AsyncSession, ticket_id: UUID) -> TicketView | None:
    return await session.get(TicketView, ticket_id)


# The first argument of the two-key advisory locks notifier takes (ASCII "ntfy"): keeps them
# apart from any other user of the database's advisory locks.
_ACKNOWLEDGMENT_LOCKS = 0x6E746679
_ACKNOWLEDGMENT_LOCK = select(func.pg_advisory_xact_lock(_ACKNOWLEDGMENT_LOCKS, bindparam("b_key")))


async def lock_acknowledgment(session: AsyncSession, ticket_id: UUID) -> None:
    """Serialize, per ticket, the transactions that meet over its first mails (ticket.created
    records the acknowledgment; ticket.triaged rewrites it, folding the assignment news in;
    ticket.updated may record assignment mails): each reads what another writes, so run
    concurrently none would see the others' uncommitted rows. Held until the transaction
    ends; take it before any other write of the handler (one lock order, no deadlock).
    PostgreSQL: a transaction-scoped advisory lock. SQLite: nothing to do, a consumer's
    transaction writes first (its processed_event row) and so holds the database's only
    write lock throughout."""
    if dialect_of(session) == "postgresql":
        key = int.from_bytes(ticket_id.bytes[-4:], "big", signed=True)  # random bits (v4, v7)
        await session.execute(_ACKNOWLEDGMENT_LOCK, {"b_key": key})


async def upsert_ticket_sla(session: AsyncSession, values: dict[str, Any]) -> None:
    """Triage's decision for a ticket, unless a later one is already stored."""
    await _upsert(session, table_of(TicketSla), values, "ticket_id", newer="decided_at")


async def get_ticket_sla(session: AsyncSession, ticket_id: UUID) -> TicketSla | None:
    return await session.get(TicketSla, ticket_id, populate_existing=True)


async def upsert_agent(session: AsyncSession, values: dict[str, Any]) -> None:
    await _upsert(session, table_of(AgentView), values, "id", newer="updated_at")


async def get_agent(session: AsyncSession, agent_id: UUID) -> AgentView | None:
    return await session.get(AgentView, agent_id)


def _thread_message_ids_statement() -> Any:
    table = table_of(ThreadMessage)
    base = select(table.c.message_id, table.c.created_at, table.c.id).where(
        table.c.ticket_id == bindparam("b_ticket_id")
    )
    first = base.order_by(table.c.created_at, table.c.id).limit(1).subquery()
    latest = (
        base.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(THREAD_REFERENCES - 1).subquery()
    )
    return union_all(select(first), select(latest))


_THREAD_MESSAGE_IDS = _thread_message_ids_statement()


async def thread_message_ids(session: AsyncSession, ticket_id: UUID) -> list[str]:
    """The ticket's first Message-ID and its latest ones, oldest first (for References); one
    round trip. Ties in time go by id (time-ordered: the order they were added)."""
    rows = (await session.execute(_THREAD_MESSAGE_IDS, {"b_ticket_id": ticket_id})).all()
    ordered = sorted(rows, key=lambda row: (row.created_at, row.id))
    return list(dict.fromkeys(row.message_id for row in ordered))  # the first may be among the latest


async def is_thread_message(session: AsyncSession, message_id: str) -> bool:
    """Whether ``message_id`` is in a customer's thread (mail staff got is not)."""
    found = await session.scalar(select(ThreadMessage.id).where(col(ThreadMessage.message_id) == message_id))
    return found is not None


async def add_thread_message(session: AsyncSession, ticket_id: UUID, message_id: str, at: datetime) -> None:
    row = {"id": new_id(), "ticket_id": ticket_id, "message_id": message_id, "created_at": at}
    await session.execute(insert(table_of(ThreadMessage)), row)


# --- notifications -------------------------------------------------------------------------


async def insert_notification(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert unless (dedupe_key, recipient, kind) exists; ``True`` when inserted."""
    statement = insert_ignoring_conflicts(
        table_of(Notification), dialect_of(session), "dedupe_key", "recipient", "kind", returning=("id",)
    )
    return (await session.execute(statement, values)).first() is not None


async def any_notification(session: AsyncSession, dedupe_key: str) -> bool:
    """Whether some mail was recorded under ``dedupe_key`` already."""
    table = table_of(Notification)
    found = await session.execute(select(table.c.id).where(table.c.dedupe_key == dedupe_key).limit(1))
    return found.first() is not None


async def any_mail_of_kind(session: AsyncSession, ticket_id: UUID, kind: str) -> bool:
    """Whether the ticket has a mail of ``kind`` recorded (in whatever state)."""
    table = table_of(Notification)
    found = await session.execute(
        select(table.c.id).where(table.c.ticket_id == ticket_id, table.c.kind == kind).limit(1)
    )
    return found.first() is not None


async def find_notification(
    session: AsyncSession, dedupe_key: str, recipient: str, kind: str
) -> Notification | None:
    return (
        await session.scalars(
            select(Notification).where(
                col(Notification.dedupe_key) == dedupe_key,
                col(Notification.recipient) == recipient,
                col(Notification.kind) == kind,
            )
        )
    ).first()


async def unsent_notification(session: AsyncSession, ticket_id: UUID, kind: str) -> Notification | None:
    """The ticket's original mail of ``kind`` while nobody has tried to send it yet."""
    return (
        await session.scalars(
            select(Notification).where(
                col(Notification.ticket_id) == ticket_id,
                col(Notification.kind) == kind,
                col(Notification.resend_of).is_(None),
                col(Notification.state) == DeliveryState.PENDING,
                col(Notification.attempts) == 0,
            )
        )
    ).first()


async def replace_unsent(session: AsyncSession, notification_id: UUID, **values: Any) -> bool:
    """Change a notification only while no send attempt has claimed it (the same condition as
    the claim's, in one statement: a concurrent claim either sees the new content or keeps the
    row). ``True`` when it changed."""
    table = table_of(Notification)
    result = await session.execute(
        update(table)
        .where(table.c.id == notification_id, table.c.state == DeliveryState.PENDING, table.c.attempts == 0)
        .values(**values)
        .returning(table.c.id)
    )
    return result.first() is not None


async def merge_unsent(session: AsyncSession, dedupe_key: str, recipient: str, kind: str) -> bool:
    """Mark a mail still waiting to be sent as merged into another (it never goes out); ``True``
    when there was one. Same condition as the claim's: one already being sent is left alone."""
    table = table_of(Notification)
    result = await session.execute(
        update(table)
        .where(
            table.c.dedupe_key == dedupe_key,
            table.c.recipient == recipient,
            table.c.kind == kind,
            table.c.state == DeliveryState.PENDING,
            table.c.attempts == 0,
        )
        .values(state=DeliveryState.MERGED)
        .returning(table.c.id)
    )
    return result.first() is not None


async def get_notification(session: AsyncSession, notification_id: UUID) -> Notification | None:
    return await session.get(Notification, notification_id)


async def claim_notification(
    session: AsyncSession, notification_id: UUID, *, attempt: int, now: datetime, lease: timedelta
) -> tuple[Notification, Suppression | None] | None:
    """Take the row for one send attempt: pending and due (or a lost attempt whose lease ran
    out), still at ``attempt``. ``None`` when someone else has it or it is done; else the row
    and the recipient's suppression, if any (one round trip for both)."""
    table = table_of(Notification)
    claimable = or_(
        and_(table.c.state == DeliveryState.PENDING, table.c.next_attempt_at <= now),
        and_(table.c.state == DeliveryState.SENDING, table.c.lease_until < now),
    )
    suppressed = (
        select(col(Suppression.address))
        .where(col(Suppression.address) == table.c.recipient)
        .scalar_subquery()
    )
    row = (
        await session.execute(
            update(Notification)
            .where(table.c.id == notification_id, table.c.attempts == attempt, claimable)
            .values(
                state=DeliveryState.SENDING, attempts=attempt + 1, lease_until=now + lease, updated_at=now
            )
            .returning(Notification, suppressed.label("suppressed_address")),
            execution_options={"synchronize_session": False, "populate_existing": True},
        )
    ).first()
    if row is None:
        return None
    notification, suppressed_address = row
    suppression = await session.get(Suppression, suppressed_address) if suppressed_address else None
    return notification, suppression


async def renew_claim(
    session: AsyncSession, notification_id: UUID, *, attempts: int, now: datetime, lease: timedelta
) -> Notification | None:
    """Extend the lease of a claim that is still ours (sending, at ``attempts``); ``None`` when
    the lease ran out and another attempt took the row (or it is done)."""
    table = table_of(Notification)
    row = (
        await session.execute(
            update(Notification)
            .where(
                table.c.id == notification_id,
                table.c.attempts == attempts,
                table.c.state == DeliveryState.SENDING,
            )
            .values(lease_until=now + lease, updated_at=now)
            .returning(Notification),
            execution_options={"synchronize_session": False, "populate_existing": True},
        )
    ).first()
    return None if row is None else row[0]


async def finish_notification(session: AsyncSession, notification_id: UUID, **values: Any) -> None:
    await session.execute(_UPDATE_NOTIFICATION, {"b_id": notification_id, "lease_until": None, **values})


async def due_notifications(
    session: AsyncSession, *, now: datetime, grace: timedelta, limit: int
) -> list[tuple[UUID, int]]:
    """Rows whose send job should have run by now (the sweeper enqueues them again)."""
    table = table_of(Notification)
    rows = await session.execute(
        select(table.c.id, table.c.attempts)
        .where(
            or_(
                and_(table.c.state == DeliveryState.PENDING, table.c.next_attempt_at <= now - grace),
                and_(table.c.state == DeliveryState.SENDING, table.c.lease_until < now),
            )
        )
        .order_by(table.c.next_attempt_at)
        .limit(limit)
    )
    return [(row.id, row.attempts) for row in rows]


async def list_notifications(
    session: AsyncSession,
    *,
    ticket_id: UUID | None,
    state: str | None,
    recipient: str | None,
    limit: int,
    after: UUID | None,
) -> Sequence[Notification]:
    query = select(Notification).order_by(col(Notification.id)).limit(limit)
    if ticket_id is not None:
        query = query.where(col(Notification.ticket_id) == ticket_id)
    if state is not None:
        query = query.where(col(Notification.state) == state)
    if recipient is not None:
        query = query.where(col(Notification.recipient) == recipient.lower())
    if after is not None:
        query = query.where(col(Notification.id) > after)
    return (await session.scalars(query)).all()


# --- suppressions --------------------------------------------------------------------------


async def get_suppression(session: AsyncSession, address: str) -> Suppression | None:
    return await session.get(Suppression, address.lower())


async def add_suppression(session: AsyncSession, values: dict[str, Any]) -> None:
    statement = insert_ignoring_conflicts(table_of(Suppression), dialect_of(session), "address")
    await session.execute(statement.values(**values))


async def delete_suppression(session: AsyncSession, address: str) -> bool:
    result = await session.execute(delete(Suppression).where(col(Suppression.address) == address.lower()))
    return bool(getattr(result, "rowcount", 0))


async def list_suppressions(session: AsyncSession, *, limit: int, after: str | None) -> Sequence[Suppression]:
    query = select(Suppression).order_by(col(Suppression.address)).limit(limit)
    if after is not None:
        query = query.where(col(Suppression.address) > after)
    return (await session.scalars(query)).all()


# --- webhooks ------------------------------------------------------------------------------


_ACTIVE_SUBSCRIPTIONS = select(WebhookSubscription).where(col(WebhookSubscription.active))


async def active_subscriptions(session: AsyncSession) -> Sequence[WebhookSubscription]:
    return (await session.scalars(_ACTIVE_SUBSCRIPTIONS)).all()


async def get_subscription(session: AsyncSession, subscription_id: UUID) -> WebhookSubscription | None:
    return await session.get(WebhookSubscription, subscription_id)


async def list_subscriptions(
    session: AsyncSession, *, client_id: UUID | None, limit: int, after: UUID | None
) -> Sequence[WebhookSubscription]:
    query = select(WebhookSubscription).order_by(col(WebhookSubscription.id)).limit(limit)
    if client_id is not None:
        query = query.where(col(WebhookSubscription.client_id) == client_id)
    if after is not None:
        query = query.where(col(WebhookSubscription.id) > after)
    return (await session.scalars(query)).all()


async def insert_delivery(session: AsyncSession, values: dict[str, Any]) -> bool:
    table = table_of(WebhookDelivery)
    statement = insert_ignoring_conflicts(table, dialect_of(session), "subscription_id", "event_id")
    result = await session.execute(statement.values(**values).returning(table.c.id))
    return result.first() is not None


async def get_delivery(session: AsyncSession, delivery_id: UUID) -> WebhookDelivery | None:
    return await session.get(WebhookDelivery, delivery_id)


async def claim_delivery(
    session: AsyncSession, delivery_id: UUID, *, attempt: int, now: datetime, lease: timedelta
) -> WebhookDelivery | None:
    table = table_of(WebhookDelivery)
    claimable = or_(
        and_(table.c.state == DeliveryState.PENDING, table.c.next_attempt_at <= now),
        and_(table.c.state == DeliveryState.SENDING, table.c.lease_until < now),
    )
    result = await session.execute(
        update(table)
        .where(table.c.id == delivery_id, table.c.attempts == attempt, claimable)
        .values(state=DeliveryState.SENDING, attempts=attempt + 1, lease_until=now + lease)
        .returning(table.c.id)
    )
    if result.first() is None:
        return None
    return await session.get(WebhookDelivery, delivery_id, populate_existing=True)


async def finish_delivery(session: AsyncSession, delivery_id: UUID, **values: Any) -> None:
    await session.execute(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.id) == delivery_id)
        .values(lease_until=None, **values)
    )


async def add_attempt(session: AsyncSession, values: dict[str, Any]) -> None:
    session.add(WebhookAttempt(**values))
    await session.flush()


async def due_deliveries(
    session: AsyncSession, *, now: datetime, grace: timedelta, limit: int
) -> list[tuple[UUID, int]]:
    table = table_of(WebhookDelivery)
    rows = await session.execute(
        select(table.c.id, table.c.attempts)
        .where(
            or_(
                and_(table.c.state == DeliveryState.PENDING, table.c.next_attempt_at <= now - grace),
                and_(table.c.state == DeliveryState.SENDING, table.c.lease_until < now),
            )
        )
        .order_by(table.c.next_attempt_at)
        .limit(limit)
    )
    return [(row.id, row.attempts) for row in rows]


async def list_deliveries(
    session: AsyncSession, *, subscription_id: UUID, state: str | None, limit: int, after: UUID | None
) -> Sequence[WebhookDelivery]:
    query = (
        select(WebhookDelivery)
        .where(col(WebhookDelivery.subscription_id) == subscription_id)
        .order_by(col(WebhookDelivery.id))
        .limit(limit)
    )
    if state is not None:
        query = query.where(col(WebhookDelivery.state) == state)
    if after is not None:
        query = query.where(col(WebhookDelivery.id) > after)
    return (await session.scalars(query)).all()


async def attempts_of(session: AsyncSession, delivery_id: UUID) -> Sequence[WebhookAttempt]:
    return (
        await session.scalars(
            select(WebhookAttempt)
            .where(col(WebhookAttempt.delivery_id) == delivery_id)
            .order_by(col(WebhookAttempt.attempt))
        )
    ).all()


async def later_mail_exists(session: AsyncSession, prefix: str, dedupe_key: str) -> bool:
    """Whether a mail was recorded under a key that starts with ``prefix`` and sorts after
    ``dedupe_key`` (keys that carry a zero-padded sequence: a later change was mailed)."""
    found = await session.scalar(
        select(col(Notification.id))
        .where(col(Notification.dedupe_key).startswith(prefix, autoescape=True))
        .where(col(Notification.dedupe_key) > dedupe_key)
        .limit(1)
    )
    return found is not None
