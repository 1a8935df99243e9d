"""Inbound email over HTTP: the raw-message door (an MTA pipe or a mail provider's forward),
what became of each message, attachments, and the SLA-document confirmation."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.ticket_api.deps import AppSettings, CurrentCaller, StaffCaller, Uow, WritingCaller
from services.ticket_api.inbound import repository as inbound_repo
from services.ticket_api.inbound.attachments import BlobStore, safe_content_type, safe_filename
from services.ticket_api.inbound.models import EmailAttachment, InboundKind, SlaReviewState
from services.ticket_api.inbound.schemas import (
    EmailAttachmentPublic,
    InboundEmailPublic,
    SlaDocumentReviewPublic,
)
from services.ticket_api.inbound.service import Envelope, Inbound, confirm_sla_document
from services.ticket_api.tickets import service as ticket_service
from services.ticket_api.tickets.models import Visibility
from shared.pagination import Page, decode_cursor, page_of
from shared.problems import NotFound, Problem, problem_responses
from shared.runtime import runtime_of

router = APIRouter(tags=["inbound email"])

RAW_MEDIA_TYPES = ("message/rfc822", "application/octet-stream", "text/plain")


class MessageTooLarge(Problem):
    status, slug, title = 413, "message-too-large", "Message too large"


class InboundEmailNotFound(NotFound):
    slug, title = "inbound-email-not-found", "Inbound email not found"


class AttachmentNotFound(NotFound):
    slug, title = "attachment-not-found", "Attachment not found"


class RawEmailDeleted(Problem):
    status, slug, title = 410, "raw-email-deleted", "Raw message deleted after the retention period"


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise MessageTooLarge(f"A message may be at most {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise MessageTooLarge(f"A message may be at most {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/inbound/email",
    status_code=201,
    responses={
        200: {
            "model": InboundEmailPublic,
            "description": "Already received (same Message-ID): the first result",
        },
        201: {"model": InboundEmailPublic, "description": "What became of the message"},
        **problem_responses(401, 403, 413),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The raw RFC 5322 message, byte for byte.",
            "content": {
                "message/rfc822": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "From: Jane <jane@acme.test>\r\nTo: support@helpdesk.test\r\n"
                    "Subject: Printer offline\r\nMessage-ID: <1@acme.test>\r\n\r\n"
                    "It stopped this morning.\r\n",
                }
            },
        }
    },
    summary="Take in one email",
)
async def receive_email(
    request: Request,
    caller: StaffCaller,
    settings: AppSettings,
    sender: Annotated[
        str | None, Query(max_length=320, description="SMTP MAIL FROM, if known ('<>' for a bounce)")
    ] = None,
    recipient: Annotated[list[str] | None, Query(description="SMTP RCPT TO, if known (repeatable)")] = None,
) -> Response:
    """Take a raw message in exactly as the SMTP listener does (agents and services): it
    becomes a ticket, a message on a ticket, or a raw message flagged for a human. Sending
    the same Message-ID again changes nothing and answers 200 with the first result."""
    raw = await _read_capped(request, settings.inbound_max_message_bytes)
    runtime = runtime_of(request)
    inbound = Inbound(sessions=runtime.sessions, outbox=runtime.outbox, settings=settings)
    envelope = Envelope(
        sender=sender.strip() if sender is not None else None,
        recipients=tuple((recipient or [])[:100]),
        via="api",
    )
    if envelope.sender == "<>":
        envelope = Envelope(sender="", recipients=envelope.recipients, via="api")
    result = await inbound.receive(raw, envelope)
    return Response(
        result.model_dump_json(),
        status_code=200 if result.duplicate else 201,
        media_type="application/json",
        headers={"Location": f"/api/v1/inbound/emails/{result.id}"},
    )


@router.get("/inbound/emails", responses=problem_responses(400, 401, 403, 422))
async def list_inbound_emails(
    uow: Uow,
    caller: StaffCaller,
    needs_review: bool | None = Query(None, description="true: the ones flagged for a human"),
    kind: InboundKind | None = None,
    ticket_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[InboundEmailPublic]:
    """Messages that came in, newest first (agents)."""
    rows = await inbound_repo.list_inbound(
        uow.session,
        needs_review=needs_review,
        kind=kind,
        ticket_id=ticket_id,
        limit=limit + 1,
        before=decode_cursor(cursor),
    )
    items = [InboundEmailPublic.model_validate(r, from_attributes=True) for r in rows]
    return page_of(items, [r.id for r in rows], limit)


@router.get("/inbound/emails/{inbound_id}", responses=problem_responses(401, 403, 404, 422))
async def get_inbound_email(inbound_id: UUID, uow: Uow, caller: StaffCaller) -> InboundEmailPublic:
    row = await inbound_repo.get_inbound(uow.session, inbound_id)
    if row is None:
        raise InboundEmailNotFound(f"No inbound email {inbound_id}.")
    return InboundEmailPublic.model_validate(row, from_attributes=True)


@router.get(
    "/inbound/emails/{inbound_id}/raw",
    responses={200: {"content": {"message/rfc822": {}}}, **problem_responses(401, 403, 404, 410, 422)},
    response_class=Response,
)
async def get_raw_email(inbound_id: UUID, uow: Uow, caller: StaffCaller) -> Response:
    """The message exactly as it arrived (agents), until it is deleted after the retention
    period (410 then; what it became stays)."""
    row = await inbound_repo.get_inbound(uow.session, inbound_id)
    if row is None:
        raise InboundEmailNotFound(f"No inbound email {inbound_id}.")
    if row.raw_purged_at is not None:
        raise RawEmailDeleted(
            f"The raw copy of this message was deleted on {row.raw_purged_at:%Y-%m-%d}, after the "
            "retention period; its ticket, messages and attachments are kept.",
            deleted_at=row.raw_purged_at.isoformat(),
        )
    return Response(
        row.raw_message,
        media_type="message/rfc822",
        headers={
            "Content-Disposition": f'attachment; filename="{row.id}.eml"',
            "X-Content-Type-Options": "nosniff",
        },
    )


def _attachment_public(row: EmailAttachment) -> EmailAttachmentPublic:
    public = EmailAttachmentPublic.model_validate(row, from_attributes=True)
    return public.model_copy(update={"download_url": f"/api/v1/attachments/{row.id}" if row.sha256 else None})


@router.get("/tickets/{ticket_id}/attachments", responses=problem_responses(401, 404, 422))
async def list_ticket_attachments(
    ticket_id: UUID, uow: Uow, caller: CurrentCaller
) -> list[EmailAttachmentPublic]:
    """Files that came with the ticket's mail (with refused ones and why). Attachments of
    internal notes (auto-replies, bounces) are shown to agents only."""
    ticket = await ticket_service.visible_ticket(uow, caller, ticket_id)
    rows = await inbound_repo.attachments_of_ticket(
        uow.session, ticket.id, include_internal=caller.principal.is_staff
    )
    return [_attachment_public(row) for row in rows]


_UNSAFE_INLINE = re.compile(r"^(text/html|image/svg\+xml|application/xhtml\+xml|text/xml|application/xml)$")


@router.get(
    "/attachments/{attachment_id}",
    responses={200: {"content": {"application/octet-stream": {}}}, **problem_responses(401, 404, 422)},
    response_class=Response,
)
async def download_attachment(
    attachment_id: UUID, request: Request, uow: Uow, caller: CurrentCaller, settings: AppSettings
) -> Response:
    """The file, with its type and name. Callers who may see its ticket may download it;
    attachments of internal notes and of mail that opened no ticket are for agents only."""
    row = await inbound_repo.get_attachment(uow.session, attachment_id)
    if row is None or row.sha256 is None:
        raise AttachmentNotFound(f"No attachment {attachment_id}.")
    if not caller.principal.is_staff:
        if row.ticket_id is None or row.visibility != Visibility.PUBLIC:
            raise AttachmentNotFound(f"No attachment {attachment_id}.")
        try:
            await ticket_service.visible_ticket(uow, caller, row.ticket_id)
        except NotFound:
            raise AttachmentNotFound(f"No attachment {attachment_id}.") from None
    store = BlobStore(settings.attachment_store_dir)
    try:
        data = await asyncio.to_thread(store.read, row.sha256)
    except FileNotFoundError:
        raise AttachmentNotFound(
            f"The file of attachment {attachment_id} is missing from the store."
        ) from None
    content_type = safe_content_type(row.content_type)
    filename = safe_filename(row.filename)
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'").replace("?", "_")
    return Response(
        data,
        # Never let a browser render mail content as a page of ours.
        media_type="application/octet-stream" if _UNSAFE_INLINE.match(content_type) else content_type,
        headers={
            "Content-Disposition": (
                f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
            ),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "ETag": f'"{row.sha256}"',
        },
    )


@router.get("/inbound/sla-documents", responses=problem_responses(401, 403, 422))
async def list_sla_documents(
    uow: Uow,
    caller: StaffCaller,
    state: SlaReviewState | None = SlaReviewState.NEEDS_REVIEW,
    organization_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[SlaDocumentReviewPublic]:
    """SLA documents received by email ("signed SLA received — needs review" by default)."""
    rows = await inbound_repo.list_sla_reviews(
        uow.session, state=state, organization_id=organization_id, limit=limit
    )
    return [SlaDocumentReviewPublic.model_validate(r, from_attributes=True) for r in rows]


@router.post("/inbound/sla-documents/{review_id}/confirm", responses=problem_responses(401, 403, 404, 422))
async def confirm_sla(review_id: UUID, uow: Uow, caller: WritingCaller) -> SlaDocumentReviewPublic:
    """An agent confirms the received document is the signed SLA: the organization counts as
    signed from now on (`organization.sla_signed`). Confirming again changes nothing."""
    review = await confirm_sla_document(uow, caller, review_id)
    await uow.commit()
    return SlaDocumentReviewPublic.model_validate(review, from_attributes=True)
