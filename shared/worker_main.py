"""Run a service's arq worker the way production does::

    python -m shared.worker_main services.<name>.worker.WorkerSettings [--check | --burst] [--metrics-port N]

What ``arq``'s command line does (``--check`` exits 0 when the worker's health key is fresh),
with our :class:`shared.worker.Worker` (jobs start in one round trip to Redis) and the
process-wide settings that only an entry point may make (importing a worker module must not
change the event loop or the garbage collector of whoever imports it, such as the tests): uvloop
as the event loop (a worker is mostly round trips to Redis and the database, and uvloop spends
far less CPU on each), and the collector tuned by :func:`shared.gc_tuning.tune` once the
worker's modules are loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import logging.config
import sys
from typing import Any

import uvloop
from arq.logs import default_log_config
from arq.utils import import_string
from arq.worker import check_health

from shared.gc_tuning import tune
from shared.worker import Worker


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.worker_main")
    parser.add_argument(
        "settings", help="import path of the worker's settings (a dict of arq.Worker options)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", action="store_true", help="exit 0 if the worker's health key is fresh, else 1"
    )
    mode.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    parser.add_argument(
        "--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port (0: none)"
    )
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    settings: dict[str, Any] = import_string(args.settings)
    if args.check:
        sys.exit(check_health(settings))
    logging.config.dictConfig(default_log_config(verbose=False))
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    tune()  # once the service is loaded: what start-up made stays out of the collector's way
    worker = Worker(**settings, burst=args.burst)
    worker.metrics_port = args.metrics_port or None
    worker.run()


if __name__ == "__main__":
    main()
