"""Pipeline latency under load: tickets offered at a steady rate (open loop: one every 1/rate
seconds whatever the answers, so a slow system cannot slow the offer), then for each ticket

* created → its acknowledgment accepted by the SMTP sink (the sink names each file by the
  nanosecond it stored the message; the mail carries ``X-Helpdesk-Ticket``), and
* created → ``ticket.triaged`` applied in ticket_api (the ``triaged`` audit entry, written in
  the consumer's transaction),

where "created" is the ticket's own ``created_at`` (set by ticket_api in the request).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from bench.cpu import CpuMeter, describe, per_item_ms
from bench.report import Row, verdict
from bench.run import Run
from bench.stats import summary_ms
from shared.settings import ServiceSettings

ACK_TARGET_MS = 1000.0
TRIAGED_TARGET_MS = 500.0
WAIT_FOR_RESULTS_S = 90.0


async def offer(run: Run, count: int, rate: float, tag: str) -> tuple[dict[str, UUID], float, dict[int, int]]:
    """POST ``count`` tickets at ``rate``/s; returns number → id of those created, the rate
    actually offered, and every status seen (0 for a transport error)."""
    tokens = run.tokens()
    headers = {**tokens.portal_headers(), "Content-Type": "application/json"}
    created: dict[str, UUID] = {}
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=run.stack.gateway_url, limits=limits, timeout=60) as client:

        async def one(n: int) -> None:
            contact = n % 500
            body = {
                "contact": {"email": f"pipe-{contact}@{tokens.email_domain}", "name": f"Pipeline {contact}"},
                "subject": f"Cannot sign in ({tag}-{n})",
                "description": f"Since this morning the sign-in page loops. Ticket {tag}-{n}.",
                "urgency": ("low", "medium", "high", "critical")[n % 4],
            }
            try:
                answer = await client.post(
                    "/api/v1/tickets", json=body, headers={**headers, "Idempotency-Key": f"{tag}-{n}"}
                )
            except httpx.HTTPError:
                statuses[0] = statuses.get(0, 0) + 1
                return
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            if answer.status_code == 201:
                ticket = answer.json()
                created[ticket["number"]] = UUID(ticket["id"])

        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = []
        for n in range(count):
            delay = start + n / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        offered_for = loop.time() - start
        await asyncio.gather(*tasks)
    achieved = (count - 1) / offered_for if offered_for > 0 else float(count)
    return created, achieved, statuses


def acknowledgments(
    mail_dir: Path, since_ns: int, numbers: set[str], seen: dict[str, int], checked: set[str]
) -> None:
    """Add to ``seen`` (number → ns the sink stored it) every acknowledgment for ``numbers``
    stored since ``since_ns``; ``checked`` remembers the files already read."""
    parser = BytesParser(policy=policy.default)
    for path in mail_dir.glob("*.eml"):
        if path.name in checked:
            continue
        checked.add(path.name)
        try:
            stored_ns = int(path.name.split("-", 1)[0])
        except ValueError:
            continue
        if stored_ns < since_ns:
            continue
        with open(path, "rb") as handle:
            headers = parser.parse(handle, headersonly=True)
        number = str(headers.get("X-Helpdesk-Ticket", "")).strip()
        kind = str(headers.get("X-Helpdesk-Notification", "")).strip()
        if number in numbers and kind.startswith("acknowledgment") and number not in seen:
            seen[number] = stored_ns


async def _times(run: Run, ids: list[UUID]) -> tuple[dict[UUID, datetime], dict[UUID, datetime]]:
    connection = await asyncpg.connect(run.libpq_url)
    try:
        created = await connection.fetch(
            "SELECT id, created_at FROM ticket_api.ticket WHERE id = ANY($1)", ids
        )
        triaged = await connection.fetch(
            "SELECT entity_id, min(created_at) AS at FROM ticket_api.audit_entry "
            "WHERE entity_type = 'ticket' AND action = 'triaged' AND entity_id = ANY($1) GROUP BY entity_id",
            ids,
        )
    finally:
        await connection.close()
    return {r["id"]: r["created_at"] for r in created}, {r["entity_id"]: r["at"] for r in triaged}


def _wait_for_results(
    run: Run, since_ns: int, created: dict[str, UUID]
) -> tuple[dict[str, int], dict[UUID, datetime], dict[UUID, datetime]]:
    """Poll the sink and the audit trail until every ticket is acknowledged and triaged (or
    the wait is over): acks by number, triaged and created times by id."""
    numbers, ids = set(created), list(created.values())
    acks: dict[str, int] = {}
    checked: set[str] = set()
    triaged: dict[UUID, datetime] = {}
    created_at: dict[UUID, datetime] = {}
    deadline = time.monotonic() + WAIT_FOR_RESULTS_S
    while time.monotonic() < deadline:
        acknowledgments(run.stack.mail_dir, since_ns, numbers, acks, checked)
        created_at, triaged = asyncio.run(_times(run, ids))
        if len(acks) == len(numbers) and len(triaged) == len(ids):
            break
        time.sleep(1)
    return acks, triaged, created_at


def measure(run: Run) -> None:
    """At the issue's rate (judged), then at a low rate: the pipeline's own latency when
    nothing queues, for comparison; then the highest rate it sustains within the targets."""
    config = run.config
    _report(run, at_rate(run, config.pipeline_rate, config.pipeline_tickets), judged=True)
    _report(run, at_rate(run, config.pipeline_low_rate, config.pipeline_low_tickets), judged=False)
    _capacity(run)


@dataclass
class Outcome:
    """One load at one rate: what was offered, and the two latencies of every ticket."""

    rate: float
    count: int
    achieved: float
    statuses: dict[int, int]
    created: int
    ack_latency: list[float]
    triage_latency: list[float]
    cpu: dict[str, float]

    @property
    def complete(self) -> bool:
        return len(self.ack_latency) == len(self.triage_latency) == self.created == self.count

    @property
    def ack_ms(self) -> dict[str, float | int]:
        return summary_ms(self.ack_latency)

    @property
    def triaged_ms(self) -> dict[str, float | int]:
        return summary_ms(self.triage_latency)

    def meets_targets(self) -> bool:
        ack, triaged = self.ack_ms, self.triaged_ms
        return (
            self.complete
            and ack["p95_ms"] < ACK_TARGET_MS
            and triaged["p95_ms"] < TRIAGED_TARGET_MS
            and self.achieved >= self.rate * 0.95
        )


def at_rate(run: Run, rate: float, count: int) -> Outcome:
    """Offer ``count`` tickets at ``rate``/s, wait for every acknowledgment and decision, drain."""
    tag = f"p{time.time_ns() % 10**9}"
    since_ns = time.time_ns()
    meter = CpuMeter(run.stack, run.database).start()
    try:
        created, achieved, statuses = asyncio.run(offer(run, count, rate, tag))
        acks, triaged, created_at = _wait_for_results(run, since_ns, created)
        run.drain()
    finally:
        cpu = meter.stop()
    return Outcome(
        rate=rate,
        count=count,
        achieved=achieved,
        statuses=statuses,
        created=len(created),
        ack_latency=[
            acks[number] / 1e9 - created_at[ticket_id].timestamp()
            for number, ticket_id in created.items()
            if number in acks and ticket_id in created_at
        ],
        triage_latency=[
            (triaged[ticket_id] - created_at[ticket_id]).total_seconds()
            for ticket_id in created.values()
            if ticket_id in triaged and ticket_id in created_at
        ],
        cpu=cpu,
    )


def _settings(outcome: Outcome) -> str:
    defaults = ServiceSettings.model_fields
    return (
        f"{outcome.count} tickets offered at {outcome.rate:.0f}/s (achieved {outcome.achieved:.1f}/s) "
        f"via gateway, open loop; workers max_jobs {defaults['worker_max_jobs'].default}, "
        f"poll {defaults['worker_poll_delay_seconds'].default * 1000:.0f} ms; "
        f"{describe(outcome.cpu, outcome.created)}"
    )


def _data(outcome: Outcome) -> dict[str, Any]:
    return {
        "offered": outcome.count,
        "offered_rate": outcome.rate,
        "achieved_rate": round(outcome.achieved, 1),
        "statuses": {str(k): v for k, v in outcome.statuses.items()},
        "acknowledged": len(outcome.ack_latency),
        "triaged": len(outcome.triage_latency),
        "ack_ms": outcome.ack_ms,
        "triaged_ms": outcome.triaged_ms,
        "cpu_seconds": outcome.cpu,
        "cpu_ms_per_ticket": per_item_ms(outcome.cpu, outcome.created),
    }


def _report(run: Run, outcome: Outcome, *, judged: bool) -> None:
    data = _data(outcome)
    run.data.setdefault("pipeline", {})[f"{outcome.rate:g}_per_second"] = data
    errors = sum(n for s, n in outcome.statuses.items() if s != 201)
    for measure_name, latencies, target_ms, key in (
        ("created → ack accepted by SMTP", outcome.ack_latency, ACK_TARGET_MS, "ack_ms"),
        ("created → ticket.triaged applied", outcome.triage_latency, TRIAGED_TARGET_MS, "triaged_ms"),
    ):
        stats = data[key]
        if latencies:
            result = (
                f"p50 {stats['p50_ms']:.0f} ms · p95 {stats['p95_ms']:.0f} ms · "
                f"p99 {stats['p99_ms']:.0f} ms · "
                f"max {stats['max_ms']:.0f} ms · {len(latencies)}/{outcome.created} tickets"
            )
        else:
            result = f"none of {outcome.created} tickets arrived within {WAIT_FOR_RESULTS_S:.0f} s"
        if errors:
            result += f" · {errors} POSTs failed"
        run.add(
            Row(
                "pipeline",
                f"{measure_name}, {outcome.rate:g}/s",
                result,
                settings=_settings(outcome),
                target=f"p95 < {target_ms / 1000:g} s, all arrive" if judged else "",
                verdict=verdict(bool(latencies) and outcome.complete and stats["p95_ms"] < target_ms)
                if judged
                else "",
                data=stats,
            )
        )


def _capacity(run: Run) -> None:
    """Offer ``capacity_rates`` in turn, each for ``capacity_seconds``, up to the first that
    misses a target (ack p95 < 1 s, triaged p95 < 0.5 s, every ticket, the rate offered in
    full): the last rate met is what this machine sustains. Not judged: it tracks progress."""
    config = run.config
    sustained: Outcome | None = None
    tried: list[str] = []
    for rate in config.capacity_rates:
        outcome = at_rate(run, rate, max(int(rate * config.capacity_seconds), 20))
        ack, triaged = outcome.ack_ms, outcome.triaged_ms
        tried.append(
            f"{rate:g}/s: ack p95 {ack.get('p95_ms', float('nan')):.0f} ms, "
            f"triaged p95 {triaged.get('p95_ms', float('nan')):.0f} ms"
        )
        if not outcome.meets_targets():
            break
        sustained = outcome
    result = (
        f"{sustained.rate:g} tickets/s within the targets"
        if sustained
        else f"below {config.capacity_rates[0]:g} tickets/s"
    )
    run.data.setdefault("pipeline", {})["capacity"] = {
        "sustained_rate": sustained.rate if sustained else None,
        "tried": tried,
        "sustained": _data(sustained) if sustained else None,
    }
    run.add(
        Row(
            "pipeline",
            "capacity: highest rate with ack p95 < 1 s and triaged p95 < 0.5 s",
            result,
            settings=f"each rate offered for {config.capacity_seconds:g} s, in turn: {'; '.join(tried)}"
            + (
                f"; at {sustained.rate:g}/s {describe(sustained.cpu, sustained.created)}" if sustained else ""
            ),
            data={"sustained_rate": sustained.rate if sustained else None},
        )
    )
