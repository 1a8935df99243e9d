"""Revocations and single-use marks: written to the database (``revocation``), the truth, and
copied to Redis, where every service's token verifier reads them (shared.tokens).

Redis is only a cache: when it loses them (a restart without its file, a flush), the marker
``REVOCATIONS_LOADED`` is gone with them, verifiers answer 503 instead of letting a revoked token
pass, and :func:`keep_loaded` (run by every ticket_api API process) reloads them within a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from uuid import UUID

from redis.asyncio import Redis
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.ticket_api.identity.models import Revocation, SignInCounter
from shared.clock import utcnow
from shared.db import SessionMaker, dialect_of, insert_ignoring_conflicts
from shared.principal import Principal
from shared.tokens import (
    LEEWAY_SECONDS,
    REVOCATIONS_LOADED,
    REVOKED_JTI,
    REVOKED_SESSION,
    REVOKED_SUBJECT,
)

log = logging.getLogger(__name__)

JTI, SUBJECT, SESSION, SIGN_IN_LINK = "jti", "sub", "sid", "sign-in-link"
CACHE_PREFIXES = {JTI: REVOKED_JTI, SUBJECT: REVOKED_SUBJECT, SESSION: REVOKED_SESSION}
CHECK_INTERVAL_SECONDS = 1.0
PURGE_INTERVAL_SECONDS = 3600.0

_table = Revocation.__table__  # type: ignore[attr-defined]


async def _revoke(session: AsyncSession, redis: Redis, kind: str, key: str, value: str, ttl: int) -> None:
    """Record the revocation in the session's transaction and in Redis's copy."""
    if ttl <= 0:
        return
    await session.merge(
        Revocation(kind=kind, key=key, value=value, expires_at=utcnow() + timedelta(seconds=ttl))
    )
    await session.flush()
    await redis.set(f"{CACHE_PREFIXES[kind]}{key}", value, ex=ttl)


async def revoke_token(session: AsyncSession, redis: Redis, principal: Principal) -> None:
    """Refuse the principal's current access token from now until it would have expired."""
    if principal.token_id is None or principal.token_expires_at is None:
        return
    remaining = principal.token_expires_at - int(time.time()) + LEEWAY_SECONDS
    await _revoke(session, redis, JTI, principal.token_id, "1", remaining)


async def revoke_subject(
    session: AsyncSession, redis: Redis, subject_id: UUID, *, max_token_ttl: int
) -> None:
    """Refuse every token issued to ``subject_id`` up to now (a revoked client, a disabled agent)."""
    await _revoke(
        session, redis, SUBJECT, str(subject_id), str(int(time.time())), max_token_ttl + LEEWAY_SECONDS
    )


async def revoke_session(
    session: AsyncSession, redis: Redis, session_id: UUID, *, max_token_ttl: int
) -> None:
    """Refuse every access token issued in the sign-in session ``session_id`` (its refresh family)."""
    await _revoke(session, redis, SESSION, str(session_id), "1", max_token_ttl + LEEWAY_SECONDS)


async def use_once(session: AsyncSession, kind: str, key: str, *, expires_at: datetime) -> bool:
    """Mark ``key`` used in the session's transaction; False if it was used already."""
    statement = insert_ignoring_conflicts(_table, dialect_of(session), "kind", "key", returning=("key",))
    result = await session.execute(
        statement, {"kind": kind, "key": key, "value": "1", "expires_at": expires_at}
    )
    return result.first() is not None


async def reload(sessions: SessionMaker, redis: Redis) -> int:
    """Copy every revocation still in force to Redis, then set the marker; returns how many."""
    now = utcnow()
    async with sessions() as session:
        rows = (
            await session.execute(
                select(_table.c.kind, _table.c.key, _table.c.value, _table.c.expires_at).where(
                    _table.c.kind.in_(list(CACHE_PREFIXES)), _table.c.expires_at > now
                )
            )
        ).all()
    async with redis.pipeline(transaction=False) as pipe:
        for row in rows:
            ttl_ms = int((row.expires_at - now).total_seconds() * 1000)
            if ttl_ms > 0:
                pipe.set(f"{CACHE_PREFIXES[row.kind]}{row.key}", row.value, px=ttl_ms)
        pipe.set(REVOCATIONS_LOADED, str(int(time.time())))
        await pipe.execute()
    return len(rows)


async def purge_expired(sessions: SessionMaker) -> None:
    """Delete revocations past their tokens' lifetime and sign-in counts whose window ended."""
    now = utcnow()
    async with sessions() as session, session.begin():
        await session.execute(delete(Revocation).where(Revocation.expires_at <= now))  # type: ignore[arg-type]
        await session.execute(
            delete(SignInCounter).where(
                SignInCounter.window_ends_at <= now,  # type: ignore[arg-type]
                (SignInCounter.locked_until.is_(None)) | (SignInCounter.locked_until <= now),  # type: ignore[union-attr, operator]
            )
        )


async def keep_loaded(sessions: SessionMaker, redis: Redis) -> None:
    """Forever (until cancelled): reload the revocations whenever Redis lost them; purge expired
    rows now and then. Survives database and Redis outages."""
    purged_at = 0.0
    while True:
        try:
            if not await redis.exists(REVOCATIONS_LOADED):
                count = await reload(sessions, redis)
                log.info("reloaded %s revocations into Redis", count)
            if time.monotonic() - purged_at > PURGE_INTERVAL_SECONDS:
                await purge_expired(sessions)
                purged_at = time.monotonic()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("could not check or reload the revocations: %r", error)
        await asyncio.sleep(CHECK_INTERVAL_SECONDS)
