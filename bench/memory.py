"""Memory: the resident set (VmRSS) of every stack process, idle and under load.

Processes are found from the stack's children (each the leader of its process group) and
their descendants (uvicorn's worker processes, nginx's workers), read from ``/proc``.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import Row, verdict
from deploy.local.stack import Stack

IDLE_TARGET_MB = 150  # the issue says MB: 143 MiB
SERVICE_PREFIXES = ("ticket_api", "triage", "notifier", "billing", "inbound_smtp")


def rss_mib(pid: int) -> float | None:
    """VmRSS of ``pid`` in MiB, or None when it is gone (or a kernel thread)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _role(pid: int, leader: int) -> str:
    if pid == leader:
        return "main"
    with contextlib.suppress(OSError):
        cmdline = (
            (Path(f"/proc/{pid}") / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
        if "resource_tracker" in cmdline:
            return "resource tracker"
        if "multiprocessing" in cmdline or "spawn_main" in cmdline:
            return "worker"
        if cmdline.startswith("nginx"):
            return "worker"
    return "child"


def process_tree(stack: Stack) -> dict[str, list[tuple[int, str]]]:
    """For each running stack child: its processes as (pid, role), the leader first."""
    parents = _parents()
    children_of: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children_of.setdefault(parent, []).append(pid)
    tree: dict[str, list[tuple[int, str]]] = {}
    for name, child in stack.children.items():
        if child.pid is None or not child.running():
            continue
        found, todo = [], [child.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(sorted(children_of.get(pid, [])))
        tree[name] = [(pid, _role(pid, child.pid)) for pid in found]
    return tree


def snapshot(stack: Stack) -> dict[str, dict[int, tuple[str, float]]]:
    """RSS now: child name → pid → (role, MiB)."""
    result: dict[str, dict[int, tuple[str, float]]] = {}
    for name, processes in process_tree(stack).items():
        for pid, role in processes:
            rss = rss_mib(pid)
            if rss is not None:
                result.setdefault(name, {})[pid] = (role, rss)
    return result


@dataclass
class PeakSampler:
    """Samples every stack process in a background thread; keeps each one's highest RSS."""

    stack: Stack
    interval_s: float = 0.5
    peaks: dict[str, dict[int, tuple[str, float]]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        for name, processes in snapshot(self.stack).items():
            known = self.peaks.setdefault(name, {})
            for pid, (role, rss) in processes.items():
                if pid not in known or rss > known[pid][1]:
                    known[pid] = (role, rss)

    def start(self) -> PeakSampler:
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.interval_s):
                with contextlib.suppress(Exception):  # a process ending mid-read is not news
                    self.sample()

        self._thread = threading.Thread(target=loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _describe(processes: dict[int, tuple[str, float]]) -> str:
    parts = [f"{role} {rss:.0f}" for _, (role, rss) in sorted(processes.items())]
    return ", ".join(parts) + " MiB"


def _largest(processes: dict[int, tuple[str, float]]) -> float:
    return max((rss for _, rss in processes.values()), default=0.0)


def rows(
    boot: dict[str, dict[int, tuple[str, float]]],
    peaks: dict[str, dict[int, tuple[str, float]]],
    after: dict[str, dict[int, tuple[str, float]]],
    load_note: str,
) -> list[Row]:
    """One row per stack process group: the largest process idle after boot, idle after the
    load (the one judged: a service that has served traffic), and at its peak under load."""
    result: list[Row] = []
    for name in sorted(set(boot) | set(after) | set(peaks)):
        idle_boot, idle_after = _largest(boot.get(name, {})), _largest(after.get(name, {}))
        peak = _largest(peaks.get(name, {}))
        is_service = name.startswith(SERVICE_PREFIXES)
        idle = max(idle_boot, idle_after)
        result.append(
            Row(
                "memory",
                f"{name} RSS",
                f"idle {idle_boot:.0f} → {idle_after:.0f} MiB (boot → after load) · load peak {peak:.0f} MiB",
                settings=f"largest process; after load: {_describe(after.get(name, {}))}; load: {load_note}",
                target=f"idle < {IDLE_TARGET_MB} MB each" if is_service else "",
                verdict=verdict(idle < IDLE_TARGET_MB * 1_000_000 / 2**20 if is_service else None),
                data={
                    "idle_boot": {str(pid): v for pid, v in boot.get(name, {}).items()},
                    "peak": {str(pid): v for pid, v in peaks.get(name, {}).items()},
                    "idle_after_load": {str(pid): v for pid, v in after.get(name, {}).items()},
                },
            )
        )
    return result
