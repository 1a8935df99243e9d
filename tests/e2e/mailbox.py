"""Mail as the customer and the consultants receive it: the SMTP sink's ``.eml`` files, parsed
with the standard library (headers, parts, attachments), calendar invites with ``icalendar``
and PDFs with ``pypdf``; and mail into the system through the inbound SMTP listener."""

from __future__ import annotations

import io
import re
import smtplib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, make_msgid
from pathlib import Path
from typing import Any
from uuid import UUID

import icalendar
from pypdf import PdfReader

SUPPORT = "support@helpdesk.test"
_PARSER = BytesParser(policy=policy.default)
_URL = re.compile(r"https?://[^\s<>\"')]+")


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    data: bytes
    params: dict[str, str]


@dataclass
class Mail:
    """One delivered message."""

    path: Path
    message: EmailMessage
    _attachments: list[Attachment] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"<Mail {self.kind} to {self.to}: {self.subject!r}>"

    def header(self, name: str) -> str | None:
        value = self.message[name]
        return None if value is None else str(value)

    @property
    def to(self) -> str:
        return getaddresses([self.header("To") or ""])[0][1].lower()

    @property
    def sender(self) -> str:
        return getaddresses([self.header("From") or ""])[0][1].lower()

    @property
    def sender_name(self) -> str:
        return getaddresses([self.header("From") or ""])[0][0]

    @property
    def subject(self) -> str:
        return self.header("Subject") or ""

    @property
    def message_id(self) -> str:
        value = self.header("Message-ID")
        assert value, f"{self!r} has no Message-ID"
        return value.strip()

    @property
    def references(self) -> list[str]:
        return (self.header("References") or "").split()

    @property
    def kind(self) -> str:
        """The notifier's kind of mail (``acknowledgment``, ``invoice`` …)."""
        return (self.header("X-Helpdesk-Notification") or "").strip().split(";")[0]

    @property
    def ticket(self) -> str | None:
        return self.header("X-Helpdesk-Ticket")

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None, f"{self!r} has no text part"
        return str(part.get_content())

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert part is not None, f"{self!r} has no HTML part"
        return str(part.get_content())

    def links(self) -> list[str]:
        return _URL.findall(self.text)

    @property
    def attachments(self) -> list[Attachment]:
        if self._attachments is None:
            self._attachments = []
            for part in self.message.iter_attachments():
                data = part.get_payload(decode=True)
                assert isinstance(data, bytes), f"{self!r}: undecodable attachment"
                params = {k.lower(): str(v) for k, v in part.get_params() or []}
                kind = part.get_content_type()
                self._attachments.append(Attachment(part.get_filename(), kind, data, params))
        return self._attachments

    def attachment(self, content_type: str) -> Attachment:
        found = [a for a in self.attachments if a.content_type == content_type]
        assert len(found) == 1, f"{self!r}: expected one {content_type} attachment, got {self.attachments}"
        return found[0]

    def calendar(self) -> icalendar.Calendar:
        return icalendar.Calendar.from_ical(self.attachment("text/calendar").data)

    def pdf_text(self) -> str:
        data = self.attachment("application/pdf").data
        assert data.startswith(b"%PDF-"), "not a PDF"
        return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


Criteria = Callable[[Mail], bool]


def where(
    *,
    to: str | None = None,
    kind: str | None = None,
    ticket: str | None = None,
    subject: str | None = None,
    sender: str | None = None,
) -> Criteria:
    def matches(mail: Mail) -> bool:
        return (
            (to is None or mail.to == to.lower())
            and (kind is None or mail.kind == kind)
            and (ticket is None or mail.ticket == ticket)
            and (subject is None or subject in mail.subject)
            and (sender is None or mail.sender == sender.lower())
        )

    return matches


class Mailbox:
    """Everything the sink received, in arrival order. ``mark()`` is a cursor: pass it as
    ``since`` to look only at mail that arrived after it."""

    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = mail_dir
        self._mail: list[Mail] = []
        self._seen: set[str] = set()

    def _refresh(self) -> list[Mail]:
        new = sorted(p for p in self.mail_dir.glob("*.eml") if p.name not in self._seen)
        for path in new:
            message = _PARSER.parsebytes(path.read_bytes())
            assert isinstance(message, EmailMessage)
            self._seen.add(path.name)
            self._mail.append(Mail(path, message))  # in the order we discover them
        return self._mail

    def mark(self) -> int:
        return len(self._refresh())

    def find(self, since: int = 0, **criteria: Any) -> list[Mail]:
        matches = where(**criteria)
        return [m for m in self._refresh()[since:] if matches(m)]

    def wait_for(self, since: int = 0, timeout: float = 15.0, count: int = 1, **criteria: Any) -> list[Mail]:
        """The first ``count`` mails matching, waiting up to ``timeout`` seconds for them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(since, **criteria)
            if len(found) >= count:
                return found[:count]
            if time.monotonic() > deadline:
                recent = [repr(m) for m in self._mail[-8:]]
                raise AssertionError(
                    f"expected {count} mail(s) matching {criteria} within {timeout} s, got {len(found)}; "
                    f"latest mail: {recent}"
                )
            time.sleep(0.05)

    def one(self, since: int = 0, timeout: float = 15.0, **criteria: Any) -> Mail:
        return self.wait_for(since, timeout, 1, **criteria)[0]

    def assert_none(self, since: int, seconds: float, *alternatives: Criteria, **criteria: Any) -> None:
        """Nothing matching (``criteria``, or any of the ``alternatives`` made with ``where``)
        arrives within ``seconds``: for mail that must not be sent."""
        checks = list(alternatives) or [where(**criteria)]
        deadline = time.monotonic() + seconds
        while True:
            found = [m for m in self._refresh()[since:] if any(check(m) for check in checks)]
            assert not found, f"unexpected mail: {found}"
            if time.monotonic() > deadline:
                return
            time.sleep(0.1)


# --- mail in ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    """What the inbound SMTP listener answered: the message's fate and its record's id."""

    outcome: str
    inbound_id: UUID
    message: EmailMessage


def compose(
    sender: str,
    subject: str,
    body: str,
    *,
    to: str = SUPPORT,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: Iterable[str] = (),
    headers: dict[str, str] | None = None,
    attachments: Iterable[tuple[str, str, bytes]] = (),
    date: datetime | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain=sender.rpartition("@")[2].rstrip(">"))
    if date is not None:
        message["Date"] = format_datetime(date)
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    refs = list(references)
    if refs:
        message["References"] = " ".join(refs)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    for filename, content_type, data in attachments:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message


def reply(to_mail: Mail, sender: str, body: str, *, quote: bool = True, **kwargs: Any) -> EmailMessage:
    """What a mail client makes of "Reply": to the Reply-To, threaded, the original quoted below."""
    text = body
    if quote:
        quoted = "\n".join(f"> {line}" if line else ">" for line in to_mail.text.splitlines())
        sent = to_mail.header("Date") or "earlier"
        text = f"{body}\n\nOn {sent}, {to_mail.sender_name} <{to_mail.sender}> wrote:\n{quoted}\n"
    subject = to_mail.subject if to_mail.subject.lower().startswith("re:") else f"Re: {to_mail.subject}"
    return compose(
        sender,
        subject,
        text,
        to=to_mail.header("Reply-To") or to_mail.sender,
        in_reply_to=to_mail.message_id,
        references=[*to_mail.references, to_mail.message_id],
        **kwargs,
    )


def send(port: int, message: EmailMessage, *, envelope_sender: str | None = None) -> Receipt:
    """Hand ``message`` to the inbound SMTP listener, as the customer's mail server would."""
    sender = envelope_sender if envelope_sender is not None else getaddresses([str(message["From"])])[0][1]
    recipients = [a for _, a in getaddresses([str(message["To"])])]
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("mx.customer.test")
        code, answer = client.mail(sender)
        assert code == 250, answer
        for recipient in recipients:
            code, answer = client.rcpt(recipient)
            assert code == 250, answer
        code, answer = client.data(message.as_bytes())
    text = answer.decode()
    assert code == 250, f"inbound SMTP answered {code} {text}"
    match = re.search(r"OK: (\w+) ([0-9a-f-]{36})", text)
    assert match, f"unexpected answer {text!r}"
    return Receipt(match[1], UUID(match[2]), message)
