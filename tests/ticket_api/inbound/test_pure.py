"""The pure parts of inbound email: parsing, quote stripping, loop classification, threading
rules and attachment limits — no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from services.ticket_api.inbound.attachments import AttachmentLimits, BlobStore, is_pdf, safe_filename, select
from services.ticket_api.inbound.loops import OwnAddresses, classify
from services.ticket_api.inbound.models import InboundKind
from services.ticket_api.inbound.parsing import AttachmentPart, html_to_text, parse_email
from services.ticket_api.inbound.quotes import strip_quotes_and_signature
from services.ticket_api.inbound.reply_matching import (
    FollowUp,
    Sender,
    TicketFacts,
    follow_up_for,
    sender_may_join,
    subject_for_new_ticket,
    thread_ids,
    ticket_number_in_subject,
    ticket_of_our_message_id,
    ticket_of_reply_address,
)
from services.ticket_api.inbound.urgency import stated_urgency
from shared.ids import new_id
from shared.mail_ids import make_message_id, make_reply_token, plus_address
from shared.vocabulary import TicketStatus
from tests.ticket_api.inbound import messages as mail

FAKE_ATTRIBUTION = (
    "The van broke down.\nOn Monday the old driver wrote:\nthe brakes are worn.\nPlease send a mechanic."
)

SECRET = "test-secret"
OWN = OwnAddresses("support@helpdesk.test", frozenset({"accounting@helpdesk.test"}))
QUOTED = "We have your request.\nTicket TKT-7"


def kind_of(raw: bytes, envelope_sender: str | None = "jane@acme.test") -> InboundKind:
    return classify(parse_email(raw), envelope_sender=envelope_sender, own=OWN, secret=SECRET).kind


# --- parsing ------------------------------------------------------------------------------


def test_parse_reads_addresses_ids_and_encoded_words() -> None:
    parsed = parse_email(mail.broken_mime())
    assert parsed.understood and parsed.from_address is not None
    assert parsed.from_address.email == "juergen@acme.test" and parsed.from_address.name == "Jürgen Müller"
    assert parsed.subject == "Drucker fällt aus" and parsed.message_id == "<broken.8@acme.test>"
    assert "Der Drucker fällt ständig aus." in parsed.text and "x" * 5000 in parsed.text


def test_parse_takes_html_only_mail_as_text_without_scripts_or_styles() -> None:
    parsed = parse_email(mail.html_only())
    assert parsed.html_only and "I cannot log in since the update." in parsed.text
    assert "alert" not in parsed.text and "color" not in parsed.text and "Café" in parsed.text


def test_parse_keeps_tnef_and_inline_images_as_attachments() -> None:
    parsed = parse_email(mail.tnef_and_inline_image())
    assert [(a.filename, a.content_type, a.inline, a.content_id) for a in parsed.attachments] == [
        ("image001.png", "image/png", True, "image001.png@01DA"),
        ("winmail.dat", "application/ms-tnef", False, None),
    ]


def test_parse_reads_delivery_status_of_a_bounce() -> None:
    parsed = parse_email(mail.bounce(original_message_id="<orig@helpdesk.test>"))
    (status,) = parsed.delivery_status
    assert (status.recipient, status.action, status.status, status.permanent) == (
        "gone@acme.test",
        "failed",
        "5.1.1",
        True,
    )
    assert parsed.embedded_message_ids == ("<orig@helpdesk.test>",)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff" * 100,
        b"Subject: =?utf-8?B?####?=\n\nbody",
        b"From: <<<@@@>>>\nTo: ,,,\n\nx",
        b'Content-Type: multipart/mixed; boundary=""\n\n--\n--',
        b"Message-ID: " + b"<" * 5000 + b"\n\n",
    ],
)
def test_parse_never_raises(raw: bytes) -> None:
    parsed = parse_email(raw)
    assert isinstance(parsed.text, str) and "\x00" not in parsed.text


def test_parse_refuses_oversized_header_blocks() -> None:
    raw = b"X-Junk: " + b"a" * (600 * 1024) + b"\n\nbody"
    parsed = parse_email(raw)
    assert not parsed.understood and "header block" in parsed.problems[0]


def test_html_blockquotes_become_quotes() -> None:
    assert html_to_text("<p>Yes.</p><blockquote><p>Is it on?</p></blockquote>") == "Yes.\n\n> Is it on?"


# --- quotes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            mail.gmail_reply(in_reply_to="<a@b>", subject="Re: x", reply="Works now, thanks!", quoted=QUOTED),
            "Works now, thanks!",
        ),
        (mail.outlook_reply(subject="x", reply="See below.", quoted=QUOTED), "See below."),
        (mail.outlook_reply(subject="x", reply="Siehe unten.", quoted=QUOTED, german=True), "Siehe unten."),
        (
            mail.apple_mail_reply(subject="x", reply="On my way.", quoted=QUOTED, in_reply_to="<a@b>"),
            "On my way.",
        ),
        (
            mail.thunderbird_reply(subject="x", reply="Below the quote.", quoted=QUOTED, in_reply_to="<a@b>"),
            "Below the quote.",
        ),
        (
            mail.thunderbird_reply(
                subject="x", reply="Réponse.", quoted=QUOTED, in_reply_to="<a@b>", language="fr"
            ),
            "Réponse.",
        ),
        (
            mail.thunderbird_reply(
                subject="x", reply="Respuesta.", quoted=QUOTED, in_reply_to="<a@b>", language="es"
            ),
            "Respuesta.",
        ),
        (
            mail.thunderbird_reply(
                subject="x", reply="Antwort.", quoted=QUOTED, in_reply_to="<a@b>", language="de"
            ),
            "Antwort.",
        ),
    ],
    ids=[
        "gmail",
        "outlook",
        "outlook-de",
        "apple-mail",
        "thunderbird",
        "thunderbird-fr",
        "thunderbird-es",
        "thunderbird-de",
    ],
)
def test_reply_styles_of_common_clients(raw: bytes, expected: str) -> None:
    assert strip_quotes_and_signature(parse_email(raw).text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Merci !\n\nDe : Support <s@h.test>\nEnvoyé : mardi 24 novembre 2026 09:00\nÀ : Jane\n"
            "Objet : x\n\nold",
            "Merci !",
        ),
        (
            "Gracias.\n\nDe: Support <s@h.test>\nEnviado: martes, 24 de noviembre de 2026 9:00\nPara: Jane\n"
            "Asunto: x\n\nold",
            "Gracias.",
        ),
        ("Ok.\n\nEl mar, 24 nov 2026 a las 9:00, Support (<s@h.test>) escribió:\n> old", "Ok."),
        ("Danke.\n\n-----Ursprüngliche Nachricht-----\nVon: Support\nold", "Danke."),
        ("Yes.\n\n-- \nJane Doe\nAcme", "Yes."),
        ("Sure.\n\nSent from my iPhone", "Sure."),
        ("Fine.\n\nVon meinem iPhone gesendet", "Fine."),
        ("> all quoted\n> nothing new", "> all quoted\n> nothing new"),  # never empty
        (
            "See the forward.\n\n---------- Forwarded message ---------\nFrom: a@b.test\n\nThe original.",
            "See the forward.\n\n---------- Forwarded message ---------\nFrom: a@b.test\n\nThe original.",
        ),
        ("A line saying I wrote: this is fine", "A line saying I wrote: this is fine"),
        (FAKE_ATTRIBUTION, FAKE_ATTRIBUTION),
        (
            "Still broken.\n\nOn Monday the old driver wrote:\n\nno quote here\n\n"
            "On Tue, 24 Nov 2026 at 09:00, Support <s@h.test> wrote:\n> old",
            "Still broken.\n\nOn Monday the old driver wrote:\n\nno quote here",
        ),
    ],
    ids=[
        "outlook-fr",
        "outlook-es",
        "gmail-es",
        "outlook-de-marker",
        "signature",
        "iphone",
        "iphone-de",
        "all-quoted",
        "forward",
        "not-an-attribution",
        "fake-attribution-in-new-text",
        "fake-attribution-then-a-real-one",
    ],
)
def test_quotes_and_signatures(text: str, expected: str) -> None:
    assert strip_quotes_and_signature(text) == expected


# --- loops ---------------------------------------------------------------------------------


def test_classification_of_people_and_machines() -> None:
    ours = make_message_id(new_id(), secret=SECRET, domain="helpdesk.test")
    assert kind_of(mail.plain()) is InboundKind.HUMAN
    assert kind_of(mail.out_of_office(subject="x")) is InboundKind.AUTO_REPLY
    assert kind_of(mail.bounce(original_message_id=ours), envelope_sender="") is InboundKind.BOUNCE
    assert kind_of(mail.plain(headers={"List-Id": "<users.lists.example.test>"})) is InboundKind.LIST
    assert kind_of(mail.plain(headers={"Precedence": "bulk"})) is InboundKind.LIST
    assert kind_of(mail.plain(headers={"X-Autoreply": "yes"})) is InboundKind.AUTO_REPLY
    assert kind_of(mail.plain(headers={"Auto-Submitted": "no"})) is InboundKind.HUMAN
    assert kind_of(mail.plain(subject="Abwesenheitsnotiz: Drucker")) is InboundKind.AUTO_REPLY
    assert kind_of(mail.plain(sender="Support <support@helpdesk.test>")) is InboundKind.OWN
    assert kind_of(mail.plain(sender="accounting@helpdesk.test")) is InboundKind.OWN
    assert kind_of(mail.plain(message_id=ours)) is InboundKind.OWN  # our own mail re-injected
    assert kind_of(mail.plain(), envelope_sender="") is InboundKind.AUTO_REPLY  # null reverse-path
    assert kind_of(mail.plain(sender="postmaster@acme.test")) is InboundKind.HUMAN  # a person at postmaster@


def test_bounce_details() -> None:
    parsed = parse_email(mail.bounce(original_message_id="<x@y>", permanent=False))
    bounce = classify(parsed, envelope_sender="", own=OWN, secret=SECRET).bounce
    assert bounce is not None and bounce.recipients == ("gone@acme.test",) and bounce.permanent is False


# --- reply matching ---------------------------------------------------------------------------


def test_thread_ids_in_order() -> None:
    assert thread_ids(["<c>"], ["<a>", "<b>", "<c>"]) == ["<c>", "<b>", "<a>"]


def test_our_ids_and_tokens_are_verified() -> None:
    ticket_id = new_id()
    message_id = make_message_id(ticket_id, secret=SECRET, domain="helpdesk.test")
    assert ticket_of_our_message_id(message_id, secret=SECRET) == ticket_id
    assert ticket_of_our_message_id(message_id, secret="another") is None
    assert ticket_of_our_message_id("<random@acme.test>", secret=SECRET) is None
    address = plus_address("support@helpdesk.test", make_reply_token(ticket_id, secret=SECRET))
    assert (
        ticket_of_reply_address(
            ["x@y.test", address.upper()], support_address="support@helpdesk.test", secret=SECRET
        )
        == ticket_id
    )
    forged = plus_address("support@helpdesk.test", make_reply_token(ticket_id, secret="guess"))
    assert ticket_of_reply_address([forged], support_address="support@helpdesk.test", secret=SECRET) is None


def test_subject_tags_and_subjects() -> None:
    assert ticket_number_in_subject("Re: [TKT-42] Printer") == 42
    assert ticket_number_in_subject("AW: [ tkt-7 ] x") == 7
    assert ticket_number_in_subject("TKT-42 without brackets") is None
    assert subject_for_new_ticket("RE: AW: Fwd: Printer") == "Printer"
    assert subject_for_new_ticket("   ") == "(no subject)"
    # Other tickets' tags go: the new ticket's acknowledgment puts its own tag first.
    assert subject_for_new_ticket("Re: [TKT-12] Fwd: [ tkt-7 ] Printer [TKT-3]") == "Printer"
    assert subject_for_new_ticket("[TKT-12]") == "(no subject)"
    assert subject_for_new_ticket("Re:") == "Re:"


def test_who_may_join_by_subject_tag() -> None:
    org = new_id()
    ticket = TicketFacts(new_id(), org, "jane@acme.test", TicketStatus.OPEN, None)
    assert sender_may_join(Sender("JANE@acme.test", None), ticket)
    assert sender_may_join(Sender("bob@acme.test", org), ticket)
    assert not sender_may_join(Sender("mallory@evil.test", None), ticket)
    assert not sender_may_join(Sender("x@other.test", new_id()), ticket)
    orgless = TicketFacts(new_id(), None, "jane@gmail.test", TicketStatus.OPEN, None)
    assert not sender_may_join(Sender("someone@gmail.test", None), orgless)


def test_reopen_window() -> None:
    closed_at = datetime(2026, 11, 1, tzinfo=UTC)
    ticket = TicketFacts(new_id(), None, "j@a.test", TicketStatus.CLOSED, closed_at)
    window = timedelta(days=14)
    assert follow_up_for(ticket, now=closed_at + timedelta(days=14), reopen_window=window) is FollowUp.REOPEN
    assert follow_up_for(ticket, now=closed_at + timedelta(days=14, seconds=1), reopen_window=window) is (
        FollowUp.NEW_LINKED_TICKET
    )
    open_ticket = TicketFacts(new_id(), None, "j@a.test", TicketStatus.PENDING_CUSTOMER, None)
    assert follow_up_for(open_ticket, now=closed_at, reopen_window=window) is FollowUp.APPEND


# --- attachments ----------------------------------------------------------------------------


def test_attachment_limits_and_names(tmp_path: object) -> None:
    parts = [
        AttachmentPart("../../etc/passwd", "text/plain", b"a"),
        AttachmentPart("big", "x/y", b"b" * 11),
        AttachmentPart("ok.pdf", "Application/PDF", b"c"),
        AttachmentPart("\x00", "bad type!", b"d"),
    ]
    decisions = select(parts, AttachmentLimits(max_bytes=10, max_count=2, max_total_bytes=100))
    assert [(d.filename, d.content_type, d.accepted) for d in decisions] == [
        ("passwd", "text/plain", True),
        ("big", "x/y", False),
        ("ok.pdf", "application/octet-stream", True),  # declared a PDF, is not one
        ("attachment", "application/octet-stream", False),
    ]
    assert safe_filename("C:\\Users\\jane\\report.docx") == "report.docx"


def test_blob_store_is_content_addressed(tmp_path: object) -> None:
    from pathlib import Path

    store = BlobStore(Path(str(tmp_path)) / "blobs")
    first, second = store.put(b"same bytes"), store.put(b"same bytes")
    assert first == second and store.read(first) == b"same bytes"
    assert len(list((Path(str(tmp_path)) / "blobs").rglob("*"))) == 3  # two directory levels and one file
    with pytest.raises(ValueError):
        store.path_of("../../etc/passwd")


def _calendar_answer(method: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Jane Doe <jane@acme.test>"
    message["To"] = "support@helpdesk.test"
    message["Subject"] = "Accepted: [TKT-7] Appointment about: Printer offline"
    message["Message-ID"] = "<cal.1@acme.test>"
    message.set_content("Jane Doe has accepted this invitation.")
    ics = "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            f"METHOD:{method}",
            "BEGIN:VEVENT",
            "UID:x@helpdesk",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    )
    message.add_alternative(ics, subtype="calendar", params={"method": method})
    return message.as_bytes()


def test_calendar_answers_to_our_invites_are_machine_mail() -> None:
    assert parse_email(_calendar_answer("REPLY")).calendar_methods == ("REPLY",)
    assert kind_of(_calendar_answer("REPLY")) is InboundKind.AUTO_REPLY
    # An invitation a person sends us is mail from a person.
    assert kind_of(_calendar_answer("REQUEST")) is InboundKind.HUMAN


def test_urgency_is_what_the_customer_states() -> None:
    def urgency(subject: str = "Printer", text: str = "It stopped.", **headers: str) -> str:
        return stated_urgency(
            importance=headers.get("importance"),
            x_priority=headers.get("x_priority"),
            priority=headers.get("priority"),
            subject=subject,
            text=text,
        ).value

    assert urgency() == "medium"
    assert urgency(importance="High") == "high"
    assert urgency(x_priority="1 (Highest)") == "high"
    assert urgency(subject="URGENT: printer offline") == "high"
    assert urgency(text="Please fix this asap, we cannot print invoices.") == "high"
    assert urgency(text="Bitte dringend beheben.") == "high"
    assert urgency(text="Es muy urgente.") == "high"
    assert urgency(text="This is not urgent, whenever you can.") == "medium"
    assert urgency(text="Our urgently-needed-feature request") == "medium"
    assert urgency(text="x" * 700 + " urgent") == "medium", "only the start of the text counts"


@pytest.mark.parametrize(
    ("raw", "doubts"),
    [
        (b"From: Jane <jane@acme.test>\r\nSubject: x\r\n\r\nhi\r\n", ()),
        (b"From: Jane <jane@acme.test>\nSubject: x\n\nhi\n", ()),  # bare LF throughout: one style
        ("From: Jörg <jörg@bücher.example>\r\n\r\nhi".encode(), ()),  # RFC 6532 UTF-8
        (b"From: jane@acme.test (Jane Doe)\r\n\r\nhi", ()),
        (b"Subject: x\rFrom: Jane <jane@acme.test>\r\n\r\nhi", ("header lines end in a mix",)),
        (
            b"From: Jane <jane@acme.test>\r\nSubject: x\nTo: a@b.test\r\n\r\nhi",
            ("header lines end in a mix",),
        ),
        (b"From: a@acme.test, b@acme.test\r\n\r\nhi", ("From names 2 mailboxes",)),
        (b"From: a@acme.test\r\nFrom: b@acme.test\r\n\r\nhi", ("From appears 2 times",)),
        (b"From: jane@acme.test <m@evil.test>\r\n\r\nhi", ("From had to be repaired",)),
        (b"From: Jane <jane@acme.test>\r\nSender: <x@y.test\r\n\r\nhi", ("Sender had to be repaired",)),
        (b"From: Jane <jane@acme.test>\r\nReply-To: x@y.test)<z@w.test>\r\n\r\nhi", ("Reply-To had to",)),
    ],
)
def test_identity_doubts_name_what_the_parser_repaired(raw: bytes, doubts: tuple[str, ...]) -> None:
    found = parse_email(raw).identity_doubts
    assert len(found) == len(doubts) and all(f.startswith(d) for f, d in zip(found, doubts, strict=True))


EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 54 + b"This program cannot be run in DOS mode."


@pytest.mark.parametrize(
    ("name", "declared", "data", "refused", "pdf"),
    [
        ("SLA signed.pdf", "application/pdf", mail.PDF, None, True),
        ("scan", "application/octet-stream", mail.PDF, None, True),  # by content, not by name
        ("SLA.pdf", "application/pdf", b"%PDF-1.4 but nothing a parser opens", None, False),
        ("SLA.pdf", "application/pdf", EXE, "a Windows program", False),
        ("report.pdf.exe", "application/pdf", EXE, "a Windows program", False),
        ("report.pdf.exe", "application/pdf", b"plain text", "a program (a .exe file)", False),
        ("tool", "application/octet-stream", b"\x7fELF\x02\x01\x01", "a Linux program", False),
        ("notes.txt", "text/plain", b"MZ is not a program here", "a Windows program", False),
        ("notes.txt", "text/plain", b"just notes", None, False),
    ],
)
def test_attachments_are_judged_by_content_and_programs_refused(
    name: str, declared: str, data: bytes, refused: str | None, pdf: bool
) -> None:
    limits = AttachmentLimits(max_bytes=1 << 20, max_count=5, max_total_bytes=1 << 21)
    (decision,) = select([AttachmentPart(name, declared, data)], limits)
    assert decision.pdf is pdf and is_pdf(decision) is pdf
    if refused is None:
        assert decision.accepted
    else:
        assert decision.refused_reason == f"it is {refused}: we do not accept programs as attachments"
