"""The notices billing sent (allowance 80 % / 100 %, prepaid block low / exhausted), as the
notifier mailed them."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from services.billing import notices as sent
from services.billing import repository as repo
from services.billing.deps import Reader, Uow
from services.billing.models import NoticeKind
from services.billing.schemas import NoticePublic
from shared.problems import problem_responses

router = APIRouter(prefix="/notices", tags=["notices"])


@router.get("", responses=problem_responses(401, 422))
async def list_notices(
    uow: Uow,
    principal: Reader,
    organization_id: UUID | None = None,
    period: Annotated[
        str | None, Query(pattern=r"^\d{4}-\d{2}$", description="2026-11: the month of the close")
    ] = None,
    kind: NoticeKind | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[NoticePublic]:
    """Notices the caller may see (all for staff, their own organizations' for others), oldest
    first: each sent once per (organization, period) for an allowance threshold, once per
    purchase for a prepaid block."""
    notices = await repo.list_notices(
        uow.session,
        scope=principal.org_scope(),
        organization_id=organization_id,
        period_key=period,
        kind=kind.value if kind else None,
        limit=limit,
    )
    return [sent.notice_public(notice) for notice in notices]
