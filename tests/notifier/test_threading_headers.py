"""Message ids in Message-ID/In-Reply-To/References go out as they are, whatever their length:
an RFC 2047 encoded id, or one broken across lines, breaks threading."""

from __future__ import annotations

import email
from email import policy
from email.mime.text import MIMEText
from uuid import uuid4

from services.notifier.compose import flatten
from shared.mail_ids import make_message_id


def test_long_message_ids_are_never_encoded_or_broken_and_lists_fold_between_ids() -> None:
    domain = "support.a-long-company-name.example"
    ids = [make_message_id(uuid4(), secret="s", domain=domain) for _ in range(10)]
    assert all(len(f"In-Reply-To: {i}") > 78 for i in ids), "longer than a line: the case that broke"
    message = MIMEText("Hello")
    message["From"] = "support@helpdesk.test"
    message["To"] = "jane@acme.test"
    message["Subject"] = "[TKT-1] Printer offline"
    message["Message-ID"] = ids[0]
    message["In-Reply-To"] = ids[-1]
    message["References"] = " ".join(ids)

    raw = flatten(message)
    assert b"=?" not in raw
    lines = raw.split(b"\r\n")
    assert all(len(line) <= 998 for line in lines)
    assert f"Message-ID: {ids[0]}".encode() in lines, "a single id stays on the header's own line"
    assert f"In-Reply-To: {ids[-1]}".encode() in lines
    assert sum(1 for line in lines if line.startswith(b" <")) == len(ids) - 1, "References: one id a line"
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["Message-ID"] == ids[0]
    assert parsed["In-Reply-To"] == ids[-1]
    assert parsed["References"].split() == ids


def test_non_ascii_subjects_and_names_are_encoded_words_that_read_back() -> None:
    message = MIMEText("Grüße", "plain", "utf-8")
    message["Subject"] = "Ihre Anfrage: Drucker im Büro „EG“ druckt nicht mehr – bitte um Rückruf, dringend"
    raw = flatten(message)
    assert raw.isascii()
    assert all(len(line) <= 78 for line in raw.split(b"\r\n")[:4])
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert (
        parsed["Subject"]
        == "Ihre Anfrage: Drucker im Büro „EG“ druckt nicht mehr – bitte um Rückruf, dringend"
    )
