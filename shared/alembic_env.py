"""What every service's ``migrations/env.py`` runs: migrate its metadata in its own schema/file."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from shared.db import UtcDateTime, create_engine, ensure_schema
from shared.settings import ServiceSettings


def run_migrations(metadata: MetaData, settings: ServiceSettings) -> None:
    config = context.config
    url = config.get_main_option("database_url") or settings.database_url
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(url, metadata, settings.schema_name))


def _render_item(kind: str, item: Any, autogen_context: Any) -> str | Literal[False]:
    """Write our column types as plain SQLAlchemy ones, so migrations never import app code."""
    if kind == "type" and isinstance(item, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure_and_run(connection: Connection, metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str, metadata: MetaData, schema: str) -> None:
    engine = create_engine(url, schema=schema, pool_size=1)
    try:
        await ensure_schema(engine, schema)
        async with engine.connect() as connection:
            await connection.run_sync(_configure_and_run, metadata)
            await connection.commit()
    finally:
        await engine.dispose()
