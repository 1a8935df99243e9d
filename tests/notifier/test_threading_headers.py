"""Message ids in In-Reply-To/References go out as they are, whatever their length: an
RFC 2047 encoded id (what the default policy makes of a long one) breaks threading."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from uuid import uuid4

from aiosmtplib.email import flatten_message

from services.notifier.compose import MAIL_POLICY
from shared.mail_ids import make_message_id


def test_long_message_ids_are_never_encoded_and_fold_between_ids() -> None:
    domain = "support.a-long-company-name.example"
    ids = [make_message_id(uuid4(), secret="s", domain=domain) for _ in range(10)]
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = "support@helpdesk.test"
    message["To"] = "jane@acme.test"
    message["Subject"] = "[TKT-1] Printer offline"
    message["In-Reply-To"] = ids[-1]
    message["References"] = " ".join(ids)
    message.set_content("Hello")

    raw = flatten_message(message)
    assert b"=?" not in raw
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["In-Reply-To"] == ids[-1]
    assert parsed["References"].split() == ids
