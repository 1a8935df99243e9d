"""Test infrastructure: a real PostgreSQL database (created per run, migrated once), a real
Redis (a private redis-server per run unless HELPDESK_TEST_REDIS_URL names one; flushed per
test), and SQLite files for the embedded mode. Runs on one machine never share state."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from shared.events import Service
from shared.migrate import upgrade
from shared.tokens import REVOCATIONS_LOADED
from tests.servers import RedisServer

PG_SERVER = os.environ.get("HELPDESK_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
TEST_DATABASE = f"helpdesk_test_{os.getpid()}"


def pytest_configure(config: pytest.Config) -> None:
    """One signing key for the run, published where every service's verifier reads it, before
    any settings are built (tests/auth.py issues tokens with it)."""
    import tempfile

    from shared.tokens import KeyStore

    directory = Path(tempfile.mkdtemp(prefix="helpdesk-test-keys-"))
    keys = KeyStore(directory)
    keys.ensure_key()
    keys.publish(directory / "jwks.json")
    os.environ["TICKET_API_JWT_KEYS_DIR"] = str(directory)
    os.environ["HELPDESK_JWKS_FILE"] = str(directory / "jwks.json")
    os.environ.pop("HELPDESK_JWKS_URL", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    if directory := os.environ.get("TICKET_API_JWT_KEYS_DIR"):
        shutil.rmtree(directory, ignore_errors=True)


def pg_url(database: str = TEST_DATABASE) -> str:
    return PG_SERVER.replace("postgresql://", "postgresql+asyncpg://") + f"/{database}"


async def recreate_database(database: str, *, drop_only: bool = False) -> None:
    """Drop ``database`` on the test server (connections and all) and, unless ``drop_only``,
    create it again, empty."""
    admin = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        if not drop_only:
            await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()


async def _migrate(url: str, services: list[Service]) -> None:
    for service in services:
        # Alembic's env runs its own event loop: give it a thread.
        await asyncio.to_thread(upgrade, service, url)


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for this run with every service's schema migrated."""
    await recreate_database(TEST_DATABASE)
    url = pg_url()
    await _migrate(url, list(Service))
    yield url
    await recreate_database(TEST_DATABASE, drop_only=True)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of migrated SQLite files, one per service, each made on first use and
    copied for every test that needs one (see :func:`sqlite_copy`)."""
    return tmp_path_factory.mktemp("sqlite-template")


def sqlite_template_file(template: Path, service: Service) -> Path:
    """The migrated template file of ``service`` (migrated now if this is its first use)."""
    path = template / f"{service.value}.db"
    if not path.exists():
        staging = template / f"{service.value}.migrating.db"
        # Alembic's env runs its own event loop: a thread of its own keeps it off ours.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(upgrade, service, f"sqlite+aiosqlite:///{staging}").result()
        staging.replace(path)
    return path


def sqlite_copy(template: Path, service: Service, destination: Path) -> str:
    target = destination / f"{service.value}.db"
    shutil.copy(sqlite_template_file(template, service), target)
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


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis for this run: HELPDESK_TEST_REDIS_URL, else a private redis-server on a free port."""
    if url := os.environ.get("HELPDESK_TEST_REDIS_URL"):
        _revocations_loaded(url)
        yield url
        return
    server = RedisServer(directory=tmp_path_factory.mktemp("redis"), append_only=False)
    server.start()
    try:
        _revocations_loaded(server.url)
        yield server.url
    finally:
        server.stop()


def _revocations_loaded(url: str) -> None:
    """Mark the revocations loaded, as a running ticket_api does (tests without one use tokens)."""
    with SyncRedis.from_url(url) as client:
        client.set(REVOCATIONS_LOADED, "0")


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """The run's Redis, emptied, as ticket_api leaves it once it loaded the revocations (none)."""
    client = Redis.from_url(redis_url)
    await client.flushdb()
    await client.set(REVOCATIONS_LOADED, "0")
    yield client
    await client.flushdb()
    await client.set(REVOCATIONS_LOADED, "0")
    await client.aclose()
