"""Sessions for reading: no transaction on PostgreSQL, and no writing through them anywhere."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi import FastAPI, Request
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import (
    ReadingSession,
    ReadOnlyError,
    create_engine,
    reader_maker,
    session_maker,
    single_statement_maker,
)
from shared.runtime import unit_of_work

metadata = MetaData()
note = Table("reader_note", metadata, Column("id", Integer, primary_key=True))

TRANSACTION_ID = text("SELECT txid_current()")


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, postgres_url: str, tmp_path: Path) -> str:
    return postgres_url if request.param == "postgresql" else f"sqlite+aiosqlite:///{tmp_path / 'reader.db'}"


@contextlib.asynccontextmanager
async def engine_with_notes(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on ``url`` with an empty ``reader_note`` table, dropped afterwards."""
    engine = create_engine(url, schema="public", pool_size=2)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
            await connection.run_sync(metadata.create_all)
        yield engine
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
        await engine.dispose()


async def test_a_reader_reads_and_refuses_every_kind_of_write(database_url: str) -> None:
    async with engine_with_notes(database_url) as engine:
        async with engine.begin() as connection:
            await connection.execute(insert(note).values(id=1))
        async with reader_maker(engine)() as session:
            assert (await session.scalars(select(note.c.id))).all() == [1]
            with pytest.raises(ReadOnlyError):
                await session.execute(insert(note).values(id=2))
            with pytest.raises(ReadOnlyError):
                await session.execute(note.delete())
        async with session_maker(engine)() as session:
            assert (await session.scalars(select(note.c.id))).all() == [1], "nothing was written"


async def test_on_postgresql_each_read_is_a_transaction_of_its_own(postgres_url: str) -> None:
    engine = create_engine(postgres_url, schema="public", pool_size=2)
    try:
        async with reader_maker(engine)() as session:
            first, second = [await session.scalar(TRANSACTION_ID) for _ in range(2)]
            assert first != second, "each statement in a transaction of its own: no BEGIN, no ROLLBACK"
        async with session_maker(engine)() as session:
            first, second = [await session.scalar(TRANSACTION_ID) for _ in range(2)]
            assert first == second, "a unit of work is one transaction"
    finally:
        await engine.dispose()


async def test_on_postgresql_a_single_statement_session_commits_each_statement_by_itself(
    postgres_url: str,
) -> None:
    async with engine_with_notes(postgres_url) as engine, single_statement_maker(engine)() as session:
        first, second = [await session.scalar(TRANSACTION_ID) for _ in range(2)]
        assert first != second, "no BEGIN: each statement is a transaction of its own"
        await session.execute(insert(note).values(id=7))
        async with reader_maker(engine)() as other:
            assert (await other.scalars(select(note.c.id))).all() == [7], "committed already"


@pytest.mark.parametrize(
    ("method", "reads_only"), [("GET", True), ("HEAD", True), ("POST", False), ("PATCH", False)]
)
async def test_a_request_that_only_reads_gets_a_reading_session(
    tmp_path: Path, method: str, reads_only: bool
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'uow.db'}", schema="public")
    app = FastAPI()
    app.state.runtime = SimpleNamespace(
        sessions=session_maker(engine), readers=reader_maker(engine), outbox=None
    )
    request = Request({"type": "http", "method": method, "app": app, "headers": []})
    try:
        dependency = unit_of_work(request)
        uow = await anext(dependency)
        assert isinstance(uow.session.sync_session, ReadingSession) is reads_only
        await dependency.aclose()
    finally:
        await engine.dispose()
