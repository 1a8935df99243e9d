"""Measure billing by hand: events applied per second, and the monthly period close at scale.

    .venv/bin/python -m bench.billing_period_close --orgs 1000 --entries 100000
    .venv/bin/python -m bench.billing_period_close --orgs 10000 --entries 1000000 --events 0

Needs PostgreSQL (HELPDESK_TEST_PG, as the tests). Creates a scratch database, migrates billing,
loads a month of data with COPY (every organization on a monthly agreement — the only tier the
period close has work for; all tickets closed, 90 % of their time already drawn at close, 10 %
logged on closed tickets afterwards and so swept by the close, 1 % of closes still waiting
for their settle delay), runs the close once, and prints seconds and peak memory (RSS).
Then it times events through the idempotent consumer (time_entry.logged), one at a time and
with several at once. The scratch database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from bench.environment import libpq_url, recreate_database, sqlalchemy_url
from services.billing.context import Billing
from services.billing.models import processed_event
from services.billing.period_close import close_periods
from services.billing.settings import Settings
from services.billing.tasks import build_handlers
from shared import events as ev
from shared.consumer import EventConsumer
from shared.db import create_engine, session_maker
from shared.ids import new_id
from shared.migrate import upgrade

MONTH_START = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # 1 November, 00:00 in Chicago
CLOSE_AT = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)  # 00:30 on 1 December in Chicago
ENTRIES_PER_TICKET = 10


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def load(connection: asyncpg.Connection, orgs: int, entries: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    now = MONTH_START
    org_ids = [new_id() for _ in range(orgs)]
    await connection.copy_records_to_table(
        "billing_account",
        schema_name="billing",
        columns=[
            "organization_id",
            "name",
            "support_tier",
            "timezone",
            "source_changed_at",
            "created_at",
            "updated_at",
            "closed_through",
        ],
        records=[
            (o, f"Org {i}", "agreement", "America/Chicago", now, now, now, "2026-10")
            for i, o in enumerate(org_ids)
        ],
    )
    await connection.copy_records_to_table(
        "billing_plan",
        schema_name="billing",
        columns=[
            "id",
            "organization_id",
            "version",
            "kind",
            "effective_from",
            "currency",
            "rate_per_hour_cents",
            "increment_minutes",
            "minimum_minutes_per_ticket",
            "tax_rate_ppm",
            "payment_terms_days",
            "allowance_minutes",
            "overage_rate_per_hour_cents",
            "created_by",
            "created_at",
        ],
        records=[
            (
                new_id(),
                o,
                1,
                "agreement",
                date(2000, 1, 1),
                "USD",
                15000,
                15,
                0,
                0,
                30,
                600,
                12000,
                "bench",
                now,
            )
            for o in org_ids
        ],
    )
    tickets = entries // ENTRIES_PER_TICKET
    ticket_rows, entry_rows, usage_rows, charge_rows = [], [], [], []
    for t in range(tickets):
        org = org_ids[t % orgs]
        ticket_id = new_id()
        closed_at = MONTH_START + timedelta(minutes=rng.randrange(0, 29 * 24 * 60))
        waiting = t % 100 == 0  # 1 % of closes still wait for their settle delay
        ticket_rows.append(
            (
                ticket_id,
                org,
                f"TKT-{t + 1}",
                "closed",
                closed_at,
                closed_at,
                "jane@example.test",
                closed_at + timedelta(seconds=5) if waiting else None,
            )
        )
        for e in range(ENTRIES_PER_TICKET):
            entry_id = new_id()
            minutes = rng.choice((15, 30, 45, 60))
            started = closed_at - timedelta(hours=1)
            late = e == ENTRIES_PER_TICKET - 1  # 10 %: logged on the closed ticket afterwards
            needs_charge = late or waiting
            changed = closed_at + timedelta(minutes=10) if late else started
            entry_rows.append(
                (
                    entry_id,
                    org,
                    ticket_id,
                    f"TKT-{t + 1}",
                    1,
                    uuid.UUID(int=1),
                    minutes,
                    True,
                    False,
                    started,
                    "",
                    changed,
                    needs_charge,
                )
            )
            usage_rows.append(
                (
                    new_id(),
                    org,
                    entry_id,
                    1,
                    "usage",
                    ticket_id,
                    f"TKT-{t + 1}",
                    uuid.UUID(int=1),
                    minutes,
                    True,
                    started,
                    changed,
                    changed,
                )
            )
            if not needs_charge:
                charge_rows.append(
                    (
                        new_id(),
                        org,
                        ticket_id,
                        f"TKT-{t + 1}",
                        entry_id,
                        "allowance",
                        minutes,
                        "2026-11",
                        closed_at,
                    )
                )
        if len(entry_rows) >= 50_000 or t == tickets - 1:
            await _flush(connection, ticket_rows, entry_rows, usage_rows, charge_rows)


async def _flush(
    connection: asyncpg.Connection,
    tickets: list[tuple[Any, ...]],
    entries: list[tuple[Any, ...]],
    usage: list[tuple[Any, ...]],
    charges: list[tuple[Any, ...]],
) -> None:
    await connection.copy_records_to_table(
        "ticket",
        schema_name="billing",
        columns=[
            "ticket_id",
            "organization_id",
            "number",
            "status",
            "status_at",
            "closed_at",
            "contact_email",
            "settle_due_at",
        ],
        records=tickets,
    )
    await connection.copy_records_to_table(
        "time_entry",
        schema_name="billing",
        columns=[
            "time_entry_id",
            "organization_id",
            "ticket_id",
            "ticket_number",
            "revision",
            "agent_id",
            "minutes",
            "billable",
            "deleted",
            "started_at",
            "description",
            "changed_at",
            "needs_charge",
        ],
        records=entries,
    )
    await connection.copy_records_to_table(
        "usage_entry",
        schema_name="billing",
        columns=[
            "id",
            "organization_id",
            "time_entry_id",
            "revision",
            "kind",
            "ticket_id",
            "ticket_number",
            "agent_id",
            "minutes",
            "billable",
            "started_at",
            "changed_at",
            "recorded_at",
        ],
        records=usage,
    )
    await connection.copy_records_to_table(
        "charge",
        schema_name="billing",
        columns=[
            "id",
            "organization_id",
            "ticket_id",
            "ticket_number",
            "time_entry_id",
            "kind",
            "minutes",
            "period_key",
            "charged_at",
        ],
        records=charges,
    )
    for rows in (tickets, entries, usage, charges):
        rows.clear()


def time_entry_event(organization_id: uuid.UUID) -> ev.Event:
    payload = ev.TimeEntryV1(
        time_entry_id=new_id(),
        revision=1,
        ticket_id=new_id(),
        ticket_number="TKT-1",
        ticket_status="open",
        organization_id=organization_id,
        agent_id=new_id(),
        minutes=30,
        billable=True,
        started_at=CLOSE_AT,
        description="Work",
        source="manual",
        deleted=False,
    )
    return ev.new_event(
        ev.EventType.TIME_ENTRY_LOGGED, payload, producer=ev.Service.TICKET_API, subject="time_entry:x"
    )


async def events_per_second(url: str, count: int, concurrency: int) -> float:
    engine = create_engine(url, schema="billing", pool_size=max(concurrency, 1))
    consumer = EventConsumer(
        table=processed_event, sessions=session_maker(engine), handlers=build_handlers(Billing(Settings()))
    )
    organization = new_id()
    events = [time_entry_event(organization) for _ in range(count)]
    queue: asyncio.Queue[ev.Event] = asyncio.Queue()
    for event in events:
        queue.put_nowait(event)

    async def work() -> None:
        while not queue.empty():
            await consumer.consume(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(work() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return count / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument(
        "--events", type=int, default=2000, help="events to time through the consumer (0: skip)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    database = f"helpdesk_bench_{os.getpid()}"
    await recreate_database(database)
    url = sqlalchemy_url(database)
    try:
        await asyncio.to_thread(upgrade, ev.Service.BILLING, url)
        connection = await asyncpg.connect(libpq_url(database))
        started = time.perf_counter()
        await load(connection, args.orgs, args.entries)
        await connection.execute("ANALYZE")
        took = time.perf_counter() - started
        print(f"loaded {args.orgs} organizations, {args.entries} time entries in {took:.1f} s")
        await connection.close()

        engine = create_engine(url, schema="billing", pool_size=2)
        billing = Billing(Settings(database_url=url))
        rss_before = peak_rss_mib()
        started = time.perf_counter()
        report = await close_periods(session_maker(engine), billing, now=CLOSE_AT)
        elapsed = time.perf_counter() - started
        print(
            f"period close: {elapsed:.2f} s, peak RSS {peak_rss_mib():.0f} MiB (before: {rss_before:.0f} MiB)"
        )
        print(f"  {report}")
        started = time.perf_counter()
        again = await close_periods(session_maker(engine), billing, now=CLOSE_AT)
        took = time.perf_counter() - started
        print(f"  a second run: {took:.2f} s, {again.accounts_closed} accounts (nothing due)")
        await engine.dispose()

        if args.events:
            for concurrency in (1, 8):
                rate = await events_per_second(url, args.events, concurrency)
                print(f"time_entry.logged through the consumer, {concurrency} at once: {rate:.0f} events/s")
    finally:
        if not args.keep:
            await recreate_database(database, drop_only=True)


if __name__ == "__main__":
    asyncio.run(main())
