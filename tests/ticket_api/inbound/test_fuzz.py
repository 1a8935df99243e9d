"""Property-based fuzzing of the parser entry point and of the whole intake: no exception
escapes, and every message ends as a ticket, a message on a ticket, or a stored raw message
(flagged for a human when it could not be understood)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from services.ticket_api.db import outbox
from services.ticket_api.inbound.loops import OwnAddresses, classify
from services.ticket_api.inbound.models import InboundEmail, InboundKind, InboundOutcome
from services.ticket_api.inbound.parsing import parse_email
from services.ticket_api.inbound.quotes import strip_quotes_and_signature
from services.ticket_api.inbound.service import Envelope, Inbound
from services.ticket_api.settings import Settings
from services.ticket_api.tickets.models import Ticket
from shared.db import create_engine, session_maker
from shared.events import Service
from shared.outbox import Outbox
from tests.conftest import sqlite_copy

HEADER_NAMES = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "Auto-Submitted",
    "Precedence",
    "Return-Path",
    "List-Id",
    "Reply-To",
    "Date",
    "X-Priority",
    "MIME-Version",
    "X-Anything",
]
FRAGMENTS = [
    "=?utf-8?B?",
    "=?iso-8859-1?Q?",
    "?=",
    "<",
    ">",
    "@",
    '"',
    "(",
    ")",
    ";",
    ",",
    "boundary=",
    "charset=",
    "multipart/mixed",
    "multipart/report; report-type=delivery-status",
    "text/html",
    "base64",
    "quoted-printable",
    "x-unknown",
    "jane@acme.test",
    "support@helpdesk.test",
    "[TKT-1]",
    "auto-replied",
    "\u00e9",
    "\u4e2d",
    "\U0001f600",
    "=C3=A9",
    "\t",
    " ",
]
text_piece = st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=20))
header_value = st.lists(text_piece, max_size=8).map("".join)
header = st.tuples(st.sampled_from(HEADER_NAMES), header_value).map(lambda h: f"{h[0]}: {h[1]}")
body_line = st.one_of(
    st.sampled_from(
        ["--b", "--b--", "--", "> quoted", "-- ", "On Mon, x wrote:", "Content-Type: text/plain", ""]
    ),
    st.text(max_size=80),
)
structured = st.builds(
    lambda headers, lines, newline, encoding: (
        newline.join([*headers, "", *lines]).encode(encoding, "surrogateescape")
        if encoding == "utf-8"
        else newline.join([*headers, "", *lines]).encode(encoding, "replace")
    ),
    st.lists(header, max_size=12),
    st.lists(body_line, max_size=20),
    st.sampled_from(["\r\n", "\n", "\r"]),
    st.sampled_from(["utf-8", "latin-1"]),
)
messages = st.one_of(st.binary(max_size=3000), structured)
OWN = OwnAddresses("support@helpdesk.test")


@settings(max_examples=300, deadline=None)
@given(raw=messages)
def test_the_pure_pipeline_never_raises(raw: bytes) -> None:
    parsed = parse_email(raw)
    classification = classify(parsed, envelope_sender=None, own=OWN, secret="s")
    assert isinstance(strip_quotes_and_signature(parsed.text), str)
    assert classification.kind in InboundKind
    for text in (parsed.text, parsed.subject, *(a.filename for a in parsed.attachments)):
        assert "\x00" not in text
        text.encode("utf-8")  # storable: no lone surrogates


def test_every_fuzzed_message_ends_somewhere(sqlite_template: Path, tmp_path: Path) -> None:
    url = sqlite_copy(sqlite_template, Service.TICKET_API, tmp_path)
    loop = asyncio.new_event_loop()
    engine = create_engine(url, schema="ticket_api")
    sessions = session_maker(engine)
    inbound = Inbound(
        sessions=sessions,
        outbox=Outbox(outbox, Service.TICKET_API, sessions, publish=None),
        settings=Settings(database_url=url, var_dir=tmp_path, env="test"),
    )

    async def check(raw: bytes, sender: str | None) -> None:
        result = await inbound.receive(raw, Envelope(sender=sender, recipients=("support@helpdesk.test",)))
        async with sessions() as session:
            row = await session.get(InboundEmail, result.id)
            assert row is not None
            assert result.duplicate or row.raw_message == raw
            if result.ticket_id is not None:
                assert await session.get(Ticket, result.ticket_id) is not None
        if result.outcome in (InboundOutcome.TICKET_CREATED, InboundOutcome.MESSAGE_ADDED):
            assert result.kind is InboundKind.HUMAN and result.ticket_id is not None
        elif result.outcome is InboundOutcome.FLAGGED:
            assert result.needs_review and result.ticket_id is None
        elif result.outcome is InboundOutcome.STORED:
            assert result.kind is not InboundKind.HUMAN
        else:
            assert result.outcome in InboundOutcome

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(raw=messages, sender=st.sampled_from([None, "", "jane@acme.test", "not an address"]))
    def run(raw: bytes, sender: str | None) -> None:
        loop.run_until_complete(check(raw, sender))

    try:
        run()
        count = loop.run_until_complete(_count(sessions))
        assert count >= 1
    finally:
        loop.run_until_complete(engine.dispose())
        loop.close()


async def _count(sessions: object) -> int:
    async with sessions() as session:  # type: ignore[operator]
        return len((await session.scalars(select(InboundEmail.id))).all())


@pytest.mark.parametrize("raw", [b"", b"\r\n\r\n", b"From: \r\n\r\n", b"\xff\xfe\x00"])
def test_edge_cases_parse(raw: bytes) -> None:
    assert parse_email(raw).text is not None
