"""The rules of inbound email: one code path for the SMTP listener and the API.

Every message ends as exactly one of: a new ticket, a message on a ticket (reopening it, or
opening a new linked ticket when it was closed too long ago), a machine message recorded on
the ticket it belongs to (internal, never acknowledged), or a raw message stored — flagged
for a human when we could not understand it. The record of the message is claimed first by
its Message-ID, so a re-delivery returns the first result and changes nothing.

Nothing raises to the caller for a bad message; only an unavailable database does (the SMTP
listener then answers 451 and the sending MTA retries, so even then nothing is lost).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from sqlalchemy import Row

from services.ticket_api.caller import Caller, require_staff
from services.ticket_api.errors import OrganizationNotFound
from services.ticket_api.inbound import repository as inbound_repo
from services.ticket_api.inbound.attachments import AttachmentLimits, BlobStore, Decision, is_pdf, select
from services.ticket_api.inbound.loops import Classification, OwnAddresses, classify
from services.ticket_api.inbound.models import (
    InboundEmail,
    InboundKind,
    InboundOutcome,
    SlaDocumentReview,
    SlaReviewState,
)
from services.ticket_api.inbound.parsing import Limits, ParsedEmail, clean_text, parse_within
from services.ticket_api.inbound.quotes import strip_quotes_and_signature
from services.ticket_api.inbound.reply_matching import (
    FollowUp,
    MatchedBy,
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
from services.ticket_api.inbound.schemas import InboundEmailPublic
from services.ticket_api.inbound.urgency import stated_urgency
from services.ticket_api.organizations import repository as organization_repo
from services.ticket_api.organizations import service as organization_service
from services.ticket_api.organizations.models import Organization
from services.ticket_api.settings import Settings
from services.ticket_api.tickets import repository as ticket_repo
from services.ticket_api.tickets import service as ticket_service
from services.ticket_api.tickets.models import AuthorKind, Channel, Message, Ticket, Visibility
from services.ticket_api.tickets.views import ticket_number
from shared import events as ev
from shared.clock import utcnow
from shared.db import SessionMaker
from shared.email_address import display_address, normalize_email
from shared.ids import new_id
from shared.outbox import Outbox
from shared.principal import Principal, PrincipalKind
from shared.problems import NotFound
from shared.uow import UnitOfWork
from shared.vocabulary import TicketStatus, Urgency

log = logging.getLogger(__name__)


class SlaReviewNotFound(NotFound):
    slug, title = "sla-document-review-not-found", "SLA document review not found"


INBOUND_PRINCIPAL = Principal(
    kind=PrincipalKind.SERVICE, subject_id=uuid5(UUID(int=0), "helpdesk/inbound-email"), name="inbound-email"
)
MAX_BODY_CHARS = 100_000
MAX_FULL_TEXT_CHARS = 500_000
MACHINE_NOTE_CHARS = 4_000
FOLLOW_UP_OF = "follow_up_of"


@dataclass(frozen=True)
class Envelope:
    """The SMTP envelope: ``sender`` is MAIL FROM ("" for the null reverse-path ``<>``, None
    when unknown), ``recipients`` RCPT TO."""

    sender: str | None = None
    recipients: tuple[str, ...] = ()
    via: str = "smtp"


@dataclass(frozen=True)
class InboundConfig:
    secret: tuple[str, ...]  # the current MAC key first, then older ones still accepted
    own: OwnAddresses
    reopen_window: timedelta
    attachment_limits: AttachmentLimits
    parse_limits: Limits
    ack_limit: int
    ack_window: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> InboundConfig:
        return cls(
            secret=settings.mail_keys(),
            own=OwnAddresses(
                support_address=settings.support_address.lower(),
                others=frozenset(a.lower() for a in settings.inbound_own_addresses),
            ),
            reopen_window=timedelta(days=settings.reopen_window_days),
            attachment_limits=AttachmentLimits(
                max_bytes=settings.attachment_max_bytes,
                max_count=settings.attachment_max_count,
                max_total_bytes=settings.attachment_max_total_bytes,
            ),
            parse_limits=Limits(
                max_message_bytes=settings.inbound_max_message_bytes,
                time_limit_seconds=settings.inbound_parse_timeout_seconds,
            ),
            ack_limit=settings.ack_limit_per_sender,
            ack_window=timedelta(minutes=settings.ack_limit_window_minutes),
        )


def message_key(parsed: ParsedEmail, raw: bytes) -> str:
    """What makes two deliveries "the same message": its Message-ID, else its bytes."""
    if parsed.message_id and len(parsed.message_id) <= 255:
        return parsed.message_id
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def content_digest(parsed: ParsedEmail, decisions: Sequence[Decision]) -> str:
    """What makes two messages with one Message-ID the same message: who, subject, text and
    attachments (not the bytes: relays add headers, and a redelivery is still the same)."""
    digest = hashlib.sha256()
    sender = parsed.from_address.email.lower() if parsed.from_address else ""
    for part in (sender, parsed.subject, parsed.text):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    for decision in decisions:
        digest.update(decision.filename.encode("utf-8", "surrogatepass") + b"\0")
        digest.update(hashlib.sha256(decision.part.data).digest())
    return digest.hexdigest()


@dataclass(frozen=True)
class _Prepared:
    """A message as it was read, before any transaction: what claiming and the rules need."""

    raw: bytes
    parsed: ParsedEmail
    envelope: Envelope
    classification: Classification
    sender: str | None
    now: datetime
    decisions: list[Decision]
    stored: dict[int, str]
    digest: str | None


def _public(row: InboundEmail | Row[Any], *, duplicate: bool = False) -> InboundEmailPublic:
    public = InboundEmailPublic.model_validate(row, from_attributes=True)
    return public.model_copy(update={"duplicate": duplicate}) if duplicate else public


def _address(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return normalize_email(value.strip().strip("<>"))
    except ValueError:
        return None


def _urgency(parsed: ParsedEmail) -> Urgency:
    return stated_urgency(
        importance=parsed.header("Importance"),
        x_priority=parsed.header("X-Priority"),
        priority=parsed.header("Priority"),
        subject=parsed.subject,
        text=parsed.text,
    )


@dataclass
class _Work:
    """What processing one message decided, written to its record at the end."""

    inbound_id: UUID
    parsed: ParsedEmail
    classification: Classification
    sender: str | None
    now: datetime
    values: dict[str, Any] = field(default_factory=dict)
    review: list[str] = field(default_factory=list)
    identity_doubts: tuple[str, ...] = ()  # why From cannot be trusted to name who wrote

    @property
    def identity_trusted(self) -> bool:
        return not self.identity_doubts


@dataclass(frozen=True)
class _Match:
    """The ticket a message refers to, how, and whether its sender is one of the ticket's
    people (its contact, or a contact of its organization)."""

    ticket: Ticket
    matched_by: MatchedBy
    sender_on_ticket: bool


class Inbound:
    """Takes raw messages in (see the module docstring). One instance per process."""

    def __init__(
        self,
        *,
        sessions: SessionMaker,
        outbox: Outbox,
        settings: Settings,
        store: BlobStore | None = None,
        clock: Callable[[], datetime] = utcnow,
        parser: Callable[[bytes, Limits], ParsedEmail] | None = None,
    ) -> None:
        self.sessions = sessions
        self.outbox = outbox
        self.config = InboundConfig.from_settings(settings)
        self.store = store or BlobStore(settings.attachment_store_dir)
        self.clock = clock
        self.parser = parser

    async def receive(self, raw: bytes, envelope: Envelope) -> InboundEmailPublic:
        """Take one message in; returns what became of it (the first result on a re-delivery)."""
        parsed = await parse_within(raw, self.config.parse_limits, self.parser)
        key = message_key(parsed, raw)
        try:
            return await self._process(raw, parsed, key, envelope)
        except Exception as error:
            log.exception("inbound email: processing failed; keeping it raw for a human")
            return await self._store_flagged(
                raw, key, envelope, f"processing failed: {type(error).__name__}: {error}"
            )

    # --- the one transaction ------------------------------------------------------------------

    async def _process(
        self, raw: bytes, parsed: ParsedEmail, key: str, envelope: Envelope
    ) -> InboundEmailPublic:
        now = self.clock()
        classification = (
            classify(parsed, envelope_sender=envelope.sender, own=self.config.own, secret=self.config.secret)
            if parsed.understood
            else Classification(InboundKind.UNKNOWN, ())
        )
        sender = _address(parsed.from_address.email if parsed.from_address else None) or _address(
            envelope.sender
        )
        decisions = (
            await asyncio.to_thread(select, parsed.attachments, self.config.attachment_limits)
            if parsed.understood and parsed.attachments
            else []
        )
        stored: dict[int, str] = {}
        for index, decision in enumerate(decisions):
            if decision.accepted:
                stored[index] = await asyncio.to_thread(self.store.put, decision.part.data)
        digest = content_digest(parsed, decisions) if parsed.understood else None
        prepared = _Prepared(raw, parsed, envelope, classification, sender, now, decisions, stored, digest)
        first = await self._claim_and_apply(prepared, key, None)
        if first is not None:
            return first
        existing = await self._existing(key)
        if digest is None or existing.content_sha256 in (None, digest):
            return _public(existing, duplicate=True)  # delivered before: the first result stands
        # The same Message-ID with other content: a client bug or an attack; kept, flagged.
        reused_key = "reused:" + hashlib.sha256(f"{key}\n{digest}".encode()).hexdigest()
        again = await self._claim_and_apply(prepared, reused_key, existing)
        return again if again is not None else _public(await self._existing(reused_key), duplicate=True)

    async def _existing(self, key: str) -> InboundEmail:
        async with self.sessions() as session:
            existing = await inbound_repo.get_inbound_by_key(session, key)
        assert existing is not None
        return existing

    async def _claim_and_apply(
        self, prepared: _Prepared, key: str, reused: InboundEmail | None
    ) -> InboundEmailPublic | None:
        """Claim ``key`` for the message and apply the rules in one transaction; None when the
        key was taken (delivered before, or concurrently). A message re-using the Message-ID of
        ``reused`` with other content is stored and flagged, never acted on."""
        p = prepared
        async with self.sessions() as session:
            uow = UnitOfWork(session, self.outbox)
            inbound_id = new_id()
            values = self._record_values(
                inbound_id, p.raw, p.parsed, key, p.envelope, p.classification, p.sender, p.now
            )
            claimed = await inbound_repo.claim_inbound(session, {**values, "content_sha256": p.digest})
            if not claimed:
                await uow.rollback()
                return None
            work = _Work(
                inbound_id,
                p.parsed,
                p.classification,
                p.sender,
                p.now,
                identity_doubts=p.parsed.identity_doubts,
            )
            try:
                if reused is None:
                    await self._apply_rules(uow, work, p.envelope, p.decisions, p.stored)
                else:
                    first = f"{reused.received_at:%Y-%m-%d %H:%M} UTC as {reused.id}"
                    work.review.append(
                        f"Message-ID {p.parsed.message_id} re-used with different content (first received "
                        f"{first}): a client bug or an attack, not acted on"
                    )
                    work.values["outcome"] = InboundOutcome.FLAGGED
                    rows = self._attachment_rows(work, p.decisions, p.stored, None, Visibility.INTERNAL)
                    await inbound_repo.add_attachments(session, rows)
                work.values["needs_review"] = bool(work.review)
                work.values["review_reason"] = "; ".join(work.review)[:2000] or None
                row = await inbound_repo.finish_inbound(session, inbound_id, **work.values)
                await uow.commit()
            except BaseException:
                await uow.rollback()
                raise
            return _public(row)

    def _record_values(
        self,
        inbound_id: UUID,
        raw: bytes,
        parsed: ParsedEmail,
        key: str,
        envelope: Envelope,
        classification: Classification,
        sender: str | None,
        now: datetime,
    ) -> dict[str, Any]:
        bounce = classification.bounce
        return {
            "id": inbound_id,
            "message_key": key,
            "raw_sha256": hashlib.sha256(raw).hexdigest(),
            "raw_size_bytes": len(raw),
            "raw_message": raw,
            "received_via": envelope.via,
            "envelope_sender": clean_text(envelope.sender, 320) if envelope.sender is not None else None,
            "envelope_recipients": [clean_text(r, 320) for r in envelope.recipients[:100]],
            "from_address": sender,
            "from_name": parsed.from_address.name[:200]
            if parsed.from_address and parsed.from_address.name
            else None,
            "subject": parsed.subject[:300],
            "kind": classification.kind,
            "kind_reasons": list(classification.reasons),
            "outcome": InboundOutcome.STORED,
            "matched_by": None,
            "ticket_id": None,
            "ticket_message_id": None,
            "contact_id": None,
            "acknowledge": None,
            "full_text": parsed.text[:MAX_FULL_TEXT_CHARS],
            "needs_review": False,
            "review_reason": None,
            "malformed": not parsed.understood
            or bool(parsed.problems)
            or not parsed.has_header_block
            or bool(parsed.identity_doubts),
            "defects": list(parsed.defects),
            "bounce_recipients": list(bounce.recipients[:100]) if bounce else [],
            "bounce_permanent": bounce.permanent if bounce else None,
            "received_at": now,
        }

    async def _apply_rules(
        self,
        uow: UnitOfWork,
        work: _Work,
        envelope: Envelope,
        decisions: list[Decision],
        stored: dict[int, str],
    ) -> None:
        parsed = work.parsed
        if not parsed.understood:
            work.review.extend(parsed.problems or ("the message could not be parsed",))
            work.values["outcome"] = InboundOutcome.FLAGGED
            return
        work.review.extend(parsed.problems)
        if not parsed.has_header_block:
            work.review.append("no header block: the message starts with its body")
        caller = Caller(principal=INBOUND_PRINCIPAL, request_id=None)
        match = await self._match(uow, work, envelope)
        if not work.classification.from_a_person:
            await self._machine_message(uow, caller, work, match, decisions, stored)
            return
        if work.sender is None:
            work.review.append("no usable sender address (From or envelope)")
            work.values["outcome"] = InboundOutcome.FLAGGED
            return
        if match is not None and not match.sender_on_ticket:
            await self._note_from_outside(uow, caller, work, match, decisions, stored)
            return
        if work.identity_doubts:
            # A From the parser had to repair authorizes nothing: no contact is made or used.
            work.review.append(f"sender could not be verified: {'; '.join(work.identity_doubts)}")
            work.values["outcome"] = InboundOutcome.FLAGGED
            rows = self._attachment_rows(work, decisions, stored, None, Visibility.INTERNAL)
            await inbound_repo.add_attachments(uow.session, rows)
            return
        contact = await organization_repo.upsert_contact(
            uow.session,
            email=work.sender,
            name=parsed.from_address.name
            if parsed.from_address and parsed.from_address.email.lower() == work.sender
            else None,
        )
        work.values["contact_id"] = contact.id
        body = self._body(parsed, decisions)
        ticket: Ticket
        if match is None:
            ticket = await self._open_ticket(uow, caller, work, contact, body)
            work.values["outcome"] = InboundOutcome.TICKET_CREATED
        else:
            found, matched_by = match.ticket, match.matched_by
            work.values["matched_by"] = matched_by.value
            follow_up = follow_up_for(
                _facts(found, ""), now=work.now, reopen_window=self.config.reopen_window
            )
            if follow_up is FollowUp.NEW_LINKED_TICKET:
                ticket = await self._open_ticket(uow, caller, work, contact, body)
                await inbound_repo.link_tickets(uow.session, ticket.id, found.id, FOLLOW_UP_OF)
                await ticket_repo.add_audit(
                    uow.session,
                    entity_type="ticket",
                    entity_id=ticket.id,
                    action="linked",
                    actor=_actor(work),
                    changes={"follows_up": str(found.id), "number": ticket_number(found.number)},
                    request_id=None,
                )
                work.values["outcome"] = InboundOutcome.LINKED_TICKET_CREATED
            else:
                ticket = found
                if follow_up is FollowUp.REOPEN:
                    await ticket_service.set_status(
                        uow, caller, ticket, TicketStatus.OPEN, "customer replied by email"
                    )
                    work.values["outcome"] = InboundOutcome.TICKET_REOPENED
                else:
                    work.values["outcome"] = InboundOutcome.MESSAGE_ADDED
                message = await self._add_message(
                    uow, caller, ticket, body, Visibility.PUBLIC, AuthorKind.CUSTOMER, contact.id, work
                )
                work.values["ticket_message_id"] = message.id
        work.values["ticket_id"] = ticket.id
        if parsed.message_id:
            await inbound_repo.remember_message_id(uow.session, parsed.message_id, ticket.id, "in")
        rows = self._attachment_rows(work, decisions, stored, ticket.id, Visibility.PUBLIC)
        await inbound_repo.add_attachments(uow.session, rows)
        await self._sla_document(uow, work, contact.organization_id, decisions, rows)
        await self._tell_about_refused(uow, work, decisions, ticket)

    # --- matching ---------------------------------------------------------------------------

    async def _match(self, uow: UnitOfWork, work: _Work, envelope: Envelope) -> _Match | None:
        """The ticket this message belongs to, by the rules of reply_matching (in order), and
        whether its sender is one of that ticket's people. A reference of ours (a MAC-verified
        Message-ID or reply token) says which ticket is meant, not who writes: it matches
        whoever sends it, and ``sender_on_ticket`` tells the caller how far to trust them."""
        session = uow.session
        parsed = work.parsed
        if work.classification.kind is InboundKind.OWN and parsed.message_id:
            own = ticket_of_our_message_id(parsed.message_id, secret=self.config.secret)
            ticket = await ticket_repo.get_ticket(session, own, for_update=True) if own else None
            if ticket is not None:
                return _Match(ticket, MatchedBy.OWN_MESSAGE_ID, False)
        sender = await self._sender(uow, work.sender if work.identity_trusted else None)
        candidates = thread_ids(parsed.in_reply_to, parsed.references)
        if work.classification.kind is InboundKind.BOUNCE:
            candidates += [mid for mid in parsed.embedded_message_ids if mid not in candidates]
        known = await inbound_repo.tickets_of_message_ids(session, candidates)
        for message_id in candidates:
            ticket_id: UUID | None = None
            verified = False
            if message_id in known:
                ticket_id, direction = known[message_id]
                verified = direction == "out"
            if ticket_id is None:
                ticket_id = ticket_of_our_message_id(message_id, secret=self.config.secret)
                verified = ticket_id is not None
            if ticket_id is None:
                continue
            ticket = await ticket_repo.get_ticket(session, ticket_id, for_update=True)
            if ticket is None:
                continue
            on_ticket = sender is not None and sender_may_join(sender, await self._facts(uow, ticket))
            if verified or on_ticket:
                return _Match(ticket, MatchedBy.IN_REPLY_TO, on_ticket)
        recipients = [*envelope.recipients, *(a.email for a in (*parsed.to, *parsed.cc))]
        recipients += parsed.header_values("Delivered-To") + parsed.header_values("X-Original-To")
        owner = ticket_of_reply_address(
            recipients, support_address=self.config.own.support_address, secret=self.config.secret
        )
        if owner is not None:
            ticket = await ticket_repo.get_ticket(session, owner, for_update=True)
            if ticket is not None:
                on_ticket = sender is not None and sender_may_join(sender, await self._facts(uow, ticket))
                return _Match(ticket, MatchedBy.REPLY_TOKEN, on_ticket)
        number = ticket_number_in_subject(parsed.subject)
        if number is not None and sender is not None:
            ticket = await ticket_repo.get_ticket_by_number(session, number)
            if ticket is not None and sender_may_join(sender, await self._facts(uow, ticket)):
                locked = await ticket_repo.get_ticket(session, ticket.id, for_update=True)
                assert locked is not None
                return _Match(locked, MatchedBy.SUBJECT_TAG, True)
            if ticket is not None and work.classification.from_a_person:
                work.review.append(
                    f"subject names {ticket_number(number)} but the sender is not on that ticket"
                )
        return None

    async def _sender(self, uow: UnitOfWork, email: str | None) -> Sender | None:
        if email is None:
            return None
        contact = await organization_repo.get_contact_by_email(uow.session, email)
        if contact is not None and contact.organization_id is not None:
            return Sender(email, contact.organization_id)
        owners = await organization_repo.owners_of_domains(uow.session, [email.rsplit("@", 1)[-1]])
        return Sender(email, next(iter(owners.values()), None))

    async def _facts(self, uow: UnitOfWork, ticket: Ticket) -> TicketFacts:
        contact = await organization_repo.get_contact(uow.session, ticket.contact_id)
        return _facts(ticket, contact.email if contact else "")

    # --- effects ----------------------------------------------------------------------------

    def _body(self, parsed: ParsedEmail, decisions: list[Decision]) -> str:
        body = strip_quotes_and_signature(parsed.text)[:MAX_BODY_CHARS].strip()
        if body:
            return body
        if decisions:
            return "(no text; see the attachments: " + ", ".join(d.filename for d in decisions[:20]) + ")"
        return "(empty message)"

    async def _open_ticket(
        self, uow: UnitOfWork, caller: Caller, work: _Work, contact: organization_repo.ContactRow, body: str
    ) -> Ticket:
        """A ticket from an email (``ticket_service.create_ticket``), with what only mail has: the
        acknowledgment rate limit per sender, and the mail it threads under."""
        session = uow.session
        since = work.now - self.config.ack_window
        acknowledge = (
            await inbound_repo.recent_email_tickets(session, contact.id, since) < self.config.ack_limit
        )
        if not acknowledge:
            work.review.append("acknowledgment skipped: this sender reached the rate limit")
        subject = subject_for_new_ticket(work.parsed.subject)
        ticket = await ticket_service.create_ticket(
            uow,
            caller,
            ticket_service.NewTicket(
                contact=contact,
                organization_id=contact.organization_id,
                subject=subject,
                description=body,
                urgency=_urgency(work.parsed),
                channel=Channel.EMAIL,
                at=work.now,
                actor=_actor(work),
                audit_changes={
                    "channel": "email",
                    "subject": subject,
                    "inbound_email_id": str(work.inbound_id),
                    "acknowledge": acknowledge,
                },
                acknowledge=acknowledge,
                source_message_id=work.parsed.message_id,  # the acknowledgment threads under it
            ),
        )
        work.values["acknowledge"] = acknowledge
        return ticket

    async def _add_message(
        self,
        uow: UnitOfWork,
        caller: Caller,
        ticket: Ticket,
        body: str,
        visibility: Visibility,
        author_kind: AuthorKind,
        author_id: UUID | None,
        work: _Work,
    ) -> Message:
        return await ticket_service.add_message(
            uow,
            caller,
            ticket,
            ticket_service.NewMessage(
                body=body,
                visibility=visibility,
                author_kind=author_kind,
                author_id=author_id,
                at=work.now,
                actor=_actor(work),
                audit_context={"inbound_email_id": str(work.inbound_id)},
                status_reason="customer replied by email",
            ),
        )

    async def _internal_note(
        self,
        uow: UnitOfWork,
        caller: Caller,
        work: _Work,
        ticket: Ticket,
        heading: str,
        reasons: Sequence[str],
        limit: int,
    ) -> None:
        """The message as an internal note by the system on ``ticket``: agents see it, the
        customer's page and mail do not, and the ticket's status and requester stay."""
        note = (
            f"[{heading}] {work.parsed.subject}\n({'; '.join(reasons[:3])})\n\n"
            + strip_quotes_and_signature(work.parsed.text)[:limit]
        ).strip()
        message = await self._add_message(
            uow, caller, ticket, note, Visibility.INTERNAL, AuthorKind.SYSTEM, None, work
        )
        work.values["ticket_message_id"] = message.id
        work.values["outcome"] = InboundOutcome.RECORDED_ON_TICKET

    async def _note_from_outside(
        self,
        uow: UnitOfWork,
        caller: Caller,
        work: _Work,
        match: _Match,
        decisions: list[Decision],
        stored: dict[int, str],
    ) -> None:
        """A person's mail that refers to a ticket (one of our Message-IDs, a reply token) but
        whose sender is not one of its people, or whose From we could not trust: the reference
        proves which ticket is meant, not who writes. Kept on that ticket for agents only and
        flagged; nobody is told anything (no contact is made, no acknowledgment, no notice of
        refused attachments), and its PDFs sign no SLA."""
        ticket = match.ticket
        work.values["ticket_id"] = ticket.id
        work.values["matched_by"] = match.matched_by.value
        number = ticket_number(ticket.number)
        sender = display_address(work.sender or "")  # a look-alike domain shows its xn-- form
        if work.identity_doubts:
            doubts = "; ".join(work.identity_doubts)
            reason = f"sender not on ticket: the sender could not be verified ({doubts})"
        else:
            reason = (
                f"sender not on ticket: {sender} is neither a participant of {number} "
                f"nor a contact of its organization (matched by {match.matched_by.value.replace('_', ' ')})"
            )
        work.review.append(reason)
        who = "whose sender could not be verified" if work.identity_doubts else "who is not on this ticket"
        await self._internal_note(
            uow,
            caller,
            work,
            ticket,
            f"mail from {sender}, {who}",
            (reason,),
            MAX_BODY_CHARS,
        )
        rows = self._attachment_rows(work, decisions, stored, ticket.id, Visibility.INTERNAL)
        await inbound_repo.add_attachments(uow.session, rows)

    async def _machine_message(
        self,
        uow: UnitOfWork,
        caller: Caller,
        work: _Work,
        match: _Match | None,
        decisions: list[Decision],
        stored: dict[int, str],
    ) -> None:
        """Auto-replies, bounces, complaints, list mail and our own: kept, recorded on the
        ticket they belong to as an internal note (our own mail is already there), never a
        ticket, never an acknowledgment, never a status change."""
        classification = work.classification
        ticket = match.ticket if match else None
        if match is not None:
            work.values["ticket_id"] = match.ticket.id
            work.values["matched_by"] = match.matched_by.value
        if classification.kind is InboundKind.OWN:
            # A loop (a forwarding rule, a misrouted relay): linked to its ticket, where the
            # mail already is, never acknowledged; someone should find out why it came back.
            work.review.append(f"our own mail came back in ({'; '.join(classification.reasons[:3])})")
            if ticket is not None:
                work.values["outcome"] = InboundOutcome.RECORDED_ON_TICKET
            rows = self._attachment_rows(work, decisions, stored, None, Visibility.INTERNAL)
        elif ticket is not None:
            what = classification.kind.value.replace("_", " ")
            await self._internal_note(
                uow,
                caller,
                work,
                ticket,
                f"{what} from {display_address(work.sender) if work.sender else 'an unknown sender'}",
                classification.reasons,
                MACHINE_NOTE_CHARS,
            )
            rows = self._attachment_rows(work, decisions, stored, ticket.id, Visibility.INTERNAL)
        else:
            rows = self._attachment_rows(work, decisions, stored, None, Visibility.INTERNAL)
        await inbound_repo.add_attachments(uow.session, rows)
        bounce = classification.bounce
        if bounce is not None and bounce.recipients:
            ours = [
                mid
                for mid in (*bounce.original_message_ids, *work.parsed.in_reply_to, *work.parsed.references)
                if ticket_of_our_message_id(mid, secret=self.config.secret) is not None
            ]
            if ours:
                diagnostics = "; ".join(s.diagnostic for s in work.parsed.delivery_status if s.diagnostic)
                await uow.emit(
                    ev.EventType.EMAIL_BOUNCED,
                    ev.EmailBouncedV1(
                        inbound_email_id=work.inbound_id,
                        recipients=list(bounce.recipients[:50]),
                        permanent=bounce.permanent,
                        original_message_ids=ours[:10],
                        ticket_id=ticket.id if ticket else None,
                        diagnostic=diagnostics[:1000],
                        received_at=work.now,
                    ),
                    subject=f"inbound_email:{work.inbound_id}",
                )

    def _attachment_rows(
        self,
        work: _Work,
        decisions: list[Decision],
        stored: dict[int, str],
        ticket_id: UUID | None,
        visibility: Visibility,
    ) -> list[dict[str, Any]]:
        return [
            {
                "id": new_id(),
                "inbound_email_id": work.inbound_id,
                "ticket_id": ticket_id,
                "visibility": visibility,
                "sha256": stored.get(index),
                "size_bytes": len(decision.part.data),
                "content_type": decision.content_type,
                "filename": decision.filename,
                "inline": decision.part.inline,
                "content_id": decision.part.content_id,
                "refused_reason": decision.refused_reason,
                "created_at": work.now,
            }
            for index, decision in enumerate(decisions)
        ]

    async def _sla_document(
        self,
        uow: UnitOfWork,
        work: _Work,
        organization_id: UUID | None,
        decisions: list[Decision],
        rows: list[dict[str, Any]],
    ) -> None:
        """A PDF from an organization that has not signed its SLA: "signed SLA received —
        needs review" until an agent confirms it."""
        if organization_id is None:
            return
        organization = await organization_repo.get_organization(uow.session, organization_id)
        if organization is None or organization.sla_signed_at is not None:
            return
        for decision, row in zip(decisions, rows, strict=True):
            if is_pdf(decision):
                await inbound_repo.add_sla_review(
                    uow.session,
                    {
                        "id": new_id(),
                        "organization_id": organization_id,
                        "inbound_email_id": work.inbound_id,
                        "attachment_id": row["id"],
                        "state": SlaReviewState.NEEDS_REVIEW,
                        "created_at": work.now,
                    },
                )
                work.review.append("signed SLA received — needs review")
                return

    async def _tell_about_refused(
        self, uow: UnitOfWork, work: _Work, decisions: list[Decision], ticket: Ticket
    ) -> None:
        refused = [d for d in decisions if not d.accepted]
        if not refused or work.sender is None:
            return
        limits = self.config.attachment_limits
        await uow.emit(
            ev.EventType.EMAIL_ATTACHMENTS_REFUSED,
            ev.EmailAttachmentsRefusedV1(
                inbound_email_id=work.inbound_id,
                recipient=work.sender,
                recipient_name=work.parsed.from_address.name if work.parsed.from_address else None,
                subject=work.parsed.subject[:300],
                in_reply_to=work.parsed.message_id,
                ticket_id=ticket.id,
                ticket_number=ticket_number(ticket.number),
                refused=[
                    ev.RefusedAttachmentV1(
                        filename=d.filename, size_bytes=len(d.part.data), reason=d.refused_reason or ""
                    )
                    for d in refused[:50]
                ],
                max_attachment_bytes=limits.max_bytes,
                max_attachments=limits.max_count,
                max_total_bytes=limits.max_total_bytes,
            ),
            subject=f"ticket:{ticket.id}",
        )

    # --- the last resort ----------------------------------------------------------------------

    async def _store_flagged(
        self, raw: bytes, key: str, envelope: Envelope, reason: str
    ) -> InboundEmailPublic:
        """Keep the raw message for a human when processing failed. If even this fails (the
        database is down), the error propagates: the SMTP client is told to retry later."""
        now = self.clock()
        empty = ParsedEmail(understood=False)
        values = self._record_values(
            new_id(), raw, empty, key, envelope, Classification(InboundKind.UNKNOWN, ()), None, now
        )
        values.update(
            outcome=InboundOutcome.FLAGGED, needs_review=True, review_reason=reason[:2000], malformed=True
        )
        async with self.sessions() as session:
            await inbound_repo.claim_inbound(session, values)
            await session.commit()
            row = await inbound_repo.get_inbound_by_key(session, key)
        assert row is not None
        return _public(row)


def _facts(ticket: Ticket, contact_email: str) -> TicketFacts:
    return TicketFacts(
        ticket_id=ticket.id,
        organization_id=ticket.organization_id,
        contact_email=contact_email,
        status=TicketStatus(ticket.status),
        closed_at=ticket.closed_at,
    )


def _actor(work: _Work) -> str:
    return f"email:{work.sender or 'unknown'}"[:100]


# --- SLA document confirmation (an agent, through the API) ------------------------------------


async def confirm_sla_document(uow: UnitOfWork, caller: Caller, review_id: UUID) -> SlaDocumentReview:
    """An agent confirms a received SLA document: the organization is signed from now on
    (``organization.updated`` and ``organization.sla_signed``); every pending review of that
    organization is settled. Confirming twice changes nothing."""
    require_staff(caller)
    review = await inbound_repo.get_sla_review(uow.session, review_id, for_update=True)
    if review is None:
        raise SlaReviewNotFound(f"No SLA document review {review_id}.")
    if review.state == SlaReviewState.CONFIRMED:
        return review
    organization = await uow.session.get(Organization, review.organization_id, with_for_update=True)
    if organization is None:
        raise OrganizationNotFound(f"No organization {review.organization_id}.")
    now = utcnow()
    await inbound_repo.settle_sla_reviews(uow.session, organization.id, by=caller.principal.audit_ref, at=now)
    await organization_service.sign_sla(
        uow,
        caller,
        organization,
        at=now,
        evidence={"sla_document_review_id": str(review.id), "attachment_id": str(review.attachment_id)},
    )
    await uow.session.refresh(review)
    return review
