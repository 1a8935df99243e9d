"""What every measurement shares: the settings of the run, a fresh PostgreSQL database, the
stack booted on it (as ``make run`` boots it), sign-in tokens, and "wait until the pipeline
has drained"."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
from redis import Redis

from deploy.local.stack import ROOT, Stack, start_stack
from shared.events import Service
from shared.queue import queue_name

PG_SERVER = os.environ.get("HELPDESK_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
SCHEMAS = tuple(service.value for service in Service)


@dataclass(frozen=True)
class BenchConfig:
    """Every knob of one run; written into the JSON beside the numbers."""

    quick: bool = False
    api_workers: int = 2
    # Pool size per process (SQLAlchemy also allows as many again in overflow). Kept so the
    # whole stack stays under PostgreSQL's max_connections (100) on a machine shared with tests.
    pool_sizes: dict[str, int] = field(
        default_factory=lambda: {"ticket_api": 8, "triage": 6, "notifier": 6, "billing": 3}
    )
    gateway_rate: str = "100000r/s"
    gateway_burst: int = 100_000
    floor_seconds: float = 8
    pgbench_seconds: float = 5
    intake_seconds: float = 8
    adjacent_floor_seconds: float = 4
    intake_concurrency: tuple[int, ...] = (1, 32)
    intake_contacts: int = 5_000
    pipeline_tickets: int = 500
    pipeline_rate: float = 100.0
    pipeline_low_rate: float = 10.0
    pipeline_low_tickets: int = 100
    # The pipeline's capacity: offered rates tried in turn (each for capacity_seconds) until
    # one misses the latency targets; the last one met is the rate it sustains.
    capacity_rates: tuple[float, ...] = (15, 20, 25, 30, 35, 40, 50, 60, 80)
    capacity_seconds: float = 10
    inbound_messages: int = 1_000
    inbound_connections: int = 8
    read_tickets: int = 1_000_000
    read_organizations: int = 1_000
    read_seconds: float = 8
    read_concurrency: tuple[int, ...] = (1, 32)
    billing_organizations: int = 10_000
    billing_entries: int = 1_000_000
    drain_timeout_s: float = 180

    @classmethod
    def for_run(cls, quick: bool) -> BenchConfig:
        if not quick:
            return cls()
        return cls(
            quick=True,
            floor_seconds=3,
            pgbench_seconds=3,
            intake_seconds=3,
            adjacent_floor_seconds=2,
            pipeline_tickets=200,
            pipeline_low_tickets=30,
            capacity_rates=(20, 40),
            capacity_seconds=5,
            inbound_messages=300,
            read_tickets=100_000,
            read_organizations=200,
            read_seconds=3,
            billing_organizations=1_000,
            billing_entries=100_000,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def machine() -> dict[str, Any]:
    """CPU count, memory and load average: the numbers only mean something beside these."""
    memory_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def git_commit() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return result.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    return "unknown"


# --- databases -------------------------------------------------------------------------------


def sqlalchemy_url(database: str) -> str:
    return PG_SERVER.replace("postgresql://", "postgresql+asyncpg://") + f"/{database}"


def libpq_url(database: str) -> str:
    return f"{PG_SERVER}/{database}"


async def recreate_database(database: str, *, drop_only: bool = False) -> None:
    admin = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        if not drop_only:
            await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()


async def postgres_facts(database: str) -> dict[str, str]:
    connection = await asyncpg.connect(libpq_url(database))
    try:
        facts = {}
        for name in ("server_version", "max_connections", "shared_buffers", "synchronous_commit", "work_mem"):
            facts[name] = await connection.fetchval(f"SHOW {name}")
        return facts
    finally:
        await connection.close()


# --- the stack ---------------------------------------------------------------------------------


def stack_env(config: BenchConfig, database_url: str) -> dict[str, str]:
    """The environment of every stack process for a bench run."""
    env = {
        "HELPDESK_API_WORKERS": str(config.api_workers),
        "HELPDESK_GATEWAY_RATE_PER_CLIENT": config.gateway_rate,
        "HELPDESK_GATEWAY_RATE_PER_IP": config.gateway_rate,
        "HELPDESK_GATEWAY_BURST_PER_CLIENT": str(config.gateway_burst),
        "HELPDESK_GATEWAY_BURST_PER_IP": str(config.gateway_burst),
    }
    for service, pool in config.pool_sizes.items():
        env[f"{service.upper()}_DATABASE_URL"] = database_url
        env[f"{service.upper()}_DB_POOL_SIZE"] = str(pool)
    return env


@dataclass
class Tokens:
    portal: str
    admin: str
    organization_id: str
    email_domain: str

    def portal_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.portal}"}

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin}"}


def sign_in(stack: Stack) -> Tokens:
    """Fresh tokens (they live 15 minutes): the portal's by client credentials, the admin's by
    password, both through the gateway."""
    credentials = stack.credentials()
    portal, admin = credentials["portal"], credentials["admin"]
    assert isinstance(portal, dict) and isinstance(admin, dict), credentials
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        token = client.post(
            "/api/v1/oauth/token",
            data={"grant_type": "client_credentials", "scope": "tickets:read tickets:write"},
            auth=(portal["client_id"], portal["client_secret"]),
        )
        token.raise_for_status()
        login = client.post(
            "/api/v1/auth/login", json={"email": admin["email"], "password": admin["password"]}
        )
        login.raise_for_status()
    return Tokens(
        portal=token.json()["access_token"],
        admin=login.json()["access_token"],
        organization_id=str(portal["organization_id"]),
        email_domain=str(portal["email_domain"]),
    )


def sign_sla(stack: Stack, tokens: Tokens) -> None:
    """Mark the demo organization's SLA signed: the steady state of a customer (an unsigned one
    gets the SLA PDF attached to every acknowledgment)."""
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        answer = client.patch(
            f"/api/v1/organizations/{tokens.organization_id}",
            json={"sla_signed": True},
            headers=tokens.admin_headers(),
        )
        answer.raise_for_status()


BENCH_AGENTS = 10
ROUND_THE_CLOCK = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def seed_agents(stack: Stack, tokens: Tokens, count: int = BENCH_AGENTS) -> None:
    """Consultants working round the clock with room for any load, so triage assigns every
    ticket whatever the hour of the run (no agents would turn each into an unassigned alert)."""
    with httpx.Client(base_url=stack.gateway_url, timeout=30, headers=tokens.admin_headers()) as client:
        for n in range(count):
            answer = client.post(
                "/api/v1/agents",
                json={
                    "email": f"consultant{n}@helpdesk.test",
                    "name": f"Consultant {n}",
                    "skills": ["general", "printers", "networks"],
                    "working_hours": ROUND_THE_CLOCK,
                    "capacity": 1000,
                },
            )
            answer.raise_for_status()


@contextlib.contextmanager
def running_stack(config: BenchConfig, database: str, *, keep: bool = False) -> Iterator[Stack]:
    """A fresh database and the whole stack on it; both gone afterwards (unless ``keep``)."""
    asyncio.run(recreate_database(database))
    var_dir = Path(tempfile.mkdtemp(prefix="helpdesk-bench-"))
    try:
        with start_stack(
            env=stack_env(config, sqlalchemy_url(database)), var_dir=var_dir, timeout=180
        ) as stack:
            yield stack
    finally:
        if not keep:
            shutil.rmtree(var_dir, ignore_errors=True)
            asyncio.run(recreate_database(database, drop_only=True))


# --- drain ---------------------------------------------------------------------------------------


async def _unpublished(database: str) -> int:
    connection = await asyncpg.connect(libpq_url(database))
    try:
        total = 0
        for schema in SCHEMAS:
            total += await connection.fetchval(
                f'SELECT count(*) FROM "{schema}".outbox WHERE published_at IS NULL'
            )
        return int(total)
    finally:
        await connection.close()


def queued_jobs(redis_url: str) -> int:
    """Jobs due on every service's queue plus jobs in progress. Jobs deferred to a later time
    (a notifier's retry backoff, an assignment mail's settle delay) are not a backlog."""
    client = Redis.from_url(redis_url)
    try:
        now_ms = int(time.time() * 1000)
        waiting = sum(cast(int, client.zcount(queue_name(service), "-inf", now_ms)) for service in Service)
        # Cron runs keep their in-progress key as a lock until it expires: not pipeline work.
        running = sum(
            1
            for key in client.scan_iter(match="arq:in-progress:*", count=1000)
            if not key.startswith(b"arq:in-progress:cron:")
        )
        return waiting + running
    finally:
        client.close()


def purge_queued_jobs(redis_url: str) -> int:
    """Drop every job still waiting on a service queue (not those running); returns how many.

    After a load meant to measure intake, the backlog a small machine could not keep up with
    is of no further use: dropping it (its tickets simply stay unprocessed) spares the run
    minutes of waiting before the next measurement."""
    client = Redis.from_url(redis_url)
    dropped = 0
    try:
        for service in Service:
            queue = queue_name(service)
            job_ids = cast(list[bytes], client.zrange(queue, 0, -1))
            for start in range(0, len(job_ids), 500):
                batch = job_ids[start : start + 500]
                pipe = client.pipeline()
                pipe.zrem(queue, *batch)
                pipe.delete(*(b"arq:job:" + job_id for job_id in batch))
                dropped += int(pipe.execute()[0])
    finally:
        client.close()
    return dropped


def wait_drained(stack: Stack, database: str, timeout_s: float) -> float:
    """Wait until no job is due or running and every outbox is published (twice in a row,
    half a second apart). Returns the seconds waited; raises TimeoutError after ``timeout_s``."""
    started = time.monotonic()
    calm = 0
    while True:
        busy = queued_jobs(stack.redis_url) + asyncio.run(_unpublished(database))
        calm = calm + 1 if busy == 0 else 0
        if calm >= 2:
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"the pipeline did not drain within {timeout_s:.0f} s ({busy} still busy)")
        stack.check_alive()
        time.sleep(0.5)
