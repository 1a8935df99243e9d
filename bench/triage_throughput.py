"""Triage throughput, by hand (not collected by pytest):

    .venv/bin/python -m bench.triage_throughput [--tickets 2000] [--concurrency 16]

1. the pure decision path (:func:`services.triage.decision.decide`: matrix, policies,
   business calendar, assignment over a roster of 20 agents), in process;
2. the handler path: ``ticket.created`` events through triage's idempotent consumer on
   PostgreSQL (projection, roster and load query, decision, timers, outbox row), one at a time
   and with concurrent consumers. Uses a scratch database on ``HELPDESK_TEST_PG``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from bench.environment import recreate_database, sqlalchemy_url
from services.triage.assignment import AgentProfile
from services.triage.business_hours import BusinessCalendar
from services.triage.decision import TicketFacts, decide
from services.triage.models import outbox, processed_event
from services.triage.priority_matrix import PriorityMatrix
from services.triage.settings import Settings
from services.triage.sla import SlaPolicies
from services.triage.tasks import build_handlers
from shared.consumer import EventConsumer
from shared.events import Service
from shared.migrate import upgrade
from shared.runtime import Runtime
from tests.fixtures.events import CREATED_AT, agent_created, ticket_created

OFFICE_HOURS = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
CHICAGO = ZoneInfo("America/Chicago")

DATABASE = "helpdesk_bench_triage"


def bench_pure(count: int) -> float:
    agents = [
        AgentProfile(
            agent_id=UUID(int=n),
            name=f"Agent {n}",
            skills=frozenset({"printers", "networks"} if n % 2 else {"printers"}),
            timezone="America/Chicago",
            working_hours=OFFICE_HOURS,
            capacity=20,
            open_tickets=n % 7,
            weighted_load=(n * 3) % 11,
        )
        for n in range(1, 21)
    ]
    matrix, policies, calendar = PriorityMatrix.default(), SlaPolicies.standard(), BusinessCalendar()
    start = datetime(2026, 11, 2, 8, 0, tzinfo=CHICAGO)
    began = time.perf_counter()
    for n in range(count):
        created = start + timedelta(minutes=37 * n)
        decide(
            TicketFacts(
                urgency=("low", "medium", "high", "critical")[n % 4],
                impact=None,
                subject="Printer offline",
                description="Nobody can print in the whole office since this morning.",
                category="printers",
                support_tier=("hourly", "agreement", "block")[n % 3],
                created_at=created,
            ),
            matrix=matrix,
            policies=policies,
            calendar=calendar,
            calendar_name="default",
            agents=agents,
            now=created,
        )
    return count / (time.perf_counter() - began)


async def bench_handlers(count: int, concurrency: int) -> tuple[float, float, list[float]]:
    await recreate_database(DATABASE)
    url = sqlalchemy_url(DATABASE)
    await asyncio.to_thread(upgrade, Service.TRIAGE, url)
    settings = Settings(database_url=url, db_pool_size=concurrency, env="test")
    runtime = await Runtime.open(settings, outbox)
    clock = lambda: datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # noqa: E731
    consumer = EventConsumer(
        table=processed_event, sessions=runtime.sessions, handlers=build_handlers(settings, clock)
    )
    try:
        for n in range(1, 21):
            agent = agent_created(
                UUID(int=n),
                name=f"Agent{n}",
                email=f"agent{n}@helpdesk.test",
                working_hours=OFFICE_HOURS,
                capacity=10_000,
            )
            await consumer.consume(agent)
        latencies: list[float] = []

        async def one(n: int) -> None:
            event = ticket_created(occurred_at=CREATED_AT, number=f"TKT-{n}", category="printers")
            began = time.perf_counter()
            await consumer.consume(event)
            latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        for n in range(count // 2):
            await one(n)
        sequential = (count // 2) / (time.perf_counter() - began)

        queue = list(range(count // 2, count))

        async def worker() -> None:
            while queue:
                await one(queue.pop())

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        concurrent = (count - count // 2) / (time.perf_counter() - began)
        return sequential, concurrent, latencies[: count // 2]
    finally:
        await runtime.close()
        await recreate_database(DATABASE, drop_only=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--tickets", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print(f"pure decision path: {bench_pure(args.decisions):,.0f} decisions/s (20 agents)")
    sequential, concurrent, latencies = asyncio.run(bench_handlers(args.tickets, args.concurrency))
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"handler path on PostgreSQL: {sequential:,.0f} tickets/s one at a time "
        f"(p50 {quantiles[49] * 1000:.1f} ms, p95 {quantiles[94] * 1000:.1f} ms), "
        f"{concurrent:,.0f} tickets/s with {args.concurrency} concurrent consumers"
    )


if __name__ == "__main__":
    main()
