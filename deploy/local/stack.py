"""Boot the whole local stack as ``make run`` does: Redis, migrations, seed, SMTP sink, each
service's API and worker, and the nginx gateway in front — all as supervised child processes.

For tests::

    from deploy.local.stack import start_stack

    with start_stack(env={"HELPDESK_ENV": "test"}, var_dir=tmp_path) as stack:
        httpx.get(f"{stack.gateway_url}/api/v1/...")
        stack.mail_dir            # every message the services sent, as .eml files
        stack.credentials()       # what the dev seed wrote (admin token, portal client token)

Free ports are chosen automatically, a private Redis is started unless ``env`` names one with
``HELPDESK_REDIS_URL``, databases default to SQLite files in the var dir (pass
``<SERVICE>_DATABASE_URL`` in ``env`` for PostgreSQL), and leaving the block stops every process.
Call it from the main thread if you can: only then do the children also die with the test
process if that is SIGKILLed (see ``procs`` on PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from deploy.local import gateway as gw
from deploy.local import web
from deploy.local.probes import (
    answers_200,
    free_ports,
    http_status,
    mask_url,
    port_accepts,
    port_in_use,
    redis_answers,
)
from deploy.local.procs import Child, kill_stale, read_live_pid, stop_all, write_pid_file

ROOT = Path(__file__).resolve().parents[2]
SERVICES = gw.SERVICES
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# uvicorn must keep idle connections longer than the gateway's upstream keepalive_timeout (60 s).
UVICORN_KEEPALIVE_SECONDS = "75"
WORKER_STARTED_MARKER = "Starting worker for"


class StackError(RuntimeError):
    """The stack could not start, or one of its processes died; the message says which and why."""


@dataclass(frozen=True)
class Ports:
    """TCP ports on 127.0.0.1; ``from_env`` reads the ``HELPDESK_*_PORT`` knobs, ``free`` picks free ones."""

    gateway: int = 8080
    ticket_api: int = 8101
    triage: int = 8102
    notifier: int = 8103
    billing: int = 8104
    smtp_sink: int = 1025
    inbound_smtp: int = 2525

    @staticmethod
    def env_name(component: str) -> str:
        return f"HELPDESK_{component.upper()}_PORT"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Ports:
        values = {f.name: int(env.get(cls.env_name(f.name), getattr(cls(), f.name))) for f in fields(cls)}
        return cls(**values)

    @classmethod
    def free(cls) -> Ports:
        """Distinct ports free right now (the kernel's choice; another process could still race us)."""
        names = [f.name for f in fields(cls)]
        return cls(**dict(zip(names, free_ports(len(names)), strict=True)))

    def as_env(self) -> dict[str, str]:
        return {self.env_name(f.name): str(getattr(self, f.name)) for f in fields(self)}

    def service(self, name: str) -> int:
        port: int = getattr(self, name)
        return port


def load_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment children see: ``.env`` at the repo root < the process env < ``overrides``.

    This mirrors pydantic-settings (real env wins over ``.env``), so the supervisor and the
    services agree on every knob.
    """
    from dotenv import dotenv_values

    env: dict[str, str] = {}
    dotenv_file = ROOT / ".env"
    if dotenv_file.is_file():
        env.update({k: v for k, v in dotenv_values(dotenv_file).items() if v is not None})
    env.update(os.environ)
    env.update(overrides or {})
    return env


@dataclass
class Stack:
    """A local stack. ``start()`` boots it (raising StackError on any failure, with everything
    already stopped), ``stop()`` ends every process; ``start_stack()`` wraps both for tests."""

    var_dir: Path
    ports: Ports
    env: dict[str, str]
    redis_url: str = ""
    start_redis: bool = False
    timeout: float = 90.0
    seed: bool = True
    children: dict[str, Child] = field(default_factory=dict)
    seed_output: list[str] = field(default_factory=list)
    web_root: Path = gw.WEB_ROOT
    log: Callable[[str], None] = field(default=lambda message: None, repr=False)
    _gateway: gw.LocalGateway | None = field(default=None, init=False, repr=False)
    _claimed: bool = field(default=False, init=False, repr=False)
    _supervising: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _supervisor: threading.Thread | None = field(default=None, init=False, repr=False)

    # ----- where things are -------------------------------------------------------------
    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    def service_url(self, service: str) -> str:
        """The direct (not through the gateway) base URL of a service's API."""
        return f"http://127.0.0.1:{self.ports.service(service)}"

    @property
    def mail_dir(self) -> Path:
        return self.var_dir / "mail"

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    @property
    def run_dir(self) -> Path:
        return self.var_dir / "run"

    @property
    def credentials_path(self) -> Path:
        return self.var_dir / "credentials.json"

    def credentials(self) -> dict[str, object]:
        """What the dev seed wrote to ``credentials.json`` ({} if there is no seed yet)."""
        try:
            data = json.loads(self.credentials_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {"credentials": data}

    def database_url(self, service: str) -> str:
        default = f"sqlite+aiosqlite:///{self.var_dir / f'{service}.db'}"
        return self.env.get(f"{service.upper()}_DATABASE_URL") or default

    # ----- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        """Boot everything and wait until it is ready; on failure stop what started and raise."""
        self.var_dir = self.var_dir.resolve()
        for directory in (self.var_dir, self.log_dir, self.run_dir, self.mail_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._claim_var_dir()
        try:
            self.env.update(self._child_env())
            self._build_web()
            self._build_children()
            self._check_ports()
            deadline = time.monotonic() + self.timeout
            if self.start_redis:
                self._start("redis")
                self._wait(deadline, "redis", lambda: redis_answers(self.redis_url))
            self._run_once("migrate", [sys.executable, "-m", "shared.migrate", *SERVICES], deadline)
            if self.seed:
                self._seed(deadline)
            for name in self.children:
                if name not in ("redis", "gateway"):
                    self._start(name)
            self._wait(deadline, "smtp_sink", lambda: port_accepts(self.ports.smtp_sink))
            for service in SERVICES:
                url = f"{self.service_url(service)}/readyz"
                self._wait(deadline, f"{service}-api", answers_200(url))
            for service in SERVICES:
                self._wait(deadline, f"{service}-worker", self._worker_started(f"{service}-worker"))
            if "inbound_smtp" in self.children:
                self._wait(deadline, "inbound_smtp", lambda: port_accepts(self.ports.inbound_smtp))
            self._start_gateway(deadline)
            self.check_alive()
        except BaseException:
            self.stop()
            raise

    def supervise(self) -> list[str]:
        """One pass of the supervisor (``make run`` makes one every half second): a child that
        died is started again after a backoff (0.5 s doubling to 30 s while it keeps dying within
        30 s of its start; see ``procs.Child.supervise``). Nothing else stops. Returns what it did."""
        with self._supervising:
            if self._stopping.is_set():
                return []
            now = time.monotonic()
            return [note for child in self.children.values() if (note := child.supervise(now))]

    def supervise_in_background(self, interval: float = 0.2) -> None:
        """Supervise from a thread until ``stop()`` (for tests; ``make run`` supervises in its
        main thread, so restarted children also get PDEATHSIG)."""

        def loop() -> None:
            while not self._stopping.wait(interval):
                for note in self.supervise():
                    self.log(note)

        self._supervisor = threading.Thread(target=loop, name="stack-supervisor", daemon=True)
        self._supervisor.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every child: everything but Redis together, then Redis (workers need it to stop)."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
            self._supervisor = None
        others = [child for name, child in self.children.items() if name != "redis"]
        stop_all(list(reversed(others)), timeout)
        if "redis" in self.children:
            stop_all([self.children["redis"]], timeout)
        if self._claimed:  # never remove the marker of another run that refused us
            (self.run_dir / "supervisor.pid").unlink(missing_ok=True)
            self._claimed = False

    def dead_children(self) -> list[Child]:
        """Children that were started and have exited."""
        return [c for c in self.children.values() if c.process is not None and not c.running()]

    def check_alive(self) -> None:
        """Raise StackError (with the log tail) if any started child has exited."""
        dead = self.dead_children()
        if dead:
            raise StackError("\n\n".join(self._death_note(child) for child in dead))

    def kill(self, name: str, signum: int = signal.SIGKILL) -> None:
        """Signal one child's process group (e.g. SIGKILL a worker mid-job) and reap it.

        Until ``restart(name)``, ``check_alive()`` reports the child as dead."""
        child = self.children[name]
        child.signal_group(signum)
        if child.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=15)

    def restart(self, name: str, timeout: float = 30.0) -> None:
        """Stop one child if it runs, start it again, and wait until it is ready."""
        child = self.children[name]
        if child.running():
            child.stop()
        deadline = time.monotonic() + timeout
        self._start(name)
        if name == "redis":
            self._wait(deadline, name, lambda: redis_answers(self.redis_url))
        elif name.endswith("-api"):
            url = f"{self.service_url(name.removesuffix('-api'))}/readyz"
            self._wait(deadline, name, lambda: http_status(url) == 200)
        elif name.endswith("-worker"):
            self._wait(deadline, name, self._worker_started(name))
        elif name == "gateway":
            self._wait(deadline, name, lambda: http_status(f"{self.gateway_url}/healthz") == 200)

    # ----- steps ------------------------------------------------------------------------
    def _claim_var_dir(self) -> None:
        marker = self.run_dir / "supervisor.pid"
        other = read_live_pid(marker)
        if other is not None and other != os.getpid():
            raise StackError(
                f"another local run (pid {other}) is using {self.var_dir}; stop it first "
                f"(kill {other}) or set HELPDESK_VAR_DIR to another directory"
            )
        for leftover in kill_stale(self.run_dir):
            self.log(f"killed a process left by an earlier run: {leftover}")
        write_pid_file(marker, os.getpid())
        self._claimed = True

    def _check_ports(self) -> None:
        names = ["gateway", "smtp_sink", *SERVICES] + (
            ["inbound_smtp"] if "inbound_smtp" in self.children else []
        )
        wanted = {name: self.ports.service(name) for name in names}
        if self.start_redis:
            wanted["redis"] = urlsplit(self.redis_url).port or 6379
        taken = [
            f"  {port} ({name}; set {self._port_knob(name)})"
            for name, port in wanted.items()
            if port_in_use(port)
        ]
        if taken:
            raise StackError(
                "these ports are already in use — is another `make run` going? Stop it, or choose "
                "other ports:\n" + "\n".join(taken)
            )

    @staticmethod
    def _port_knob(name: str) -> str:
        return "HELPDESK_REDIS_URL" if name == "redis" else Ports.env_name(name)

    def _child_env(self) -> dict[str, str]:
        pythonpath = os.pathsep.join(p for p in (str(ROOT), self.env.get("PYTHONPATH", "")) if p)
        env = {
            "PYTHONPATH": pythonpath,
            "PYTHONUNBUFFERED": "1",
            "HELPDESK_VAR_DIR": str(self.var_dir),
            "HELPDESK_REDIS_URL": self.redis_url,
            **self.ports.as_env(),
        }
        # The services mail through our sink unless a relay was configured on purpose.
        if "HELPDESK_SMTP_HOST" not in self.env:
            env["HELPDESK_SMTP_HOST"] = "127.0.0.1"
            env["HELPDESK_SMTP_PORT"] = str(self.ports.smtp_sink)
        env["HELPDESK_PUBLIC_BASE_URL"] = self.env.get("HELPDESK_PUBLIC_BASE_URL", self.gateway_url)
        # The notifier fetches invoice PDFs from billing's API: on this run's port.
        billing = self.service_url("billing")
        env["NOTIFIER_BILLING_BASE_URL"] = self.env.get("NOTIFIER_BILLING_BASE_URL", billing)
        return env

    def _child(self, name: str, argv: list[str]) -> Child:
        return Child(
            name=name,
            argv=argv,
            log_path=self.log_dir / f"{name}.log",
            env=self.env,
            cwd=ROOT,
            pid_dir=self.run_dir,
        )

    def _build_children(self) -> None:
        py = sys.executable
        if self.start_redis:
            redis_server = shutil.which("redis-server")
            if redis_server is None:
                raise StackError("redis-server is not installed (run scripts/bootstrap.sh)")
            redis_dir = self.var_dir / "redis"
            redis_dir.mkdir(exist_ok=True)
            port = str(urlsplit(self.redis_url).port or 6379)
            argv = [
                redis_server,
                "--bind",
                "127.0.0.1",
                "--port",
                port,
                "--save",
                "",
                # Queued jobs survive a Redis restart (production's setting too, deploy/compose.yaml).
                "--appendonly",
                "yes",
                "--dir",
                str(redis_dir),
                "--daemonize",
                "no",
            ]
            self.children["redis"] = self._child("redis", argv)
        self.children["smtp_sink"] = self._child(
            "smtp_sink",
            [
                py,
                "-m",
                "deploy.local.smtp_sink",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports.smtp_sink),
                "--dir",
                str(self.mail_dir),
            ],
        )
        api_workers = self.env.get("HELPDESK_API_WORKERS", "1")
        for service in SERVICES:
            self.children[f"{service}-api"] = self._child(
                f"{service}-api",
                [
                    py,
                    "-m",
                    "uvicorn",
                    "--factory",
                    f"services.{service}.app:create_app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.ports.service(service)),
                    "--workers",
                    api_workers,
                    "--timeout-keep-alive",
                    UVICORN_KEEPALIVE_SECONDS,
                    # X-Forwarded-For counts only when the gateway sent it (its own source address).
                    "--forwarded-allow-ips",
                    gw.GATEWAY_SOURCE_ADDRESS,
                    # The gateway keeps the access log (JSON, with request ids and timings).
                    "--no-access-log",
                ],
            )
        for service in SERVICES:
            self.children[f"{service}-worker"] = self._child(
                f"{service}-worker",
                [py, "-m", "shared.worker_main", f"services.{service}.worker.WorkerSettings"],
            )
        self.children["inbound_smtp"] = self._child(
            "inbound_smtp", [py, "-m", "services.ticket_api.inbound.smtp_listener"]
        )
        nginx = gw.nginx_binary()
        if nginx is None:
            raise StackError("nginx is not installed (run scripts/bootstrap.sh)")
        self._gateway = gw.default_local(
            self.var_dir,
            f"127.0.0.1:{self.ports.gateway}",
            {s: self.ports.service(s) for s in SERVICES},
            self.env,
            web_root=self.web_root,
        )
        self.children["gateway"] = self._child("gateway", self._gateway.command(nginx))

    def _build_web(self) -> None:
        """The console the gateway serves at ``/``: built now when its sources changed."""
        try:
            self.web_root = web.ensure_built(self.log)
        except web.WebError as error:
            raise StackError(str(error)) from error

    def _start(self, name: str) -> None:
        self.log(f"starting {name}")
        self.children[name].start()

    def _start_gateway(self, deadline: float) -> None:
        assert self._gateway is not None, "_build_children sets it"
        try:  # nginx -t first: a config error reads better than a dead child
            gw.check(self._gateway)
        except gw.GatewayError as error:
            raise StackError(str(error)) from error
        self._start("gateway")
        self._wait(deadline, "gateway", lambda: http_status(f"{self.gateway_url}/healthz") == 200)
        for service in SERVICES:
            url = f"{self.gateway_url}/_services/{service}/readyz"
            self._wait(deadline, f"gateway → {service}", answers_200(url))

    def _worker_started(self, name: str) -> Callable[[], bool]:
        # arq logs this line once it has connected to Redis, before the worker's own startup hook.
        return lambda: WORKER_STARTED_MARKER in self.children[name].output_since_start()

    def _wait(self, deadline: float, what: str, ready: Callable[[], bool]) -> None:
        """Poll ``ready`` until it holds; fail early if a child dies, late at the deadline."""
        while not ready():
            self.check_alive()
            if time.monotonic() > deadline:
                notes = [self._tail_note(c) for c in self.children.values() if c.process is not None]
                raise StackError(f"{what} was not ready within {self.timeout:.0f} s\n\n" + "\n\n".join(notes))
            time.sleep(0.1)
        self.log(f"{what} is ready")

    def _run_once(self, name: str, argv: list[str], deadline: float) -> str:
        """Run a one-shot step (migrate, seed) to completion; its output goes to log/<name>.log."""
        self.log(f"running {name}")
        log_path = self.log_dir / f"{name}.log"
        try:
            result = subprocess.run(
                argv,
                cwd=ROOT,
                env=self.env,
                capture_output=True,
                timeout=max(1.0, deadline - time.monotonic()),
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise StackError(f"{name} did not finish in time (see {log_path})") from error
        stdout = result.stdout.decode(errors="replace")
        stderr = result.stderr.decode(errors="replace")
        with open(log_path, "a") as handle:
            handle.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n{stdout}{stderr}")
        if result.returncode != 0:
            tail = "\n".join((stdout + stderr).splitlines()[-30:])
            raise StackError(f"{name} failed with exit code {result.returncode} (log: {log_path}):\n{tail}")
        return stdout

    def _seed(self, deadline: float) -> None:
        if not (ROOT / "services" / "ticket_api" / "seed.py").is_file():
            self.log("no services/ticket_api/seed.py yet: skipping the dev seed")
            return
        output = self._run_once("seed", [sys.executable, "-m", "services.ticket_api.seed"], deadline)
        self.seed_output = [line for line in output.splitlines() if line.strip()]
        # Each service calls the others with its own OAuth client (unless configured already).
        services = self.credentials().get("services", {})
        assert isinstance(services, dict)
        for service, client in services.items():
            prefix = service.upper()
            self.env.setdefault(f"{prefix}_CLIENT_ID", client["client_id"])
            self.env.setdefault(f"{prefix}_CLIENT_SECRET", client["client_secret"])
        self.env.setdefault("HELPDESK_TICKET_API_URL", self.service_url("ticket_api"))

    def _death_note(self, child: Child) -> str:
        return f"{child.name} exited with code {child.returncode()}; last lines of {child.log_path}:\n" + (
            child.tail() or "(empty log)"
        )

    def _tail_note(self, child: Child) -> str:
        state = "running" if child.running() else f"exited with {child.returncode()}"
        return f"--- {child.name} ({state}), {child.log_path}:\n{child.tail(15) or '(empty log)'}"

    # ----- the table ----------------------------------------------------------------------
    def summary(self) -> str:
        """A human table of where everything is."""
        rel = self._relative
        rows: list[tuple[str, str, str]] = [
            (
                "gateway",
                self.gateway_url + "/",
                f"nginx; access log {rel(self.log_dir / 'gateway.access.log')}",
            ),
            ("console", self.gateway_url + "/", f"the agents' app (built into {rel(self.web_root)})"),
        ]
        for service in SERVICES:
            api = self.children.get(f"{service}-api")
            worker = self.children.get(f"{service}-worker")
            pids = f"api pid {api.pid if api else '-'}, worker pid {worker.pid if worker else '-'}"
            rows.append((service, self.service_url(service) + "/", pids))
            rows.append(("", "", f"db {rel(mask_url(self.database_url(service)))}"))
        smtp_host = self.env.get("HELPDESK_SMTP_HOST", "127.0.0.1")
        smtp_note = (
            f"mail in {rel(self.mail_dir)}/" if smtp_host == "127.0.0.1" else "not used: relay configured"
        )
        rows.append(("SMTP sink", f"smtp://127.0.0.1:{self.ports.smtp_sink}", smtp_note))
        if "inbound_smtp" in self.children:
            rows.append(
                ("inbound SMTP", f"smtp://127.0.0.1:{self.ports.inbound_smtp}", "mail to open tickets")
            )
        redis_note = "started by this run, append-only file in var/redis" if self.start_redis else "external"
        rows.append(("Redis", mask_url(self.redis_url), redis_note))
        rows.append(
            (
                "logs",
                f"{rel(self.log_dir)}/",
                "<process>.log each (migrate, seed, gateway, <service>-api/-worker)",
            )
        )
        creds = rel(self.credentials_path) if self.credentials_path.exists() else "(no seed yet)"
        rows.append(("credentials", creds, "admin sign-in and portal client from the seed"))
        width = max(len(r[0]) for r in rows) + 2
        address_width = max(len(r[1]) for r in rows) + 2
        lines = [f"Helpdesk is up (env {self.env.get('HELPDESK_ENV', 'dev')}, var dir {self.var_dir})", ""]
        lines += [f"  {a:<{width}}{b:<{address_width}}{c}".rstrip() for a, b, c in rows]
        if self.seed_output and self.env.get("HELPDESK_ENV", "dev") != "prod":
            lines += ["", "  development credentials (from the seed):"]
            lines += [f"    {line}" for line in self.seed_output]
        return "\n".join(lines)

    def _relative(self, value: Path | str) -> str:
        text = str(value)
        prefix = str(ROOT) + os.sep
        return text.replace(prefix, "") if prefix in text else text


def build_stack(
    env: Mapping[str, str] | None = None,
    var_dir: Path | None = None,
    ports: Ports | None = None,
    *,
    timeout: float = 90.0,
    seed: bool = True,
    private_redis: bool = False,
    log: Callable[[str], None] | None = None,
) -> Stack:
    """A not-yet-started Stack. Redis: ``HELPDESK_REDIS_URL`` from the merged env (or the default)
    is used if it answers; else (or with ``private_redis``) a redis-server child is started."""
    full_env = load_env(env)
    resolved_var = (ROOT / (var_dir or Path(full_env.get("HELPDESK_VAR_DIR", "var")))).resolve()
    chosen_ports = ports or Ports.from_env(full_env)
    if private_redis:
        redis_url, start_redis = f"redis://127.0.0.1:{free_ports(1)[0]}/0", True
    else:
        redis_url = full_env.get("HELPDESK_REDIS_URL", DEFAULT_REDIS_URL)
        start_redis = not redis_answers(redis_url)
        host = urlsplit(redis_url).hostname or ""
        if start_redis and host not in ("127.0.0.1", "localhost", "::1"):
            raise StackError(f"Redis at {mask_url(redis_url)} does not answer, and it is not local to start")
    return Stack(
        var_dir=resolved_var,
        ports=chosen_ports,
        env=full_env,
        redis_url=redis_url,
        start_redis=start_redis,
        timeout=timeout,
        seed=seed,
        log=log or (lambda message: None),
    )


@contextlib.contextmanager
def start_stack(
    env: Mapping[str, str] | None = None,
    var_dir: Path | None = None,
    ports: Ports | None = None,
    *,
    timeout: float = 90.0,
    seed: bool = True,
) -> Iterator[Stack]:
    """Boot an isolated stack for a test and tear it down (every process) on exit.

    * ``env``: extra environment for every process (e.g. ``TICKET_API_DATABASE_URL`` for Postgres,
      ``HELPDESK_ENV``, ``HELPDESK_GATEWAY_RATE_PER_CLIENT``). With ``HELPDESK_REDIS_URL`` in it, that
      Redis is used (and must answer); without, a private redis-server is started on a free port.
    * ``var_dir``: databases, mail, logs, credentials; a fresh temp dir (removed afterwards) if None.
    * ``ports``: ``Ports.free()`` if None.
    Raises StackError (with log tails) if anything fails to start.
    """
    overrides = dict(env or {})
    made_var = var_dir is None
    chosen_var = Path(tempfile.mkdtemp(prefix="helpdesk-stack-")) if var_dir is None else var_dir
    # Knobs from the caller's shell or .env must not leak into an isolated stack: ports and
    # the var dir are ours; Redis is private unless the caller names one.
    overrides.setdefault("HELPDESK_VAR_DIR", str(chosen_var))
    chosen_ports = ports or Ports.free()
    overrides.setdefault("HELPDESK_PUBLIC_BASE_URL", f"http://127.0.0.1:{chosen_ports.gateway}")
    # Databases too: SQLite files in the var dir unless the caller passes URLs.
    for service in SERVICES:
        default_db = f"sqlite+aiosqlite:///{Path(overrides['HELPDESK_VAR_DIR']).resolve() / f'{service}.db'}"
        overrides.setdefault(f"{service.upper()}_DATABASE_URL", default_db)
    stack = build_stack(
        overrides,
        chosen_var,
        chosen_ports,
        timeout=timeout,
        seed=seed,
        private_redis="HELPDESK_REDIS_URL" not in overrides,
    )
    if "HELPDESK_REDIS_URL" in overrides and stack.start_redis:
        raise StackError(f"Redis at {mask_url(stack.redis_url)} (from env) does not answer")
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        if made_var:
            shutil.rmtree(chosen_var, ignore_errors=True)
