"""The period close in a process of its own, so its peak RSS is its own (``billing.py`` runs it).

    python -m bench.billing_close load  --database D --orgs 10000 --entries 1000000
    python -m bench.billing_close close --database D

Both print one JSON line. The data is billing's own benchmark data
(``bench.billing_period_close.load``: every organization on a monthly agreement, a
month of closed tickets with ten time entries each, most already drawn at close).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time

import asyncpg

from bench.billing_period_close import CLOSE_AT, load
from bench.environment import libpq_url, sqlalchemy_url
from services.billing.context import Billing
from services.billing.period_close import close_periods
from services.billing.settings import Settings
from shared.db import create_engine, session_maker
from shared.events import Service
from shared.migrate import upgrade

CLOSE_POOL_SIZE = 2


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def load_data(database: str, orgs: int, entries: int) -> dict[str, float]:
    await asyncio.to_thread(upgrade, Service.BILLING, sqlalchemy_url(database))
    connection = await asyncpg.connect(libpq_url(database))
    try:
        started = time.perf_counter()
        await load(connection, orgs, entries)
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        await connection.execute("VACUUM ANALYZE")
        return {"load_s": round(loaded, 1), "vacuum_analyze_s": round(time.perf_counter() - started, 1)}
    finally:
        await connection.close()


async def close(database: str) -> dict[str, object]:
    url = sqlalchemy_url(database)
    engine = create_engine(url, schema="billing", pool_size=CLOSE_POOL_SIZE)
    billing = Billing(Settings(database_url=url))
    rss_before = peak_rss_mib()
    try:
        started = time.perf_counter()
        report = await close_periods(session_maker(engine), billing, now=CLOSE_AT)
        elapsed = time.perf_counter() - started
        peak = peak_rss_mib()
        started = time.perf_counter()
        again = await close_periods(session_maker(engine), billing, now=CLOSE_AT)
        second = time.perf_counter() - started
    finally:
        await engine.dispose()
    return {
        "seconds": round(elapsed, 2),
        "peak_rss_mib": round(peak, 1),
        "rss_before_mib": round(rss_before, 1),
        "report": str(report),
        "accounts_closed": report.accounts_closed,
        "finished": report.finished,
        "second_run_seconds": round(second, 2),
        "second_run_accounts": again.accounts_closed,
        "pool_size": CLOSE_POOL_SIZE,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["load", "close"])
    parser.add_argument("--database", required=True)
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.step == "load":
        result: dict[str, object] = dict(asyncio.run(load_data(args.database, args.orgs, args.entries)))
    else:
        result = asyncio.run(close(args.database))
    print("BENCH_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
