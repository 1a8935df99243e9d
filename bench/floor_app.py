"""The floor: a bare FastAPI endpoint doing one INSERT, nothing else (no auth, no outbox, no
events). Served by uvicorn with the stack's own flags (``floors.py`` starts it).

    BENCH_FLOOR_DATABASE_URL=postgresql+asyncpg://… BENCH_FLOOR_DB_POOL_SIZE=8 \
        uvicorn --factory bench.floor_app:create_app
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from pydantic import BaseModel, Field
from sqlalchemy import Column, MetaData, String, Table, Text, Uuid, insert

from shared.db import UtcDateTime, create_engine
from shared.ids import new_id

SCHEMA = "bench_floor"
metadata = MetaData(schema=SCHEMA)
floor_row = Table(
    "floor_row",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("subject", String(300), nullable=False),
    Column("description", Text, nullable=False),
    Column("urgency", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

CREATE_SQL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.floor_row (
    id uuid PRIMARY KEY, subject varchar(300) NOT NULL, description text NOT NULL,
    urgency varchar(16) NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS {SCHEMA}.pgbench_row (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), subject varchar(300) NOT NULL,
    description text NOT NULL, urgency varchar(16) NOT NULL, created_at timestamptz NOT NULL);
"""


class FloorIn(BaseModel):
    subject: str = Field(min_length=1, max_length=300)
    description: str = Field(min_length=1, max_length=100_000)
    urgency: str = Field(max_length=16)


def create_app() -> FastAPI:
    url = os.environ["BENCH_FLOOR_DATABASE_URL"]
    pool_size = int(os.environ.get("BENCH_FLOOR_DB_POOL_SIZE", "10"))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = create_engine(url, schema=SCHEMA, pool_size=pool_size)
        yield
        await app.state.engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/floor", status_code=201)
    async def floor(body: FloorIn) -> dict[str, str]:
        async with app.state.engine.begin() as connection:
            row_id = (
                await connection.execute(
                    insert(floor_row)
                    .values(id=new_id(), created_at=datetime.now(UTC), **body.model_dump())
                    .returning(floor_row.c.id)
                )
            ).scalar_one()
        return {"id": str(row_id)}

    return app
