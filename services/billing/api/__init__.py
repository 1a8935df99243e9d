"""billing's routes, all under ``/api/v1/billing``."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from services.billing.api import accounts, invoices, notices, periods, tickets
from services.billing.deps import billing_reader
from shared.problems import problem_responses

router = APIRouter(
    prefix="/api/v1/billing", dependencies=[Depends(billing_reader)], responses=problem_responses(401, 403)
)
for module in (accounts, invoices, notices, periods, tickets):
    router.include_router(module.router)
