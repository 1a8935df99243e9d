"""Reads with a full database: list/filter tickets and page through them by cursor, through
the gateway, with ``read_tickets`` (1,000,000) tickets in ticket_api.

The tickets are bulk-loaded straight into ticket_api's tables with ``INSERT … SELECT
generate_series`` (foreign-key triggers off for the load, the data consistent by
construction): ``read_organizations`` organizations with 20 contacts each; the demo
organization (the portal's) holds a tenth of all tickets, the others share the rest evenly;
statuses new 5 % / open 30 % / pending_customer 10 % / closed 55 %; ids are time-ordered
(UUIDv7 over the past months) as ticket_api makes them. Then VACUUM ANALYZE.

Measured with wrk cycling over many URLs: ``status + organization_id`` filters over a sample
of organizations, and keyset pages (``cursor``) at depths all through the result. The query
plans are checked twice: EXPLAIN of the repository's query shape (as a one-off and as the
generic plan a prepared statement may switch to), and the table's scan counters during the
load (a sequential scan of ``ticket`` would show there).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from bench.cpu import CpuMeter, describe, per_item_ms
from bench.floors import http_result, wrk_settings
from bench.report import Row, verdict
from bench.run import Run
from bench.wrk import LUA_PATHS, run_wrk
from shared.pagination import decode_cursor, encode_cursor

P99_TARGET_MS = 50.0
CONTACTS_PER_ORGANIZATION = 20
SAMPLED_ORGANIZATIONS = 200
STATUSES = ("new", "open", "pending_customer", "closed")

LOAD_SQL = """
CREATE TEMP TABLE bench_org AS
    SELECT j, CASE WHEN j = 0 THEN $1::uuid ELSE gen_random_uuid() END AS id
    FROM generate_series(0, $2::int - 1) AS j;
INSERT INTO ticket_api.organization (id, name, support_tier, timezone, sla_signed_at, created_at, updated_at)
    SELECT id, 'Bench Org ' || j, (ARRAY['hourly', 'agreement', 'block'])[1 + j % 3], 'America/Chicago',
           now(), now(), now()
    FROM bench_org WHERE j > 0;
CREATE TEMP TABLE bench_contact AS
    SELECT k, gen_random_uuid() AS id FROM generate_series(0, $2::int * $3::int - 1) AS k;
INSERT INTO ticket_api.contact (id, email, name, organization_id, created_at, updated_at)
    SELECT c.id, 'reader-' || c.k || '@org' || o.j || '.bench.test', 'Reader ' || c.k, o.id, now(), now()
    FROM bench_contact c JOIN bench_org o ON o.j = c.k % $2::int;
"""

TICKETS_SQL = """
INSERT INTO ticket_api.ticket (id, number, subject, description, urgency, impact, category, channel, status,
                               priority, assignee_id, contact_id, organization_id, created_by, created_at,
                               updated_at, closed_at)
SELECT
    (lpad(to_hex((extract(epoch FROM t.ts) * 1000)::bigint), 12, '0') || '7' || substr(t.h, 1, 3) || '8'
        || substr(t.h, 4, 15))::uuid,
    nextval('ticket_api.ticket_number_seq'),
    'Bench ticket ' || t.i || ': the printer on floor ' || t.i % 9 || ' stopped answering',
    'Since this morning nobody in the office can print. We restarted the printer and the laptops; '
        || 'the queue shows the jobs as sent. Reference ' || t.i || '.',
    (ARRAY['low', 'medium', 'high', 'critical'])[1 + t.u % 4],
    NULL, NULL, (ARRAY['api', 'email', 'web'])[1 + t.u % 3],
    CASE WHEN t.s < 5 THEN 'new' WHEN t.s < 35 THEN 'open' WHEN t.s < 45 THEN 'pending_customer'
         ELSE 'closed' END,
    CASE WHEN t.s < 5 THEN NULL ELSE 'P' || (1 + t.u % 4) END,
    NULL, c.id, o.id, 'bench', t.ts, t.ts + interval '1 hour',
    CASE WHEN t.s >= 45 THEN t.ts + interval '1 day' END
FROM (
    SELECT i, md5(i::text) AS h, now() - ($1::int - i) * interval '20 seconds' AS ts,
           CASE WHEN i % 10 = 0 THEN 0 ELSE 1 + i % ($2::int - 1) END AS j,
           mod(hashint4(i)::bigint + 2147483648, 100) AS s,
           mod(hashint4(i + 1000003)::bigint + 2147483648, 1000) AS u
    FROM generate_series(1, $1::int) AS i
) AS t
JOIN bench_org o ON o.j = t.j
JOIN bench_contact c ON c.k = t.j + $2::int * (t.u % $3::int);
"""

# The repository's query (services/ticket_api/tickets/repository.py list_tickets), for EXPLAIN.
QUERY_COLUMNS = (
    "id, number, subject, description, urgency, impact, category, channel, status, priority, assignee_id, "
    "contact_id, organization_id, created_by, created_at, updated_at, closed_at"
)


def plan_nodes(plan: dict[str, Any]) -> list[str]:
    """The plan's nodes depth-first, as "Index Scan Backward using ix_… on ticket"."""
    node = plan.get("Plan", plan)
    text = str(node.get("Node Type", "?"))
    if node.get("Scan Direction") == "Backward" and "Index" in text:
        text += " Backward"
    if "Index Name" in node:
        text += f" using {node['Index Name']}"
    if "Relation Name" in node:
        text += f" on {node['Relation Name']}"
    found = [text]
    for child in node.get("Plans", []):
        found += plan_nodes(child)
    return found


def seq_scans_on(nodes: list[str], table: str) -> bool:
    return any(n.startswith("Seq Scan") and n.endswith(f" on {table}") for n in nodes)


async def _load(run: Run, tickets: int, organizations: int) -> dict[str, Any]:
    connection = await asyncpg.connect(run.libpq_url, command_timeout=1800)
    demo = run.tokens().organization_id
    try:
        existing = int(await connection.fetchval("SELECT count(*) FROM ticket_api.ticket"))
        to_load = max(0, tickets - existing)
        started = time.perf_counter()
        async with connection.transaction():
            await connection.execute("SET LOCAL session_replication_role = replica")
            await connection.execute(
                LOAD_SQL.replace("$1::uuid", f"'{demo}'::uuid")
                .replace("$2::int", str(organizations))
                .replace("$3::int", str(CONTACTS_PER_ORGANIZATION))
            )
            await connection.execute(TICKETS_SQL, to_load, organizations, CONTACTS_PER_ORGANIZATION)
        loaded_s = time.perf_counter() - started
        started = time.perf_counter()
        for table in ("ticket", "contact", "organization"):
            await connection.execute(f"VACUUM ANALYZE ticket_api.{table}")
        vacuum_s = time.perf_counter() - started
        total = int(await connection.fetchval("SELECT count(*) FROM ticket_api.ticket"))
        size = await connection.fetchval("SELECT pg_size_pretty(pg_total_relation_size('ticket_api.ticket'))")
        return {
            "tickets_total": total,
            "tickets_loaded": to_load,
            "organizations": organizations,
            "contacts_loaded": organizations * CONTACTS_PER_ORGANIZATION,
            "load_s": round(loaded_s, 1),
            "vacuum_analyze_s": round(vacuum_s, 1),
            "table_size": size,
        }
    finally:
        await connection.close()


async def _targets(run: Run) -> dict[str, Any]:
    """URLs to cycle through, and the values the plans are checked with."""
    demo = run.tokens().organization_id
    connection = await asyncpg.connect(run.libpq_url, command_timeout=600)
    try:
        organizations = [
            str(r["id"])
            for r in await connection.fetch(
                "SELECT id FROM ticket_api.organization WHERE name LIKE 'Bench Org %' ORDER BY id LIMIT $1",
                SAMPLED_ORGANIZATIONS - 1,
            )
        ]
        deep: dict[str, list[str]] = {}
        for name, where, args in (
            ("all organizations, status=closed", "status = 'closed'", ()),
            ("demo organization, status=open", "status = 'open' AND organization_id = $1::uuid", (demo,)),
        ):
            rows = await connection.fetch(
                "SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id DESC) AS n "
                f"FROM ticket_api.ticket WHERE {where}) AS s WHERE n % 50 = 0",
                *args,
            )
            deep[name] = [encode_cursor(r["id"]) for r in rows]
        mid_cursor = deep["all organizations, status=closed"][
            len(deep["all organizations, status=closed"]) // 2
        ]
    finally:
        await connection.close()
    rng = random.Random(7)
    filters = [
        f"/api/v1/tickets?status={status}&organization_id={org}&limit=50"
        for org in [demo, *organizations]
        for status in STATUSES
    ]
    rng.shuffle(filters)
    pages = []
    for cursor in deep["all organizations, status=closed"]:
        pages.append(f"/api/v1/tickets?status=closed&limit=50&cursor={cursor}")
    for cursor in deep["demo organization, status=open"]:
        pages.append(f"/api/v1/tickets?status=open&organization_id={demo}&limit=50&cursor={cursor}")
    rng.shuffle(pages)
    if len(pages) > 5000:
        pages = pages[:5000]
    return {
        "filters": filters,
        "pages": pages,
        "demo": demo,
        "mid_organization": organizations[len(organizations) // 2] if organizations else demo,
        "deep_cursor_id": str(decode_cursor(mid_cursor)),
        "page_depths": {name: len(cursors) for name, cursors in deep.items()},
    }


def _check_paging(run: Run, demo: str) -> str | None:
    """Follow next_cursor a few pages: 50 matching items a page, strictly older each page."""
    headers = run.tokens().admin_headers()
    seen: set[str] = set()
    last: str | None = None
    url = f"/api/v1/tickets?status=open&organization_id={demo}&limit=50"
    with httpx.Client(base_url=run.stack.gateway_url, timeout=30, headers=headers) as client:
        for _ in range(5):
            answer = client.get(url)
            if answer.status_code != 200:
                return f"page answered {answer.status_code}: {answer.text[:200]}"
            page = answer.json()
            items = page["items"]
            if len(items) != 50 or any(i["status"] != "open" or i["organization_id"] != demo for i in items):
                return "a page did not hold 50 matching tickets"
            ids = [i["id"] for i in items]
            if seen & set(ids) or (last is not None and ids[0] >= last) or ids != sorted(ids, reverse=True):
                return "pages overlap or are out of order"
            seen.update(ids)
            last = ids[-1]
            url = f"/api/v1/tickets?status=open&organization_id={demo}&limit=50&cursor={page['next_cursor']}"
    return None


async def _scan_counters(run: Run) -> dict[str, int]:
    connection = await asyncpg.connect(run.libpq_url)
    try:
        table = await connection.fetchrow(
            "SELECT seq_scan, idx_scan FROM pg_stat_user_tables WHERE schemaname = 'ticket_api' "
            "AND relname = 'ticket'"
        )
        indexes = await connection.fetch(
            "SELECT indexrelname, idx_scan FROM pg_stat_user_indexes WHERE schemaname = 'ticket_api' "
            "AND relname = 'ticket'"
        )
    finally:
        await connection.close()
    counters = {"seq_scan": int(table["seq_scan"]), "idx_scan": int(table["idx_scan"] or 0)}
    counters.update({f"index {r['indexrelname']}": int(r["idx_scan"]) for r in indexes})
    return counters


async def _explain(run: Run, targets: dict[str, Any]) -> list[dict[str, Any]]:
    demo, mid, deep = targets["demo"], targets["mid_organization"], targets["deep_cursor_id"]
    shapes = [
        ("status + organization (typical org)", "status IN ($1) AND organization_id = $2", ["open", mid]),
        ("status + organization (largest org)", "status IN ($1) AND organization_id = $2", ["new", demo]),
        ("status, deep cursor (all orgs)", "status IN ($1) AND id < $2", ["closed", deep]),
        (
            "status + organization + cursor",
            "status IN ($1) AND organization_id = $2 AND id < $3",
            ["open", demo, deep],
        ),
    ]
    connection = await asyncpg.connect(run.libpq_url, server_settings={"search_path": "ticket_api"})
    results = []
    try:
        for name, where, args in shapes:
            sql = f"SELECT {QUERY_COLUMNS} FROM ticket WHERE {where} ORDER BY id DESC LIMIT 51"
            typed = [a if a in STATUSES else UUID(a) for a in args]
            plans = {}
            for mode in ("force_custom_plan", "force_generic_plan"):
                await connection.execute(f"SET plan_cache_mode = {mode}")
                raw = await connection.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *typed)
                plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]
                nodes = plan_nodes(plan)
                plans[mode.removeprefix("force_").removesuffix("_plan")] = {
                    "nodes": nodes,
                    "execution_ms": round(float(plan.get("Execution Time", 0.0)), 2),
                    "seq_scan": seq_scans_on(nodes, "ticket"),
                }
            results.append({"query": name, "sql": sql, **plans})
    finally:
        await connection.close()
    return results


def measure(run: Run) -> None:
    config = run.config
    loaded = asyncio.run(_load(run, config.read_tickets, config.read_organizations))
    run.add(
        Row(
            "reads",
            "bulk load",
            f"{loaded['tickets_total']:,} tickets ({loaded['table_size']}) in {loaded['load_s']:.0f} s "
            f"+ VACUUM ANALYZE {loaded['vacuum_analyze_s']:.0f} s",
            settings=f"{config.read_organizations:,} organizations × {CONTACTS_PER_ORGANIZATION} contacts; "
            "INSERT … SELECT generate_series",
            data=loaded,
        )
    )
    targets = asyncio.run(_targets(run))
    problem = _check_paging(run, targets["demo"])
    if problem:
        run.add(Row("reads", "cursor paging is correct", problem, verdict="MISS"))
    reads = run.data.setdefault("reads", {"load": loaded, "page_depths": targets["page_depths"]})
    before = asyncio.run(_scan_counters(run))
    with tempfile.TemporaryDirectory(prefix="helpdesk-bench-") as directory:
        for kind, urls, label in (
            ("filters", targets["filters"], "list ?status=&organization_id=&limit=50"),
            ("pages", targets["pages"], "cursor pages ?status=[&organization_id=]&cursor="),
        ):
            path = Path(directory) / f"{kind}.txt"
            path.write_text("\n".join(urls) + "\n")
            for connections in config.read_concurrency:
                threads = min(connections, 2)
                meter = CpuMeter(run.stack, run.database).start()
                try:
                    result = run_wrk(
                        run.stack.gateway_url,
                        LUA_PATHS,
                        connections=connections,
                        threads=threads,
                        duration_s=config.read_seconds,
                        args=[run.tokens().admin, str(path)],
                    )
                finally:
                    cpu = meter.stop()
                reads[f"{kind}_c{connections}"] = {
                    **result.as_dict(),
                    "cpu_seconds": cpu,
                    "cpu_ms_per_request": per_item_ms(cpu, result.requests),
                }
                run.add(
                    Row(
                        "reads",
                        f"{label}, c{connections}",
                        http_result(result),
                        settings=(
                            f"{wrk_settings(connections, threads, config.read_seconds)} via gateway, "
                            f"{len(urls):,} URLs; {loaded['tickets_total']:,} tickets; "
                            f"{describe(cpu, result.requests, 'request')}"
                        ),
                        target=f"p99 < {P99_TARGET_MS:.0f} ms",
                        verdict=verdict(result.p99_ms < P99_TARGET_MS and result.errors == 0),
                        data=result.as_dict(),
                    )
                )
    time.sleep(1.5)  # PostgreSQL flushes table statistics about once a second
    after = asyncio.run(_scan_counters(run))
    deltas = {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}
    plans = asyncio.run(_explain(run, targets))
    reads["scan_counters_during_reads"] = deltas
    reads["plans"] = plans
    any_seq = deltas.get("seq_scan", 0) > 0 or any(
        p[m]["seq_scan"] for p in plans for m in ("custom", "generic")
    )
    used = sorted(
        {
            n.split(" using ")[1].split(" on ")[0]
            for p in plans
            for n in p["custom"]["nodes"]
            if " using " in n
        }
    )
    slowest = max((p[m]["execution_ms"] for p in plans for m in ("custom", "generic")), default=0.0)
    run.add(
        Row(
            "reads",
            "query plans",
            f"indexes used: {', '.join(used) or 'none'}; seq scans of ticket during reads: "
            f"{deltas.get('seq_scan', 0)}; slowest EXPLAIN ANALYZE {slowest:.1f} ms",
            settings="EXPLAIN ANALYZE of the repository's query shapes, custom and generic plans",
            target="no seq scan of ticket",
            verdict=verdict(not any_seq),
            data={"plans": plans, "scan_counters": deltas},
        )
    )
    for plan in plans:
        custom = plan["custom"]
        print(
            f"    plan {plan['query']}: {' → '.join(custom['nodes'])} ({custom['execution_ms']} ms)",
            file=sys.stderr,
        )
