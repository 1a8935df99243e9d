"""Test infrastructure: a real PostgreSQL database (created per run, migrated once), a real
Redis (a dedicated database, flushed per test), and SQLite files for the embedded mode."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from shared.events import Service
from shared.migrate import upgrade

PG_SERVER = os.environ.get("HELPDESK_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("HELPDESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
TEST_DATABASE = f"helpdesk_test_{os.getpid()}"


def pg_url(database: str = TEST_DATABASE) -> str:
    return PG_SERVER.replace("postgresql://", "postgresql+asyncpg://") + f"/{database}"


async def _migrate(url: str, services: list[Service]) -> None:
    for service in services:
        # Alembic's env runs its own event loop: give it a thread.
        await asyncio.to_thread(upgrade, service, url)


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for this run with every service's schema migrated."""
    admin = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{TEST_DATABASE}"')
    finally:
        await admin.close()
    url = pg_url()
    await _migrate(url, list(Service))
    yield url
    admin = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file per service, copied for each test that needs one."""
    directory = tmp_path_factory.mktemp("sqlite-template")
    for service in Service:
        await _migrate(f"sqlite+aiosqlite:///{directory / f'{service.value}.db'}", [service])
    return directory


def sqlite_copy(template: Path, service: Service, destination: Path) -> str:
    target = destination / f"{service.value}.db"
    shutil.copy(template / f"{service.value}.db", target)
    return f"sqlite+aiosqlite:///{target}"


async def truncate_schema(url: str, schema: str) -> None:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'alembic_version'", schema
        )
        if tables:
            names = ", ".join(f'"{schema}"."{row["tablename"]}"' for row in tables)
            await connection.execute(f"TRUNCATE {names} CASCADE")
    finally:
        await connection.close()


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()
