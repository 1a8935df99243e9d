"""Intake: ``POST /api/v1/tickets`` through the gateway, as a portal calls it (Bearer token,
a unique Idempotency-Key and body per request, contacts drawn from a pool so some are new and
most are known), at concurrency 1 and 32; then how long the pipeline took to catch up.

On one small machine the workers (triage, notifier, …) consume each ticket's events on the
same cores while intake runs. So 32 connections are measured twice: with everything running,
and with the workers paused (SIGSTOP, resumed afterwards: their jobs wait in Redis) — the API,
gateway and database alone, which is what the floors measure too.

After each run the jobs still queued are dropped (their tickets stay unprocessed; the pipeline
section measures processing) and those running are waited for: a small machine would
otherwise spend minutes catching up before the next measurement.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator

from bench.cpu import CpuMeter, describe, per_item_ms
from bench.environment import purge_queued_jobs
from bench.floors import floor_rate, floor_server, http_result, wrk_settings
from bench.report import Row, verdict
from bench.run import Run
from bench.wrk import LUA_INTAKE, WrkResult, run_wrk

P99_TARGET_MS = 50.0
FLOOR_SHARE_TARGET = 0.5


WORKERS = ("ticket_api-worker", "triage-worker", "notifier-worker", "billing-worker")


@contextlib.contextmanager
def workers_paused(run: Run, paused: bool) -> Iterator[None]:
    """SIGSTOP every worker's process group for the block (if ``paused``), SIGCONT after."""
    children = [run.stack.children[name] for name in WORKERS if name in run.stack.children] if paused else []
    for child in children:
        child.signal_group(signal.SIGSTOP)
    try:
        yield
    finally:
        for child in children:
            child.signal_group(signal.SIGCONT)


def measure(run: Run) -> None:
    config = run.config
    judged_connections = max(config.intake_concurrency)
    variants = [(c, False) for c in config.intake_concurrency] + [(judged_connections, True)]
    with floor_server(run) as floor_url:
        for connections, paused in variants:
            # The floor again, right before: on a shared machine, minutes apart is another machine.
            floor = floor_rate(floor_url, connections, config.adjacent_floor_seconds)
            _intake(run, connections, paused, floor, judged=connections == judged_connections)


def _intake(run: Run, connections: int, paused: bool, floor: WrkResult, *, judged: bool) -> None:
    config = run.config
    tokens = run.tokens()
    threads = min(connections, 2)
    tag = f"i{connections}{'p' if paused else ''}x{time.time_ns() % 10**9}"
    meter = CpuMeter(run.stack, run.database)
    with workers_paused(run, paused):
        meter.start()
        try:
            result = run_wrk(
                run.stack.gateway_url,
                LUA_INTAKE,
                connections=connections,
                threads=threads,
                duration_s=config.intake_seconds,
                args=[tokens.portal, tag, str(config.intake_contacts), tokens.email_domain],
            )
        finally:
            cpu = meter.stop()
        backlog = run.backlog()
        dropped = purge_queued_jobs(run.stack.redis_url) if paused else 0
    more, settled = run.settle()
    dropped += more
    pgbench = run.data.get("floors", {}).get(f"pgbench_c{connections}", {}).get("tps")
    share = result.ok_per_second / floor.ok_per_second if floor.ok_per_second else None
    data = {
        **result.as_dict(),
        "adjacent_floor": floor.as_dict(),
        "floor_pgbench_per_second": pgbench,
        "share_of_fastapi_floor": share,
        "jobs_queued_when_load_stopped": backlog,
        "jobs_dropped": dropped,
        "settled_after_s": round(settled, 1),
        "workers_paused": paused,
        "cpu_seconds": cpu,
        "cpu_ms_per_ticket": per_item_ms(cpu, result.ok),
    }
    run.data.setdefault("intake", {})[f"c{connections}{'_workers_paused' if paused else ''}"] = data
    target, ok = "", None
    if judged:
        target = f"≥ ½ floor, p99 < {P99_TARGET_MS:.0f} ms, 0 errors"
        ok = (
            share is not None
            and share >= FLOOR_SHARE_TARGET
            and result.p99_ms < P99_TARGET_MS
            and result.errors == 0
        )
    ratios = []
    if share is not None:
        ratios.append(f"{share:.2f}× floor ({floor.ok_per_second:,.0f}/s just before)")
    if pgbench:
        ratios.append(f"{result.ok_per_second / pgbench:.2f}× pgbench")
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(result.statuses.items()) if s != 201)
    run.add(
        Row(
            "intake",
            f"POST /tickets via gateway, c{connections}" + (", workers paused" if paused else ""),
            http_result(result).replace("req/s", "tickets/s")
            + (f" · {' · '.join(ratios)}" if ratios else "")
            + (f" · non-201: {statuses}" if statuses else ""),
            settings=(
                f"{wrk_settings(connections, threads, config.intake_seconds)}; "
                f"uvicorn {config.api_workers} workers, pool "
                f"{config.pool_sizes['ticket_api']}+{config.pool_sizes['ticket_api']}; "
                f"floor {wrk_settings(connections, threads, config.adjacent_floor_seconds)} just before; "
                f"{backlog} jobs queued when the load stopped (dropped: {dropped}); "
                f"{describe(cpu, result.ok)}"
            ),
            target=target,
            verdict=verdict(ok),
            data=data,
        )
    )
