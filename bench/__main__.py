"""``make bench``: boot the stack on a fresh PostgreSQL database and measure it.

    python -m bench            # the full run (well under 15 minutes)
    python -m bench --quick    # a smaller smoke pass (a couple of minutes)
    python -m bench --only intake pipeline

In order, against one stack (gateway, every service's API and worker, Redis, SMTP sink,
inbound SMTP listener) on one fresh database: floors (pgbench, bare FastAPI + INSERT),
intake (POST /tickets through the gateway at 1 and 32 connections), pipeline latency
(created → acknowledgment accepted by SMTP, → triaged applied), inbound email, reads with
1,000,000 tickets loaded, memory of every process (idle after boot, peak under all that load,
idle after it); then, with the stack stopped, billing's period close at 10,000 organizations /
1,000,000 entries. Prints one table (each number with its settings and its target) and
writes it as JSON to ``var/bench/<UTC time>.json`` and ``var/bench/latest.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import billing, floors, inbound, intake, memory, pipeline, reads
from bench.cpu import CpuMeter
from bench.environment import (
    BenchConfig,
    git_commit,
    load_average,
    machine,
    postgres_facts,
    running_stack,
    seed_agents,
    sign_sla,
)
from bench.report import FAILED, Row, render_table, write_json
from bench.run import Run
from deploy.local.stack import ROOT

IDLE_CPU_SECONDS = 5.0
SECTIONS = ("floors", "intake", "pipeline", "inbound", "reads", "memory", "billing")
STACK_SECTIONS: dict[str, Callable[[Run], None]] = {
    "floors": floors.measure,
    "intake": intake.measure,
    "pipeline": pipeline.measure,
    "inbound": inbound.measure,
    "reads": reads.measure,
}


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _section(run: Run, name: str, measure: Callable[[Run], None]) -> None:
    load = load_average()
    progress(f"{name} (load average {load[0]:.2f})")
    started = time.monotonic()
    try:
        measure(run)
    except Exception as error:
        progress(f"{name} failed: {error!r}")
        run.data.setdefault("errors", {})[name] = traceback.format_exc()
        run.add(Row(name, "failed", f"{type(error).__name__}: {str(error)[:300]}", verdict=FAILED))
    run.data.setdefault("sections", {})[name] = {
        "seconds": round(time.monotonic() - started, 1),
        "load_average_at_start": [round(v, 2) for v in load],
        "load_average_at_end": [round(v, 2) for v in load_average()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smaller counts and shorter runs: a smoke pass")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--keep", action="store_true", help="keep the database and the stack's var dir")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench", help="where the JSON goes")
    args = parser.parse_args(argv)
    selected = set(args.only or SECTIONS)
    missing = [tool for tool in ("wrk", "pgbench", "nginx", "redis-server") if not _have(tool)]
    if missing:
        print(f"missing tools: {', '.join(missing)} (run scripts/bench_tools.sh)", file=sys.stderr)
        return 2

    config = BenchConfig.for_run(args.quick)
    database = f"helpdesk_bench_{os.getpid()}"
    started_at = datetime.now(UTC)
    started = time.monotonic()
    load_start = load_average()
    report: dict[str, Any] = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "machine": machine(),
        "load_average_start": [round(v, 2) for v in load_start],
        "config": config.as_dict(),
    }
    rows: list[Row] = []
    data: dict[str, Any] = {}
    progress(
        f"{'quick' if config.quick else 'full'} run; database {database}; load average {load_start[0]:.2f}"
    )
    run = Run(config, database, rows, data)
    try:
        if selected & {*STACK_SECTIONS, "memory"}:
            _stack_sections(run, selected, keep=args.keep, report=report)
        if "billing" in selected:
            _section(run, "billing", billing.measure)
    except Exception as error:
        progress(f"the run failed: {error!r}")
        data.setdefault("errors", {})["run"] = traceback.format_exc()
        rows.append(Row("run", "failed", f"{type(error).__name__}: {str(error)[:500]}", verdict=FAILED))

    load_end = load_average()
    report.update(
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        duration_s=round(time.monotonic() - started, 1),
        load_average_end=[round(v, 2) for v in load_end],
        results=data,
    )
    path = write_json(args.out, report, rows)
    info = report["machine"]
    print()
    print(
        f"Helpdesk bench, {'quick' if config.quick else 'full'} run, {report['started_at']}, commit "
        f"{report['git_commit']}; {info['cpus']} CPUs ({info['cpu_model']}), {info['memory_gib']} GiB; "
        f"load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end; {report['duration_s']:.0f} s"
    )
    if "postgres" in report:
        pg = report["postgres"]
        print(
            f"PostgreSQL {pg['server_version']} (shared_buffers {pg['shared_buffers']}, synchronous_commit "
            f"{pg['synchronous_commit']}); {config.api_workers} uvicorn workers per API; "
            f"DB pools {', '.join(f'{k} {v}+{v}' for k, v in config.pool_sizes.items())}"
        )
    print()
    print(render_table(rows))
    print()
    print(f"JSON: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 1 if any(row.verdict == FAILED for row in rows) else 0


def _stack_sections(run: Run, selected: set[str], *, keep: bool, report: dict[str, Any]) -> None:
    with running_stack(run.config, run.database, keep=keep) as stack:
        progress(f"stack is up (gateway {stack.gateway_url}, var dir {stack.var_dir})")
        run.running_stack = stack
        try:
            report["postgres"] = _facts(run.database)
            sign_sla(stack, run.tokens())
            seed_agents(stack, run.tokens())
            run.drain()
            time.sleep(2)
            idle_boot = memory.snapshot(stack)
            sampler = memory.PeakSampler(stack).start()
            try:
                for name, measure in STACK_SECTIONS.items():
                    if name in selected:
                        _section(run, name, measure)
            finally:
                sampler.stop()
            if "memory" in selected:
                _section(run, "memory", lambda r: _memory(r, idle_boot, sampler))
        finally:
            run.running_stack = None


def _memory(run: Run, idle_boot: dict[str, Any], sampler: memory.PeakSampler) -> None:
    run.drain()
    time.sleep(3)
    idle_after = memory.snapshot(run.stack)
    note = "intake, pipeline, inbound and reads above"
    for row in memory.rows(idle_boot, sampler.peaks, idle_after, note):
        run.add(row)
    meter = CpuMeter(run.stack, run.database).start()
    time.sleep(IDLE_CPU_SECONDS)
    cpu = meter.stop()
    ours = {k: v for k, v in cpu.items() if not k.startswith("machine")}
    busiest = sorted(ours.items(), key=lambda kv: -kv[1])[:4]
    run.add(
        Row(
            "memory",
            "stack CPU while idle",
            f"{sum(ours.values()) / IDLE_CPU_SECONDS * 100:.0f}% of one core: "
            + ", ".join(f"{k} {v / IDLE_CPU_SECONDS * 100:.1f}%" for k, v in busiest),
            settings=f"{IDLE_CPU_SECONDS:.0f} s with nothing to do (workers poll Redis, relays outboxes)",
            data=cpu,
        )
    )


def _facts(database: str) -> dict[str, str]:
    import asyncio

    return asyncio.run(postgres_facts(database))


def _have(tool: str) -> bool:
    return shutil.which(tool) is not None or os.access(f"/usr/sbin/{tool}", os.X_OK)


if __name__ == "__main__":
    sys.exit(main())
