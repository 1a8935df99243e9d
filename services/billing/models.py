"""billing's tables. Its domain tables arrive with its issue; the event plumbing is here now."""

from __future__ import annotations

from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from shared.consumer import processed_event_table
from shared.outbox import outbox_table


class Base(SQLModel, registry=registry()):
    """Every billing table hangs off this metadata (and no other service's)."""


metadata = Base.metadata
outbox = outbox_table(metadata)
processed_event = processed_event_table(metadata)
