"""shared.transient: what the workers retry and the APIs answer with 503, from real failures of
real servers (a private PostgreSQL cluster shutting down, a closed port, a Redis gone)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import create_async_engine

from deploy.local.probes import free_ports
from shared.transient import TransientError, is_transient
from tests.servers import PostgresCluster, postgres_bin


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
    server = PostgresCluster(bin_dir)
    server.init()
    server.start()
    yield server
    server.destroy()


async def _error_of(statement: str, url: str) -> BaseException:
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://") + "/postgres")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    except Exception as error:
        return error
    finally:
        await engine.dispose()
    raise AssertionError(f"{statement!r} did not fail")


async def test_a_database_shutting_down_or_gone_is_transient(cluster: PostgresCluster) -> None:
    """The errors that lost events in the probe: 'the database system is shutting down' (a new
    connection while a smart shutdown waits for a session), a session terminated by a fast
    shutdown, and the refused connection once it is down."""
    holder = await asyncpg.connect(cluster.url + "/postgres")
    sleeper = asyncio.ensure_future(holder.execute("SELECT pg_sleep(30)"))
    await asyncio.sleep(0.2)
    await asyncio.to_thread(cluster.stop, "smart", wait=False)
    await asyncio.sleep(0.5)
    shutting_down = await _error_of("SELECT 1", cluster.url)
    assert "shutting down" in str(shutting_down)
    await asyncio.to_thread(cluster.stop, "fast")
    with pytest.raises(Exception) as terminated:
        await sleeper
    refused = await _error_of("SELECT 1", cluster.url)
    await asyncio.to_thread(cluster.start)

    assert is_transient(shutting_down)
    assert is_transient(terminated.value)
    assert is_transient(refused)


async def test_a_statement_that_is_wrong_is_not_transient(cluster: PostgresCluster) -> None:
    syntax = await _error_of("SELEC 1", cluster.url)
    assert isinstance(syntax, ProgrammingError)
    assert not is_transient(syntax)
    duplicate = await _error_of(
        "CREATE TEMP TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (1)", cluster.url
    )
    assert not is_transient(duplicate)
    assert not is_transient(IntegrityError("INSERT", {}, ValueError("duplicate key")))
    assert not is_transient(ValueError("a bug"))
    assert not is_transient(KeyError("x"))


async def test_redis_unreachable_and_peers_down_are_transient() -> None:
    (port,) = free_ports(1)
    client = Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=0.5)
    with pytest.raises(Exception) as refused:
        await client.ping()
    await client.aclose()
    assert is_transient(refused.value)
    assert is_transient(TransientError("billing unreachable"))
    try:
        raise RuntimeError("while handling") from ConnectionResetError("peer reset")
    except RuntimeError as wrapped:
        assert is_transient(wrapped), "a cause that is transient makes the error transient"
