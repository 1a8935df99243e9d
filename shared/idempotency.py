"""``Idempotency-Key`` for creating POSTs (after Stripe and the IETF draft): the same caller
sending the same key and body gets the first answer again; a different body under the same key
is refused. Keys are scoped by caller, so one client never sees another's answer.

The answer is stored in the same transaction as the effect. A concurrent duplicate waits for
the first to commit (the key's unique index), then replays its answer. Each service keeps its
records in its own ``idempotency_record`` table (:func:`idempotency_table`, or a model with the
same columns) and uses them through :class:`IdempotencyStore`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import Header
from fastapi.responses import Response
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import utcnow
from shared.db import UtcDateTime, dialect_of, insert_ignoring_conflicts
from shared.problems import Unprocessable
from shared.uow import UnitOfWork

REPLAY_HEADER = "Idempotent-Replayed"

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="A unique string (a UUID). A retry with the same key and body gets the first answer.",
    ),
]


class IdempotencyKeyReused(Unprocessable):
    slug, title = "idempotency-key-reused", "Idempotency-Key reused with a different request"


def idempotency_table(metadata: MetaData) -> Table:
    """The ``idempotency_record`` table, declared in the owning service's metadata."""
    table = Table(
        "idempotency_record",
        metadata,
        Column("caller", String(100), primary_key=True),
        Column("key", String(255), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("response_status", Integer, nullable=False),
        Column("response_body", Text, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
    )
    Index("ix_idempotency_record_created_at", table.c.created_at)
    return table


def request_fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _replay(request_hash: str, status: int, body: str, fingerprint: str) -> Response:
    if request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request body; use a new key for a new request."
        )
    return Response(
        content=body, status_code=status, media_type="application/json", headers={REPLAY_HEADER: "true"}
    )


@dataclass(frozen=True)
class IdempotencyStore:
    """Answers remembered in ``table`` (a service's ``idempotency_record``)."""

    table: Table

    async def previous_answer(
        self, uow: UnitOfWork, caller: str, key: str, fingerprint: str
    ) -> Response | None:
        row = (
            await uow.session.execute(
                select(
                    self.table.c.request_hash, self.table.c.response_status, self.table.c.response_body
                ).where(self.table.c.caller == caller, self.table.c.key == key)
            )
        ).first()
        return None if row is None else _replay(row[0], row[1], row[2], fingerprint)

    async def remember_or_replay(
        self, uow: UnitOfWork, *, caller: str, key: str, fingerprint: str, status: int, body: str
    ) -> Response | None:
        """Store this answer with the effect. If a concurrent request with the key won, roll back
        ours and return theirs."""
        statement = insert_ignoring_conflicts(
            self.table, dialect_of(uow.session), "caller", "key", returning=("key",)
        )
        row = {
            "caller": caller,
            "key": key,
            "request_hash": fingerprint,
            "response_status": status,
            "response_body": body,
            "created_at": utcnow(),
        }
        if (await uow.session.execute(statement, row)).first() is not None:
            return None
        await uow.rollback()
        answer = await self.previous_answer(uow, caller, key, fingerprint)
        assert answer is not None, "a conflicting idempotency record must be readable after it committed"
        return answer

    async def answer_once(
        self,
        uow: UnitOfWork,
        *,
        caller: str,
        key: str | None,
        request: dict[str, Any],
        status: int,
        effect: Callable[[], Awaitable[str]],
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Run ``effect`` (which makes its change in ``uow`` without committing and returns the
        JSON answer) once per (caller, key); commit it with its answer. Without a key, just run it."""
        fingerprint = request_fingerprint(request)
        if key is not None:
            previous = await self.previous_answer(uow, caller, key, fingerprint)
            if previous is not None:
                return previous
        body = await effect()
        if key is not None:
            replayed = await self.remember_or_replay(
                uow, caller=caller, key=key, fingerprint=fingerprint, status=status, body=body
            )
            if replayed is not None:
                return replayed
        await uow.commit()
        return Response(body, status_code=status, media_type="application/json", headers=headers)

    async def purge(self, session: AsyncSession, *, older_than: datetime) -> int:
        result = await session.execute(delete(self.table).where(self.table.c.created_at < older_than))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
