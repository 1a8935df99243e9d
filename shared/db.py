"""Async database access for PostgreSQL (asyncpg) and SQLite (aiosqlite).

Each service owns a schema named after it on PostgreSQL (reached through ``search_path``, so
table names stay unqualified) and its own file on SQLite. Sessions only flush; the caller
that opened the unit of work commits, exactly once.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Dialect, TypeDecorator, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.schema import Table
from sqlmodel import Field

from shared.clock import utcnow

SessionMaker = async_sessionmaker[AsyncSession]


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def create_engine(url: str, *, schema: str, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """An engine bound to the service's own schema (PostgreSQL) or file (SQLite)."""
    if is_postgres(url):
        return create_async_engine(
            url,
            echo=echo,
            # A fixed pool: connections past it would be opened and closed per request under load
            # (a PostgreSQL backend started each time); a request past it waits its turn instead.
            pool_size=pool_size,
            max_overflow=0,
            pool_pre_ping=False,
            connect_args={"server_settings": {"search_path": schema, "application_name": schema}},
        )
    return _create_sqlite_engine(url, echo=echo)


def _create_sqlite_engine(url: str, *, echo: bool) -> AsyncEngine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # SQLite has one writer: taking the write lock up front turns "database is locked"
        # upgrade failures into an orderly wait (busy_timeout).
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def session_maker(engine: AsyncEngine) -> SessionMaker:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False, autoflush=False)


class ReadOnlyError(RuntimeError):
    """Something tried to write through a session made for reading."""


class ReadingSession(Session):
    """The synchronous session behind a reader: it refuses to write."""


@event.listens_for(ReadingSession, "do_orm_execute")
def _refuse_write_statements(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlyError("this session only reads (a GET request); write in a unit of work that commits")


@event.listens_for(ReadingSession, "before_flush")
def _refuse_flushes(session: Session, _context: Any, _instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        raise ReadOnlyError("this session only reads (a GET request); write in a unit of work that commits")


def _without_transactions(engine: AsyncEngine) -> AsyncEngine:
    """The engine in autocommit on PostgreSQL (no BEGIN/COMMIT round trips); as it is elsewhere."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


def single_statement_maker(engine: AsyncEngine) -> SessionMaker:
    """Sessions for a write that is one statement (mark a mail sent, claim a row): on PostgreSQL
    the statement commits by itself, which saves the BEGIN and COMMIT round trips (two of three).
    Never for work of several statements that must stand or fall together."""
    return session_maker(_without_transactions(engine))


def reader_maker(engine: AsyncEngine) -> SessionMaker:
    """Sessions for work that only reads (GET requests). On PostgreSQL they run in autocommit:
    each SELECT sees a snapshot of its own, exactly as inside a READ COMMITTED transaction, without
    the BEGIN and ROLLBACK round trips (two of a one-query request's three). Writing through one
    raises :class:`ReadOnlyError`, on SQLite too."""
    return async_sessionmaker(
        _without_transactions(engine),
        class_=AsyncSession,
        sync_session_class=ReadingSession,
        expire_on_commit=False,
        autoflush=False,
    )


async def ensure_schema(engine: AsyncEngine, schema: str) -> None:
    """Create the service's schema on PostgreSQL (no-op on SQLite)."""
    if engine.dialect.name != "postgresql":
        return
    async with engine.begin() as connection:
        # Look first: a role that owns its schema may lack CREATE on the database itself.
        found = await connection.scalar(
            text("SELECT 1 FROM pg_namespace WHERE nspname = :schema"), {"schema": schema}
        )
        if not found:
            await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def dialect_of(session: AsyncSession) -> str:
    """``postgresql`` or ``sqlite``: the database behind ``session``."""
    bind = session.bind
    assert bind is not None, "sessions are made by session_maker(), bound to an engine"
    return bind.dialect.name


@functools.cache
def insert_ignoring_conflicts(
    table: Table, dialect_name: str, *index_elements: str, returning: tuple[str, ...] = ()
) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING [RETURNING …]`` for the engine's dialect, built once:
    pass the row to ``session.execute(statement, row)``. (A statement object made per call, with
    ``.values(row)``, costs more than the round trip: 400 µs against 150.)"""
    dialect_insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    statement = dialect_insert(table).on_conflict_do_nothing(index_elements=list(index_elements) or None)
    return statement.returning(*(table.c[name] for name in returning)) if returning else statement


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite keeps no zone: we restore it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("refusing to store a naive datetime; use timezone-aware UTC")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def timestamp(**kwargs: Any) -> Any:
    """A table's required UTC time column, now by default (created_at, updated_at…)."""
    return Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False, **kwargs)
