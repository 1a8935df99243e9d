"""Floors: what the machine gives before our code costs anything.

* pgbench: a raw single-row INSERT (the row shaped like a ticket's core), 1 and 32 clients;
* a bare FastAPI endpoint doing one INSERT (``floor_app.py``) on the same database, with the
  stack's uvicorn flags (workers, keep-alive, no access log) and the same pool size as
  ticket_api, driven directly (no gateway) by wrk at the intake's concurrencies.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator

import asyncpg

from bench.floor_app import CREATE_SQL
from bench.report import Row, fmt_ms, fmt_rate
from bench.run import Run
from bench.wrk import LUA_FLOOR, WrkResult, run_pgbench, run_wrk
from deploy.local.probes import free_ports, http_status
from deploy.local.procs import Child
from deploy.local.stack import ROOT, UVICORN_KEEPALIVE_SECONDS

PGBENCH_SQL = (
    "INSERT INTO bench_floor.pgbench_row (subject, description, urgency, created_at) VALUES "
    "('Printer offline', 'The printer on floor 3 stopped answering this morning.', 'high', now());\n"
)


def http_result(result: WrkResult) -> str:
    return (
        f"{fmt_rate(result.ok_per_second, 'req/s')} · p50 {fmt_ms(result.p50_ms)} · "
        f"p99 {fmt_ms(result.p99_ms)} · {result.errors} errors"
    )


def wrk_settings(connections: int, threads: int, seconds: float) -> str:
    return f"wrk -c{connections} -t{threads} {seconds:.0f}s"


async def _create_tables(run: Run) -> None:
    connection = await asyncpg.connect(run.libpq_url)
    try:
        await connection.execute(CREATE_SQL)
    finally:
        await connection.close()


@contextlib.contextmanager
def floor_server(run: Run) -> Iterator[str]:
    """The bare FastAPI + INSERT app under uvicorn with the stack's flags; yields its URL."""
    (port,) = free_ports(1)
    env = {
        **run.stack.env,
        "BENCH_FLOOR_DATABASE_URL": run.database_url,
        "BENCH_FLOOR_DB_POOL_SIZE": str(run.config.pool_sizes["ticket_api"]),
    }
    child = Child(
        name="bench-floor",
        argv=[
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "bench.floor_app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(run.config.api_workers),
            "--timeout-keep-alive",
            UVICORN_KEEPALIVE_SECONDS,
            "--no-access-log",
        ],
        log_path=run.stack.log_dir / "bench-floor.log",
        env=env,
        cwd=ROOT,
    )
    child.start()
    try:
        deadline = time.monotonic() + 60
        while http_status(f"http://127.0.0.1:{port}/readyz") != 200:
            if not child.running() or time.monotonic() > deadline:
                raise RuntimeError(f"the floor app did not start:\n{child.tail()}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        child.stop()


def floor_rate(url: str, connections: int, seconds: float) -> WrkResult:
    return run_wrk(url, LUA_FLOOR, connections=connections, threads=min(connections, 2), duration_s=seconds)


def floor_settings(run: Run, connections: int, seconds: float) -> str:
    pool = run.config.pool_sizes["ticket_api"]
    return (
        f"{wrk_settings(connections, min(connections, 2), seconds)}, direct; "
        f"uvicorn {run.config.api_workers} workers, pool {pool}+{pool}"
    )


def measure(run: Run) -> None:
    config = run.config
    asyncio.run(_create_tables(run))
    floors = run.data.setdefault("floors", {})

    for clients in config.intake_concurrency:
        jobs = min(clients, 2)
        result = run_pgbench(
            run.libpq_url, PGBENCH_SQL, clients=clients, jobs=jobs, duration_s=config.pgbench_seconds
        )
        floors[f"pgbench_c{clients}"] = result.as_dict()
        run.add(
            Row(
                "floors",
                f"pgbench INSERT, {clients} client{'s' if clients > 1 else ''}",
                f"{fmt_rate(result.tps, 'rows/s')} · avg {fmt_ms(result.latency_avg_ms)} · "
                f"{result.failed} failed",
                settings=f"pgbench -M prepared -c{clients} -j{jobs} {config.pgbench_seconds:.0f}s",
                data=result.as_dict(),
            )
        )

    with floor_server(run) as url:
        for connections in config.intake_concurrency:
            http = floor_rate(url, connections, config.floor_seconds)
            floors[f"fastapi_c{connections}"] = http.as_dict()
            run.add(
                Row(
                    "floors",
                    f"FastAPI + 1 INSERT, c{connections}",
                    http_result(http),
                    settings=floor_settings(run, connections, config.floor_seconds),
                    data=http.as_dict(),
                )
            )
