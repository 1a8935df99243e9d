"""One mail's delivery: claim the row, load its attachments, hand it to the relay, record
"sent" (retried through a database outage) or schedule the retry."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from uuid import UUID

import httpx

from services.notifier import delivery_policy as policy
from services.notifier import repository as repo
from services.notifier.compose import Attachment, build_message
from services.notifier.context import Notifier
from services.notifier.delivery_policy import LEASE
from services.notifier.dispatch import SEND_EMAIL, Job
from services.notifier.documents import SLA_FILENAME, sla_document
from services.notifier.models import (
    DeliveryState,
    Notification,
)
from services.notifier.recording import office_hours_text
from services.notifier.smtp import PermanentSmtpError, TransientSmtpError
from shared.transient import TransientError, is_transient

log = logging.getLogger(__name__)


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
