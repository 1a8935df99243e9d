"""notifier's rules: which mail goes to whom for which event, and how one is delivered.

Event handlers (see ``tasks.py``) only *record*: a notification row with the rendered mail
(unique per source × recipient × kind) or a webhook delivery row (unique per subscription ×
event), in the consumer's transaction. Sending is a job of its own per row, enqueued after
commit; so a slow relay or endpoint never holds up events, and a repeated event sends nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import delivery_policy as policy
from services.notifier import repository as repo
from services.notifier import webhook_http
from services.notifier.acknowledgment import Promise, office_hours_promise, triage_promise
from services.notifier.calendar_invites import ICS_FILENAME, Organizer, build_invite, method_for
from services.notifier.compose import Attachment, build_message
from services.notifier.dispatch import DELIVER_WEBHOOK, SEND_EMAIL, Dispatcher, Job
from services.notifier.documents import SLA_FILENAME, sla_document
from services.notifier.errors import (
    AddressSuppressed,
    DeliveryInFlight,
    DeliveryNotFound,
    NotificationNotFound,
    RefusedWebhookUrl,
    SubscriptionNotFound,
    SuppressionNotFound,
    UnknownEventType,
)
from services.notifier.models import (
    AgentView,
    DeliveryState,
    Notification,
    NotificationKind,
    TicketSla,
    TicketView,
    WebhookDelivery,
    WebhookSubscription,
    WebhookSubscriptionCreate,
    WebhookSubscriptionUpdate,
)
from services.notifier.rendering import Rendered, render
from services.notifier.settings import WEEKDAY_NAMES, Settings
from services.notifier.smtp import PermanentSmtpError, Relay, TransientSmtpError
from services.notifier.webhook_signing import new_secret, signed_headers
from shared import events as ev
from shared import sign_in_links
from shared.auth import require_admin, require_staff
from shared.clock import utcnow
from shared.db import SessionMaker
from shared.ids import new_id
from shared.mail_ids import make_message_id, make_reply_token, plus_address
from shared.outbox import Outbox
from shared.principal import Principal, PrincipalKind
from shared.signed_links import FEEDBACK, TICKET_STATUS, sign
from shared.time_format import format_clock, format_instant
from shared.transient import TransientError, is_transient
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)  # longer than a job may run (30 s): a live attempt keeps its row
# An assignment told before ticket.created was handled (its event overtook ticket.created's):
# the customer's mail waits this long for the acknowledgment, which then tells it instead.
ASSIGNMENT_WAITS_FOR_ACKNOWLEDGMENT = timedelta(seconds=60)

# Ticket events portals may subscribe to (internal messages are never sent).
WEBHOOK_EVENT_TYPES = frozenset(
    {
        ev.EventType.TICKET_CREATED,
        ev.EventType.TICKET_UPDATED,
        ev.EventType.TICKET_MESSAGE_ADDED,
        ev.EventType.TICKET_STATUS_CHANGED,
        ev.EventType.TICKET_CLOSED,
        ev.EventType.TICKET_TRIAGED,
    }
)

STATUS_WORDING = {
    "new": ("Received", "We have your request and will be in touch."),
    "open": ("In progress", "A consultant is working on your request."),
    "pending_customer": ("Waiting for your reply", "We need something from you: please reply to this email."),
}


@dataclass
class Notifier:
    """What handlers and jobs need: settings, the database, the queue, HTTP clients, a clock."""

    settings: Settings
    sessions: SessionMaker
    single_statements: SessionMaker  # one-statement writes, no BEGIN/COMMIT (shared.db)
    outbox: Outbox
    dispatcher: Dispatcher
    webhook_client: httpx.AsyncClient
    billing_client: httpx.AsyncClient
    relay: Relay
    clock: Callable[[], datetime] = field(default=utcnow)
    # Mail the relay accepted whose "sent" could not be written yet (the database down): by id,
    # when. Until it is written, an attempt that finds the row again records it, never resends.
    sent_unrecorded: dict[UUID, datetime] = field(default_factory=dict)
    _recording: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def secret(self) -> str:
        return self.settings.secret_key.get_secret_value()

    async def close(self) -> None:
        for task in self._recording:
            task.cancel()
        await asyncio.gather(*self._recording, return_exceptions=True)
        await self.dispatcher.drain()
        await self.webhook_client.aclose()
        await self.billing_client.aclose()
        await self.relay.aclose()


@dataclass(frozen=True)
class TicketRef:
    id: UUID
    number: str
    subject: str
    organization_id: UUID | None


# --- context every template gets ------------------------------------------------------------


def office_hours_text(settings: Settings, timezone: str) -> str:
    days = [WEEKDAY_NAMES.index(d) for d in settings.office_days.split(",")]
    names = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    ordered = sorted(days)
    contiguous = ordered == list(range(ordered[0], ordered[-1] + 1))
    span = (
        f"{names[ordered[0]]} to {names[ordered[-1]]}"
        if contiguous and len(ordered) > 2
        else ", ".join(names[d] for d in ordered)
    )

    def clock(t: Any) -> str:
        return f"{t.hour % 12 or 12}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'}"

    return f"{span}, {clock(settings.office_opens)} to {clock(settings.office_closes)} ({timezone})"


def base_context(settings: Settings) -> dict[str, Any]:
    return {
        "company": {
            "name": settings.company_name,
            "postal_address": settings.company_postal_address,
            "phone": settings.company_phone,
            "support_address": settings.support_address,
            "accounting_address": settings.accounting_address,
        },
        "office_hours": office_hours_text(settings, settings.office_timezone),
    }


def ticket_url(settings: Settings, number: str) -> str:
    """Where staff open a ticket (internal mail links here)."""
    return settings.ticket_url_template.format(base=settings.public_base_url.rstrip("/"), number=number)


def _ticket_link_token(notifier: Notifier, *, ticket_id: UUID, email: str, now: datetime) -> str:
    """The key of a customer's links to their ticket (ticket_api's ticket page and booking page):
    signed for this ticket and this contact, working for months."""
    return sign(
        {"ticket_id": str(ticket_id), "email": email.lower()},
        purpose=TICKET_STATUS,
        secret=notifier.secret,
        expires_at=now + timedelta(days=notifier.settings.ticket_status_link_days),
    )


def ticket_status_url(notifier: Notifier, *, ticket_id: UUID, email: str, now: datetime) -> str:
    """The customer's "track your ticket" link: the ticket's state and public conversation."""
    settings = notifier.settings
    token = _ticket_link_token(notifier, ticket_id=ticket_id, email=email, now=now)
    return settings.ticket_status_url_template.format(base=settings.public_base_url.rstrip("/"), token=token)


def booking_url(notifier: Notifier, *, ticket_id: UUID, agent_id: UUID, email: str, now: datetime) -> str:
    """Where the customer picks a time with the ticket's consultant (their free slots)."""
    settings = notifier.settings
    token = _ticket_link_token(notifier, ticket_id=ticket_id, email=email, now=now)
    return settings.booking_url_template.format(
        base=settings.public_base_url.rstrip("/"), token=token, ticket_id=ticket_id, agent_id=agent_id
    )


def mail_ticket_link(
    notifier: Notifier, ticket: TicketRef, *, recipient: str, customer_facing: bool, now: datetime
) -> str:
    """The ticket link a mail carries: the signed status page for the customer, the staff URL
    for everyone else."""
    if customer_facing:
        return ticket_status_url(notifier, ticket_id=ticket.id, email=recipient, now=now)
    return ticket_url(notifier.settings, ticket.number)


def feedback_url(notifier: Notifier, *, ticket_id: UUID, email: str, rating: str, now: datetime) -> str:
    token = sign(
        {"ticket_id": str(ticket_id), "email": email, "rating": rating},
        purpose=FEEDBACK,
        secret=notifier.secret,
        expires_at=now + timedelta(days=notifier.settings.feedback_link_days),
    )
    return f"{notifier.settings.public_base_url.rstrip('/')}/api/v1/feedback/{token}"


# --- recording mail -------------------------------------------------------------------------


def render_mail(
    settings: Settings,
    kind: NotificationKind,
    *,
    recipient_name: str | None,
    ticket: TicketRef | None,
    ticket_link: str | None,
    context: dict[str, Any],
) -> Rendered:
    """A mail's subject and parts: the template of ``kind`` with what every mail gets
    (``ticket_link``: :func:`mail_ticket_link`, for this recipient)."""
    full_context = {
        **base_context(settings),
        "recipient_name": recipient_name or "there",
        "ticket": (
            {"number": ticket.number, "subject": ticket.subject, "url": ticket_link} if ticket else None
        ),
        **context,
    }
    return render(kind.value, full_context)


async def queue_email(
    session: AsyncSession,
    notifier: Notifier,
    *,
    dedupe_key: str,
    event_type: str,
    kind: NotificationKind,
    recipient: str,
    recipient_name: str | None,
    ticket: TicketRef | None,
    context: dict[str, Any],
    from_name: str | None = None,
    from_address: str | None = None,
    customer_facing: bool = True,
    auto_submitted: str | None = "auto-generated",
    attachments: Sequence[dict[str, Any]] = (),
    organization_id: UUID | None = None,
    not_before: datetime | None = None,
    replace_pending: bool = False,
    answers: str | None = None,
) -> UUID | None:
    """Record one mail (rendered now, sent by its own job after commit). ``None`` when this
    source already produced this kind of mail for this recipient (and ``replace_pending`` did
    not apply: with it, a still-pending twin takes the new content). ``answers``: the
    Message-ID of the recipient's own mail this one answers (In-Reply-To, last in References)."""
    settings = notifier.settings
    now = notifier.clock()
    recipient = recipient.lower()
    link = (
        mail_ticket_link(notifier, ticket, recipient=recipient, customer_facing=customer_facing, now=now)
        if ticket
        else None
    )
    rendered = render_mail(
        settings, kind, recipient_name=recipient_name, ticket=ticket, ticket_link=link, context=context
    )
    notification_id = new_id()
    message_id = make_message_id(
        ticket.id if ticket else notification_id, secret=notifier.secret, domain=settings.mail_domain
    )
    references = await repo.thread_message_ids(session, ticket.id) if ticket else []
    parent = threadable_message_id(answers)
    if parent is not None:
        references = [m for m in references if m != parent] + [parent]
    reply_to = None
    if ticket and customer_facing:
        reply_to = plus_address(settings.support_address, make_reply_token(ticket.id, secret=notifier.secret))
    values: dict[str, Any] = {
        "id": notification_id,
        "dedupe_key": dedupe_key,
        "event_type": event_type,
        "kind": kind.value,
        "recipient": recipient,
        "ticket_id": ticket.id if ticket else None,
        "ticket_number": ticket.number if ticket else None,
        "organization_id": organization_id or (ticket.organization_id if ticket else None),
        "from_name": from_name or f"{settings.company_name} Support",
        "from_address": from_address or settings.support_address,
        "reply_to": reply_to,
        "subject": rendered.subject,
        "text_body": rendered.text,
        "html_body": rendered.html,
        "message_id": message_id,
        "in_reply_to": references[-1] if references else None,
        "reference_ids": references,
        "auto_submitted": auto_submitted,
        "attachments": list(attachments),
        "state": DeliveryState.PENDING,
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "created_at": now,
        "updated_at": now,
    }
    # Due now in a worker: the row is born claimed (this attempt counted, a lease running) and
    # sent right after the commit, with no claim of its own. A crash in between leaves a lease
    # that runs out, and the sweeper sends it (the same Message-ID).
    send_here = notifier.dispatcher.run_here is not None and not_before is None
    suppression = await repo.get_suppression(session, recipient) if send_here else None
    if suppression is not None:
        values.update(state=DeliveryState.SUPPRESSED, last_error=f"address suppressed: {suppression.reason}")
    elif send_here:
        values.update(state=DeliveryState.SENDING, attempts=1, lease_until=now + LEASE)
    if not await repo.insert_notification(session, values):
        if replace_pending:
            twin = await repo.find_notification(session, dedupe_key, recipient, kind.value)
            if twin is not None and await repo.replace_unsent(
                session,
                twin.id,
                subject=rendered.subject,
                text_body=rendered.text,
                html_body=rendered.html,
                attachments=list(attachments),
                event_type=event_type,
                next_attempt_at=now,
                updated_at=now,
            ):
                _send_now_not_later(session, notifier, twin.id)
                return twin.id
        return None
    if ticket and customer_facing:
        # The customer's thread holds only mail the customer got: a customer mail never answers
        # (In-Reply-To) or names a mail sent to staff. Staff mail threads under the customer's.
        await repo.add_thread_message(session, ticket.id, message_id, now)
    if suppression is None:
        claimed = Notification(**values) if send_here else None
        notifier.dispatcher.after_commit(
            session, Job(SEND_EMAIL, str(notification_id), 0, defer_until=not_before, claimed=claimed)
        )
    return notification_id


def _send_now_not_later(session: AsyncSession, notifier: Notifier, notification_id: UUID) -> None:
    """A waiting mail made due now: a job of its own once ``session`` commits, and the deferred
    one taken off the queue."""
    waiting = Job(SEND_EMAIL, str(notification_id), 0)
    notifier.dispatcher.after_commit(
        session, Job(SEND_EMAIL, str(notification_id), 0, variant="now", withdraws=waiting.job_id)
    )


_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")


def threadable_message_id(message_id: str | None) -> str | None:
    """``message_id`` when it is safe to put in a header (one ``<…>`` token, no whitespace);
    else ``None``: it came from someone else's mail and must not break ours."""
    if message_id is None:
        return None
    candidate = message_id.strip()
    if not candidate.startswith("<"):
        candidate = f"<{candidate}>"
    return candidate if _MESSAGE_ID.fullmatch(candidate) else None


# --- which mail for which event ---------------------------------------------------------------


def _ticket_ref(p: ev.TicketSnapshotV1) -> TicketRef:
    return TicketRef(
        id=p.ticket_id,
        number=p.number,
        subject=p.subject,
        organization_id=p.organization.id if p.organization else None,
    )


async def project_ticket(session: AsyncSession, p: ev.TicketSnapshotV1) -> None:
    await repo.upsert_ticket_view(
        session,
        {
            "ticket_id": p.ticket_id,
            "number": p.number,
            "subject": p.subject,
            "contact_email": p.contact.email,
            "contact_name": p.contact.name,
            "organization_id": p.organization.id if p.organization else None,
            "timezone": p.organization.timezone if p.organization else None,
            "support_tier": p.organization.support_tier if p.organization else None,
            "assignee_id": p.assignee_id,
            "priority": p.priority,
            "status": p.status,
            "created_at": p.created_at,
            "updated_at": p.updated_at,
        },
    )


def _triage_promise(
    settings: Settings, arrived_at: datetime, sla: TicketSla | None, *, reader_timezone: str | None
) -> Promise | None:
    """Triage's promise for a ticket that arrived at ``arrived_at``, told in the customer's
    ``reader_timezone``; ``None`` while triage has not decided (or its clock is paused)."""
    if sla is None or sla.first_response_due_at is None:
        return None
    return triage_promise(
        arrived_at,
        due_at=sla.first_response_due_at,
        timezone=sla.calendar_timezone,
        target_minutes=sla.first_response_target_minutes,
        clock_started_at=sla.first_response_clock_started_at,
        fallback=settings.office_hours(sla.calendar_timezone),
        fallback_business_hours=settings.first_response_business_hours,
        reader_timezone=reader_timezone,
        closed_days=[(date.fromisoformat(d["day"]), d["name"]) for d in sla.closed_days or []],
    )


def acknowledgment_context(settings: Settings, promise: Promise, *, sla_attached: bool) -> dict[str, Any]:
    """The acknowledgment's promise; it names no consultant (:func:`_consultant_context` adds one)."""
    return {
        **promise.context(),
        "office_hours": office_hours_text(settings, promise.timezone),
        "sla_attached": sla_attached,
        "consultant": None,
    }


# The first mails of a ticket (the acknowledgment, the assignment news) meet three events:
# ticket.created (ticket_api), ticket.triaged (triage: the SLA's due times) and ticket.updated
# (ticket_api: the assignee it applied). Whom to tell as the consultant has one source, the
# assignee ticket_api applied (``ticket_view``): triage's decision is only read for its due
# times and call task, and for whether an assignment is still to come. Every handler takes the
# ticket's lock first, so each sees what the others wrote, whatever their order.


def _promise(
    settings: Settings, arrived_at: datetime, sla: TicketSla | None, *, reader_timezone: str
) -> tuple[Promise, bool]:
    """What the acknowledgment promises, and whether it is triage's (else notifier's
    office-hours estimate, while triage has not decided or its clock is paused)."""
    promise = _triage_promise(settings, arrived_at, sla, reader_timezone=reader_timezone)
    if promise is not None:
        return promise, True
    hours = settings.office_hours(reader_timezone)
    estimate = office_hours_promise(
        arrived_at, hours, settings.first_response_business_hours, reader_timezone=reader_timezone
    )
    return estimate, False


def _settled(sla: TicketSla | None, view: TicketView, from_triage: bool) -> bool:
    """Whether the first mails have all they wait for: triage's promise, and the assignment it
    asked for applied by ticket_api (a consultant ticket_api refused is never named: the
    acknowledgment then goes out when its wait ends)."""
    return from_triage and sla is not None and sla.assignee_id in (None, view.assignee_id)


def _ack_wait(notifier: Notifier) -> datetime | None:
    seconds = notifier.settings.ack_wait_for_triage_seconds
    return notifier.clock() + timedelta(seconds=seconds) if seconds > 0 else None


async def on_ticket_created(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    """Acknowledge at once. The promise in it is triage's SLA and it names the consultant
    ticket_api assigned: when both are known already (their events overtook this one), it goes
    out now; else it is recorded now with notifier's office-hours estimate, due after a short
    wait (``on_ticket_triaged`` and ``on_ticket_updated`` put in what they bring and make it
    due at once when nothing else is awaited)."""
    p = ev.payload_of(event, ev.TicketCreatedV1)
    await repo.lock_acknowledgment(session, p.ticket_id)  # triage's event may be handled right now
    await project_ticket(session, p)
    view = await repo.get_ticket_view(session, p.ticket_id)  # a newer ticket.updated may be in it
    assert view is not None
    if p.acknowledge:  # else ticket_api's inbound rate limit: this sender got many already
        settings = notifier.settings
        reader = p.organization.timezone if p.organization else settings.office_timezone
        sla = await repo.get_ticket_sla(session, p.ticket_id)
        promise, from_triage = _promise(settings, p.created_at, sla, reader_timezone=reader)
        agent = await repo.get_agent(session, view.assignee_id) if view.assignee_id else None
        ticket = _ticket_ref(p)
        sla_missing = p.organization is None or not p.organization.sla_signed
        await queue_email(
            session,
            notifier,
            dedupe_key=str(event.id),
            event_type=event.type,
            kind=NotificationKind.ACKNOWLEDGMENT,
            recipient=p.contact.email,
            recipient_name=p.contact.name,
            ticket=ticket,
            context={
                **acknowledgment_context(settings, promise, sla_attached=sla_missing),
                **(
                    _consultant_context(notifier, ticket, agent, email=p.contact.email, now=notifier.clock())
                    if agent
                    else {}
                ),
            },
            # RFC 3834: answering their mail is auto-replied; a web/API ticket auto-generated.
            auto_submitted="auto-replied" if p.channel == "email" else "auto-generated",
            attachments=[{"kind": "sla_document"}] if sla_missing else [],
            answers=p.source_message_id,  # threaded under the customer's own mail
            not_before=None if _settled(sla, view, from_triage) else _ack_wait(notifier),
        )
    if view.assignee_id is not None:
        await _tell_assignment(
            session,
            notifier,
            event,
            view,
            contact=p.contact,
            organization=p.organization,
            detailed=True,
            customer_told=p.acknowledge,
            wait_for_acknowledgment=False,
        )
    await fan_out_webhooks(session, notifier, event, p.organization.id if p.organization else None)


async def settle_acknowledgment(
    session: AsyncSession, notifier: Notifier, view: TicketView, sla: TicketSla | None
) -> bool:
    """Put what is known now into the ticket's acknowledgment while it waits to be sent
    (triage's promise, the consultant ticket_api assigned, with the link to book time: one
    mail instead of two a few hundred milliseconds apart), and make it due now once nothing
    else is awaited. An acknowledgment already claimed for sending (or sent) is never changed,
    and none is ever added: ``True`` when one was rewritten."""
    acknowledgment = await repo.unsent_notification(session, view.ticket_id, NotificationKind.ACKNOWLEDGMENT)
    if acknowledgment is None:
        return False
    if view.created_at is None:
        log.warning(
            "ticket %s: no arrival time projected; its acknowledgment keeps its estimate", view.ticket_id
        )
        return False
    settings = notifier.settings
    promise, from_triage = _promise(
        settings, view.created_at, sla, reader_timezone=view.timezone or settings.office_timezone
    )
    agent = await repo.get_agent(session, view.assignee_id) if view.assignee_id else None
    if not from_triage and agent is None:
        return False  # nothing new to say: the estimate it holds
    sla_attached = any(spec.get("kind") == "sla_document" for spec in acknowledgment.attachments)
    now = notifier.clock()
    ticket = _view_ref(view)
    rendered = render_mail(
        settings,
        NotificationKind.ACKNOWLEDGMENT,
        recipient_name=view.contact_name,
        ticket=ticket,
        ticket_link=mail_ticket_link(
            notifier, ticket, recipient=acknowledgment.recipient, customer_facing=True, now=now
        ),
        context={
            **acknowledgment_context(settings, promise, sla_attached=sla_attached),
            **(
                _consultant_context(notifier, ticket, agent, email=acknowledgment.recipient, now=now)
                if agent
                else {}
            ),
        },
    )
    due_now = _settled(sla, view, from_triage)
    if not await repo.replace_unsent(
        session,
        acknowledgment.id,
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
        updated_at=now,
        **({"next_attempt_at": now} if due_now else {}),
    ):
        return False
    if due_now:
        _send_now_not_later(session, notifier, acknowledgment.id)
    return True


def _view_ref(view: TicketView) -> TicketRef:
    return TicketRef(
        id=view.ticket_id, number=view.number, subject=view.subject, organization_id=view.organization_id
    )


async def _tell_assignment(
    session: AsyncSession,
    notifier: Notifier,
    event: ev.Event,
    view: TicketView,
    *,
    contact: ev.ContactRef,
    organization: ev.OrganizationRef | None,
    detailed: bool,
    customer_told: bool,
    wait_for_acknowledgment: bool,
) -> None:
    """The customer's mail (who their consultant is, where to book) and the consultant's (the
    ticket, the customer; for triage's assignment also the due time and a call task) about the
    assignee ticket_api applied. ``customer_told``: the acknowledgment carries the customer's
    part (a twin still waiting is merged into it, never sent). ``wait_for_acknowledgment``:
    ticket.created has not been handled yet, so the customer's mail waits for it (its
    acknowledgment will tell and take this one's place). A detailed consultant mail waits for
    triage's due time when triage has not decided yet (:func:`complete_consultant_mail`)."""
    agent = await repo.get_agent(session, view.assignee_id) if view.assignee_id else None
    if agent is None:
        log.warning(
            "ticket %s assigned to unknown agent %s: no assignment mail", view.number, view.assignee_id
        )
        return
    ticket = _view_ref(view)
    key = _assignment_key(ticket.id, agent.id)
    now = notifier.clock()
    if customer_told:
        await repo.merge_unsent(session, key, contact.email.lower(), NotificationKind.ASSIGNMENT_CUSTOMER)
    else:
        await queue_email(
            session,
            notifier,
            dedupe_key=key,
            event_type=event.type,
            kind=NotificationKind.ASSIGNMENT_CUSTOMER,
            recipient=contact.email,
            recipient_name=contact.name,
            ticket=ticket,
            context=_consultant_context(notifier, ticket, agent, email=contact.email, now=now),
            not_before=now + ASSIGNMENT_WAITS_FOR_ACKNOWLEDGMENT if wait_for_acknowledgment else None,
        )
    sla = await repo.get_ticket_sla(session, ticket.id) if detailed else None
    await queue_email(
        session,
        notifier,
        dedupe_key=key,
        event_type=event.type,
        kind=NotificationKind.ASSIGNMENT_CONSULTANT,
        recipient=agent.email,
        recipient_name=agent.name,
        ticket=ticket,
        customer_facing=False,
        context=await _consultant_mail_context(
            session, notifier, view, agent, contact=contact, organization=organization, sla=sla
        ),
        not_before=_ack_wait(notifier) if detailed and sla is None else None,
    )


async def _consultant_mail_context(
    session: AsyncSession,
    notifier: Notifier,
    view: TicketView,
    agent: AgentView,
    *,
    contact: ev.ContactRef,
    organization: ev.OrganizationRef | None,
    sla: TicketSla | None,
) -> dict[str, Any]:
    """What the consultant's assignment mail says; with ``sla`` (triage's decision), the first
    response's due time in the consultant's own timezone and the call task it opened."""
    call = bool(sla and sla.call_customer)
    return {
        "consultant": {"id": str(agent.id), "name": agent.name, "email": agent.email},
        "customer": {"name": contact.name, "email": contact.email},
        "organization": organization.name if organization else None,
        "priority": view.priority,
        "first_response_due_at": _moment_or_none(
            sla.first_response_due_at, await staff_timezone(session, notifier, agent.id)
        )
        if sla
        else None,
        "call_customer": call,
        "call_reason": f"{view.priority} ticket of a support-agreement customer" if call else None,
    }


async def complete_consultant_mail(
    session: AsyncSession,
    notifier: Notifier,
    view: TicketView,
    sla: TicketSla,
    *,
    contact: ev.ContactRef,
    organization: ev.OrganizationRef | None,
) -> None:
    """The assignee's mail, recorded before triage's decision reached us, still waiting: put
    the due time and call task in and make it due now."""
    agent = await repo.get_agent(session, view.assignee_id) if view.assignee_id else None
    if agent is None:
        return
    key = _assignment_key(view.ticket_id, agent.id)
    waiting = await repo.find_notification(
        session, key, agent.email.lower(), NotificationKind.ASSIGNMENT_CONSULTANT
    )
    if waiting is None or waiting.state != DeliveryState.PENDING or waiting.attempts != 0:
        return
    ticket = _view_ref(view)
    now = notifier.clock()
    rendered = render_mail(
        notifier.settings,
        NotificationKind.ASSIGNMENT_CONSULTANT,
        recipient_name=agent.name,
        ticket=ticket,
        ticket_link=mail_ticket_link(
            notifier, ticket, recipient=waiting.recipient, customer_facing=False, now=now
        ),
        context=await _consultant_mail_context(
            session, notifier, view, agent, contact=contact, organization=organization, sla=sla
        ),
    )
    if await repo.replace_unsent(
        session,
        waiting.id,
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
        next_attempt_at=now,
        updated_at=now,
    ):
        _send_now_not_later(session, notifier, waiting.id)


def _consultant_context(
    notifier: Notifier, ticket: TicketRef, consultant: AgentView, *, email: str, now: datetime
) -> dict[str, Any]:
    """What a customer mail says about their consultant: who, and where to book time."""
    return {
        "consultant": {"id": str(consultant.id), "name": consultant.name, "email": consultant.email},
        "booking_url": booking_url(
            notifier, ticket_id=ticket.id, agent_id=consultant.id, email=email, now=now
        ),
    }


def _assignment_key(ticket_id: UUID, agent_id: object) -> str:
    """The assignment mails' dedupe key: once per ticket and consultant."""
    return f"assignment:{ticket_id}:{agent_id}"


async def on_ticket_updated(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    """The one source of assignment mail: the assignee ticket_api applied (triage's decision,
    or a person's choice). Triage's assignment (the event is ``known_to`` triage: applied as it
    asked) carries its due time and call task to the consultant."""
    p = ev.payload_of(event, ev.TicketUpdatedV1)
    change = p.changed.get("assignee_id")
    assigned = bool(change and change[1])
    if assigned:
        await repo.lock_acknowledgment(session, p.ticket_id)  # the first mails may be decided now
    await project_ticket(session, p)
    view = await repo.get_ticket_view(session, p.ticket_id) if assigned else None
    # The projection's assignee (a later change may be in it already): told once per consultant.
    if (
        view is not None
        and view.assignee_id is not None
        and not await repo.any_notification(session, _assignment_key(p.ticket_id, view.assignee_id))
    ):
        told = await settle_acknowledgment(
            session, notifier, view, await repo.get_ticket_sla(session, p.ticket_id)
        )
        await _tell_assignment(
            session,
            notifier,
            event,
            view,
            contact=p.contact,
            organization=p.organization,
            detailed=ev.Service.TRIAGE in event.known_to,
            customer_told=told,
            wait_for_acknowledgment=not told
            and not await repo.any_mail_of_kind(session, p.ticket_id, NotificationKind.ACKNOWLEDGMENT),
        )
    await fan_out_webhooks(session, notifier, event, p.organization.id if p.organization else None)


async def staff_timezone(session: AsyncSession, notifier: Notifier, agent_id: UUID | None) -> str:
    """Where a consultant reads their mail: their own timezone (the office's for the team, or
    for an agent whose timezone is not known here yet)."""
    agent = await repo.get_agent(session, agent_id) if agent_id else None
    return agent.timezone if agent and agent.timezone else notifier.settings.office_timezone


def _moment_or_none(moment: datetime | None, timezone: str) -> str | None:
    return format_instant(moment, timezone) if moment is not None else None


async def on_ticket_triaged(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    """Triage's decision as far as the notifier acts on it: its due times (the acknowledgment's
    promise, the consultant's mail) and, when it found nobody, the team's alert. Whom to tell
    as the consultant is not read here: ticket_api's ``ticket.updated`` says whom it assigned."""
    p = ev.payload_of(event, ev.TicketTriagedV1)
    await repo.lock_acknowledgment(session, p.ticket_id)  # ticket.created may be handled right now
    await repo.upsert_ticket_sla(
        session,
        {
            "ticket_id": p.ticket_id,
            "first_response_due_at": p.first_response_due_at,
            "first_response_target_minutes": p.first_response_target_minutes,
            "first_response_clock_started_at": p.first_response_clock_started_at,
            "calendar_timezone": p.calendar_timezone,
            "closed_days": [{"day": d.day.isoformat(), "name": d.name} for d in p.closed_days],
            "decided_at": event.occurred_at,
            "assignee_id": p.assignee.id if p.assignee else None,
            "call_customer": p.call_customer,
        },
    )
    view = await repo.get_ticket_view(session, p.ticket_id)
    if view is not None:  # else ticket.created is still to come, and reads the decision then
        sla = await repo.get_ticket_sla(session, p.ticket_id)
        assert sla is not None
        await settle_acknowledgment(session, notifier, view, sla)
        await complete_consultant_mail(
            session, notifier, view, sla, contact=p.contact, organization=p.organization
        )
    organization_id = p.organization.id if p.organization else None
    if p.assignee is None and notifier.settings.team_address:
        await queue_email(
            session,
            notifier,
            dedupe_key=str(event.id),
            event_type=event.type,
            kind=NotificationKind.UNASSIGNED_ALERT,
            recipient=notifier.settings.team_address,
            recipient_name="team",
            ticket=TicketRef(
                id=p.ticket_id, number=p.number, subject=p.subject, organization_id=organization_id
            ),
            customer_facing=False,
            context={
                "priority": p.priority,
                "reason": p.unassigned_reason or "no consultant matched",
                "first_response_due_at": _moment_or_none(
                    p.first_response_due_at, notifier.settings.office_timezone
                )
                or "paused (waiting on the customer)",
                "customer": {"name": p.contact.name, "email": p.contact.email},
            },
        )
    await fan_out_webhooks(session, notifier, event, organization_id)


async def on_message_added(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    p = ev.payload_of(event, ev.TicketMessageAddedV1)
    await project_ticket(session, p)
    if p.visibility != "public":
        return  # internal notes reach neither customers nor portals
    ticket = _ticket_ref(p)
    if p.author_kind == "agent":
        agent = await repo.get_agent(session, p.author_id) if p.author_id else None
        author = agent.name if agent else f"{notifier.settings.company_name} Support"
        await queue_email(
            session,
            notifier,
            dedupe_key=str(event.id),
            event_type=event.type,
            kind=NotificationKind.AGENT_REPLY,
            recipient=p.contact.email,
            recipient_name=p.contact.name,
            ticket=ticket,
            context={"body": p.body, "author_name": author},
            from_name=f"{author} ({notifier.settings.company_name})" if agent else None,
            auto_submitted=None,  # a person wrote it
        )
    elif p.author_kind == "customer" and p.assignee_id is not None:
        agent = await repo.get_agent(session, p.assignee_id)
        if agent is not None and agent.active:
            await queue_email(
                session,
                notifier,
                dedupe_key=str(event.id),
                event_type=event.type,
                kind=NotificationKind.CUSTOMER_REPLY_CONSULTANT,
                recipient=agent.email,
                recipient_name=agent.name,
                ticket=ticket,
                customer_facing=False,
                context={"body": p.body, "customer_name": p.contact.name or p.contact.email},
            )
    await fan_out_webhooks(session, notifier, event, ticket.organization_id)


def status_change_is_news(from_status: str, to_status: str) -> bool:
    """Whether the customer hears of a status change by itself. Not: closing (the closure mail
    says it), nor the changes a reply makes (first agent reply new → open; the customer's own
    answer pending_customer → open): the reply's own mail covers those."""
    if to_status == "closed":
        return False
    return (from_status, to_status) not in {("new", "open"), ("pending_customer", "open")}


async def on_status_changed(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    p = ev.payload_of(event, ev.TicketStatusChangedV1)
    await project_ticket(session, p)
    if status_change_is_news(p.from_status, p.to_status):
        title, explanation = STATUS_WORDING.get(p.to_status, (p.to_status.replace("_", " ").title(), ""))
        if p.from_status == "closed":
            title, explanation = "Reopened", "Your ticket has been reopened and a consultant will follow up."
        await queue_email(
            session,
            notifier,
            dedupe_key=str(event.id),
            event_type=event.type,
            kind=NotificationKind.STATUS_UPDATE,
            recipient=p.contact.email,
            recipient_name=p.contact.name,
            ticket=_ticket_ref(p),
            context={"status_title": title, "status_explanation": explanation},
        )
    await fan_out_webhooks(session, notifier, event, p.organization.id if p.organization else None)


async def on_ticket_closed(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    p = ev.payload_of(event, ev.TicketClosedV1)
    await project_ticket(session, p)
    now = notifier.clock()
    links = {
        f"{rating}_url": feedback_url(
            notifier, ticket_id=p.ticket_id, email=p.contact.email, rating=rating, now=now
        )
        for rating in ("happy", "unhappy")
    }
    await queue_email(
        session,
        notifier,
        dedupe_key=str(event.id),
        event_type=event.type,
        kind=NotificationKind.CLOSURE,
        recipient=p.contact.email,
        recipient_name=p.contact.name,
        ticket=_ticket_ref(p),
        context=links,
    )
    await fan_out_webhooks(session, notifier, event, p.organization.id if p.organization else None)


async def on_agent_changed(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    p = ev.payload_of(event, ev.AgentV1)
    await repo.upsert_agent(
        session,
        {
            "id": p.agent_id,
            "email": p.email,
            "name": p.name,
            "active": p.active,
            "timezone": p.timezone,
            "updated_at": event.occurred_at,
        },
    )


async def _sla_mail(
    session: AsyncSession,
    notifier: Notifier,
    event: ev.Event,
    p: ev.SlaWarningV1 | ev.SlaBreachedV1,
    kind: NotificationKind,
    context: dict[str, Any],
    *,
    include_team: bool,
) -> None:
    ticket = TicketRef(
        id=p.ticket_id,
        number=p.number,
        subject=p.subject,
        organization_id=p.organization.id if p.organization else None,
    )
    # Staff read in their own timezone: the consultant in theirs, the team in the office's.
    recipients: list[tuple[str, str, str]] = []
    if p.assignee is not None:
        recipients.append(
            (p.assignee.email, p.assignee.name, await staff_timezone(session, notifier, p.assignee.id))
        )
    team = notifier.settings.team_address
    if team and (include_team or p.assignee is None):
        recipients.append((team, "team", notifier.settings.office_timezone))
    for email, name, timezone in recipients:
        await queue_email(
            session,
            notifier,
            dedupe_key=str(event.id),
            event_type=event.type,
            kind=kind,
            recipient=email,
            recipient_name=name,
            ticket=ticket,
            customer_facing=False,
            context={
                "consultant": {"name": name},
                "target": p.target.replace("_", " "),
                "due_at": format_instant(p.due_at, timezone),
                "priority": p.priority,
                **context,
            },
        )


async def on_sla_warning(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    p = ev.payload_of(event, ev.SlaWarningV1)
    await _sla_mail(
        session,
        notifier,
        event,
        p,
        NotificationKind.SLA_WARNING,
        {"remaining": time_left(p.target_minutes, p.share)},
        include_team=False,
    )


def time_left(target_minutes: int, share_used: float) -> str:
    """The business time left when ``share_used`` of the target is used, to the nearest
    minute: ``time_left(60, 0.8)`` is "12 min" (not 11: 60 x 0.2 is 11.999... in floats)."""
    minutes = max(round(target_minutes * (1 - share_used)), 0)
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if hours else f"{rest} min"


async def on_sla_breached(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    p = ev.payload_of(event, ev.SlaBreachedV1)
    await _sla_mail(
        session,
        notifier,
        event,
        p,
        NotificationKind.SLA_BREACH,
        # The mail shows the priority the ticket has now; "escalated" only when it was raised.
        {
            "escalated": p.escalated_priority,
            "previous_priority": p.priority,
            "priority": p.escalated_priority or p.priority,
        },
        include_team=True,
    )


# --- webhooks: fan-out --------------------------------------------------------------------------


def webhook_body(event: ev.Event) -> str:
    """The Standard Webhooks payload shape: type, timestamp, data."""
    document = {"type": event.type, "timestamp": event.occurred_at.isoformat(), "data": event.data}
    return json.dumps(document, separators=(",", ":"), sort_keys=True, default=str)


async def fan_out_webhooks(
    session: AsyncSession, notifier: Notifier, event: ev.Event, organization_id: UUID | None
) -> int:
    """One delivery per active subscription that wants this event about this organization."""
    created = 0
    body: str | None = None
    for subscription in await repo.active_subscriptions(session):
        if event.type not in subscription.event_types:
            continue
        scope = subscription.organization_ids
        if scope is not None and (organization_id is None or str(organization_id) not in scope):
            continue
        body = body or webhook_body(event)
        delivery_id = new_id()
        now = notifier.clock()
        inserted = await repo.insert_delivery(
            session,
            {
                "id": delivery_id,
                "subscription_id": subscription.id,
                "event_id": event.id,
                "event_type": event.type,
                "body": body,
                "state": DeliveryState.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            },
        )
        if inserted:
            created += 1
            notifier.dispatcher.after_commit(session, Job(DELIVER_WEBHOOK, str(delivery_id), 0))
    return created


# --- delivering mail ----------------------------------------------------------------------------


async def load_attachments(notifier: Notifier, notification: Notification) -> list[Attachment]:
    """The files a notification names, fetched now (an invoice PDF from billing's API)."""
    settings = notifier.settings
    files: list[Attachment] = []
    for spec in notification.attachments:
        kind = spec.get("kind")
        if kind == "sla_document":
            content = await asyncio.to_thread(
                sla_document,
                settings.company_name,
                office_hours_text(settings, settings.office_timezone),
                settings.sla_document_path,
            )
            files.append(Attachment(SLA_FILENAME, content, "application", "pdf"))
        elif kind == "invoice_pdf":
            # Rows recorded before the event's pdf_url was used name only the invoice.
            url = spec.get("url") or f"/api/v1/billing/invoices/{spec['invoice_id']}/pdf"
            files.append(await fetch_invoice_pdf(notifier, url, spec["invoice_id"], spec.get("filename")))
        elif kind == "inline":
            # For calendar invites and the like: content carried in the row (base64).
            maintype, _, subtype = str(spec["content_type"]).partition("/")
            params = tuple((str(k), str(v)) for k, v in spec.get("params", {}).items())
            files.append(
                Attachment(spec["filename"], base64.b64decode(spec["content_b64"]), maintype, subtype, params)
            )
        else:
            raise ValueError(f"unknown attachment kind {kind!r}")
    return files


async def fetch_invoice_pdf(
    notifier: Notifier, url: str, invoice_id: str, filename: str | None
) -> Attachment:
    """The invoice's PDF from ``url``, the event's ``pdf_url`` as billing sent it (with this
    service's token)."""
    try:
        response = await notifier.billing_client.get(url)
    except httpx.HTTPError as error:
        raise TransientError(f"billing unreachable: {error}") from error
    if response.status_code >= 500 or response.status_code in (401, 403, 404, 429):
        # 404 too: the invoice's event may overtake the read replica; auth errors get fixed by config.
        raise TransientError(f"billing answered {response.status_code} for invoice {invoice_id}")
    response.raise_for_status()
    return Attachment(filename or f"invoice-{invoice_id}.pdf", response.content, "application", "pdf")


async def deliver_email(notifier: Notifier, notification_id: UUID, attempt: int) -> str:
    """One attempt to hand a notification to the relay. Safe to run twice: only the job that
    claims the row (at ``attempt``) sends; a crash mid-send leaves a lease that runs out, and the
    sweeper tries again (at least once, the same Message-ID)."""
    now = notifier.clock()
    # Each statement stands alone: a crash after the claim leaves a lease that runs out.
    async with notifier.single_statements() as session, session.begin():
        claimed = await repo.claim_notification(
            session, notification_id, attempt=attempt, now=now, lease=LEASE
        )
        if claimed is None:
            return "skipped"
        notification, suppression = claimed
        if suppression is not None:
            await repo.finish_notification(
                session,
                notification_id,
                state=DeliveryState.SUPPRESSED,
                last_error=f"address suppressed: {suppression.reason}",
                updated_at=now,
            )
            return "suppressed"
    return await send_claimed(notifier, notification)


async def send_claimed(notifier: Notifier, notification: Notification) -> str:
    """Hand a notification this process holds the claim on (its attempt counted, its lease
    running) to the relay, and record how that went. A claim that has waited long for a free
    sending slot is renewed first, or given up when another attempt took the row meanwhile."""
    notification_id = notification.id
    if notification.lease_until is not None and notifier.clock() > notification.lease_until - LEASE / 2:
        async with notifier.single_statements() as session, session.begin():
            renewed = await repo.renew_claim(
                session, notification_id, attempts=notification.attempts, now=notifier.clock(), lease=LEASE
            )
        if renewed is None:
            return "skipped"
        notification = renewed
    if notification_id in notifier.sent_unrecorded:  # handed over already; only the record is missing
        await _record_sent(notifier, notification_id)
        return "sent"
    try:
        files = await load_attachments(notifier, notification)
        await notifier.relay.send(
            build_message(notification, files, display_name=notification.from_name, now=notifier.clock())
        )
    except (TransientSmtpError, TransientError) as error:
        return await _retry_email(notifier, notification, str(error))
    except PermanentSmtpError as error:
        async with notifier.sessions() as session, session.begin():
            await repo.finish_notification(
                session,
                notification_id,
                state=DeliveryState.FAILED,
                last_error=str(error),
                smtp_code=error.code,
                updated_at=notifier.clock(),
            )
            if error.recipient_refused:
                await repo.add_suppression(
                    session,
                    {
                        "address": notification.recipient,
                        "reason": str(error),
                        "smtp_code": error.code,
                        "notification_id": notification_id,
                        "created_at": notifier.clock(),
                    },
                )
        log.warning("relay refused %s for good: %s", notification.recipient, error)
        return "failed"
    except Exception as error:
        if is_transient(error):  # the database (attachments) or a peer briefly down: not the mail's fault
            return await _retry_email(notifier, notification, repr(error))
        log.exception("could not build or send notification %s", notification_id)
        async with notifier.sessions() as session, session.begin():
            await repo.finish_notification(
                session,
                notification_id,
                state=DeliveryState.FAILED,
                last_error=repr(error),
                updated_at=notifier.clock(),
            )
        return "failed"
    # The relay has it: it must not go out again. Remembered at once, written as soon as the
    # database lets us (retried through an outage, in the background).
    notifier.sent_unrecorded[notification_id] = notifier.clock()
    await _record_sent(notifier, notification_id)
    return "sent"


# Writing "sent" is retried this long (backoff 0.5 s doubling to 10 s) through a database outage.
RECORD_SENT_SECONDS = 3600.0


async def _write_sent(notifier: Notifier, notification_id: UUID) -> None:
    sent_at = notifier.sent_unrecorded[notification_id]
    async with notifier.single_statements() as session, session.begin():
        await repo.finish_notification(
            session,
            notification_id,
            state=DeliveryState.SENT,
            sent_at=sent_at,
            last_error=None,
            updated_at=sent_at,
        )
    notifier.sent_unrecorded.pop(notification_id, None)


async def _record_sent(notifier: Notifier, notification_id: UUID) -> None:
    """Write that the relay accepted the mail; if the database does not answer, keep trying in
    the background (the job is done: the mail went out)."""
    try:
        await _write_sent(notifier, notification_id)
    except Exception as error:
        if not is_transient(error):
            raise
        log.warning("mail %s sent, but not yet recorded (%r); retrying", notification_id, error)
        task = asyncio.ensure_future(_keep_recording_sent(notifier, notification_id))
        notifier._recording.add(task)
        task.add_done_callback(notifier._recording.discard)


async def _keep_recording_sent(notifier: Notifier, notification_id: UUID) -> None:
    started, delay = time.monotonic(), 0.5
    while notification_id in notifier.sent_unrecorded:
        await asyncio.sleep(delay)
        try:
            await _write_sent(notifier, notification_id)
        except Exception as error:
            if not is_transient(error) or time.monotonic() - started > RECORD_SENT_SECONDS:
                log.error(
                    "mail.sent_unrecorded: %s was sent but could not be recorded (%r); another "
                    "process may send it again, with the same Message-ID",
                    notification_id,
                    error,
                    extra={"alarm": "mail.sent_unrecorded", "notification_id": str(notification_id)},
                )
                return
            delay = min(delay * 2, 10.0)


async def _retry_email(notifier: Notifier, notification: Notification, error: str) -> str:
    now = notifier.clock()
    attempts = notification.attempts
    async with notifier.sessions() as session, session.begin():
        if attempts >= notifier.settings.email_max_attempts:
            await repo.finish_notification(
                session,
                notification.id,
                state=DeliveryState.FAILED,
                last_error=f"gave up: {error}",
                updated_at=now,
            )
            log.warning("gave up on notification %s after %s attempts: %s", notification.id, attempts, error)
            return "failed"
        next_at = now + policy.email_retry_delay(attempts)
        await repo.finish_notification(
            session,
            notification.id,
            state=DeliveryState.PENDING,
            next_attempt_at=next_at,
            last_error=error,
            updated_at=now,
        )
        notifier.dispatcher.after_commit(
            session, Job(SEND_EMAIL, str(notification.id), attempts, defer_until=next_at)
        )
    log.info("notification %s: transient failure (%s), retry at %s", notification.id, error, next_at)
    return "retry"


# --- delivering webhooks ------------------------------------------------------------------------


async def deliver_webhook(notifier: Notifier, delivery_id: UUID, attempt: int) -> str:
    """One signed POST of a delivery. 2xx succeeds; 410 disables the subscription; anything else
    is retried on the schedule (Retry-After honoured), then given up."""
    settings = notifier.settings
    now = notifier.clock()
    async with notifier.sessions() as session, session.begin():
        delivery = await repo.claim_delivery(session, delivery_id, attempt=attempt, now=now, lease=LEASE)
        if delivery is None:
            return "skipped"
        subscription = await repo.get_subscription(session, delivery.subscription_id)
        if subscription is None or not subscription.active:
            await repo.finish_delivery(
                session, delivery_id, state=DeliveryState.FAILED, last_error="subscription disabled"
            )
            return "failed"
        url, secret = subscription.url, subscription.secret
    body = delivery.body.encode()
    headers = {
        # The wall clock, always: receivers refuse timestamps more than minutes off (replays).
        **signed_headers([secret], str(delivery.id), int(time.time()), body),
        "content-type": "application/json",
        "user-agent": f"{settings.company_name} webhooks",
    }
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    excerpt: str | None = None
    retry_after_header: str | None = None
    permanent = False
    try:
        async with asyncio.timeout(settings.webhook_timeout_seconds):
            response = await webhook_http.post(
                notifier.webhook_client,
                url,
                body=body,
                headers=headers,
                allow_private=settings.webhook_allow_private_addresses,
            )
        status = response.status_code
        excerpt = response.text[:500] if response.content else None
        retry_after_header = response.headers.get("retry-after")
    except webhook_http.RefusedDestination as refused:
        error, permanent = f"refused destination: {refused}", True
    except (httpx.HTTPError, OSError, TimeoutError) as network_error:
        error = f"{type(network_error).__name__}: {network_error}"
    duration_ms = int((time.monotonic() - started) * 1000)
    finished = notifier.clock()
    async with notifier.sessions() as session, session.begin():
        await repo.add_attempt(
            session,
            {
                "delivery_id": delivery_id,
                "attempt": delivery.attempts,
                "started_at": now,
                "duration_ms": duration_ms,
                "status_code": status,
                "error": error,
                "response_excerpt": excerpt,
            },
        )
        if status is not None and policy.is_success(status):
            await repo.finish_delivery(
                session,
                delivery_id,
                state=DeliveryState.SENT,
                delivered_at=finished,
                last_status_code=status,
                last_error=None,
            )
            return "sent"
        if status is not None and policy.disables_endpoint(status):
            await repo.finish_delivery(
                session,
                delivery_id,
                state=DeliveryState.FAILED,
                last_status_code=status,
                last_error="410 Gone",
            )
            await disable_subscription(
                session, delivery.subscription_id, "endpoint answered 410 Gone", finished
            )
            return "disabled"
        wait = None if permanent else policy.webhook_retry_delay(delivery.attempts)
        if wait is not None and status is not None and (status == 429 or status >= 500):
            honoured = policy.retry_after(retry_after_header, finished)
            if honoured is not None:
                wait = max(wait, honoured)
        failure = error or f"HTTP {status}"
        if wait is None:
            await repo.finish_delivery(
                session, delivery_id, state=DeliveryState.FAILED, last_status_code=status, last_error=failure
            )
            return "failed"
        next_at = finished + wait
        await repo.finish_delivery(
            session,
            delivery_id,
            state=DeliveryState.PENDING,
            next_attempt_at=next_at,
            last_status_code=status,
            last_error=failure,
        )
        notifier.dispatcher.after_commit(
            session, Job(DELIVER_WEBHOOK, str(delivery_id), delivery.attempts, defer_until=next_at)
        )
    return "retry"


async def disable_subscription(
    session: AsyncSession, subscription_id: UUID, reason: str, now: datetime
) -> None:
    subscription = await repo.get_subscription(session, subscription_id)
    if subscription is not None and subscription.active:
        subscription.active = False
        subscription.disabled_reason = reason
        subscription.updated_at = now
        await session.flush()


async def sweep(notifier: Notifier, *, grace: timedelta, limit: int = 500) -> int:
    """Enqueue again every row whose job should have run (lost jobs, a flushed Redis)."""
    now = notifier.clock()
    async with notifier.sessions() as session:
        mails = await repo.due_notifications(session, now=now, grace=grace, limit=limit)
        hooks = await repo.due_deliveries(session, now=now, grace=grace, limit=limit)
    jobs = [Job(SEND_EMAIL, str(i), attempts) for i, attempts in mails]
    jobs += [Job(DELIVER_WEBHOOK, str(i), attempts) for i, attempts in hooks]
    return await notifier.dispatcher.enqueue(jobs) if jobs else 0


# --- what the API does ----------------------------------------------------------------------------


async def visible_notification(
    session: AsyncSession, principal: Principal, notification_id: UUID
) -> Notification:
    """Staff see every notification (the routes admit no one else)."""
    notification = await repo.get_notification(session, notification_id)
    if notification is None or not principal.is_staff:
        raise NotificationNotFound(f"No notification {notification_id}.")
    return notification


async def resend_notification(
    uow: UnitOfWork, notifier: Notifier, principal: Principal, notification_id: UUID
) -> Notification:
    """Send a copy of a notification again (a new Message-ID in the same thread)."""
    require_staff(principal)
    session = uow.session
    original = await visible_notification(session, principal, notification_id)
    suppression = await repo.get_suppression(session, original.recipient)
    if suppression is not None:
        raise AddressSuppressed(
            f"{original.recipient} is suppressed ({suppression.reason}); lift the suppression first.",
            address=original.recipient,
        )
    now = notifier.clock()
    copy_id = new_id()
    owner = original.ticket_id or copy_id
    references = await repo.thread_message_ids(session, original.ticket_id) if original.ticket_id else []
    message_id = make_message_id(owner, secret=notifier.secret, domain=notifier.settings.mail_domain)
    copied = {
        name: getattr(original, name)
        for name in (
            "event_type", "kind", "recipient", "ticket_id", "ticket_number", "organization_id", "from_name",
            "from_address", "reply_to", "subject", "text_body", "html_body", "auto_submitted", "attachments",
        )
    }  # fmt: skip
    await repo.insert_notification(
        session,
        {
            **copied,
            "id": copy_id,
            "dedupe_key": f"resend:{copy_id}",
            "message_id": message_id,
            "in_reply_to": references[-1] if references else None,
            "reference_ids": references,
            "state": DeliveryState.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "resend_of": original.id,
            "created_at": now,
            "updated_at": now,
        },
    )
    if original.ticket_id and await repo.is_thread_message(session, original.message_id):
        await repo.add_thread_message(session, original.ticket_id, message_id, now)
    notifier.dispatcher.after_commit(session, Job(SEND_EMAIL, str(copy_id), 0))
    copy = await repo.get_notification(session, copy_id)
    assert copy is not None
    return copy


async def lift_suppression(uow: UnitOfWork, principal: Principal, address: str) -> None:
    """Lift a suppression (the route has checked the caller is an admin)."""
    if not await repo.delete_suppression(uow.session, address):
        raise SuppressionNotFound(f"{address} is not suppressed.")


def may_manage_webhooks(principal: Principal) -> None:
    if principal.kind is not PrincipalKind.PORTAL:
        require_admin(principal)


async def _check_subscription_fields(
    notifier: Notifier, url: str | None, event_types: list[str] | None
) -> None:
    if event_types is not None:
        unknown = sorted(set(event_types) - WEBHOOK_EVENT_TYPES)
        if unknown:
            raise UnknownEventType(
                f"Unknown event types: {', '.join(unknown)}.",
                unknown=unknown,
                allowed=sorted(WEBHOOK_EVENT_TYPES),
            )
    if url is not None:
        try:
            await webhook_http.checked_destination(
                url, allow_private=notifier.settings.webhook_allow_private_addresses
            )
        except (webhook_http.RefusedDestination, OSError) as refused:
            raise RefusedWebhookUrl(str(refused)) from None


async def create_subscription(
    uow: UnitOfWork, notifier: Notifier, principal: Principal, data: WebhookSubscriptionCreate
) -> WebhookSubscription:
    """A portal subscribes for its own organizations; an admin's subscription sees every one."""
    may_manage_webhooks(principal)
    url = str(data.url)
    event_types = sorted(set(data.event_types))
    await _check_subscription_fields(notifier, url, event_types)
    now = notifier.clock()
    subscription = WebhookSubscription(
        client_id=principal.subject_id,
        organization_ids=None if principal.is_staff else sorted(str(o) for o in principal.organization_ids),
        url=url,
        event_types=event_types,
        secret=new_secret(),
        description=data.description,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(subscription)
    await uow.session.flush()
    return subscription


async def visible_subscription(
    session: AsyncSession, principal: Principal, subscription_id: UUID
) -> WebhookSubscription:
    may_manage_webhooks(principal)
    subscription = await repo.get_subscription(session, subscription_id)
    if subscription is None or not (principal.is_admin or subscription.client_id == principal.subject_id):
        raise SubscriptionNotFound(f"No webhook subscription {subscription_id}.")
    return subscription


async def update_subscription(
    uow: UnitOfWork,
    notifier: Notifier,
    principal: Principal,
    subscription_id: UUID,
    data: WebhookSubscriptionUpdate,
) -> WebhookSubscription:
    subscription = await visible_subscription(uow.session, principal, subscription_id)
    changes = data.model_dump(exclude_unset=True)
    url = str(data.url) if data.url is not None else None
    await _check_subscription_fields(notifier, url, data.event_types)
    if url is not None:
        subscription.url = url
    if data.event_types is not None:
        subscription.event_types = sorted(set(data.event_types))
    if "description" in changes:
        subscription.description = data.description
    if data.active is not None:
        subscription.active = data.active
        if data.active:
            subscription.disabled_reason = None
    subscription.updated_at = notifier.clock()
    await uow.session.flush()
    return subscription


async def rotate_secret(
    uow: UnitOfWork, notifier: Notifier, principal: Principal, subscription_id: UUID
) -> WebhookSubscription:
    subscription = await visible_subscription(uow.session, principal, subscription_id)
    subscription.secret = new_secret()
    subscription.updated_at = notifier.clock()
    await uow.session.flush()
    return subscription


async def delete_subscription(uow: UnitOfWork, principal: Principal, subscription_id: UUID) -> None:
    subscription = await visible_subscription(uow.session, principal, subscription_id)
    await uow.session.delete(subscription)
    await uow.session.flush()


async def visible_delivery(session: AsyncSession, principal: Principal, delivery_id: UUID) -> WebhookDelivery:
    delivery = await repo.get_delivery(session, delivery_id)
    if delivery is None:
        raise DeliveryNotFound(f"No webhook delivery {delivery_id}.")
    try:
        await visible_subscription(session, principal, delivery.subscription_id)
    except SubscriptionNotFound:
        raise DeliveryNotFound(f"No webhook delivery {delivery_id}.") from None
    return delivery


async def redeliver(
    uow: UnitOfWork, notifier: Notifier, principal: Principal, delivery_id: UUID
) -> WebhookDelivery:
    """Try a delivery again now (whatever its state), keeping its webhook-id."""
    delivery = await visible_delivery(uow.session, principal, delivery_id)
    now = notifier.clock()
    if delivery.state == DeliveryState.SENDING and delivery.lease_until and delivery.lease_until > now:
        raise DeliveryInFlight("This delivery is being attempted; look again in a few seconds.")
    await repo.finish_delivery(uow.session, delivery.id, state=DeliveryState.PENDING, next_attempt_at=now)
    notifier.dispatcher.after_commit(uow.session, Job(DELIVER_WEBHOOK, str(delivery.id), delivery.attempts))
    refreshed = await uow.session.get(WebhookDelivery, delivery.id, populate_existing=True)
    assert refreshed is not None
    return refreshed


# --- billing mail (from the accounting address) -------------------------------------------------


def money(amount: Decimal, currency: str) -> str:
    return f"{currency} {amount:,.2f}"


def hours(minutes: int) -> str:
    whole, rest = divmod(minutes, 60)
    return f"{whole} h {rest:02d} min" if rest else f"{whole} h"


async def _accounting_mail(
    session: AsyncSession,
    notifier: Notifier,
    event: ev.Event,
    *,
    kind: NotificationKind,
    dedupe_key: str,
    recipient: str | None,
    organization_id: UUID,
    ticket_id: UUID | None,
    context: dict[str, Any],
    attachments: Sequence[dict[str, Any]] = (),
) -> None:
    if recipient is None:
        # No billing address on the account: accounting gets it to forward (nothing goes unsent).
        log.warning(
            "%s for organization %s has no billing address: sent to accounting", event.type, organization_id
        )
        recipient = notifier.settings.accounting_address
    view = await repo.get_ticket_view(session, ticket_id) if ticket_id else None
    ticket = (
        TicketRef(
            id=view.ticket_id, number=view.number, subject=view.subject, organization_id=organization_id
        )
        if view
        else None
    )
    await queue_email(
        session,
        notifier,
        dedupe_key=dedupe_key,
        event_type=event.type,
        kind=kind,
        recipient=recipient,
        recipient_name=None,
        ticket=ticket,
        customer_facing=False,  # replies go to accounting (the From), not into the ticket
        context=context,
        from_name=f"{notifier.settings.company_name} Accounting",
        from_address=notifier.settings.accounting_address,
        organization_id=organization_id,
        attachments=attachments,
    )


async def on_invoice_issued(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    p = ev.payload_of(event, ev.InvoiceIssuedV1)
    await _accounting_mail(
        session,
        notifier,
        event,
        kind=NotificationKind.INVOICE,
        dedupe_key=f"invoice:{p.invoice_id}",
        recipient=p.bill_to_email,
        organization_id=p.organization_id,
        ticket_id=p.ticket_id,
        context={
            "organization": p.organization_name,
            "invoice": {
                "number": p.number,
                "total": money(p.total, p.currency),
                "due_on": f"{p.due_date:%B} {p.due_date.day}, {p.due_date.year}",
                "payment_instructions": p.payment_instructions,
                "ticket_numbers": p.ticket_numbers,
                "period": p.period,
                "lines": [
                    {
                        "description": line.description,
                        "ticket_number": line.ticket_number,
                        "time": hours(line.minutes),
                        "amount": money(line.amount, p.currency),
                    }
                    for line in p.lines
                ],
            },
        },
        attachments=[
            {
                "kind": "invoice_pdf",
                "url": p.pdf_url,
                "invoice_id": str(p.invoice_id),
                "filename": f"{p.number}.pdf",
            }
        ],
    )


async def on_allowance_threshold(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    p = ev.payload_of(event, ev.AllowanceThresholdReachedV1)
    if p.threshold >= 100:
        title = f"Your support allowance for {p.period} is used up"
        text = (
            f"{p.organization_name} has used all {hours(p.allowance_minutes)} of its support agreement for "
            f"{p.period} ({hours(p.used_minutes)} so far). Further time this month is billed at "
            f"{money(p.overage_rate_per_hour, p.currency)} per hour with the period's closing invoice."
        )
    else:
        title = f"Your support allowance for {p.period}: {p.threshold}% used"
        text = (
            f"{p.organization_name} has used {hours(p.used_minutes)} of the {hours(p.allowance_minutes)} "
            f"included in its support agreement for {p.period} ({p.threshold}%). Time beyond the allowance "
            f"is billed at {money(p.overage_rate_per_hour, p.currency)} per hour."
        )
    await _accounting_mail(
        session,
        notifier,
        event,
        kind=NotificationKind.BILLING_NOTICE,
        dedupe_key=f"allowance:{p.organization_id}:{p.period}:{p.threshold}",
        recipient=p.billing_email,
        organization_id=p.organization_id,
        ticket_id=None,
        context={"notice": {"title": title, "text": text}},
    )


async def on_block_balance(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    p = ev.payload_of(event, ev.BlockBalanceV1)
    rate = money(p.overage_rate_per_hour, p.currency)
    if event.type == ev.EventType.BLOCK_EXHAUSTED:
        title = "Your prepaid support hours are used up"
        text = (
            f"{p.organization_name} has used all {hours(p.purchased_minutes)} of its prepaid support block. "
            f"Until a new block is purchased, time is billed at {rate} per hour."
        )
    else:
        title = "Your prepaid support hours are running low"
        text = (
            f"{p.organization_name} has {hours(p.remaining_minutes)} left of its "
            f"{hours(p.purchased_minutes)} prepaid support block (under {p.low_threshold_percent}%). "
            "Reply to this email to buy another block."
        )
    await _accounting_mail(
        session,
        notifier,
        event,
        kind=NotificationKind.BILLING_NOTICE,
        dedupe_key=f"{event.type}:{p.organization_id}:{p.newest_block_id}",
        recipient=p.billing_email,
        organization_id=p.organization_id,
        ticket_id=None,
        context={"notice": {"title": title, "text": text}},
    )


async def on_email_bounced(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    """A bounce report for mail we sent (ticket_api checked its Message-ID's MAC): suppress."""
    p = ev.payload_of(event, ev.EmailBouncedV1)
    if not p.permanent:
        return
    for address in p.recipients:
        await repo.add_suppression(
            session,
            {
                "address": address.lower(),
                "reason": f"bounce report: {p.diagnostic}"[:2000],
                "smtp_code": None,
                "notification_id": None,
                "created_at": notifier.clock(),
            },
        )


async def on_sign_in_requested(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    """Mail a customer the sign-in link ticket_api asked for (the token is made here, with the
    common secret: the event alone signs nobody in). The API never shows this mail's body."""
    p = ev.payload_of(event, ev.CustomerSignInRequestedV1)
    token = sign_in_links.make_token(p.contact_id, p.nonce, p.expires_at, secret=notifier.secret)
    await queue_email(
        session,
        notifier,
        dedupe_key=str(event.id),
        event_type=event.type,
        kind=NotificationKind.SIGN_IN_LINK,
        recipient=p.email,
        recipient_name=p.name,
        ticket=None,
        customer_facing=False,
        context={
            "url": sign_in_links.link(notifier.settings.public_base_url, token),
            "expires_at": format_instant(p.expires_at, notifier.settings.office_timezone),
            "ticket_number": p.ticket_number,
        },
    )


# --- appointments: calendar invites ---------------------------------------------------------------

APPOINTMENT_CHANGES = {
    ev.EventType.APPOINTMENT_BOOKED: "booked",
    ev.EventType.APPOINTMENT_RESCHEDULED: "rescheduled",
    ev.EventType.APPOINTMENT_CANCELLED: "cancelled",
}


def appointment_mail_key(appointment_id: UUID, sequence: int) -> str:
    """One key per change of an appointment (its SEQUENCE), ordered like the changes."""
    return f"appointment:{appointment_id}:{sequence:06d}"


async def on_appointment_changed(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    """Booked, moved or cancelled: the customer and the consultant each get a mail with the
    calendar invite (METHOD:REQUEST, or CANCEL) attached, quoting the policy. A change that
    arrives after a later one of the same appointment is dropped: its invite is out of date."""
    p = ev.payload_of(event, ev.AppointmentV1)
    settings = notifier.settings
    key = appointment_mail_key(p.appointment_id, p.sequence)
    if await repo.later_mail_exists(session, f"appointment:{p.appointment_id}:", key):
        log.info("appointment %s sequence %s arrived after a later change: not mailed", p.uid, p.sequence)
        return
    ticket = TicketRef(
        id=p.ticket_id,
        number=p.number,
        subject=p.subject,
        organization_id=p.organization.id if p.organization else None,
    )

    def invite_for(recipient: str, customer_facing: bool) -> dict[str, Any]:
        """The invite attached for one side: the same event (UID, SEQUENCE), each side's link."""
        link = mail_ticket_link(
            notifier, ticket, recipient=recipient, customer_facing=customer_facing, now=notifier.clock()
        )
        invite = build_invite(
            p,
            organizer=Organizer(email=settings.support_address, name=f"{settings.company_name} Support"),
            stamp=event.occurred_at,
            ticket_url=link,
            prodid=f"-//{settings.company_name}//Helpdesk appointments//EN",
        )
        return {
            "kind": "inline",
            "filename": ICS_FILENAME,
            "content_type": "text/calendar",
            "params": {"method": method_for(p).value, "charset": "UTF-8"},
            "content_b64": base64.b64encode(invite).decode(),
        }

    minutes = int((p.ends_at - p.starts_at).total_seconds() // 60)
    appointment = {
        "change": APPOINTMENT_CHANGES[ev.EventType(event.type)],
        "minutes": minutes,
        "policy": p.policy,
        "late_cancellation": p.late_cancellation,
        "cancel_reason": p.cancel_reason,
        "filename": ICS_FILENAME,
        "booking_url": booking_url(
            notifier, ticket_id=p.ticket_id, agent_id=p.agent.id, email=p.contact.email, now=notifier.clock()
        ),
    }
    consultant = {"name": p.agent.name, "email": p.agent.email}
    customer = {"name": p.contact.name or p.contact.email, "email": p.contact.email}
    organization = p.organization.name if p.organization else None
    # Each reads in their own timezone: the customer in their organization's (p.timezone), the
    # consultant in theirs, with the customer's time beside it when the two differ.
    consultant_zone = await staff_timezone(session, notifier, p.agent.id)
    for kind, recipient, name, customer_facing, reader, other in (
        (NotificationKind.APPOINTMENT_CUSTOMER, p.contact.email, p.contact.name, True, p.timezone, None),
        (
            NotificationKind.APPOINTMENT_CONSULTANT,
            p.agent.email,
            p.agent.name,
            False,
            consultant_zone,
            p.timezone,
        ),
    ):
        times = {
            "starts": format_instant(p.starts_at, reader),
            "ends": format_clock(p.ends_at, reader),
            "timezone": reader,
            "starts_customer": format_instant(p.starts_at, other) if other and other != reader else None,
        }
        await queue_email(
            session,
            notifier,
            dedupe_key=key,
            event_type=event.type,
            kind=kind,
            recipient=recipient,
            recipient_name=name,
            ticket=ticket,
            customer_facing=customer_facing,
            context={
                "appointment": {**appointment, **times},
                "consultant": consultant,
                "customer": customer,
                "organization": organization,
            },
            attachments=[invite_for(recipient, customer_facing)],
        )


# --- inbound mail whose attachments were refused -------------------------------------------------


def file_size(size_bytes: int) -> str:
    """Sizes as ticket_api's limits state them (MB of 1024 × 1024 bytes)."""
    if size_bytes < 1024 * 1024:
        return f"{max(size_bytes // 1024, 1)} KB"
    return f"{size_bytes / (1024 * 1024):.1f} MB"


async def on_attachments_refused(session: AsyncSession, notifier: Notifier, event: ev.Event) -> None:
    """Tell the sender which attachments of their mail were not kept and the limits, as an
    automatic answer threaded under their message."""
    p = ev.payload_of(event, ev.EmailAttachmentsRefusedV1)
    view = await repo.get_ticket_view(session, p.ticket_id) if p.ticket_id else None
    ticket = None
    if p.ticket_id is not None and p.ticket_number is not None:
        ticket = TicketRef(
            id=p.ticket_id,
            number=p.ticket_number,
            subject=view.subject if view else p.subject,
            organization_id=view.organization_id if view else None,
        )
    original = re.sub(r"^(\s*re\s*:\s*)+", "", p.subject, flags=re.IGNORECASE).strip() or "(no subject)"
    if ticket is not None and f"[{ticket.number}]" not in original:
        original = f"[{ticket.number}] {original}"
    await queue_email(
        session,
        notifier,
        dedupe_key=f"attachments_refused:{p.inbound_email_id}",
        event_type=event.type,
        kind=NotificationKind.ATTACHMENTS_REFUSED,
        recipient=p.recipient,
        recipient_name=p.recipient_name,
        ticket=ticket,
        context={
            "original_subject": original,
            "refused": [
                {"filename": r.filename or "(unnamed)", "size": file_size(r.size_bytes), "reason": r.reason}
                for r in p.refused
            ],
            "limits": {
                "per_file": file_size(p.max_attachment_bytes),
                "count": p.max_attachments,
                "total": file_size(p.max_total_bytes),
            },
        },
        auto_submitted="auto-replied",  # RFC 3834: an automatic answer to their mail
        answers=p.in_reply_to,
    )
