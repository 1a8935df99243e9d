from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from services.billing import settlement
from services.billing.deps import Now, Reader, Uow
from services.billing.schemas import ClosePreview
from shared.problems import problem_responses

router = APIRouter(prefix="/tickets", tags=["tickets"])


@router.get("/{ticket_id}/close-preview", responses=problem_responses(401, 404, 422))
async def close_preview(ticket_id: UUID, uow: Uow, principal: Reader, now: Now) -> ClosePreview:
    """What closing the ticket now would charge: invoice lines and amounts (hourly, block
    overage), allowance draws (agreements) or prepaid minutes (blocks). Nothing is written."""
    return await settlement.preview_close(uow.session, principal, ticket_id, now=now)
