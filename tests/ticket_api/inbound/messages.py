"""Real-shaped messages from the common clients, built the way those clients build them
(headers, MIME structure, quoting style), for the inbound tests."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

SUPPORT = "support@helpdesk.test"
DATE = format_datetime(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
SIGNATURE_SEPARATOR = "-- "  # RFC 3676: dash, dash, space


def _pdf() -> bytes:
    """A real one-page PDF (what a signed SLA scan is, to a parser)."""
    from fpdf import FPDF

    document = FPDF()
    document.add_page()
    document.set_font("helvetica", size=12)
    document.cell(text="Service level agreement, signed.")
    return bytes(document.output())


PDF = _pdf()


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def plain(
    *,
    sender: str = "Jane Doe <jane@acme.test>",
    to: str = SUPPORT,
    subject: str = "Printer offline",
    body: str = "The printer on the 3rd floor stopped answering this morning.\n",
    message_id: str | None = "<cafe.1@mail.acme.test>",
    headers: dict[str, str] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = DATE
    if message_id:
        message["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes(policy=SMTP)


def gmail_reply(
    *,
    in_reply_to: str,
    subject: str,
    reply: str,
    quoted: str,
    sender: str = "Jane Doe <jane@acme.test>",
    message_id: str = "<CAF=gmail.2@mail.gmail.com>",
    to: str = SUPPORT,
) -> bytes:
    """Gmail: multipart/alternative, attribution "On <date> <name> <addr> wrote:" wrapped,
    "> " quoting in text and a gmail_quote blockquote in HTML."""
    quoted_text = "\n".join("> " + line for line in quoted.splitlines())
    attribution = f"On Tue, Nov 24, 2026 at 9:00 AM Helpdesk Consulting Support <\n{SUPPORT}> wrote:"
    text = f"{reply}\n\n{attribution}\n\n{quoted_text}\n"
    html = (
        f'<div dir="ltr">{reply}</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        f"On Tue, Nov 24, 2026 at 9:00 AM Helpdesk Consulting Support &lt;{SUPPORT}&gt; wrote:<br></div>"
        f'<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex">{quoted}</blockquote></div>'
    )
    return _crlf(
        f"""MIME-Version: 1.0
Date: {DATE}
References: {in_reply_to}
In-Reply-To: {in_reply_to}
Message-ID: {message_id}
Subject: {subject}
From: {sender}
To: {to}
Content-Type: multipart/alternative; boundary="000000000000a1b2c3"

--000000000000a1b2c3
Content-Type: text/plain; charset="UTF-8"

{text}
--000000000000a1b2c3
Content-Type: text/html; charset="UTF-8"

{html}
--000000000000a1b2c3--
"""
    )


def outlook_reply(
    *,
    subject: str,
    reply: str,
    quoted: str,
    german: bool = False,
    sender: str = "Jane Doe <jane@acme.test>",
    message_id: str = "<DM6PR.outlook.3@namprd.prod.outlook.com>",
    in_reply_to: str | None = None,
) -> bytes:
    """Outlook: no "> " quoting; a separator and a From/Sent/To/Subject block (localized)."""
    if german:
        block = (
            f"Von: Helpdesk Support <{SUPPORT}>\nGesendet: Dienstag, 24. November 2026 09:00\n"
            f"An: Jane Doe <jane@acme.test>\nBetreff: {subject}"
        )
    else:
        block = (
            f"From: Helpdesk Support <{SUPPORT}>\nSent: Tuesday, November 24, 2026 9:00 AM\n"
            f"To: Jane Doe <jane@acme.test>\nSubject: {subject}"
        )
    threading = f"In-Reply-To: {in_reply_to}\nReferences: {in_reply_to}\n" if in_reply_to else ""
    return _crlf(
        f"""From: {sender}
To: {SUPPORT}
Subject: {"AW" if german else "RE"}: {subject}
Thread-Topic: {subject}
Thread-Index: AQHZ1234567890abcdef==
Date: {DATE}
Message-ID: {message_id}
{threading}Accept-Language: en-US
Content-Language: en-US
X-MS-Has-Attach:
X-MS-TNEF-Correlator:
MIME-Version: 1.0
Content-Type: text/plain; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable

{reply}

________________________________
{block}

{quoted}
"""
    )


def apple_mail_reply(*, subject: str, reply: str, quoted: str, in_reply_to: str) -> bytes:
    quoted_text = "\n".join("> " + line for line in quoted.splitlines())
    return _crlf(
        f"""From: Jane Doe <jane@acme.test>
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit
Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3774.600.62\\))
Subject: Re: {subject}
Date: {DATE}
References: {in_reply_to}
To: Helpdesk Support <{SUPPORT}>
In-Reply-To: {in_reply_to}
Message-Id: <3C1F2A4B-5D6E-4F70-8192-A3B4C5D6E7F8@acme.test>
X-Mailer: Apple Mail (2.3774.600.62)

{reply}

Sent from my iPhone

> On 24 Nov 2026, at 09:00, Helpdesk Support <{SUPPORT}> wrote:
>
{quoted_text}
"""
    )


def thunderbird_reply(
    *, subject: str, reply: str, quoted: str, in_reply_to: str, language: str = "en"
) -> bytes:
    """Thunderbird: attribution, quoted text, the answer below (bottom-posting)."""
    attribution = {
        "en": "On 11/24/26 09:00, Helpdesk Support wrote:",
        "fr": "Le 24/11/2026 à 09:00, Helpdesk Support a écrit :",
        "es": "El 24/11/26 a las 9:00, Helpdesk Support escribió:",
        "de": "Am 24.11.26 um 09:00 schrieb Helpdesk Support:",
    }[language]
    quoted_text = "\n".join("> " + line for line in quoted.splitlines())
    return _crlf(
        f"""Message-ID: <7f3e2a10-thunderbird-{language}@acme.test>
Date: {DATE}
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
Subject: Re: {subject}
Content-Language: {language}
To: Helpdesk Support <{SUPPORT}>
References: {in_reply_to}
In-Reply-To: {in_reply_to}
From: Jane Doe <jane@acme.test>
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 8bit

{attribution}
{quoted_text}

{reply}

{SIGNATURE_SEPARATOR}
Jane Doe
Acme Corp, 3rd floor
"""
    )


def out_of_office(
    *,
    subject: str,
    in_reply_to: str | None = None,
    sender: str = "Jane Doe <jane@acme.test>",
    message_id: str = "<oof.4@namprd.prod.outlook.com>",
) -> bytes:
    """Exchange's automatic reply (RFC 3834 headers plus Microsoft's own)."""
    threading = f"In-Reply-To: {in_reply_to}\nReferences: {in_reply_to}\n" if in_reply_to else ""
    return _crlf(
        f"""From: {sender}
To: {SUPPORT}
Subject: Automatic reply: {subject}
Thread-Topic: {subject}
Date: {DATE}
Message-ID: {message_id}
{threading}Auto-Submitted: auto-replied
X-Auto-Response-Suppress: All
X-MS-Exchange-Inbox-Rules-Loop: jane@acme.test
Content-Type: text/plain; charset="us-ascii"
MIME-Version: 1.0

I am out of the office until Monday with limited access to email.
"""
    )


def bounce(
    *,
    original_message_id: str,
    recipient: str = "gone@acme.test",
    permanent: bool = True,
    message_id: str = "<20261124150000.B1C2D3E4@mx.acme.test>",
) -> bytes:
    """Postfix's DSN (multipart/report; report-type=delivery-status) with the returned headers."""
    status, action = ("5.1.1", "failed") if permanent else ("4.4.1", "delayed")
    return _crlf(
        f"""Return-Path: <>
Date: {DATE}
From: MAILER-DAEMON@mx.acme.test (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {SUPPORT}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="B1C2D3E4.1700000000/mx.acme.test"
Message-Id: {message_id}

This is a MIME-encapsulated message.

--B1C2D3E4.1700000000/mx.acme.test
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.acme.test.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{recipient}>: host mx.acme.test said: 550 5.1.1 User unknown

--B1C2D3E4.1700000000/mx.acme.test
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.acme.test
Arrival-Date: {DATE}

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown

--B1C2D3E4.1700000000/mx.acme.test
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Helpdesk Consulting Support <{SUPPORT}>
To: {recipient}
Subject: [TKT-1] We received your request
Message-ID: {original_message_id}

--B1C2D3E4.1700000000/mx.acme.test--
"""
    )


def with_attachments(
    files: list[tuple[str, str, bytes]],
    *,
    sender: str = "Jane Doe <jane@acme.test>",
    subject: str = "Signed documents",
    message_id: str = "<att.5@mail.acme.test>",
    body: str = "Please find the documents attached.\n",
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = SUPPORT
    message["Subject"] = subject
    message["Date"] = DATE
    message["Message-ID"] = message_id
    message.set_content(body)
    for filename, content_type, data in files:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(policy=SMTP)


def html_only(*, subject: str = "Cannot log in", message_id: str = "<html.6@acme.test>") -> bytes:
    return _crlf(
        f"""From: Jane Doe <jane@acme.test>
To: {SUPPORT}
Subject: {subject}
Date: {DATE}
Message-ID: {message_id}
MIME-Version: 1.0
Content-Type: text/html; charset="windows-1252"
Content-Transfer-Encoding: quoted-printable

<html><head><style>p {{ color: red }}</style></head><body><p>I cannot log in since =
the update.</p><p>Caf=E9 menu is fine though.</p><script>alert(1)</script></body></html>
"""
    )


def tnef_and_inline_image(message_id: str = "<tnef.7@acme.test>") -> bytes:
    """Outlook rich text (winmail.dat) plus an inline image referenced by Content-ID."""
    tnef = base64.b64encode(b"\x78\x9f\x3e\x22" + b"\x00" * 60).decode()
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40).decode()
    return _crlf(
        f"""From: Jane Doe <jane@acme.test>
To: {SUPPORT}
Subject: Screenshot of the error
Date: {DATE}
Message-ID: {message_id}
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="_004_outer"

--_004_outer
Content-Type: multipart/related; boundary="_003_related"; type="text/html"

--_003_related
Content-Type: text/html; charset="utf-8"

<p>See the screenshot: <img src="cid:image001.png@01DA"></p>
--_003_related
Content-Type: image/png; name="image001.png"
Content-ID: <image001.png@01DA>
Content-Disposition: inline; filename="image001.png"
Content-Transfer-Encoding: base64

{png}
--_003_related--

--_004_outer
Content-Type: application/ms-tnef; name="winmail.dat"
Content-Disposition: attachment; filename="winmail.dat"
Content-Transfer-Encoding: base64

{tnef}
--_004_outer--
"""
    )


def broken_mime(message_id: str = "<broken.8@acme.test>") -> bytes:
    """A multipart without its boundary, an unknown charset, duplicate Subject headers, an
    encoded-word subject and a 5,000-character line."""
    long_line = "x" * 5000
    return _crlf(
        f"""From: =?utf-8?B?SsO8cmdlbiBNw7xsbGVy?= <juergen@acme.test>
To: {SUPPORT}
Subject: =?iso-8859-1?Q?Drucker_f=E4llt_aus?=
Subject: duplicate subject
Date: {DATE}
Message-ID: {message_id}
MIME-Version: 1.0
Content-Type: multipart/mixed

--nobody-declared-this
Content-Type: text/plain; charset="x-unknown-charset"

Der Drucker f\u00e4llt st\u00e4ndig aus.
{long_line}
--nobody-declared-this--
"""
    )


def garbage() -> bytes:
    """Not a message at all: binary noise with no header block."""
    return bytes(range(256)) * 4
