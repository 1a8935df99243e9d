"""``Idempotency-Key`` for POSTs (after Stripe and the IETF draft): the same caller sending
the same key and body gets the first answer again; a different body under the same key is
refused. Keys are scoped by caller, so one client never sees another's answer.

The answer is stored in the same transaction as the effect. A concurrent duplicate waits for
the first to commit (the key's unique index), then replays its answer.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from fastapi.responses import Response

from services.ticket_api import repository as repo
from services.ticket_api.errors import IdempotencyKeyReused
from services.ticket_api.models import IdempotencyRecord
from shared.uow import UnitOfWork

REPLAY_HEADER = "Idempotent-Replayed"


def request_fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request body; use a new key for a new request."
        )
    return Response(
        content=record.response_body,
        status_code=record.response_status,
        media_type="application/json",
        headers={REPLAY_HEADER: "true"},
    )


async def previous_answer(uow: UnitOfWork, caller: str, key: str, fingerprint: str) -> Response | None:
    record = await repo.get_idempotency_record(uow.session, caller, key)
    return None if record is None else replay(record, fingerprint)


async def remember_or_replay(
    uow: UnitOfWork, *, caller: str, key: str, fingerprint: str, status: int, body: str
) -> Response | None:
    """Store this answer with the effect. If a concurrent request with the key won, roll back
    ours and return theirs."""
    stored = await repo.save_idempotency_record(
        uow.session, caller=caller, key=key, request_hash=fingerprint, status=status, body=body
    )
    if stored:
        return None
    await uow.rollback()
    answer = await previous_answer(uow, caller, key, fingerprint)
    assert answer is not None, "a conflicting idempotency record must be readable after it committed"
    return answer
