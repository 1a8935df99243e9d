"""Where the CPU goes during a measurement: CPU seconds of each stack process group, of the
PostgreSQL backends serving the bench database, and of the whole machine (others included).

On a small shared machine the stack's own workers, PostgreSQL and the load generator all
compete for the same cores; "milliseconds of CPU per ticket by component" says what a
throughput number is made of, whatever the load average was.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from bench.memory import process_tree
from deploy.local.stack import Stack

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process, or None when it is gone."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    return None


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot (idle and iowait are not busy)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(values)
    return (total - values[3] - values[4]) / TICK, total / TICK


def backends_of(database: str) -> list[int]:
    """PostgreSQL backends connected to ``database`` (their titles name it)."""
    pids = []
    marker = f" {database} ".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
    return pids


@dataclass
class CpuMeter:
    """Counts CPU seconds by component between ``start()`` and ``stop()``. Backends are
    sampled every ``interval_s`` (the pool opens and closes some mid-run): one that appears
    counts from zero, one that ends keeps its last reading."""

    stack: Stack
    database: str
    interval_s: float = 0.25
    _first: dict[tuple[str, int], float] = field(default_factory=dict)
    _last: dict[tuple[str, int], float] = field(default_factory=dict)
    _machine: tuple[float, float] = (0.0, 0.0)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    result: dict[str, float] = field(default_factory=dict)

    def _read(self, initial: bool) -> None:
        seen: list[tuple[str, int]] = []
        for name, processes in process_tree(self.stack).items():
            seen += [(name, pid) for pid, _ in processes]
        seen += [("postgres backends", pid) for pid in backends_of(self.database)]
        for key in seen:
            value = cpu_seconds(key[1])
            if value is None:
                continue
            if key not in self._first:
                self._first[key] = value if initial else 0.0
            self._last[key] = value

    def start(self) -> CpuMeter:
        self._first.clear()
        self._last.clear()
        self._read(initial=True)
        self._machine = machine_busy()
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.interval_s):
                with contextlib.suppress(Exception):
                    self._read(initial=False)

        self._thread = threading.Thread(target=loop, name="cpu-meter", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        """CPU seconds by component, plus ``machine busy`` and ``machine total``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._read(initial=False)
        busy, total = machine_busy()
        by_component: dict[str, float] = {}
        for key, last in self._last.items():
            by_component[key[0]] = by_component.get(key[0], 0.0) + max(0.0, last - self._first[key])
        by_component["machine busy"] = busy - self._machine[0]
        by_component["machine total"] = total - self._machine[1]
        self.result = {k: round(v, 2) for k, v in by_component.items()}
        return self.result


def per_item_ms(cpu: dict[str, float], items: int) -> dict[str, float]:
    """CPU milliseconds per item by component (the machine totals left out), largest first."""
    if items <= 0:
        return {}
    pairs = [(k, v * 1000 / items) for k, v in cpu.items() if not k.startswith("machine")]
    return {k: round(v, 2) for k, v in sorted(pairs, key=lambda kv: -kv[1]) if v >= 0.05}


def describe(cpu: dict[str, float], items: int, unit: str = "ticket") -> str:
    """ "CPU/ticket: ticket_api-api 9.5 ms, … (stack 35 ms); machine 98 % busy"."""
    shares = per_item_ms(cpu, items)
    stack_total = sum(shares.values())
    top = ", ".join(f"{k} {v:.1f}" for k, v in list(shares.items())[:5])
    busy = cpu.get("machine busy", 0.0) / cpu["machine total"] * 100 if cpu.get("machine total") else 0.0
    return f"CPU ms/{unit}: {top} (all ours {stack_total:.1f}); machine {busy:.0f}% busy"
