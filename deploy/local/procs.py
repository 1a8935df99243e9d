"""Child processes for the local run: each in its own process group, logging to its own file.

Why process groups: Ctrl-C in a terminal reaches only the supervisor (children are in other
groups), which then stops them in order; and stopping a child's group also stops whatever it
forked (nginx workers, uvicorn workers). On Linux each child also gets PDEATHSIG=SIGTERM, so
it goes away even if the supervisor is SIGKILLed (the signal fires when the *thread* that
spawned the child exits, so only children spawned from the main thread get it).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

_PR_SET_PDEATHSIG = 1

# A dead child is started again after 0.5, 1, 2 … s, at most RESTART_DELAY_MAX apart; a child
# that ran STABLE_SECONDS before it died starts again from the shortest delay.
RESTART_DELAY_FIRST = 0.5
RESTART_DELAY_MAX = 30.0
STABLE_SECONDS = 30.0


def restart_delay(quick_deaths: int) -> float:
    """Seconds to wait before starting a child that died ``quick_deaths`` times in a row soon
    after its start (1 for the first death): exponential, capped."""
    return float(min(RESTART_DELAY_FIRST * 2 ** min(max(quick_deaths - 1, 0), 16), RESTART_DELAY_MAX))


def quick_deaths_after(previous: int, ran_seconds: float) -> int:
    """The count of quick deaths in a row once a child that ran ``ran_seconds`` dies."""
    return 1 if ran_seconds >= STABLE_SECONDS else previous + 1


def _child_setup() -> None:
    # Runs in the child between fork and exec: keep it minimal and never raise.
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists (and is not a zombie we could reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if status == "Z":
            return False
    return True


def proc_start_time(pid: int) -> str | None:
    """The kernel's start time of a pid (clock ticks since boot), or None if it is gone.

    A pid plus its start time names one process for good: pids get reused, start times do not,
    and unlike the command line (nginx rewrites its own) a process cannot change it.
    """
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def write_pid_file(path: Path, pid: int) -> None:
    """Record a pid with its start time, so a later run can tell it from a reused pid."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"pid": pid, "start_time": proc_start_time(pid)}) + "\n")
    os.replace(tmp, path)


def read_live_pid(path: Path) -> int | None:
    """The pid in a pid file if that very process still runs, else None (stale or unreadable)."""
    try:
        record = json.loads(path.read_text())
        pid = int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not pid_alive(pid) or proc_start_time(pid) != record.get("start_time"):
        return None
    return pid


@dataclass
class Child:
    """One supervised process. ``start()`` spawns it, ``stop()`` ends its whole group."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str]
    cwd: Path
    pid_dir: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    # Supervision (see Child.supervise): when it started, how often it died quickly in a row,
    # when it is due to start again, how often it was restarted.
    started_at: float = field(default=0.0, repr=False)
    quick_deaths: int = field(default=0, repr=False)
    restart_at: float | None = field(default=None, repr=False)
    restarts: int = field(default=0, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)
    _log_offset: int = field(default=0, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def pid_file(self) -> Path | None:
        return self.pid_dir / f"{self.name}.pid" if self.pid_dir else None

    def start(self) -> None:
        """Spawn the process (appending to its log); a no-op while it is running."""
        if self.running():
            return
        self.close_log()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's life
        self._log_offset = self._log.tell()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self._log.write(f"\n=== {stamp} starting {self.name}: {' '.join(self.argv)}\n".encode())
        self._log.flush()
        self.process = subprocess.Popen(
            list(self.argv),
            cwd=self.cwd,
            env=dict(self.env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # PDEATHSIG fires when the spawning *thread* ends, so only a main-thread spawn gets it.
            preexec_fn=_child_setup if threading.current_thread() is threading.main_thread() else None,
        )
        self.started_at = time.monotonic()
        self.restart_at = None
        if self.pid_file:
            write_pid_file(self.pid_file, self.process.pid)

    def supervise(self, now: float) -> str | None:
        """If the child died, schedule its restart with backoff; if a restart is due, do it.
        Returns what happened, for the supervisor's log, or None."""
        if self.process is None or self.running():
            return None
        if self.restart_at is None:
            self.quick_deaths = quick_deaths_after(self.quick_deaths, now - self.started_at)
            delay = restart_delay(self.quick_deaths)
            self.restart_at = now + delay
            return f"{self.name} exited with code {self.returncode()}; restarting in {delay:g} s"
        if now < self.restart_at:
            return None
        self.start()
        self.restarts += 1
        return f"{self.name} restarted (pid {self.pid}, restart {self.restarts})"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def returncode(self) -> int | None:
        return self.process.poll() if self.process else None

    def signal_group(self, signum: int) -> None:
        """Send a signal to the child's process group (the child and what it forked)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the group, SIGKILL it after ``timeout`` seconds, reap, close the log."""
        stop_all([self], timeout)

    def close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def output_since_start(self) -> str:
        """What the child wrote to its log since its latest start."""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(self._log_offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        """The last lines of the child's log, for error messages."""
        try:
            text = self.log_path.read_bytes()[-64_000:].decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def stop_all(children: Sequence[Child], timeout: float = 10.0) -> None:
    """Stop these children together: SIGTERM each group, wait, then SIGKILL what is left."""
    for child in children:
        if child.running():
            child.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        if child.process is None:
            continue
        try:
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.signal_group(signal.SIGKILL)
            child.process.wait(timeout=5)
        # The leader is gone; make sure nothing it forked lingers in the group.
        child.signal_group(signal.SIGKILL)
        child.close_log()
        if child.pid_file:
            child.pid_file.unlink(missing_ok=True)


def kill_stale(pid_dir: Path) -> list[str]:
    """Kill the process groups a previous run left behind (its supervisor was SIGKILLed, say).

    Only processes whose pid *and* start time match their pid file are touched, so a pid reused
    by an unrelated process is safe. Removes the pid files; returns what was killed.
    """
    killed: list[str] = []
    if not pid_dir.is_dir():
        return killed
    for pid_file in sorted(pid_dir.glob("*.pid")):
        pid = read_live_pid(pid_file)
        if pid is not None and pid != os.getpid():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            killed.append(f"{pid_file.stem} (pid {pid})")
        pid_file.unlink(missing_ok=True)
    return killed
