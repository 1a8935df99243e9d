"""The queries of agents (repositories only flush)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import cast, exists, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.ticket_api.identity.models import Agent
from shared.db import dialect_of


async def get_agent(session: AsyncSession, agent_id: UUID) -> Agent | None:
    return await session.get(Agent, agent_id)


async def get_agent_by_email(session: AsyncSession, email: str) -> Agent | None:
    return (await session.scalars(select(Agent).where(col(Agent.email) == email))).first()


async def list_agents(
    session: AsyncSession, *, skill: str | None, active: bool | None, limit: int, after: UUID | None
) -> Sequence[Agent]:
    query = select(Agent).order_by(col(Agent.id)).limit(limit)
    if active is not None:
        query = query.where(col(Agent.active) == active)
    if skill is not None:
        query = query.where(_has_skill(session, skill))
    if after is not None:
        query = query.where(col(Agent.id) > after)
    return (await session.scalars(query)).all()


def _has_skill(session: AsyncSession, skill: str) -> Any:
    """Agents whose JSON ``skills`` list contains ``skill``."""
    if dialect_of(session) == "postgresql":
        return cast(Agent.__table__.c.skills, JSONB).contains([skill])  # type: ignore[attr-defined]
    skills = func.json_each(Agent.__table__.c.skills).table_valued("value")  # type: ignore[attr-defined]
    return exists(select(literal(1)).select_from(skills).where(skills.c.value == skill))
