from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.events import Service
from tests.billing.harness import Harness, open_harness
from tests.conftest import sqlite_copy, truncate_schema


async def _database(kind: str, postgres_url: str, sqlite_template: Path, tmp_path: Path) -> str:
    if kind == "postgres":
        await truncate_schema(postgres_url, "billing")
        return postgres_url
    return sqlite_copy(sqlite_template, Service.BILLING, tmp_path)


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[Harness]:
    """billing on the run's PostgreSQL database, emptied first."""
    await truncate_schema(postgres_url, "billing")
    async with open_harness(postgres_url) as harness:
        yield harness


@pytest.fixture(params=["postgres", "sqlite"])
async def db(
    request: pytest.FixtureRequest, postgres_url: str, sqlite_template: Path, tmp_path: Path
) -> AsyncIterator[Harness]:
    """The same test on PostgreSQL (emptied first) and on a fresh SQLite file (embedded mode)."""
    async with open_harness(
        await _database(request.param, postgres_url, sqlite_template, tmp_path)
    ) as harness:
        yield harness
