"""The bench harness's pure parts: percentiles, output parsing, plan reading, the table.
(The benchmarks themselves are not tests: ``make bench`` runs ``bench/``.)"""

from __future__ import annotations

import pytest

from bench.cpu import describe, per_item_ms
from bench.pipeline import Outcome
from bench.profile import hot_frames, redis_per_item
from bench.reads import plan_nodes, seq_scans_on
from bench.report import MISS, PASS, Row, render_table, verdict
from bench.stats import percentile, summary_ms
from bench.wrk import parse_pgbench_output, parse_wrk_output


def test_percentiles_interpolate_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]  # unsorted on purpose
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 25) == pytest.approx(1.75)
    assert percentile([7.0], 99) == 7.0
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)


@pytest.mark.parametrize("p", [-1, 100.5])
def test_percentile_refuses_nonsense(p: float) -> None:
    with pytest.raises(ValueError):
        percentile([1.0], p)
    with pytest.raises(ValueError):
        percentile([], 50)


def test_summary_is_in_milliseconds() -> None:
    summary = summary_ms([0.010, 0.020, 0.030])
    assert summary == {"count": 3, "p50_ms": 20.0, "p95_ms": 29.0, "p99_ms": 29.8, "max_ms": 30.0}
    assert summary_ms([]) == {"count": 0}


WRK_WITH_OUR_LINE = """Running 10s test @ http://127.0.0.1:8080
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    20.10ms   10.00ms 120.00ms   70.00%
  4000 requests in 10.00s, 1.20MB read
  Non-2xx or 3xx responses: 12
Requests/sec:    400.00
Transfer/sec:    122.88KB
BENCH_JSON {"requests":4000,"duration_us":10000000,"errors":{"connect":0,"read":1,"write":0,"status":12,\
"timeout":2},"latency_us":{"mean":20100.0,"max":120000,"p50":18000,"p90":30000,"p99":61000,"p999":90000},\
"statuses":{"201":3988,"429":12}}
"""


def test_wrk_output_with_our_json_line() -> None:
    result = parse_wrk_output(WRK_WITH_OUR_LINE)
    assert result.requests == 4000
    assert result.duration_s == 10.0
    assert (result.p50_ms, result.p90_ms, result.p99_ms, result.p999_ms) == (18.0, 30.0, 61.0, 90.0)
    assert result.max_ms == 120.0 and result.mean_ms == pytest.approx(20.1)
    assert result.statuses == {201: 3988, 429: 12}
    assert result.ok == 3988
    assert result.ok_per_second == pytest.approx(398.8)
    # 12 non-2xx answers + read and timeout errors; wrk's own "status" count is not counted twice
    assert result.errors == 12 + 1 + 2


WRK_PLAIN = """Running 5s test @ http://127.0.0.1:8101/floor
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.05ms  302.00us   9.50ms   91.00%
    Req/Sec     0.95k    50.00     1.00k    80.00%
  Latency Distribution
     50%    0.98ms
     75%    1.10ms
     90%    1.30ms
     99%    2.50ms
  4750 requests in 5.00s, 700.00KB read
  Socket errors: connect 0, read 0, write 0, timeout 3
  Non-2xx or 3xx responses: 5
Requests/sec:    950.00
"""


def test_wrk_plain_summary_is_the_fallback() -> None:
    result = parse_wrk_output(WRK_PLAIN)
    assert result.requests == 4750 and result.duration_s == 5.0
    assert result.p50_ms == pytest.approx(0.98) and result.p99_ms == pytest.approx(2.5)
    assert result.mean_ms == pytest.approx(1.05) and result.max_ms == pytest.approx(9.5)
    assert result.socket_errors == {"connect": 0, "read": 0, "write": 0, "timeout": 3}
    assert result.ok == 4745 and result.errors == 5 + 3


def test_wrk_output_without_a_summary_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused\n")


PGBENCH = """pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: /tmp/script.sql
scaling factor: 1
query mode: prepared
number of clients: 32
number of threads: 2
maximum number of tries: 1
duration: 5 s
number of transactions actually processed: 70123
number of failed transactions: 0 (0.000%)
latency average = 2.281 ms
initial connection time = 25.019 ms
tps = 14029.475360 (without initial connection time)
"""


def test_pgbench_output() -> None:
    result = parse_pgbench_output(PGBENCH)
    assert (result.clients, result.transactions, result.failed) == (32, 70123, 0)
    assert result.tps == pytest.approx(14029.47536)
    assert result.latency_avg_ms == pytest.approx(2.281)
    with pytest.raises(ValueError):
        parse_pgbench_output("pgbench: error: connection to server failed\n")


def test_plan_nodes_name_scans_and_indexes() -> None:
    plan = {
        "Plan": {
            "Node Type": "Limit",
            "Plans": [
                {
                    "Node Type": "Index Scan",
                    "Scan Direction": "Backward",
                    "Index Name": "ix_ticket_organization_id_id",
                    "Relation Name": "ticket",
                }
            ],
        }
    }
    nodes = plan_nodes(plan)
    assert nodes == ["Limit", "Index Scan Backward using ix_ticket_organization_id_id on ticket"]
    assert not seq_scans_on(nodes, "ticket")
    assert seq_scans_on(["Limit", "Sort", "Seq Scan on ticket"], "ticket")
    assert not seq_scans_on(["Seq Scan on ticket_link"], "ticket")


def test_cpu_per_item_leaves_the_machine_out() -> None:
    cpu = {
        "ticket_api-api": 2.0,
        "postgres backends": 0.5,
        "gateway": 0.001,
        "machine busy": 5,
        "machine total": 10,
    }
    assert per_item_ms(cpu, 200) == {"ticket_api-api": 10.0, "postgres backends": 2.5}
    assert describe(cpu, 200).endswith("(all ours 12.5); machine 50% busy")
    assert per_item_ms(cpu, 0) == {}


def test_table_prints_a_section_once_and_aligns_columns() -> None:
    rows = [
        Row("intake", "c1", "40 tickets/s", settings="wrk -c1"),
        Row("intake", "c32", "400 tickets/s", target="p99 < 50 ms", verdict=verdict(False)),
        Row("reads", "c1", "2 ms", target="p99 < 50 ms", verdict=verdict(True)),
    ]
    lines = render_table(rows).splitlines()
    assert lines[0].split() == ["section", "measure", "result", "target", "settings"]
    assert lines[2].startswith("intake") and lines[3].startswith(" ")
    assert lines[4].startswith("reads")
    assert MISS in lines[3] and PASS in lines[4]
    # every column starts at the same offset on every row
    assert len({line.index("p99 < 50 ms") for line in lines[3:5]}) == 1
    assert verdict(None) == ""


def _outcome(
    ack_s: float, triaged_s: float, *, count: int = 20, arrived: int = 20, achieved: float = 20.0
) -> Outcome:
    return Outcome(
        rate=20,
        count=count,
        achieved=achieved,
        statuses={201: count},
        created=count,
        ack_latency=[ack_s] * arrived,
        triage_latency=[triaged_s] * arrived,
        cpu={},
    )


def test_a_rate_is_sustained_only_when_every_ticket_arrives_in_time_at_the_full_rate() -> None:
    assert _outcome(0.2, 0.1).meets_targets()
    assert not _outcome(1.2, 0.1).meets_targets(), "acknowledgments too late"
    assert not _outcome(0.2, 0.6).meets_targets(), "triage too late"
    assert not _outcome(0.2, 0.1, arrived=19).meets_targets(), "a ticket missing"
    assert not _outcome(0.2, 0.1, achieved=15.0).meets_targets(), "the load generator fell behind"


def test_redis_commands_are_counted_per_ticket_busiest_first() -> None:
    stats = {"cmdstat_evalsha": {"calls": 800}, "cmdstat_get": {"calls": 200}, "cmdstat_del": {"calls": 1000}}
    total, busiest = redis_per_item(stats, 100, top=2)
    assert total == 20.0
    assert busiest == [("del", 10.0), ("evalsha", 8.0)]


def test_hot_frames_are_self_time_shares_without_line_numbers() -> None:
    raw = [
        "main (w.py:1);handle (h.py:9);execute (asyncpg/p.py:120) 6",
        "main (w.py:1);handle (h.py:12);execute (asyncpg/p.py:121) 2",
        "main (w.py:1);render (r.py:3) 2",
        "garbage without a count",
    ]
    assert hot_frames(raw) == [("execute (asyncpg/p.py)", 80.0), ("render (r.py)", 20.0)]
    assert hot_frames([]) == []
