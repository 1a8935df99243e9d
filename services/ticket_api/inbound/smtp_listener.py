"""The SMTP front door: ``python -m services.ticket_api.inbound.smtp_listener``.

An aiosmtpd server on ``TICKET_API_INBOUND_SMTP_HOST``:``HELPDESK_INBOUND_SMTP_PORT``
(127.0.0.1:2525 by default) that hands every message to the same :class:`Inbound` the API
uses. It takes mail only for our own domain(s) (it is no relay), answers 250 once the
message is committed, and 451 (try again later) when the database is unreachable, so the
sending MTA keeps the message and retries: nothing is lost on either side. Lines longer than
RFC 5321's 1,000 octets are accepted (real mailers send them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

import uvloop
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from services.ticket_api.db import outbox
from services.ticket_api.inbound.service import Envelope, Inbound
from services.ticket_api.settings import Settings
from shared.gc_tuning import tune
from shared.logging import configure_logging
from shared.runtime import Runtime

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 100


class LenientSMTP(SMTP):
    """aiosmtpd's server, taking lines up to 1 MB: mail with very long lines is real."""

    line_length_limit = 1024 * 1024


class InboundHandler:
    """aiosmtpd hooks: which recipients we take, and what happens to a message."""

    def __init__(self, inbound: Inbound, accepted_domains: frozenset[str]) -> None:
        self.inbound = inbound
        self.accepted_domains = accepted_domains

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: SmtpEnvelope, address: str, rcpt_options: list[str]
    ) -> str:
        domain = address.rpartition("@")[2].strip().lower()
        if domain not in self.accepted_domains:
            return "550 5.7.1 Relaying denied: we only take mail for our own addresses"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # pragma: no cover - we run with decode_data=False
            raw = raw.encode("utf-8", "surrogateescape")
        sender = envelope.mail_from or ""
        if sender.strip() in ("<>", ""):
            sender = ""  # the null reverse-path: a bounce or an auto-reply, never answered
        try:
            result = await self.inbound.receive(
                bytes(raw), Envelope(sender=sender, recipients=tuple(envelope.rcpt_tos), via="smtp")
            )
        except Exception:
            log.exception("inbound SMTP: could not store a message; asking the sender to retry")
            return "451 4.3.0 Temporary failure, please try again later"
        log.info(
            "inbound SMTP from %s: %s %s%s",
            session.peer,
            result.outcome.value,
            result.id,
            " (delivered before)" if result.duplicate else "",
        )
        return f"250 2.0.0 OK: {result.outcome.value} {result.id}"


def accepted_domains(settings: Settings) -> frozenset[str]:
    domains = {d.strip().lower().lstrip("@") for d in settings.inbound_accepted_domains if d.strip()}
    return frozenset(domains or {settings.support_address.rpartition("@")[2].lower()})


async def start_server(
    inbound: Inbound, settings: Settings, *, host: str | None = None, port: int | None = None
) -> asyncio.Server:
    """Listen (now) on ``host:port`` (the settings' by default; port 0 picks a free one)."""
    handler = InboundHandler(inbound, accepted_domains(settings))
    loop = asyncio.get_running_loop()

    def protocol() -> LenientSMTP:
        return LenientSMTP(
            handler,
            data_size_limit=settings.inbound_max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=settings.support_address.rpartition("@")[2] or None,
            ident="Helpdesk inbound",
            timeout=60,
            loop=loop,
        )

    return await loop.create_server(
        protocol,
        host=host if host is not None else settings.inbound_smtp_host,
        port=port if port is not None else settings.inbound_smtp_port,
    )


async def serve(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT: the runtime (database, Redis, outbox), then the listener."""
    runtime = await Runtime.open(settings, outbox)
    inbound = Inbound(sessions=runtime.sessions, outbox=runtime.outbox, settings=settings)
    server = await start_server(inbound, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    addresses = ", ".join(str(sock.getsockname()) for sock in server.sockets)
    log.info("inbound SMTP listening on %s", addresses)
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
        await runtime.close()


def main(**overrides: Any) -> None:
    """The listener's process: uvloop (a listener is mostly socket and database round trips)
    and the start-up objects left out of garbage collection, as in every service process."""
    settings = Settings(**overrides)
    configure_logging("ticket_api-inbound-smtp", settings.log_level)
    # aiosmtpd logs every command and answer at INFO (several lines a message, each sanitized
    # first); handle_DATA logs one line a message, and aiosmtpd's warnings still show.
    logging.getLogger("mail.log").setLevel(max(logging.WARNING, logging.getLogger().level))
    tune()
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
