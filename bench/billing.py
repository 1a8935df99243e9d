"""Billing: the monthly period close for ``billing_organizations`` organizations and
``billing_entries`` time entries — seconds and peak RSS, the close in a process of its own
(``billing_close.py``) on a scratch database of its own (the stack's billing worker never
sees it)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from bench.environment import recreate_database
from bench.report import Row, verdict
from bench.run import Run
from deploy.local.stack import ROOT

SECONDS_TARGET = 60.0
RSS_TARGET_MIB = 1024.0


def _child(step: str, database: str, *extra: str, timeout: float) -> dict[str, object]:
    command = [sys.executable, "-m", "bench.billing_close", step, "--database", database, *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data: dict[str, object] = json.loads(line.removeprefix("BENCH_JSON "))
            return data
    raise RuntimeError(
        f"billing {step} failed ({result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-4000:]}"
    )


def measure(run: Run) -> None:
    config = run.config
    database = f"{run.database}_billing"
    asyncio.run(recreate_database(database))
    try:
        loaded = _child(
            "load",
            database,
            "--orgs",
            str(config.billing_organizations),
            "--entries",
            str(config.billing_entries),
            timeout=1200,
        )
        closed = _child("close", database, timeout=1200)
    finally:
        asyncio.run(recreate_database(database, drop_only=True))
    data = {"load": loaded, "close": closed}
    run.data["billing"] = data
    seconds, peak = float(closed["seconds"]), float(closed["peak_rss_mib"])  # type: ignore[arg-type]
    run.add(
        Row(
            "billing",
            f"period close, {config.billing_organizations:,} orgs / {config.billing_entries:,} entries",
            f"{seconds:.1f} s · peak RSS {peak:.0f} MiB (before {closed['rss_before_mib']} MiB) · "
            f"{closed['accounts_closed']} accounts closed; again: {closed['second_run_seconds']} s",
            settings=(
                "billing's bench data (bench/billing_period_close.py), "
                f"loaded in {loaded['load_s']} s; pool {closed['pool_size']}; a process of its own"
            ),
            target=f"< {SECONDS_TARGET:.0f} s and < 1 GiB",
            verdict=verdict(seconds < SECONDS_TARGET and peak < RSS_TARGET_MIB and bool(closed["finished"])),
            data=data,
        )
    )
