"""The resources one service process holds: engine, sessions, Redis pool and outbox.

Opened in the API's lifespan and in the worker's startup, closed on the way out; never
module globals.
"""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis
from fastapi import Request
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import clock, queue
from shared.db import SessionMaker, create_engine, ping, session_maker
from shared.outbox import Outbox
from shared.settings import ServiceSettings
from shared.tokens import JwksSource, TokenVerifier


@dataclass
class Runtime:
    settings: ServiceSettings
    engine: AsyncEngine
    sessions: SessionMaker
    redis: ArqRedis
    outbox: Outbox
    verifier: TokenVerifier

    @classmethod
    async def open(cls, settings: ServiceSettings, outbox_table: Table) -> Runtime:
        clock.set_offset(settings.clock_offset_seconds)
        engine = create_engine(
            settings.database_url,
            schema=settings.schema_name,
            pool_size=settings.db_pool_size,
            echo=settings.db_echo,
        )
        sessions = session_maker(engine)
        redis = await queue.connect(settings.redis_url)

        async def publish(event: queue.Event) -> int:
            return await queue.publish(redis, event)

        verifier = TokenVerifier(
            JwksSource(url=settings.jwks_url, file=settings.jwks_file),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            revocations=redis,
        )
        return cls(settings, engine, sessions, redis, Outbox(outbox_table, sessions, publish), verifier)

    async def close(self) -> None:
        await self.outbox.drain()
        await self.redis.aclose()
        await self.engine.dispose()


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def database_ready(request: Request) -> None:
    await ping(runtime_of(request).engine)


async def redis_ready(request: Request) -> None:
    await runtime_of(request).redis.ping()


READINESS_CHECKS = {"database": database_ready, "redis": redis_ready}
