"""The local run: ``start_stack`` boots the real stack and leaves nothing behind; the ``make run``
supervisor stops everything on SIGTERM, restarts a child that dies (with backoff, nothing else
stops), refuses a second run on the same var dir, and names a taken port. Real processes
throughout (nginx, redis-server, uvicorn, arq)."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from deploy.local import gateway as gw
from deploy.local.probes import free_ports
from deploy.local.procs import (
    Child,
    kill_stale,
    pid_alive,
    quick_deaths_after,
    read_live_pid,
    restart_delay,
    write_pid_file,
)
from deploy.local.stack import ROOT, SERVICES, Ports, StackError, start_stack

needs_binaries = pytest.mark.skipif(
    gw.nginx_binary() is None or shutil.which("redis-server") is None,
    reason="nginx and redis-server are needed (scripts/bootstrap.sh installs them)",
)


def test_kill_stale_kills_recorded_process_groups_only(tmp_path: Path) -> None:
    leftover = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        write_pid_file(tmp_path / "worker.pid", leftover.pid)
        # Our own pid with a wrong start time stands for a pid reused by an unrelated process.
        (tmp_path / "reused.pid").write_text(f'{{"pid": {os.getpid()}, "start_time": "1"}}\n')
        killed = kill_stale(tmp_path)
        assert killed == [f"worker (pid {leftover.pid})"]
        assert leftover.wait(timeout=5) == -signal.SIGKILL
        assert not list(tmp_path.glob("*.pid"))
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()


def test_read_live_pid_tells_live_from_stale(tmp_path: Path) -> None:
    write_pid_file(tmp_path / "me.pid", os.getpid())
    assert read_live_pid(tmp_path / "me.pid") == os.getpid()
    (tmp_path / "junk.pid").write_text("not json")
    assert read_live_pid(tmp_path / "junk.pid") is None
    assert read_live_pid(tmp_path / "missing.pid") is None


@needs_binaries
def test_a_taken_port_is_named_with_its_knob(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        ports = replace(Ports.free(), gateway=taken)
        expected = rf"{taken} \(gateway; set HELPDESK_GATEWAY_PORT\)"
        with pytest.raises(StackError, match=expected), start_stack(var_dir=tmp_path / "var", ports=ports):
            pass
    assert not (tmp_path / "var" / "run" / "supervisor.pid").exists()


@pytest.mark.stack
@needs_binaries
def test_start_stack_boots_everything_and_leaves_nothing(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    with start_stack(var_dir=var_dir) as stack:
        assert stack.start_redis and not stack.redis_url.endswith(":6379/0"), "tests get a private Redis"
        with httpx.Client(base_url=stack.gateway_url, timeout=10) as client:
            assert client.get("/healthz").status_code == 200
            for service in SERVICES:
                assert client.get(f"/_services/{service}/readyz").status_code == 200, service
            response = client.get("/api/v1/tickets", headers={"X-Request-ID": "stack-test-0001"})
            assert response.headers["X-Request-ID"] == "stack-test-0001"
            missing = client.get("/assets/definitely-not-here.js")
            assert missing.status_code == 404
            assert missing.headers["Content-Type"] == "application/problem+json"
            console = client.get("/definitely/a/console/page")  # the SPA's own router decides
            assert console.status_code == 200 and '<div id="root">' in console.text
        assert stack.mail_dir == var_dir.resolve() / "mail" and stack.mail_dir.is_dir()
        credentials = stack.credentials()
        assert credentials, "the seed writes credentials.json"
        with httpx.Client(base_url=stack.gateway_url, timeout=10) as client:
            signed_in = client.post(
                "/api/v1/auth/login",
                json={"email": credentials["admin"]["email"], "password": credentials["admin"]["password"]},
            ).json()
            admin = {"Authorization": f"Bearer {signed_in['access_token']}"}
            account = f"/api/v1/billing/accounts/{credentials['portal']['organization_id']}"
            deadline = time.monotonic() + 30  # the worker's outbox relay announces the seed's organization
            while (
                answer := client.get(account, headers=admin)
            ).status_code == 404 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert answer.status_code == 200, "the demo organization has a billing account"
            assert answer.json()["support_tier"] == "hourly"
        # A process calling a service port directly cannot claim another address with
        # X-Forwarded-For (only the gateway's is trusted): its failed sign-ins count against the
        # address it really has, whatever it claims, and lock it after five.
        with httpx.Client(base_url=stack.service_url("ticket_api"), timeout=10) as direct:
            statuses = [
                direct.post(
                    "/api/v1/auth/login",
                    json={"email": f"nobody{attempt}@helpdesk.test", "password": "wrong guess"},
                    headers={"X-Forwarded-For": f"203.0.113.{attempt}"},
                ).status_code
                for attempt in range(6)
            ]
        assert statuses == [401] * 5 + [429], statuses
        assert "gateway" in stack.summary()
        # Services that call each other do so on this run's ports.
        assert stack.env["NOTIFIER_BILLING_BASE_URL"] == stack.service_url("billing")
        assert stack.env["HELPDESK_TICKET_API_URL"] == stack.service_url("ticket_api")
        stack.check_alive()
        # What reliability tests do: kill a worker hard, see it reported, bring it back.
        stack.kill("triage-worker")
        with pytest.raises(StackError, match="triage-worker exited"):
            stack.check_alive()
        stack.restart("triage-worker")
        stack.restart("billing-api")
        stack.check_alive()
        pids = [child.pid for child in stack.children.values() if child.pid]
        assert len(pids) >= 10
    assert not [pid for pid in pids if pid_alive(pid)], "every process must be gone after the block"
    assert not list((var_dir / "run").glob("*.pid"))


@dataclass
class Supervisor:
    process: subprocess.Popen[str]
    lines: queue.Queue[str]
    output: list[str]
    var_dir: Path
    env: dict[str, str]

    def wait_for(self, text: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.process.poll() is None, "".join(self.output)
                continue
            if text in line:
                return
        raise AssertionError(f"no {text!r} within {timeout} s:\n{''.join(self.output)}")

    def child_pids(self) -> dict[str, int]:
        found = {path.stem: read_live_pid(path) for path in (self.var_dir / "run").glob("*.pid")}
        return {name: pid for name, pid in found.items() if pid is not None and name != "supervisor"}


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    var_dir = tmp_path / "var"
    (redis_port,) = free_ports(1)
    env = {
        **os.environ,
        **Ports.free().as_env(),
        "HELPDESK_VAR_DIR": str(var_dir),
        # Nothing answers there, so the supervisor starts its own redis-server on that port.
        "HELPDESK_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "PYTHONUNBUFFERED": "1",
    }
    for service in SERVICES:
        env[f"{service.upper()}_DATABASE_URL"] = f"sqlite+aiosqlite:///{var_dir / f'{service}.db'}"
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.local.run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    running = Supervisor(process, lines, output, var_dir, env)
    try:
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.stack
@needs_binaries
def test_supervisor_refuses_a_second_run_and_stops_cleanly_on_sigterm(supervisor: Supervisor) -> None:
    supervisor.wait_for("Ctrl-C stops everything")
    assert "started by this run" in "".join(supervisor.output), "it should have started its own Redis"
    pids = supervisor.child_pids()
    assert {"gateway", "redis", "smtp_sink", "ticket_api-api", "billing-worker"} <= set(pids)

    second = subprocess.run(
        [sys.executable, "-m", "deploy.local.run", "--check"],
        cwd=ROOT,
        env=supervisor.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    assert "another local run" in second.stderr
    assert read_live_pid(supervisor.var_dir / "run" / "supervisor.pid") == supervisor.process.pid

    supervisor.process.send_signal(signal.SIGTERM)
    assert supervisor.process.wait(timeout=30) == 0
    assert not [name for name, pid in pids.items() if pid_alive(pid)]
    assert not (supervisor.var_dir / "run" / "supervisor.pid").exists()


@pytest.mark.stack
@needs_binaries
def test_supervisor_restarts_a_dead_child_and_stops_nothing_else(supervisor: Supervisor) -> None:
    supervisor.wait_for("Ctrl-C stops everything")
    pids = supervisor.child_pids()
    os.kill(pids["triage-worker"], signal.SIGKILL)
    supervisor.wait_for("triage-worker exited with code -9; restarting in 0.5 s")
    supervisor.wait_for("triage-worker restarted")
    assert supervisor.process.poll() is None, "the supervisor keeps running"
    after = supervisor.child_pids()
    assert after["triage-worker"] != pids["triage-worker"] and pid_alive(after["triage-worker"])
    others = {name: pid for name, pid in pids.items() if name != "triage-worker"}
    assert {name: after[name] for name in others} == others, "nothing else was touched"
    assert all(pid_alive(pid) for pid in others.values())


def test_restart_delays_double_while_a_child_keeps_dying_young() -> None:
    assert [restart_delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert restart_delay(40) == 30.0
    assert quick_deaths_after(3, ran_seconds=1.0) == 4
    assert quick_deaths_after(3, ran_seconds=600.0) == 1, "a child that ran a while starts afresh"


def test_a_child_that_dies_is_started_again_after_its_delay(tmp_path: Path) -> None:
    child = Child(name="short", argv=["true"], log_path=tmp_path / "short.log", env=os.environ, cwd=tmp_path)
    child.start()
    assert child.process is not None
    child.process.wait()
    now = time.monotonic()
    assert child.supervise(now) == "short exited with code 0; restarting in 0.5 s"
    assert child.supervise(now + 0.4) is None, "not before its delay"
    first = child.pid
    assert child.supervise(now + 0.5) is not None
    assert child.pid != first and child.restarts == 1
    child.process.wait()
    assert child.supervise(time.monotonic()) == "short exited with code 0; restarting in 1 s"
    child.stop()
