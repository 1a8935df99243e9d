"""One bench run's shared state: settings, the stack, its database, tokens, the rows so far."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.environment import (
    BenchConfig,
    Tokens,
    libpq_url,
    purge_queued_jobs,
    queued_jobs,
    sign_in,
    sqlalchemy_url,
    wait_drained,
)
from bench.report import Row
from deploy.local.stack import Stack

TOKEN_REFRESH_SECONDS = 600  # access tokens live 15 minutes


@dataclass
class Run:
    config: BenchConfig
    database: str
    rows: list[Row] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    running_stack: Stack | None = None
    _tokens: Tokens | None = None
    _tokens_at: float = 0.0

    @property
    def stack(self) -> Stack:
        if self.running_stack is None:
            raise RuntimeError("this measurement needs the stack, and it is not running")
        return self.running_stack

    @property
    def database_url(self) -> str:
        return sqlalchemy_url(self.database)

    @property
    def libpq_url(self) -> str:
        return libpq_url(self.database)

    def tokens(self) -> Tokens:
        """Tokens young enough for a whole phase."""
        if self._tokens is None or time.monotonic() - self._tokens_at > TOKEN_REFRESH_SECONDS:
            self._tokens = sign_in(self.stack)
            self._tokens_at = time.monotonic()
        return self._tokens

    def add(self, row: Row) -> None:
        """Keep a row, noting the machine's 1-minute load average as it was measured."""
        load = os.getloadavg()[0]
        row.settings = f"{row.settings}; load {load:.1f}" if row.settings else f"load {load:.1f}"
        row.data = {**row.data, "load_average_1m": round(load, 2)}
        self.rows.append(row)
        print(
            f"  {row.section}: {row.measure}: {row.result} {row.verdict}".rstrip(),
            file=sys.stderr,
            flush=True,
        )

    def settle(self) -> tuple[int, float]:
        """After a load: drop the jobs still queued, then wait for the ones running (and what
        they cause). Returns (jobs dropped, seconds waited)."""
        dropped = purge_queued_jobs(self.stack.redis_url)
        return dropped, self.drain()

    def backlog(self) -> int:
        """Jobs queued or running right now."""
        return queued_jobs(self.stack.redis_url)

    def drain(self) -> float:
        """Wait until the events of what came before are all handled; seconds waited."""
        return wait_drained(self.stack, self.database, self.config.drain_timeout_s)
