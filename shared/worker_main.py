"""Run a service's arq worker the way production does::

    python -m shared.worker_main services.<name>.worker.WorkerSettings [--check | --burst]

The same command line as ``arq``, with process-wide settings that only an entry point may
make (importing a worker module must not change the event loop or the garbage collector of
whoever imports it, such as the tests): uvloop as the event loop (a worker is mostly round
trips to Redis and the database, and uvloop spends far less CPU on each), and the collector
tuned by :func:`shared.gc_tuning.tune` once the worker's modules are loaded.
"""

from __future__ import annotations

import asyncio
import sys

import uvloop
from arq.cli import cli
from arq.utils import import_string

from shared.gc_tuning import tune


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    settings_path = next((arg for arg in args if not arg.startswith("-")), None)
    if settings_path is not None:
        import_string(settings_path)  # load the service before freezing what start-up made
    tune()
    cli.main(args=args, prog_name="python -m shared.worker_main")


if __name__ == "__main__":
    main()
