from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from services.ticket_api import repository as repo
from services.ticket_api import revocations, service
from services.ticket_api.deps import CurrentCaller, SignIn, Uow, WritingCaller
from services.ticket_api.models import Agent, AgentCreate, AgentPublic, AgentUpdate
from shared.pagination import Page, decode_cursor, page_of
from shared.problems import problem_responses

router = APIRouter(prefix="/agents", tags=["agents"])


def _public(agent: Agent) -> AgentPublic:
    return AgentPublic.model_validate(agent, from_attributes=True)


@router.post("", status_code=201, responses=problem_responses(401, 403, 409, 422))
async def create_agent(body: AgentCreate, uow: Uow, caller: WritingCaller) -> AgentPublic:
    """Add a consultant: skills, timezone, weekly working hours and capacity (admins)."""
    agent = await service.create_agent(uow, caller, body)
    await uow.commit()
    return _public(agent)


@router.get("", responses=problem_responses(401, 403, 422))
async def list_agents(
    uow: Uow,
    caller: CurrentCaller,
    skill: str | None = Query(None, max_length=100),
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[AgentPublic]:
    service.require_staff(caller)
    agents = await repo.list_agents(
        uow.session, skill=skill, active=active, limit=limit + 1, after=decode_cursor(cursor)
    )
    return page_of([_public(a) for a in agents], [a.id for a in agents], limit)


@router.get("/{agent_id}", responses=problem_responses(401, 403, 404, 422))
async def get_agent(agent_id: UUID, uow: Uow, caller: CurrentCaller) -> AgentPublic:
    return _public(await service.get_agent(uow, caller, agent_id))


@router.patch("/{agent_id}", responses=problem_responses(401, 403, 404, 422))
async def update_agent(
    agent_id: UUID, body: AgentUpdate, uow: Uow, caller: WritingCaller, sign_in: SignIn
) -> AgentPublic:
    """Change an agent (admins). Deactivating one ends their sessions at once."""
    agent = await service.update_agent(uow, caller, agent_id, body)
    if body.active is False:
        await revocations.revoke_subject(
            uow.session, sign_in.redis, agent.id, max_token_ttl=sign_in.settings.access_token_ttl_seconds
        )
    await uow.commit()
    return _public(agent)
