"""What the feedback route answers."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlmodel import SQLModel

from services.ticket_api.feedback.models import Rating


class FeedbackPublic(SQLModel):
    ticket_id: UUID
    rating: Rating
    comment: str
    email: str
    created_at: datetime
    updated_at: datetime
