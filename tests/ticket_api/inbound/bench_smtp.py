"""Inbound email throughput through SMTP: parsed, classified, threaded and stored per second.

    .venv/bin/python -m tests.ticket_api.inbound.bench_smtp [--database-url URL] [--messages N]
        [--connections C]

Starts the real listener (``python -m services.ticket_api.inbound.smtp_listener``) as its own
process on a fresh SQLite file (default) or the PostgreSQL URL given (its ``ticket_api``
schema is migrated and emptied first), with a private redis-server, then sends the shared
corpus round-robin (each copy under a new Message-ID, so none is a re-delivery) over C
concurrent SMTP connections and reports messages per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib

from deploy.local.probes import free_ports, port_accepts, redis_answers

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT.parent / "shared" / "corpus" / "email"


def corpus() -> list[bytes]:
    manifest = json.loads((CORPUS / "manifest.json").read_text())
    return [(CORPUS / item["path"]).read_bytes() for item in manifest]


async def send_all(port: int, messages: list[bytes], connections: int) -> float:
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for index, raw in enumerate(messages):
        queue.put_nowait((index, raw))

    async def worker() -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=120) as client:
            while not queue.empty():
                index, raw = queue.get_nowait()
                unique = f"Message-ID: <bench.{index}.{time.time_ns()}@bench.test>\r\n".encode()
                _errors, reply = await client.sendmail(
                    "bench@example.test", ["support@helpdesk.test"], unique + raw
                )
                assert reply.startswith("2.0.0 OK") or "OK" in reply, reply

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    base = corpus()
    messages = [base[i % len(base)] for i in range(args.messages)]
    with tempfile.TemporaryDirectory(prefix="inbound-bench-") as directory:
        smtp_port, redis_port = free_ports(2)
        redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                directory,
            ],
            stdout=subprocess.DEVNULL,
        )
        env = {
            **os.environ,
            "HELPDESK_VAR_DIR": directory,
            "HELPDESK_ENV": "test",
            "HELPDESK_LOG_LEVEL": "WARNING",
            "HELPDESK_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "HELPDESK_INBOUND_SMTP_PORT": str(smtp_port),
        }
        if args.database_url:
            env["TICKET_API_DATABASE_URL"] = args.database_url
        python = sys.executable
        subprocess.run(
            [python, "-m", "shared.migrate", "ticket_api"],
            env=env,
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        if args.database_url:
            from shared.db import is_postgres

            if is_postgres(args.database_url):
                from tests.conftest import truncate_schema

                asyncio.run(truncate_schema(args.database_url, "ticket_api"))
        listener = subprocess.Popen(
            [python, "-m", "services.ticket_api.inbound.smtp_listener"], env=env, cwd=ROOT
        )
        try:
            deadline = time.monotonic() + 30
            while not (port_accepts(smtp_port) and redis_answers(env["HELPDESK_REDIS_URL"], timeout=0.2)):
                assert time.monotonic() < deadline and listener.poll() is None, "the listener did not start"
                time.sleep(0.1)
            elapsed = asyncio.run(send_all(smtp_port, messages, args.connections))
        finally:
            listener.terminate()
            listener.wait(timeout=30)
            redis.terminate()
            redis.wait(timeout=10)
    database = "PostgreSQL" if args.database_url.startswith("postgresql") else "SQLite"
    print(
        f"inbound SMTP ({database}, {args.connections} connections): {len(messages)} messages "
        f"in {elapsed:.1f} s = {len(messages) / elapsed:.0f} messages/s parsed, threaded and stored"
    )


if __name__ == "__main__":
    main()
