"""A local SMTP sink: accepts every message and keeps it as a ``.eml`` file.

Each message is stored as its raw bytes in ``<dir>/<time_ns>-<pid>-<seq>-<rand>.eml`` (names sort
by arrival), written to a hidden temp file first and renamed, so a reader never sees half a file.
Beside it, ``<same name>.json`` holds the SMTP envelope (MAIL FROM, RCPT TO — Bcc lives only
there), written before the ``.eml`` appears.

CLI: ``python -m deploy.local.smtp_sink --host 127.0.0.1 --port 1025 --dir var/mail``.
In tests: ``with running_sink(tmp_path / "mail") as sink: ... sink.port ... sink.messages()``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import uvloop
from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger("helpdesk.smtp_sink")
_sequence = itertools.count()
# Larger than the gateway's inbound limit, so the sink never refuses what the app may send.
DATA_SIZE_LIMIT = 64 * 1024 * 1024


def store_message(mail_dir: Path, content: bytes, envelope: dict[str, Any]) -> Path:
    """Write one message (raw bytes) and its envelope sidecar atomically; return the .eml path."""
    mail_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{time.time_ns():020d}-{os.getpid()}-{next(_sequence):06d}-{secrets.token_hex(4)}"
    final = mail_dir / f"{stem}.eml"
    _atomic_write(mail_dir / f"{stem}.json", json.dumps(envelope, indent=2).encode())
    _atomic_write(final, content)
    return final


def _atomic_write(path: Path, data: bytes) -> None:
    """Whole or not at all for a reader (rename); not fsync'ed: a development sink keeps mail
    for people and tests to read, and two fsyncs a message cost more than the rest of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def read_messages(mail_dir: Path) -> list[EmailMessage]:
    """Parse every stored message in arrival order (a convenience for tests)."""
    parser = BytesParser(policy=policy.default)
    messages: list[EmailMessage] = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = parser.parsebytes(path.read_bytes())
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages


class SinkHandler:
    """aiosmtpd handler: accept every recipient, store every message."""

    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = mail_dir

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "peer": list(session.peer) if isinstance(session.peer, tuple) else session.peer,
            "received_at": time.time(),
            "size": len(content),
        }
        # In the loop, not a thread: two small writes without fsync cost less than the hop.
        path = store_message(self.mail_dir, content, meta)
        log.info(
            "stored %s from %s to %s (%d bytes)",
            path.name,
            envelope.mail_from,
            envelope.rcpt_tos,
            len(content),
        )
        return "250 Message accepted for delivery"


async def start_server(mail_dir: Path, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    """Start serving on the running loop; ``port=0`` picks a free port (see ``server.sockets``)."""
    loop = asyncio.get_running_loop()
    handler = SinkHandler(mail_dir)
    await asyncio.to_thread(mail_dir.mkdir, parents=True, exist_ok=True)

    def factory() -> SMTP:
        # A fixed hostname: the default asks DNS for the FQDN, which can stall for seconds.
        return SMTP(
            handler,
            hostname="smtp-sink.helpdesk.local",
            enable_SMTPUTF8=True,
            data_size_limit=DATA_SIZE_LIMIT,
            loop=loop,
        )

    return await loop.create_server(factory, host=host, port=port)


@dataclass
class RunningSink:
    """A sink served from a background thread; ``stop()`` (or the context manager) ends it."""

    mail_dir: Path
    host: str
    port: int
    _loop: asyncio.AbstractEventLoop = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _stop: asyncio.Event = field(repr=False)

    def messages(self) -> list[EmailMessage]:
        return read_messages(self.mail_dir)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=10)


def start_in_thread(mail_dir: Path, host: str = "127.0.0.1", port: int = 0) -> RunningSink:
    """Start a sink in a daemon thread with its own event loop; returns once it listens."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        try:
            server = await start_server(mail_dir, host, port)
        except BaseException as error:
            box["error"] = error
            ready.set()
            return
        box.update(loop=asyncio.get_running_loop(), stop=stop, port=server.sockets[0].getsockname()[1])
        ready.set()
        async with server:
            await stop.wait()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), name="smtp-sink", daemon=True)
    thread.start()
    if not ready.wait(timeout=10):
        raise RuntimeError("SMTP sink did not start within 10 s")
    if "error" in box:
        raise RuntimeError(f"SMTP sink could not listen on {host}:{port}: {box['error']}")
    return RunningSink(
        mail_dir=mail_dir,
        host=host,
        port=int(box["port"]),
        _loop=box["loop"],
        _thread=thread,
        _stop=box["stop"],
    )


@contextmanager
def running_sink(mail_dir: Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningSink]:
    """Context manager around ``start_in_thread``: an in-process sink on a free port by default."""
    sink = start_in_thread(mail_dir, host, port)
    try:
        yield sink
    finally:
        sink.stop()


async def _serve_forever(mail_dir: Path, host: str, port: int) -> None:
    server = await start_server(mail_dir, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    bound = server.sockets[0].getsockname()
    log.info("SMTP sink listening on %s:%s, storing mail in %s", bound[0], bound[1], mail_dir)
    async with server:
        await stop.wait()
    log.info("SMTP sink stopped")


def main(argv: list[str] | None = None) -> None:
    default_dir = Path(os.environ.get("HELPDESK_VAR_DIR", "var")) / "mail"
    parser = argparse.ArgumentParser(description="Local SMTP sink that keeps every message as .eml")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("HELPDESK_SMTP_SINK_PORT", "1025")))
    parser.add_argument("--dir", type=Path, default=default_dir, help=f"where to store mail ({default_dir})")
    args = parser.parse_args(argv)
    args.dir = args.dir.resolve()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # aiosmtpd logs every connection step at INFO; our handler logs each stored message instead.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    uvloop.run(_serve_forever(args.dir, args.host, args.port))


if __name__ == "__main__":
    main()
