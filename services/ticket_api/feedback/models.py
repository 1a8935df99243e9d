"""The customer's rating of a ticket."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from sqlalchemy import String, Text
from sqlmodel import Field

from services.ticket_api.db import Base
from shared.db import timestamp


class Rating(StrEnum):
    HAPPY = "happy"
    UNHAPPY = "unhappy"


class Feedback(Base, table=True):
    """The customer's satisfaction with a closed ticket: one per ticket, a later answer replaces it."""

    ticket_id: UUID = Field(foreign_key="ticket.id", primary_key=True)
    rating: Rating = Field(sa_type=String(16), nullable=False)
    comment: str = Field(default="", sa_type=Text)
    email: str = Field(max_length=320)
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()
