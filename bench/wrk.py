"""The load generators: ``wrk`` (HTTP, with Lua scripts) and ``pgbench`` (the database's own).

Both run on loopback for a fixed duration and stop by themselves. Our Lua scripts end with a
``done()`` that prints one ``BENCH_JSON {...}`` line (latency percentiles, errors, every status
seen), which :func:`parse_wrk_output` reads; wrk's own text summary is the fallback.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Appended to every script: thread ids, a status count per thread, and the JSON summary.
LUA_COMMON = r"""
local threads = {}
local thread_count = 0
function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
  table.insert(threads, thread)
end

statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local codes = {}
  for _, t in ipairs(threads) do
    local seen = t:get("statuses")
    if seen then
      for code, count in pairs(seen) do codes[code] = (codes[code] or 0) + count end
    end
  end
  local parts = {}
  for code, count in pairs(codes) do table.insert(parts, string.format('"%d":%d', code, count)) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d},"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,' ..
    '"p999":%d},"statuses":{%s}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), table.concat(parts, ",")))
end
"""

# POST a new ticket with a unique body and Idempotency-Key each time, as a portal does.
# args: <bearer token> <run tag> <how many distinct contacts> <contact email domain>
LUA_INTAKE = r"""
local urgencies = {"low", "medium", "high", "critical"}
function init(args)
  token, tag, contacts, domain = args[1], args[2], tonumber(args[3]), args[4]
  counter = 0
end
function request()
  counter = counter + 1
  local n = counter * 64 + tid
  local contact = n % contacts
  local body = '{"contact":{"email":"bench-' .. contact .. '@' .. domain .. '","name":"Bench Contact ' ..
    contact .. '"},"subject":"Printer offline ' .. tag .. '-' .. n .. '","description":' ..
    '"The printer on floor ' .. (n % 9) .. ' stopped answering this morning. Ticket ' .. tag .. '-' ..
    n .. '.","urgency":"' .. urgencies[n % 4 + 1] .. '"}'
  return wrk.format("POST", "/api/v1/tickets", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = tag .. "-" .. n,
  }, body)
end
"""

# POST the bare floor endpoint with a body shaped like a ticket's.
LUA_FLOOR = r"""
function init(args)
  counter = 0
end
function request()
  counter = counter + 1
  local n = counter * 64 + tid
  local body = '{"subject":"Printer offline ' .. n .. '","description":"The printer on floor ' ..
    (n % 9) .. ' stopped answering this morning.","urgency":"high"}'
  return wrk.format("POST", "/floor", {["Content-Type"] = "application/json"}, body)
end
"""

# GET paths read from a file (one a line), each thread starting at its own offset.
# args: <bearer token> <paths file>
LUA_PATHS = r"""
function init(args)
  token = args[1]
  paths = {}
  for line in io.lines(args[2]) do
    if #line > 0 then table.insert(paths, line) end
  end
  position = tid * 7919
end
function request()
  position = position + 1
  return wrk.format("GET", paths[(position % #paths) + 1], {["Authorization"] = "Bearer " .. token})
end
"""


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: every request counted, latencies in milliseconds."""

    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    mean_ms: float
    socket_errors: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        """Responses with a 2xx status."""
        return sum(count for status, count in self.statuses.items() if 200 <= status < 300)

    @property
    def errors(self) -> int:
        """Non-2xx answers plus socket errors (connect, read, write, timeout)."""
        non_2xx = sum(count for status, count in self.statuses.items() if not 200 <= status < 300)
        sockets = sum(v for k, v in self.socket_errors.items() if k != "status")
        return non_2xx + sockets

    @property
    def ok_per_second(self) -> float:
        return self.ok / self.duration_s if self.duration_s else 0.0

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["statuses"] = {str(k): v for k, v in self.statuses.items()}
        data.update(ok=self.ok, errors=self.errors, ok_per_second=round(self.ok_per_second, 1))
        return data


_JSON_LINE = re.compile(r"^BENCH_JSON (\{.*\})\s*$", re.MULTILINE)
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk_output(text: str) -> WrkResult:
    """Read a wrk run's output: our ``BENCH_JSON`` line when present, else wrk's own summary
    (``--latency`` gives the percentiles; without it only mean and max are known).

    Raises ValueError when the text holds neither."""
    match = _JSON_LINE.search(text)
    if match:
        data = json.loads(match.group(1))
        latency = data["latency_us"]
        return WrkResult(
            requests=int(data["requests"]),
            duration_s=data["duration_us"] / 1e6,
            p50_ms=latency["p50"] / 1000,
            p90_ms=latency["p90"] / 1000,
            p99_ms=latency["p99"] / 1000,
            p999_ms=latency["p999"] / 1000,
            max_ms=latency["max"] / 1000,
            mean_ms=latency["mean"] / 1000,
            socket_errors={k: int(v) for k, v in data["errors"].items()},
            statuses={int(k): int(v) for k, v in data["statuses"].items()},
        )
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if not total:
        raise ValueError("no wrk summary in the output:\n" + text[-2000:])
    requests = int(total.group(1))
    duration_s = _ms(total.group(2) + total.group(3)) / 1000
    mean_ms = max_ms = 0.0
    latency_line = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", text)
    if latency_line:
        mean_ms, max_ms = _ms(latency_line.group(1)), _ms(latency_line.group(3))
    percentiles = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", text, re.MULTILINE)}
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    socket_line = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if socket_line:
        errors = dict(zip(errors, map(int, socket_line.groups()), strict=True))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    failed = int(non_2xx.group(1)) if non_2xx else 0
    # wrk's text does not say which statuses: 0 stands for "some non-2xx/3xx".
    statuses = {200: requests - failed, **({0: failed} if failed else {})}
    return WrkResult(
        requests=requests,
        duration_s=duration_s,
        p50_ms=percentiles.get("50", 0.0),
        p90_ms=percentiles.get("90", 0.0),
        p99_ms=percentiles.get("99", 0.0),
        p999_ms=0.0,
        max_ms=max_ms,
        mean_ms=mean_ms,
        socket_errors=errors,
        statuses=statuses,
    )


def run_wrk(
    url: str,
    script: str,
    *,
    connections: int,
    threads: int,
    duration_s: float,
    args: list[str] | None = None,
    timeout_s: float = 10.0,
) -> WrkResult:
    """Run wrk against ``url`` with ``script`` (+ the common tail) and return its result."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed (scripts/bench_tools.sh installs it)")
    threads = max(1, min(threads, connections))
    with tempfile.TemporaryDirectory(prefix="helpdesk-wrk-") as directory:
        path = Path(directory) / "script.lua"
        path.write_text(script + LUA_COMMON)
        command = [
            binary,
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{max(1, round(duration_s))}s",
            "--timeout",
            f"{max(1, round(timeout_s))}s",
            "-s",
            str(path),
            url,
        ]
        if args:
            command += ["--", *args]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=duration_s + timeout_s + 30, check=False
        )
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return parse_wrk_output(result.stdout)


# --- pgbench ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgbenchResult:
    clients: int
    transactions: int
    failed: int
    tps: float
    latency_avg_ms: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def parse_pgbench_output(text: str) -> PgbenchResult:
    """Read pgbench's summary (``tps = …``, ``latency average = … ms``); ValueError if absent."""
    tps = re.search(r"^tps = ([\d.]+)", text, re.MULTILINE)
    if not tps:
        raise ValueError("no tps in pgbench's output:\n" + text[-2000:])
    clients = re.search(r"^number of clients: (\d+)", text, re.MULTILINE)
    processed = re.search(r"^number of transactions actually processed: (\d+)", text, re.MULTILINE)
    failed = re.search(r"^number of failed transactions: (\d+)", text, re.MULTILINE)
    latency = re.search(r"^latency average = ([\d.]+) ms", text, re.MULTILINE)
    return PgbenchResult(
        clients=int(clients.group(1)) if clients else 0,
        transactions=int(processed.group(1)) if processed else 0,
        failed=int(failed.group(1)) if failed else 0,
        tps=float(tps.group(1)),
        latency_avg_ms=float(latency.group(1)) if latency else 0.0,
    )


def run_pgbench(
    dsn: str, sql: str, *, clients: int, jobs: int, duration_s: float, prepared: bool = True
) -> PgbenchResult:
    """Run a custom pgbench script (no vacuum, no built-in tables) for ``duration_s`` seconds."""
    binary = shutil.which("pgbench")
    if binary is None:
        raise RuntimeError("pgbench is not installed (scripts/bench_tools.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="helpdesk-pgbench-") as directory:
        path = Path(directory) / "script.sql"
        path.write_text(sql)
        command = [
            binary,
            "-n",
            "-f",
            str(path),
            "-c",
            str(clients),
            "-j",
            str(max(1, min(jobs, clients))),
            "-T",
            str(max(1, round(duration_s))),
            *(["-M", "prepared"] if prepared else []),
            dsn,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"pgbench failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return parse_pgbench_output(result.stdout)
