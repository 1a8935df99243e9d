"""Every message of the shared email corpus, through the real SMTP listener on loopback into
PostgreSQL: none may fail, none may be lost, no machine may be acknowledged.

The corpus (560 messages from mail libraries' test suites: bounces from many MTAs,
auto-replies, client replies, malformed and non-ASCII mail) lives beside the repository in
``../shared/corpus/email``; CI has it. Where the manifest's heuristic label and our
classification disagree, ``corpus_label_corrections.json`` says which is right and why.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import aiosmtplib
import pytest
from sqlalchemy import func, select

from services.ticket_api.db import outbox
from services.ticket_api.inbound.models import InboundEmail, InboundKind, InboundOutcome
from services.ticket_api.inbound.parsing import parse_email
from services.ticket_api.inbound.service import Inbound
from services.ticket_api.inbound.smtp_listener import start_server
from services.ticket_api.settings import Settings
from services.ticket_api.tickets.models import Ticket
from shared.events import Event
from shared.runtime import Runtime
from tests.conftest import truncate_schema

ROOT = Path(__file__).resolve().parents[3]
# Beside the repository; HELPDESK_EMAIL_CORPUS names it elsewhere (e.g. from a worktree).
CORPUS = Path(os.environ.get("HELPDESK_EMAIL_CORPUS") or ROOT.parent / "shared" / "corpus" / "email")
CORRECTIONS = json.loads((Path(__file__).parent / "corpus_label_corrections.json").read_text())["corrections"]
MACHINE_LABELS = {"bounce": {InboundKind.BOUNCE}, "auto-reply": {InboundKind.AUTO_REPLY}}
NEVER_A_NEW_TICKET = {InboundOutcome.TICKET_CREATED, InboundOutcome.LINKED_TICKET_CREATED}
REPLY = re.compile(r"OK: (\w+) ([0-9a-f-]{36})")

pytestmark = pytest.mark.skipif(
    not (CORPUS / "manifest.json").is_file(),
    reason=f"the shared email corpus is not at {CORPUS} (it is on CI); nothing to feed the listener",
)


def _envelope_sender(raw: bytes) -> str:
    """What an MTA would have said in MAIL FROM: the Return-Path if the message kept one."""
    parsed = parse_email(raw)
    return_path = (parsed.header("Return-Path") or "").strip()
    if return_path in ("<>", ""):
        if return_path == "<>":
            return ""
        return parsed.from_address.email if parsed.from_address else "corpus-sender@example.test"
    match = re.search(r"<([^<>\s]*)>", return_path)
    return match.group(1) if match else return_path.split()[0]


@pytest.fixture
async def listener(postgres_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[tuple[Runtime, int]]:
    await truncate_schema(postgres_url, "ticket_api")
    settings = Settings(database_url=postgres_url, redis_url=redis_url, var_dir=tmp_path, env="test")
    runtime = await Runtime.open(settings, outbox)
    inbound = Inbound(sessions=runtime.sessions, outbox=runtime.outbox, settings=settings)
    server = await start_server(inbound, settings, host="127.0.0.1", port=0)
    try:
        yield runtime, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
        await runtime.outbox.drain()
        await runtime.close()


async def test_every_corpus_message_through_smtp(listener: tuple[Runtime, int]) -> None:
    runtime, port = listener
    manifest: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text())
    answers: dict[str, tuple[str, UUID]] = {}
    started = time.perf_counter()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
    async with client:
        for item in manifest:
            raw = (CORPUS / item["path"]).read_bytes()
            sender = _envelope_sender(raw)
            options = [] if sender.isascii() else ["SMTPUTF8"]  # an internationalized address
            _errors, reply = await client.sendmail(
                sender, ["support@helpdesk.test"], raw, mail_options=options
            )
            match = REPLY.search(reply)
            assert match, f"{item['path']}: the listener answered {reply!r}"
            answers[item["path"]] = (match.group(1), UUID(match.group(2)))
    elapsed = time.perf_counter() - started
    print(
        f"\n{len(manifest)} corpus messages through SMTP in {elapsed:.1f} s ({len(manifest) / elapsed:.0f}/s)"
    )

    async with runtime.sessions() as session:
        rows = {row.id: row for row in (await session.scalars(select(InboundEmail))).all()}
        for row in rows.values():  # the columns are plain strings
            row.kind, row.outcome = InboundKind(row.kind), InboundOutcome(row.outcome)
        tickets = int(await session.scalar(select(func.count()).select_from(Ticket)) or 0)
        events = [Event.model_validate_json(e) for e in (await session.scalars(select(outbox.c.event))).all()]

    # Nothing lost: every answer names a stored row with the raw message; duplicates (the same
    # Message-ID in two files) point at the first row.
    assert {inbound_id for _, inbound_id in answers.values()} == set(rows)
    assert all(row.raw_size_bytes > 0 and row.raw_message for row in rows.values())
    print(Counter((row.kind.value, row.outcome.value) for row in rows.values()).most_common())

    # No machine acknowledged: only people's mail opened tickets, and every new ticket is one.
    created = [e for e in events if e.type == "ticket.created"]
    openers = [row for row in rows.values() if row.outcome in NEVER_A_NEW_TICKET]
    assert all(row.kind is InboundKind.HUMAN for row in openers)
    assert len(created) == len(openers) == tickets
    created_for = {e.data["ticket_id"] for e in created}
    machine_tickets = {
        str(r.ticket_id) for r in rows.values() if r.kind is not InboundKind.HUMAN and r.ticket_id
    }
    assert not (machine_tickets & created_for - {str(r.ticket_id) for r in openers})

    # Labels: machines stay machines unless the corrections file says (and the code agrees).
    corrected = {c["path"]: c for c in CORRECTIONS}
    kinds = {path: rows[inbound_id].kind for path, (_, inbound_id) in answers.items()}
    for item in manifest:
        path, kind = item["path"], kinds[item["path"]]
        if path in corrected:
            assert kind.value == corrected[path]["our_kind"], f"{path}: corrections file is out of date"
        elif item["kind"] in MACHINE_LABELS:
            assert kind in MACHINE_LABELS[item["kind"]], f"{path}: labelled {item['kind']}, classified {kind}"
        elif item["kind"] == "other":
            assert kind is InboundKind.COMPLAINT, f"{path}: an ARF report, classified {kind}"
    for path in corrected:
        assert path in kinds, f"{path} is in the corrections file but not in the manifest"
