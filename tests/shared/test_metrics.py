"""Prometheus metrics, scraped from real processes: triage's API under uvicorn (``/metrics``) and
its worker run by the production entry point with ``--metrics-port``, both on the test run's
PostgreSQL and Redis. Requests count by route template, jobs by outcome, and the queue depth and
outbox backlog are read when scraped."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg
import httpx
from redis.asyncio import Redis

from deploy.local.probes import free_ports
from shared import queue
from shared.events import Service
from tests import auth
from tests.fixtures.events import agent_created

ROOT = Path(__file__).resolve().parents[2]
TRIAGE_QUEUE = queue.queue_name(Service.TRIAGE)


def _env(postgres_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("TRIAGE_", "HELPDESK_"))}
    return keep | {
        "PYTHONPATH": str(ROOT),
        "HELPDESK_ENV": "test",
        "HELPDESK_VAR_DIR": str(tmp_path),
        "HELPDESK_REDIS_URL": redis_url,
        "HELPDESK_JWKS_FILE": os.environ["HELPDESK_JWKS_FILE"],
        "TRIAGE_DATABASE_URL": postgres_url,
    }


@contextmanager
def process(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        child = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


async def scrape(url: str, log: Path, *, until: str = "", seconds: float = 30.0) -> str:
    """The exposition at ``url`` once it answers (and contains ``until``)."""
    deadline = time.monotonic() + seconds
    text = ""
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            try:
                response = await client.get(url)
                if response.status_code == 200 and until in response.text:
                    return response.text
                text = response.text
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    tail = (await asyncio.to_thread(log.read_text))[-3000:]
    raise AssertionError(f"{url} never showed {until!r}; last:\n{text[-2000:]}\nlog:\n{tail}")


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name{labels…}`` (labels in any order), or None."""
    for line in text.splitlines():
        match = re.match(r"^([a-z_]+)\{(.*)\} (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return None


async def _stale_outbox_row(postgres_url: str, age_seconds: float) -> str:
    """An unpublished event in triage's outbox, created ``age_seconds`` ago."""
    connection = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    event_id = str(uuid4())
    try:
        await connection.execute(
            "INSERT INTO triage.outbox (id, type, subject, event, created_at) "
            "VALUES ($1, 'x.test', 's', '{}', $2)",
            event_id,
            datetime.now(UTC) - timedelta(seconds=age_seconds),
        )
    finally:
        await connection.close()
    return event_id


async def _delete_outbox_row(postgres_url: str, event_id: str) -> None:
    connection = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute("DELETE FROM triage.outbox WHERE id = $1", event_id)
    finally:
        await connection.close()


async def test_api_metrics_count_requests_by_route_template_and_read_the_backlog(
    postgres_url: str, redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    (port,) = free_ports(1)
    row = await _stale_outbox_row(postgres_url, 120)
    await redis.zadd(TRIAGE_QUEUE, {"metrics-test-job": time.time() * 1000})
    command = [sys.executable, "-m", "uvicorn", "--factory", "services.triage.app:create_app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    log = tmp_path / "api.log"
    try:
        with process(command, _env(postgres_url, redis_url, tmp_path), log):
            base = f"http://127.0.0.1:{port}"
            await scrape(f"{base}/healthz", log, until="ok")
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                ticket = uuid4()
                assert (await client.get(f"/api/v1/triage/tickets/{ticket}/sla")).status_code == 401
                token = auth.bearer(auth.admin())
                missing = await client.get(f"/api/v1/triage/tickets/{uuid4()}/sla", headers=token)
                assert missing.status_code == 404
                assert (await client.get("/api/v1/triage/matrix", headers=token)).status_code == 200
                assert (await client.get("/no/such/path")).status_code == 404
                documented = (await client.get("/openapi.json")).json()["paths"]
                assert "/metrics" not in documented, "no public contract"
            text = await scrape(f"{base}/metrics", log, until="helpdesk_http_requests_total")
    finally:
        await _delete_outbox_row(postgres_url, row)

    template = "/api/v1/triage/tickets/{ticket_id}/sla"
    requests = "helpdesk_http_requests_total"
    assert sample(text, requests, service="triage", method="GET", route=template, status="401") == 1
    assert sample(text, requests, service="triage", method="GET", route=template, status="404") == 1
    assert sample(text, requests, route="/api/v1/triage/matrix", status="200") == 1
    assert sample(text, requests, route="unmatched", status="404") == 1
    assert str(ticket) not in text, "raw paths never become labels"
    count = sample(text, "helpdesk_http_request_duration_seconds_count", route=template)
    assert count == 2
    assert sample(text, "helpdesk_queue_depth", queue=TRIAGE_QUEUE) == 1
    assert sample(text, "helpdesk_outbox_unpublished", service="triage") == 1
    age = sample(text, "helpdesk_outbox_oldest_unpublished_age_seconds", service="triage")
    assert age is not None and 120 <= age < 200
    assert sample(text, "helpdesk_dead_letters", service="triage") == 0
    await redis.delete(TRIAGE_QUEUE)


async def test_worker_metrics_count_jobs_by_outcome_on_their_own_port(
    postgres_url: str, redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    (port,) = free_ports(1)
    command = [sys.executable, "-m", "shared.worker_main", "--metrics-port", str(port)]
    command += ["services.triage.worker.WorkerSettings"]
    log = tmp_path / "worker.log"
    jobs = "helpdesk_jobs_total"
    applied = {"queue": TRIAGE_QUEUE, "type": "agent.created", "outcome": "applied"}
    with process(command, _env(postgres_url, redis_url, tmp_path), log):
        url = f"http://127.0.0.1:{port}/metrics"
        # Sampled every few seconds once the worker started (the outbox once its runtime is open).
        started = await scrape(url, log, until='helpdesk_outbox_unpublished{service="triage"}')
        before = sample(started, jobs, **applied) or 0
        pool = await queue.connect(redis_url)
        try:
            for _ in range(2):
                await queue.publish(pool, agent_created())
        finally:
            await pool.aclose()
        deadline = time.monotonic() + 30
        while (sample(text := await scrape(url, log), jobs, **applied) or 0) < before + 2:
            assert time.monotonic() < deadline, f"jobs never counted:\n{text}"
            await asyncio.sleep(0.2)
    assert sample(text, jobs, **applied) == before + 2
    assert (
        sample(text, "helpdesk_job_duration_seconds_count", queue=TRIAGE_QUEUE, type="agent.created") or 0
    ) >= 2
    assert (sample(text, "helpdesk_event_lag_seconds_count", queue=TRIAGE_QUEUE) or 0) >= 2
    assert sample(text, "helpdesk_queue_depth", queue=TRIAGE_QUEUE) is not None
    assert sample(text, "helpdesk_outbox_unpublished", service="triage") is not None
