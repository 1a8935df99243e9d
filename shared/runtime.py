"""The resources one service process holds: engine, sessions, Redis pool and outbox.

Opened in the API's lifespan and in the worker's startup, closed on the way out; never
module globals.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

from arq.connections import ArqRedis
from fastapi import Depends, Request
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import clock, queue
from shared.db import SessionMaker, create_engine, ping, reader_maker, session_maker
from shared.events import Service
from shared.outbox import Outbox
from shared.settings import ServiceSettings
from shared.tokens import JwksSource, TokenVerifier
from shared.uow import UnitOfWork


@dataclass
class Runtime:
    settings: ServiceSettings
    engine: AsyncEngine
    sessions: SessionMaker
    redis: ArqRedis
    outbox: Outbox
    verifier: TokenVerifier
    readers: SessionMaker
    background: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def open(
        cls, settings: ServiceSettings, outbox_table: Table, *, wait_for_redis: bool = True
    ) -> Runtime:
        """``wait_for_redis=False`` (an API process): start even while Redis is down."""
        clock.set_offset(settings.clock_offset_seconds)
        engine = create_engine(
            settings.database_url,
            schema=settings.schema_name,
            pool_size=settings.db_pool_size,
            echo=settings.db_echo,
        )
        sessions = session_maker(engine)
        redis = await queue.connect(settings.redis_url, wait=wait_for_redis)

        async def publish(event: queue.Event) -> int:
            return await queue.publish(redis, event)

        verifier = TokenVerifier(
            JwksSource(url=settings.jwks_url, file=settings.jwks_file),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            revocations=redis,
        )
        outbox = Outbox(outbox_table, Service(settings.service_name), sessions, publish)
        return cls(settings, engine, sessions, redis, outbox, verifier, reader_maker(engine))

    def start_background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run ``coroutine`` until the runtime closes (a loop that keeps a cache filled, say)."""
        self.background.append(asyncio.ensure_future(coroutine))

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await self.outbox.drain()
        await self.redis.aclose()
        await self.engine.dispose()


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


READING_METHODS = frozenset({"GET", "HEAD"})


async def unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    """One session per request; the route commits, and whatever it did not commit rolls back.
    A GET or HEAD request reads through a session that refuses to write (no transaction on
    PostgreSQL, see :func:`shared.db.reader_maker`)."""
    runtime = runtime_of(request)
    sessions = runtime.readers if request.method in READING_METHODS else runtime.sessions
    async with sessions() as session:
        yield UnitOfWork(session, runtime.outbox)


Uow = Annotated[UnitOfWork, Depends(unit_of_work)]


async def database_ready(request: Request) -> None:
    await ping(runtime_of(request).engine)


async def redis_ready(request: Request) -> None:
    await runtime_of(request).redis.ping()


READINESS_CHECKS = {"database": database_ready, "redis": redis_ready}
