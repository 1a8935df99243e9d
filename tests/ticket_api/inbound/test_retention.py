"""Raw copies of inbound mail are deleted after the retention period, nightly, in batches: what
each message became stays (the ticket, its messages), the raw route answers 410 saying so,
mail flagged for review keeps its copy, and 0 days keeps everything."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import update

from services.ticket_api.inbound.models import InboundEmail
from services.ticket_api.tasks import purge_raw_email
from shared.clock import utcnow
from tests.ticket_api.conftest import Actors
from tests.ticket_api.inbound import messages as mail

RAW = {"Content-Type": "message/rfc822"}


async def receive(api: Actors, raw: bytes) -> dict[str, Any]:
    answer = await api.client.post("/api/v1/inbound/email", content=raw, headers={**RAW, **api.agent})
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def received_days_ago(api: Actors, inbound_id: str, days: int) -> None:
    async with api.runtime.sessions() as session, session.begin():
        await session.execute(
            update(InboundEmail)
            .where(InboundEmail.id == UUID(inbound_id))  # type: ignore[arg-type]
            .values(received_at=utcnow() - timedelta(days=days))
        )


async def raw_of(api: Actors, inbound_id: str) -> tuple[int, bytes]:
    answer = await api.client.get(f"/api/v1/inbound/emails/{inbound_id}/raw", headers=api.agent)
    return answer.status_code, answer.content


async def test_old_raw_copies_are_deleted_and_what_they_became_stays(api: Actors) -> None:
    old = await receive(api, mail.plain())
    flagged = await receive(api, mail.garbage())
    fresh = await receive(api, mail.plain(subject="Scanner jammed", message_id="<fresh.1@acme.test>"))
    await received_days_ago(api, old["id"], 400)
    await received_days_ago(api, flagged["id"], 400)
    await received_days_ago(api, fresh["id"], 300)

    assert await purge_raw_email({"runtime": api.runtime}) == 1

    status, body = await raw_of(api, old["id"])
    assert status == 410 and b"retention period" in body and b"raw-email-deleted" in body
    record = (await api.client.get(f"/api/v1/inbound/emails/{old['id']}", headers=api.agent)).json()
    assert record["raw_purged_at"] is not None and record["ticket_id"] == old["ticket_id"]
    ticket = await api.client.get(f"/api/v1/tickets/{old['ticket_id']}", headers=api.agent)
    assert ticket.status_code == 200 and ticket.json()["subject"] == "Printer offline"
    assert (await raw_of(api, flagged["id"])) == (200, mail.garbage()), "flagged for review: kept"
    assert (await raw_of(api, fresh["id"]))[0] == 200, "within the retention period"
    assert await purge_raw_email({"runtime": api.runtime}) == 0, "nothing left to do"


async def test_zero_days_keeps_every_raw_copy(api: Actors) -> None:
    old = await receive(api, mail.plain())
    await received_days_ago(api, old["id"], 4000)
    settings = api.runtime.settings
    kept = settings.model_copy(update={"inbound_raw_retention_days": 0})
    api.runtime.settings = kept  # type: ignore[misc]
    try:
        assert await purge_raw_email({"runtime": api.runtime}) == 0
    finally:
        api.runtime.settings = settings  # type: ignore[misc]
    assert (await raw_of(api, old["id"]))[0] == 200
