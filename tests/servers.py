"""Private servers for tests, each on a free port of its own, never the machine's shared ones: a
PostgreSQL cluster (``initdb`` into a temporary directory, Debian's binaries under
/usr/lib/postgresql/*/bin) and a Redis (the run's own, and ones fault-injection tests stop, kill
and restart at will)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local.probes import free_ports, redis_answers


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return candidates[-1].parent if candidates else None


def _as_owner(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as ``postgres`` then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@dataclass
class PostgresCluster:
    """``initdb`` + ``pg_ctl`` on a private port; trust auth for ``postgres`` on 127.0.0.1."""

    bin_dir: Path
    port: int = field(default_factory=lambda: free_ports(1)[0])
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="helpdesk-pg-")))

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            _as_owner([str(self.bin_dir / argv[0]), *argv[1:]]), check=check, capture_output=True, text=True
        )

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200 -c shared_buffers=32MB"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.directory / "log"), "-w", "start"
        )

    def stop(self, mode: str = "fast", *, wait: bool = True) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-W" if not wait else "-w", "stop", check=False)

    def answers(self) -> bool:
        return (
            self._run("pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port), check=False).returncode
            == 0
        )

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class RedisServer:
    """A redis-server on a private port, restartable; by default its append-only file kept (as
    production's), so queued jobs survive a restart."""

    port: int = field(default_factory=lambda: free_ports(1)[0])
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="helpdesk-redis-")))
    append_only: bool = True
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "yes" if self.append_only else "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not redis_answers(self.url, timeout=0.2):
            assert self.process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: Redis writes its append-only file and exits
            self.process.wait(timeout=20)
        self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def crash_and_lose_data(self) -> None:
        """``kill -9``, then its files gone: it comes back empty (as one without persistence)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=20)
        self.process = None
        for path in self.directory.iterdir():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
