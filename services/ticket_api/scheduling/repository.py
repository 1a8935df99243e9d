"""The queries of appointments that other rooms read (repositories only flush)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.ticket_api.scheduling.models import Appointment


async def appointments_of(session: AsyncSession, ticket_id: UUID) -> list[Appointment]:
    """A ticket's appointments, earliest first."""
    rows = await session.scalars(
        select(Appointment)
        .where(col(Appointment.ticket_id) == ticket_id)
        .order_by(col(Appointment.starts_at))
    )
    return list(rows)
