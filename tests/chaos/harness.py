"""Fault injection on the whole stack, as ``make run`` boots it, on servers of its own.

A private PostgreSQL cluster and a private Redis (free ports, temporary directories) serve a
stack started by ``deploy.local.stack`` and supervised as ``make run`` supervises it. While a
bounded load comes in (tickets through the gateway's API, mails through the inbound SMTP
listener, each retried by its client until accepted, with the same Idempotency-Key or
Message-ID), the faults come one after another: ``kill -9`` of each worker, a Redis restart,
Redis killed and back without its data (every queued job, result and cached revocation gone), a
PostgreSQL fast shutdown and restart, a paused SMTP sink. A prober calls the APIs throughout.

Afterwards every accepted ticket must exist once, with exactly one acknowledgment and one
applied triage decision, no mail sent twice, every outbox drained, nothing dead-lettered; and
during the faults the APIs answered (503 problem+json with Retry-After at worst), never hung.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import smtplib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path

import asyncpg
import httpx
from redis import Redis

from bench.environment import Tokens, sign_in
from deploy.local.procs import Child
from deploy.local.stack import SERVICES, Stack, start_stack
from shared.dead_letters import DEAD_PREFIX
from shared.events import Service
from shared.queue import queue_name
from tests.e2e.mailbox import compose
from tests.servers import PostgresCluster, RedisServer, postgres_bin

WORKERS = tuple(f"{service}-worker" for service in SERVICES)
DEMO_DOMAIN = "demo-customer.test"
REQUEST_TIMEOUT = 10.0  # an answer slower than this counts as a hang


@dataclass(frozen=True)
class ChaosConfig:
    ticket_rate: float = 5.0  # tickets a second through the API
    mail_interval: float = 2.0  # seconds between mails through SMTP
    outage_seconds: float = 6.0  # how long Redis, PostgreSQL and the SMTP sink stay out
    settle_timeout: float = 240.0  # for the pipeline to catch up afterwards
    give_up_after: float = 180.0  # a client retries one ticket or mail this long


@dataclass
class Probe:
    fault: str
    status: int | None  # None: no answer within REQUEST_TIMEOUT (or connection refused)
    problem: bool
    retry_after: bool
    seconds: float


@dataclass
class Tally:
    """What the clients sent and what was accepted (thread-safe appends)."""

    api_sent: int = 0
    mail_sent: int = 0
    api_accepted: list[str] = field(default_factory=list)  # subjects
    mail_accepted: list[str] = field(default_factory=list)
    given_up: list[str] = field(default_factory=list)
    retries: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Outcome:
    sent: int
    accepted: int
    stored: int
    duplicated: list[str]
    lost: list[str]
    acknowledgments_wrong: dict[str, int]
    decisions_wrong: dict[str, int]
    not_applied: list[str]
    mails_duplicated: list[str]
    undrained_outboxes: dict[str, int]
    dead_letters: int
    given_up: list[str]
    probes: list[Probe]
    timings: dict[str, float]

    @property
    def bad_answers(self) -> list[Probe]:
        """5xx other than a 503 problem with Retry-After, and hangs."""
        return [
            p
            for p in self.probes
            if p.status is None or (p.status >= 500 and not (p.status == 503 and p.problem and p.retry_after))
        ]

    def unavailable_during(self, fault: str) -> int:
        return sum(1 for p in self.probes if p.fault == fault and p.status == 503)

    def ok(self) -> bool:
        return not (
            self.duplicated
            or self.lost
            or self.acknowledgments_wrong
            or self.decisions_wrong
            or self.not_applied
            or self.mails_duplicated
            or self.undrained_outboxes
            or self.dead_letters
            or self.given_up
            or self.bad_answers
        )

    def report(self) -> str:
        statuses = Counter(f"{p.fault}:{p.status}" for p in self.probes)
        lines = [
            f"chaos: sent {self.sent} / accepted {self.accepted} / stored {self.stored} / "
            f"duplicated {len(self.duplicated)} / lost {len(self.lost)}",
            f"  acknowledgments not exactly one: {len(self.acknowledgments_wrong)}; triage decisions not "
            f"exactly one: {len(self.decisions_wrong)}; decisions not applied: {len(self.not_applied)}",
            f"  mails sent twice: {len(self.mails_duplicated)}; "
            f"outboxes not drained: {self.undrained_outboxes or 0}; dead letters: {self.dead_letters}; "
            f"given up by clients: {len(self.given_up)}",
            f"  API answers during faults: {dict(sorted(statuses.items()))}; "
            f"bad (5xx but a 503 problem, or hung): {len(self.bad_answers)}",
            "  " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.timings.items()),
        ]
        for name, items in (
            ("lost", self.lost),
            ("duplicated", self.duplicated),
            ("acknowledgments", list(self.acknowledgments_wrong.items())),
            ("decisions", list(self.decisions_wrong.items())),
            ("not applied", self.not_applied),
            ("mails duplicated", self.mails_duplicated),
            ("bad answers", self.bad_answers),
        ):
            if items:
                lines.append(f"  {name}: {items[:10]}")
        return "\n".join(lines)


# --- the clients --------------------------------------------------------------------------------


class Clients:
    """Tickets through the API and mails through SMTP, at a steady rate, each retried with the
    same key until accepted (as a well-behaved client does), in threads."""

    def __init__(self, stack: Stack, tokens: Tokens, config: ChaosConfig, tag: str) -> None:
        self.stack, self.tokens, self.config, self.tag = stack, tokens, config, tag
        self.tally = Tally()
        self.stopping = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="chaos-client")
        self.threads = [
            threading.Thread(target=self._every, args=(1 / config.ticket_rate, self._ticket), daemon=True),
            threading.Thread(target=self._every, args=(config.mail_interval, self._mail), daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        """Stop sending new ones; wait for those being retried."""
        self.stopping.set()
        for thread in self.threads:
            thread.join()
        self.pool.shutdown(wait=True)

    def _every(self, interval: float, submit: Callable[[int], None]) -> None:
        n = 0
        next_at = time.monotonic()
        while not self.stopping.is_set():
            self.pool.submit(submit, n)
            n += 1
            next_at += interval
            self.stopping.wait(max(0.0, next_at - time.monotonic()))

    def _retrying(self, what: str, attempt: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + self.config.give_up_after
        delay = 0.2
        while time.monotonic() < deadline:
            try:
                if attempt():
                    return True
            except (httpx.HTTPError, OSError, smtplib.SMTPException):
                pass
            with self.tally.lock:
                self.tally.retries[what] += 1
            time.sleep(delay)
            delay = min(delay * 2, 3.0)
        return False

    def _ticket(self, n: int) -> None:
        subject = f"chaos {self.tag} api {n}"
        key = str(uuid.uuid4())
        body = {
            "contact": {"email": f"chaos{n % 25}@{DEMO_DOMAIN}", "name": f"Chaos {n % 25}"},
            "subject": subject,
            "description": "Fault injection: the printer stopped. Urgent!",
            "urgency": "high",
        }
        headers = {"Authorization": f"Bearer {self.tokens.portal}", "Idempotency-Key": key}
        with self.tally.lock:
            self.tally.api_sent += 1

        def attempt() -> bool:
            with httpx.Client(base_url=self.stack.gateway_url, timeout=REQUEST_TIMEOUT) as client:
                response = client.post("/api/v1/tickets", json=body, headers=headers)
            if response.status_code in (200, 201):
                return True
            if response.status_code in (409, 429) or response.status_code >= 500:
                return False  # in progress elsewhere, slow down, unavailable: again
            raise AssertionError(f"ticket refused: {response.status_code} {response.text}")

        accepted = self._retrying("api", attempt)
        with self.tally.lock:
            (self.tally.api_accepted if accepted else self.tally.given_up).append(subject)

    def _mail(self, n: int) -> None:
        subject = f"chaos {self.tag} mail {n}"
        message = compose(
            f"Chaos Mail {n} <chaos-mail{n % 10}@{DEMO_DOMAIN}>", subject, "The scanner jams. Urgent!"
        )
        with self.tally.lock:
            self.tally.mail_sent += 1

        def attempt() -> bool:
            with smtplib.SMTP("127.0.0.1", self.stack.ports.inbound_smtp, timeout=REQUEST_TIMEOUT) as client:
                code, _ = client.ehlo("mx.chaos.test")
                refused = client.sendmail(
                    f"chaos-mail{n % 10}@{DEMO_DOMAIN}", ["support@helpdesk.test"], message.as_bytes()
                )
            return not refused and code == 250

        accepted = self._retrying("mail", attempt)
        with self.tally.lock:
            (self.tally.mail_accepted if accepted else self.tally.given_up).append(subject)


class Prober:
    """Calls an API route of every service through the gateway every half second, noting how
    (and how fast) each answered, under the name of the fault under way."""

    def __init__(self, stack: Stack, tokens: Tokens) -> None:
        self.stack, self.tokens = stack, tokens
        self.fault = "none"
        self.probes: list[Probe] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.paths = [
            "/api/v1/tickets?limit=1",
            "/api/v1/triage/matrix",
            f"/api/v1/notifications/{uuid.uuid4()}",  # 404 once looked up in the database
            "/api/v1/billing/accounts?limit=1",
        ]

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.tokens.admin}"}
        with httpx.Client(base_url=self.stack.gateway_url, timeout=REQUEST_TIMEOUT) as client:
            while not self.stopping.wait(0.5):
                for path in self.paths:
                    fault, started = self.fault, time.monotonic()
                    try:
                        response = client.get(path, headers=headers)
                        probe = Probe(
                            fault,
                            response.status_code,
                            response.headers.get("content-type", "").startswith("application/problem+json"),
                            "retry-after" in response.headers,
                            time.monotonic() - started,
                        )
                    except httpx.HTTPError:
                        probe = Probe(fault, None, False, False, time.monotonic() - started)
                    self.probes.append(probe)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()


# --- the run ------------------------------------------------------------------------------------


@contextlib.contextmanager
def private_servers() -> Iterator[tuple[PostgresCluster, RedisServer]]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
    cluster, redis = PostgresCluster(bin_dir), RedisServer()
    try:
        cluster.init()
        cluster.start()
        redis.start()
        yield cluster, redis
    finally:
        redis.destroy()
        cluster.destroy()


def run(config: ChaosConfig, var_dir: Path, log: Callable[[str], None] = print) -> Outcome:
    timings: dict[str, float] = {}
    with private_servers() as (cluster, redis_server):
        asyncio.run(_create_database(cluster.url))
        database_url = cluster.url.replace("postgresql://", "postgresql+asyncpg://") + "/helpdesk"
        env = {f"{service.upper()}_DATABASE_URL": database_url for service in SERVICES}
        env["HELPDESK_REDIS_URL"] = redis_server.url
        env["HELPDESK_GATEWAY_RATE_PER_CLIENT"] = "1000r/s"  # the load is ours, not an abuse
        started = time.monotonic()
        with start_stack(env=env, var_dir=var_dir, timeout=180) as stack:
            timings["boot"] = time.monotonic() - started
            stack.supervise_in_background()
            tokens = sign_in(stack)
            tag = uuid.uuid4().hex[:6]
            clients, prober = Clients(stack, tokens, config, tag), Prober(stack, tokens)
            clients.start()
            prober.start()
            started = time.monotonic()
            try:
                _inject_faults(stack, cluster, redis_server, prober, config, log)
                time.sleep(2)
            finally:
                prober.fault = "after"
                clients.stop()
                prober.stop()
            timings["faults and load"] = time.monotonic() - started
            started = time.monotonic()
            log("load stopped; waiting for the pipeline to catch up")
            outcome = _settle_and_check(stack, cluster, redis_server, clients.tally, prober.probes, config)
            timings["settle"] = time.monotonic() - started
            outcome.timings = timings
            return outcome


def _inject_faults(
    stack: Stack,
    cluster: PostgresCluster,
    redis_server: RedisServer,
    prober: Prober,
    config: ChaosConfig,
    log: Callable[[str], None],
) -> None:
    time.sleep(3)  # some load in flight first
    for worker in WORKERS:
        log(f"fault: kill -9 {worker}")
        prober.fault = f"kill {worker}"
        child = stack.children[worker]
        before = child.pid
        stack.kill(worker)
        _wait(functools.partial(_restarted, child, before), 30, worker)
        time.sleep(2)
    sink = stack.children["smtp_sink"]
    outages: list[tuple[str, str, Callable[[], None], Callable[[], None]]] = [
        ("Redis restart", "redis", redis_server.stop, redis_server.start),
        ("Redis crash losing its data", "redis wiped", redis_server.crash_and_lose_data, redis_server.start),
        ("PostgreSQL fast shutdown and restart", "postgres", lambda: cluster.stop("fast"), cluster.start),
        (
            "SMTP sink paused",
            "smtp",
            lambda: sink.signal_group(signal.SIGSTOP),
            lambda: sink.signal_group(signal.SIGCONT),
        ),
    ]
    for title, name, stop, start in outages:
        log(f"fault: {title}")
        prober.fault = f"{name} down"
        stop()
        try:
            time.sleep(config.outage_seconds)
        finally:
            start()
        prober.fault = f"{name} back"
        time.sleep(3)


def _restarted(child: Child, before: int | None) -> bool:
    return child.running() and child.pid != before


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)


async def _create_database(server: str) -> None:
    connection = await asyncpg.connect(f"{server}/postgres")
    try:
        await connection.execute('CREATE DATABASE "helpdesk"')
    finally:
        await connection.close()


@dataclass
class Facts:
    tickets: dict[str, list[tuple[str, str, str | None]]]  # subject → [(id, number, priority)]
    acknowledgments: Counter[str]  # ticket id → sent acknowledgments
    decisions: Counter[str]  # ticket id → triage decisions made on creation
    undrained: dict[str, int]


async def _facts(server: str, tag: str) -> Facts:
    connection = await asyncpg.connect(f"{server}/helpdesk")
    try:
        rows = await connection.fetch(
            "SELECT id::text, number, subject, priority FROM ticket_api.ticket WHERE subject LIKE $1",
            f"chaos {tag} %",
        )
        tickets: dict[str, list[tuple[str, str, str | None]]] = {}
        for row in rows:
            tickets.setdefault(row["subject"], []).append(
                (row["id"], f"TKT-{row['number']}", row["priority"])
            )
        ids = [row["id"] for row in rows]
        acknowledgments = Counter(
            {
                row["ticket_id"]: row["n"]
                for row in await connection.fetch(
                    "SELECT ticket_id::text, count(*) AS n FROM notifier.notification "
                    "WHERE kind = 'acknowledgment' AND state = 'sent' AND ticket_id = ANY($1::uuid[]) "
                    "GROUP BY ticket_id",
                    ids,
                )
            }
        )
        decisions = Counter(
            {
                row["ticket_id"]: row["n"]
                for row in await connection.fetch(
                    "SELECT ticket_id::text, count(*) AS n FROM triage.triage_decision "
                    "WHERE trigger = 'created' AND ticket_id = ANY($1::uuid[]) GROUP BY ticket_id",
                    ids,
                )
            }
        )
        undrained = {}
        for service in Service:
            count = await connection.fetchval(
                f'SELECT count(*) FROM "{service.value}".outbox WHERE published_at IS NULL'
            )
            if count:
                undrained[service.value] = int(count)
        return Facts(tickets, acknowledgments, decisions, undrained)
    finally:
        await connection.close()


def _sent_mail(mail_dir: Path) -> tuple[Counter[str], Counter[str]]:
    """Message-IDs the sink received (with how often), and acknowledgments by ticket number."""
    parser = BytesHeaderParser(policy=policy.default)
    ids: Counter[str] = Counter()
    acknowledgments: Counter[str] = Counter()
    for path in mail_dir.glob("*.eml"):
        headers = parser.parsebytes(path.read_bytes())
        ids[str(headers["Message-ID"])] += 1
        if str(headers.get("X-Helpdesk-Notification", "")).startswith("acknowledgment"):
            acknowledgments[str(headers.get("X-Helpdesk-Ticket", ""))] += 1
    return ids, acknowledgments


def _settle_and_check(
    stack: Stack,
    cluster: PostgresCluster,
    redis_server: RedisServer,
    tally: Tally,
    probes: list[Probe],
    config: ChaosConfig,
) -> Outcome:
    tag = tally.api_accepted[0].split()[1] if tally.api_accepted else ""
    accepted = tally.api_accepted + tally.mail_accepted
    deadline = time.monotonic() + config.settle_timeout
    with Redis.from_url(redis_server.url) as redis:
        while True:
            facts = asyncio.run(_facts(cluster.url, tag))
            ids = [entry[0] for subject in accepted for entry in facts.tickets.get(subject, [])]
            queued = sum(int(redis.zcard(queue_name(service))) for service in Service)
            _, acknowledged = _sent_mail(stack.mail_dir)
            done = (
                all(facts.acknowledgments[i] >= 1 and facts.decisions[i] >= 1 for i in ids)
                and len(ids) >= len(accepted)
                and not facts.undrained
                and queued == 0
            )
            if done or time.monotonic() > deadline:
                break
            time.sleep(1)
        dead = sum(int(redis.hlen(key)) for key in redis.scan_iter(f"{DEAD_PREFIX}*"))
    message_ids, acknowledged = _sent_mail(stack.mail_dir)
    stored = sum(1 for subject in accepted if facts.tickets.get(subject))
    by_id = {entry[0]: entry for entries in facts.tickets.values() for entry in entries}
    return Outcome(
        sent=tally.api_sent + tally.mail_sent,
        accepted=len(accepted),
        stored=stored,
        duplicated=[s for s in accepted if len(facts.tickets.get(s, [])) > 1],
        lost=[s for s in accepted if not facts.tickets.get(s)],
        acknowledgments_wrong={
            by_id[i][1]: acknowledged[by_id[i][1]]
            for i in ids
            if facts.acknowledgments[i] != 1 or acknowledged[by_id[i][1]] != 1
        },
        decisions_wrong={by_id[i][1]: facts.decisions[i] for i in ids if facts.decisions[i] != 1},
        not_applied=[by_id[i][1] for i in ids if by_id[i][2] is None],
        mails_duplicated=[m for m, n in message_ids.items() if n > 1],
        undrained_outboxes=facts.undrained,
        dead_letters=dead,
        given_up=tally.given_up,
        probes=list(probes),
        timings={},
    )
