"""ticket_api's table metadata and what every room shares: the outbox and processed-event
tables, the audit trail, idempotency records, and the field helpers of tables and request bodies."""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import available_timezones

from pydantic import ConfigDict
from sqlalchemy import (
    JSON,
    Column,
    Index,
    MetaData,
    String,
    Text,
    delete,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel, col

from shared.clock import utcnow
from shared.consumer import processed_event_table
from shared.db import timestamp
from shared.ids import new_id
from shared.outbox import outbox_table


class Base(SQLModel, registry=registry()):
    """Every ticket_api table hangs off this metadata (and no other service's)."""


metadata = Base.metadata
outbox = outbox_table(metadata)
processed_event = processed_event_table(metadata)


class Strict(SQLModel):
    """Request bodies: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]


def example(body: dict[str, Any]) -> ConfigDict:
    """A request body's configuration: strict, with the example the OpenAPI shows."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [body]})


_TIMEZONES = frozenset(available_timezones())


def check_timezone(value: str) -> str:
    if value not in _TIMEZONES:
        raise ValueError(f"unknown IANA timezone {value!r} (e.g. 'America/Chicago')")
    return value


def enum_column(length: int = 32) -> Any:
    return Field(sa_type=String(length), nullable=False)


class AuditEntry(Base, table=True):
    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_entity", "entity_type", "entity_id", "id"),)

    id: UUID = Field(default_factory=new_id, primary_key=True)
    entity_type: str = Field(max_length=32)
    entity_id: UUID
    action: str = Field(max_length=64)
    actor: str = Field(max_length=100)
    changes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    request_id: str | None = Field(default=None, max_length=128)
    created_at: datetime = timestamp()


class IdempotencyRecord(Base, table=True):
    """A POST answered under an ``Idempotency-Key``, replayed for the same caller and key."""

    __tablename__ = "idempotency_record"
    caller: str = Field(primary_key=True, max_length=100)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    response_status: int
    response_body: str = Field(sa_type=Text)
    created_at: datetime = timestamp(index=True)


async def purge_idempotency_records(session: AsyncSession, *, older_than: datetime) -> int:
    result = await session.execute(
        delete(IdempotencyRecord).where(col(IdempotencyRecord.created_at) < older_than)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def touch(session: AsyncSession, model: type[Any], entity_id: UUID, **values: Any) -> None:
    await session.execute(update(model).where(model.id == entity_id).values(**values, updated_at=utcnow()))


# The rooms whose models.py puts tables on ``metadata``.
ROOMS_WITH_TABLES = ("tickets", "organizations", "identity", "scheduling", "inbound", "feedback")


def complete_metadata() -> MetaData:
    """The metadata with every room's tables on it (migrations compare against all of them)."""
    for room in ROOMS_WITH_TABLES:
        importlib.import_module(f"services.ticket_api.{room}.models")
    return metadata
