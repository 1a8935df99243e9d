"""Inbound email: messages per second through the SMTP listener — each parsed, classified,
threaded and stored before the listener answers 250 — over several client connections.

Half the messages are new tickets from new senders; half are replies to acknowledgments the
stack sent earlier in the run (``In-Reply-To`` and ``References`` carrying our Message-ID,
from the address the acknowledgment went to), so the threading path is measured too.
Afterwards the ``inbound_email`` rows are counted by outcome and match.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, parseaddr
from pathlib import Path

import aiosmtplib
import asyncpg

from bench.cpu import CpuMeter, describe, per_item_ms
from bench.report import Row, fmt_ms, verdict
from bench.run import Run
from bench.stats import summary_ms

RATE_TARGET = 200.0
SUPPORT = "support@helpdesk.test"


@dataclass(frozen=True)
class Thread:
    """An acknowledgment we sent: what a customer's reply to it carries."""

    message_id: str
    subject: str
    customer: str


def threads_from_sink(mail_dir: Path, limit: int) -> list[Thread]:
    """Acknowledgments in the sink (newest first), to reply to."""
    parser = BytesParser(policy=policy.default)
    found: list[Thread] = []
    for path in sorted(mail_dir.glob("*.eml"), reverse=True):
        with open(path, "rb") as handle:
            headers = parser.parse(handle, headersonly=True)
        if not str(headers.get("X-Helpdesk-Notification", "")).strip().startswith("acknowledgment"):
            continue
        customer = parseaddr(str(headers.get("To", "")))[1]
        message_id = str(headers.get("Message-ID", "")).strip()
        if customer and message_id:
            found.append(Thread(message_id, str(headers.get("Subject", "")), customer))
        if len(found) >= limit:
            break
    return found


def new_ticket_mail(tag: str, n: int, domain: str) -> tuple[str, bytes]:
    sender = f"in-{tag}-{n}@{domain}"
    message = EmailMessage()
    message["From"] = f"Inbound Customer {n} <{sender}>"
    message["To"] = SUPPORT
    message["Subject"] = f"Scanner jams on every page ({tag}-{n})"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<{tag}.{n}@mail.{domain}>"
    message.set_content(
        "Hello,\n\nthe scanner in the second-floor copy room jams on every page since Monday.\n"
        f"We tried another paper tray. Reference {tag}-{n}.\n\nRegards,\nInbound Customer {n}\n"
    )
    return sender, message.as_bytes(policy=policy.SMTP)


def reply_mail(tag: str, n: int, thread: Thread, domain: str) -> tuple[str, bytes]:
    message = EmailMessage()
    message["From"] = thread.customer
    message["To"] = SUPPORT
    subject = thread.subject if thread.subject.lower().startswith("re:") else f"Re: {thread.subject}"
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<{tag}.r{n}@mail.{domain}>"
    message["In-Reply-To"] = thread.message_id
    message["References"] = thread.message_id
    message.set_content(
        f"Thanks. It happens again right now, see reference {tag}-{n}.\n\n"
        "On Tue, Support wrote:\n> We have received your request.\n> Kind regards\n"
    )
    return thread.customer, message.as_bytes(policy=policy.SMTP)


async def send_all(
    port: int, mails: list[tuple[str, bytes]], connections: int
) -> tuple[list[float], dict[str, int], int, float]:
    """Send over ``connections`` SMTP sessions; returns per-message latencies (s), the
    outcome named in each 250 answer, the number refused, and the elapsed seconds."""
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for mail in mails:
        queue.put_nowait(mail)
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    refused = 0

    async def session() -> None:
        nonlocal refused
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=60)
        await client.connect()
        try:
            while not queue.empty():
                sender, raw = queue.get_nowait()
                began = time.perf_counter()
                try:
                    _, answer = await client.sendmail(sender, [SUPPORT], raw)
                except aiosmtplib.SMTPException:
                    refused += 1
                    continue
                latencies.append(time.perf_counter() - began)
                # "2.0.0 OK: <outcome> <id>"
                words = answer.split()
                outcome = words[2] if len(words) > 2 and words[1] == "OK:" else "?"
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
        finally:
            await client.quit()

    began = time.perf_counter()
    await asyncio.gather(*(session() for _ in range(connections)))
    return latencies, outcomes, refused, time.perf_counter() - began


async def stored_since(run: Run, since: datetime) -> dict[str, int]:
    connection = await asyncpg.connect(run.libpq_url)
    try:
        rows = await connection.fetch(
            "SELECT outcome, coalesce(matched_by, '-') AS matched_by, count(*) AS n "
            "FROM ticket_api.inbound_email WHERE received_at >= $1 GROUP BY 1, 2",
            since,
        )
    finally:
        await connection.close()
    return {f"{r['outcome']} (matched by {r['matched_by']})": int(r["n"]) for r in rows}


def measure(run: Run) -> None:
    config = run.config
    if "inbound_smtp" not in run.stack.children:
        raise RuntimeError("the stack started no inbound SMTP listener")
    domain = run.tokens().email_domain
    tag = f"m{time.time_ns() % 10**9}"
    count = config.inbound_messages
    threads = threads_from_sink(run.stack.mail_dir, count // 2)
    mails = []
    for n in range(count):
        if n % 2 and threads:
            mails.append(reply_mail(tag, n, threads[n % len(threads)], domain))
        else:
            mails.append(new_ticket_mail(tag, n, domain))
    since = datetime.now(UTC)
    meter = CpuMeter(run.stack, run.database).start()
    try:
        latencies, outcomes, refused, elapsed = asyncio.run(
            send_all(run.stack.ports.inbound_smtp, mails, config.inbound_connections)
        )
    finally:
        cpu = meter.stop()
    stored = asyncio.run(stored_since(run, since))
    backlog = run.backlog()
    dropped, settled = run.settle()
    rate = len(latencies) / elapsed if elapsed else 0.0
    stats = summary_ms(latencies)
    stored_total = sum(stored.values())
    data = {
        "messages": count,
        "replies": sum(1 for n in range(count) if n % 2 and threads),
        "connections": config.inbound_connections,
        "accepted": len(latencies),
        "refused": refused,
        "elapsed_s": round(elapsed, 2),
        "messages_per_second": round(rate, 1),
        "latency_ms": stats,
        "outcomes_answered": outcomes,
        "stored_rows": stored,
        "jobs_queued_when_sending_stopped": backlog,
        "jobs_dropped": dropped,
        "settled_after_s": round(settled, 1),
        "cpu_seconds_while_sending": cpu,
        "cpu_ms_per_message": per_item_ms(cpu, len(latencies)),
    }
    run.data["inbound"] = data
    result = f"{rate:,.0f} msg/s · {stored_total}/{count} stored"
    if stats.get("count"):
        result += f" · p50 {fmt_ms(stats['p50_ms'])} · p99 {fmt_ms(stats['p99_ms'])} per message"
    if refused:
        result += f" · {refused} refused"
    run.add(
        Row(
            "inbound",
            "SMTP in → parsed, threaded, stored",
            result,
            settings=(
                f"{count} messages ({data['replies']} replies by In-Reply-To) over "
                f"{config.inbound_connections} SMTP connections; "
                f"{describe(cpu, len(latencies), 'message')}"
            ),
            target=f"≥ {RATE_TARGET:.0f} msg/s",
            verdict=verdict(rate >= RATE_TARGET and stored_total == count and refused == 0),
            data=data,
        )
    )
    run.add(
        Row(
            "inbound",
            "what became of them",
            "; ".join(f"{k}: {v}" for k, v in sorted(stored.items())) or "nothing stored",
            settings=(
                f"rows in ticket_api.inbound_email; {backlog} jobs queued when sending stopped "
                f"(dropped: {dropped}, their acknowledgments never sent)"
            ),
            data=stored,
        )
    )
