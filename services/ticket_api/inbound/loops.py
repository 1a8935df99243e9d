"""Who sent a message: a person, or a machine we must never answer.

RFC 3834 (automatic responses), RFC 3464 (delivery status notifications), RFC 5965 (abuse
feedback reports), RFC 2369/2919 (list headers) and the vendor headers real autoresponders
send. Order matters: our own mail first (a loop), then bounces, complaints, auto-replies,
list/bulk mail; anything else is a person. Pure functions over a :class:`ParsedEmail`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.ticket_api.inbound.models import InboundKind
from services.ticket_api.inbound.parsing import ParsedEmail
from shared.mail_ids import MacKeys, owner_of_message_id, token_of_plus_address


@dataclass(frozen=True)
class OwnAddresses:
    """Addresses that are us: the support address (and its plus-addressed reply tokens) and
    any other address we send from."""

    support_address: str
    others: frozenset[str] = frozenset()

    def is_ours(self, address: str | None) -> bool:
        if not address:
            return False
        address = address.strip().lower()
        if address == self.support_address.lower() or address in self.others:
            return True
        return token_of_plus_address(address, self.support_address) is not None


@dataclass(frozen=True)
class Bounce:
    recipients: tuple[str, ...]
    permanent: bool
    original_message_ids: tuple[str, ...]


@dataclass(frozen=True)
class Classification:
    kind: InboundKind
    reasons: tuple[str, ...]
    bounce: Bounce | None = None

    @property
    def from_a_person(self) -> bool:
        return self.kind is InboundKind.HUMAN


_BOUNCE_SENDERS = re.compile(r"^(mailer-daemon|postmaster|post_master|mail-daemon|mailerdaemon)@", re.I)
_DAEMON_TEXT = re.compile(
    r"mailer-daemon|\bpostmaster@|post_master@|mail delivery (system|subsystem)|mail\.delivery\.system", re.I
)
_BOUNCE_BODY = re.compile(
    r"(could not be delivered|undeliverable|delivery (has )?failed|delivery to the following recipient|"
    r"permanent(ly)? (error|fail)|user unknown|unknown user|no such user|mailbox (is )?(full|unavailable)|"
    r"recipient address rejected|this is the mail system at host|message was rejected|"
    r"\b5\.\d{1,3}\.\d{1,3}\b)",
    re.I,
)
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver(ed|able)|delivery status notification \((failure|delay)\)|returned mail|"
    r"mail delivery (failed|failure|subsystem)|delivery (failure|has failed|failed)|failure notice|"
    r"non[- ]?delivery|unzustellbar|nicht zustellbar|non remis|no se puede entregar|"
    r"message not delivered|could not be delivered|rejected:|warning: could not send|"
    r"error sending your mail|bounce notification|returned to sender)",
    re.I,
)
_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort|réponse|respuesta|risposta|svar)\b|"
    r"automatische antwort|réponse automatique|respuesta automática|risposta automatica|"
    r"automatyczna odpowied[zź]|out of (the )?office|abwesenheitsnotiz|abwesend|"
    r"absence|autosvar|autoreply|auto:|on vacation|vacation reply|"
    r"i am (currently )?(out|away)|je suis absent|estoy fuera|fuera de la oficina)",
    re.I,
)
_NO_REPLY_LOCAL = re.compile(r"^(no-?reply|do-?not-?reply|donotreply|noreply[-+.]?.*)@", re.I)


def _values(parsed: ParsedEmail, name: str) -> list[str]:
    return [value.strip().lower() for value in parsed.header_values(name)]


def _bounce_recipients(parsed: ParsedEmail) -> tuple[str, ...]:
    recipients = [status.recipient for status in parsed.delivery_status if "@" in status.recipient]
    for value in parsed.header_values("X-Failed-Recipients"):
        recipients.extend(part.strip().lower() for part in value.split(",") if "@" in part)
    return tuple(dict.fromkeys(recipients))


def _bounce(parsed: ParsedEmail) -> Bounce:
    statuses = parsed.delivery_status
    permanent = any(status.permanent for status in statuses) if statuses else True
    if statuses and all(
        status.action in ("delayed", "relayed", "delivered", "expanded") for status in statuses
    ):
        permanent = False
    return Bounce(
        recipients=_bounce_recipients(parsed),
        permanent=permanent,
        original_message_ids=parsed.embedded_message_ids,
    )


def classify(
    parsed: ParsedEmail, *, envelope_sender: str | None, own: OwnAddresses, secret: MacKeys
) -> Classification:
    """Decide what sent ``parsed``. ``envelope_sender`` is the SMTP MAIL FROM ("" for the
    null reverse-path ``<>``, None when unknown, e.g. a raw message posted to the API)."""
    reasons: list[str] = []
    sender = parsed.from_address.email.lower() if parsed.from_address else None

    # 1. Our own mail coming back (a loop): sent from our address, or carrying our Message-ID.
    if own.is_ours(sender):
        reasons.append(f"From is our own address {sender}")
    if parsed.message_id and owner_of_message_id(parsed.message_id, secret=secret) is not None:
        reasons.append("Message-ID is one we generated")
    for value in _values(parsed, "X-Loop"):
        if own.is_ours(value) or own.support_address.lower() in value:
            reasons.append(f"X-Loop: {value}")
    if reasons:
        return Classification(InboundKind.OWN, tuple(reasons))

    # 2. Bounces (delivery status notifications).
    report_types = set(parsed.report_types)
    if "delivery-status" in report_types or parsed.delivery_status:
        reasons.append("multipart/report; report-type=delivery-status")
    if parsed.header_values("X-Failed-Recipients"):
        reasons.append("X-Failed-Recipients")
    null_sender = envelope_sender == "" or any(v in ("<>", "") for v in _values(parsed, "Return-Path"))
    raw_senders = " ".join(parsed.header_values("From") + parsed.header_values("Return-Path"))
    daemon = bool(sender and _BOUNCE_SENDERS.match(sender)) or bool(_DAEMON_TEXT.search(raw_senders))
    bounce_subject = bool(_BOUNCE_SUBJECT.search(parsed.subject))
    machine_sender = daemon or null_sender or sender is None or bool(sender and _NO_REPLY_LOCAL.match(sender))
    returned = bool({"multipart/report", "message/rfc822", "text/rfc822-headers"} & set(parsed.content_types))
    if (daemon and "mailer-daemon" in raw_senders.lower()) or (daemon and (returned or null_sender)):
        reasons.append(f"sent by a mail system ({(sender or raw_senders)[:80]})")
    if null_sender and bounce_subject:
        reasons.append("null reverse-path and a delivery-failure subject")
    if machine_sender and (bounce_subject or _BOUNCE_BODY.search(parsed.text[:3000])):
        reasons.append("a mail system's delivery-failure wording")
    if reasons:
        return Classification(InboundKind.BOUNCE, tuple(reasons), _bounce(parsed))

    # 3. Abuse/complaint feedback reports (ARF): a machine, and the address should be suppressed.
    if "feedback-report" in report_types or "message/feedback-report" in parsed.content_types:
        return Classification(InboundKind.COMPLAINT, ("multipart/report; report-type=feedback-report",))

    # 4. Auto-replies (RFC 3834 and what real autoresponders send).
    auto_submitted = _values(parsed, "Auto-Submitted")
    if any(value and not value.startswith("no") for value in auto_submitted):
        reasons.append(f"Auto-Submitted: {auto_submitted[0]}")
    for name in (
        "X-Autoreply",
        "X-Autorespond",
        "X-Autoresponder",
        "X-Auto-Response-Suppress",
        "X-Autogenerated",
    ):
        if parsed.header_values(name):
            reasons.append(name)
    precedence = _values(parsed, "Precedence")
    if any(value in ("auto_reply", "auto-reply") for value in precedence):
        reasons.append(f"Precedence: {precedence[0]}")
    if _values(parsed, "X-Ms-Exchange-Generated-Message-Source") or _values(
        parsed, "X-Ms-Exchange-Inbox-Rules-Loop"
    ):
        reasons.append("generated by an Exchange rule")
    if (
        "disposition-notification" in report_types
        or "message/disposition-notification" in parsed.content_types
    ):
        reasons.append("read receipt (message/disposition-notification)")
    if _AUTO_SUBJECT.search(parsed.subject):
        reasons.append(f"auto-reply subject {parsed.subject[:60]!r}")
    if "REPLY" in parsed.calendar_methods:
        # A calendar client answering one of our invites (Accept/Decline): no ticket, no reopen.
        reasons.append("calendar reply (text/calendar; method=REPLY)")
    if null_sender:
        reasons.append("null reverse-path (<>): RFC 5321 says never answer it")
    if reasons:
        return Classification(InboundKind.AUTO_REPLY, tuple(reasons))

    # 5. Mailing lists and bulk mail.
    if any(value in ("bulk", "junk", "list") for value in precedence):
        reasons.append(f"Precedence: {precedence[0]}")
    for name in (
        "List-Id",
        "List-Unsubscribe",
        "List-Post",
        "List-Subscribe",
        "List-Help",
        "X-Mailing-List",
        "Mailing-List",
        "X-ML-Name",
        "X-MLServer",
    ):
        if parsed.header_values(name):
            reasons.append(name)
    if sender and _NO_REPLY_LOCAL.match(sender):
        reasons.append(f"sent from a no-reply address {sender}")
    if reasons:
        return Classification(InboundKind.LIST, tuple(reasons))
    return Classification(InboundKind.HUMAN, ())
