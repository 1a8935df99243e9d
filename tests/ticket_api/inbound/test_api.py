"""The inbound-email routes: the raw-message door (staff and services only), what became of
each message, attachments per ticket with authorization, and the SLA-document confirmation."""

from __future__ import annotations

from tests import auth
from tests.auth import bearer
from tests.ticket_api.conftest import Actors
from tests.ticket_api.inbound import messages as mail

RAW = {"Content-Type": "message/rfc822"}


async def post_mail(api: Actors, raw: bytes, headers: dict[str, str], **params: str) -> tuple[int, dict]:
    response = await api.client.post(
        "/api/v1/inbound/email", content=raw, headers={**RAW, **headers}, params=params
    )
    return response.status_code, response.json()


async def test_only_staff_and_services_may_post_mail(api: Actors) -> None:
    assert (await post_mail(api, mail.plain(), {}))[0] == 401
    assert (await post_mail(api, mail.plain(), api.portal_a))[0] == 403
    status, first = await post_mail(api, mail.plain(), bearer(auth.service("mta")))
    assert status == 201 and first["outcome"] == "ticket_created" and not first["duplicate"]
    status, again = await post_mail(api, mail.plain(), api.agent)
    assert status == 200 and again["duplicate"] and again["id"] == first["id"]
    ticket = (await api.client.get(f"/api/v1/tickets/{first['ticket_id']}", headers=api.portal_a)).json()
    assert ticket["channel"] == "email" and ticket["organization_id"] == api.org_a["id"]
    assert (await api.outbox_types()).count("ticket.created") == 1


async def test_oversized_mail_is_refused_with_413(api: Actors) -> None:
    settings = api.runtime.settings
    too_big = b"x" * (settings.inbound_max_message_bytes + 1)  # type: ignore[attr-defined]
    status, body = await post_mail(api, too_big, api.agent)
    assert status == 413 and body["type"].endswith("message-too-large")


async def test_malformed_mail_is_kept_raw_and_listed_for_review(api: Actors) -> None:
    status, result = await post_mail(api, mail.garbage(), api.agent)
    assert status == 201 and result["outcome"] == "flagged" and result["needs_review"]
    listed = (await api.client.get("/api/v1/inbound/emails?needs_review=true", headers=api.agent)).json()
    assert [item["id"] for item in listed["items"]] == [result["id"]]
    raw = await api.client.get(f"/api/v1/inbound/emails/{result['id']}/raw", headers=api.agent)
    assert raw.status_code == 200 and raw.content == mail.garbage()
    assert raw.headers["content-type"] == "message/rfc822"
    assert (await api.client.get("/api/v1/inbound/emails", headers=api.portal_a)).status_code == 403


async def test_bounce_posted_with_null_sender_opens_no_ticket(api: Actors) -> None:
    status, result = await post_mail(
        api, mail.bounce(original_message_id="<x@y.test>"), api.agent, sender="<>"
    )
    assert status == 201 and result["kind"] == "bounce" and result["ticket_id"] is None
    assert "ticket.created" not in await api.outbox_types()


async def test_attachments_are_served_to_who_may_see_the_ticket(api: Actors) -> None:
    raw = mail.with_attachments(
        [("SLA signed.pdf", "application/pdf", mail.PDF), ("notes.html", "text/html", b"<b>x")]
    )
    status, result = await post_mail(api, raw, api.agent)
    assert status == 201 and result["needs_review"]
    files = (
        await api.client.get(f"/api/v1/tickets/{result['ticket_id']}/attachments", headers=api.portal_a)
    ).json()
    assert [(f["filename"], f["content_type"]) for f in files] == [
        ("SLA signed.pdf", "application/pdf"),
        ("notes.html", "text/html"),
    ]
    pdf = await api.client.get(files[0]["download_url"], headers=api.portal_a)
    assert pdf.status_code == 200 and pdf.content == mail.PDF
    assert pdf.headers["content-type"] == "application/pdf"
    assert (
        pdf.headers["content-disposition"]
        == "attachment; filename=\"SLA signed.pdf\"; filename*=UTF-8''SLA%20signed.pdf"
    )
    assert pdf.headers["x-content-type-options"] == "nosniff"
    html = await api.client.get(files[1]["download_url"], headers=api.agent)
    assert html.headers["content-type"] == "application/octet-stream"  # never rendered as our page
    assert (await api.client.get(files[0]["download_url"], headers=api.portal_b)).status_code == 404
    assert (await api.client.get(files[0]["download_url"])).status_code == 401
    assert (
        await api.client.get(f"/api/v1/tickets/{result['ticket_id']}/attachments", headers=api.portal_b)
    ).status_code == 404


async def test_an_agent_confirms_the_signed_sla(api: Actors) -> None:
    raw = mail.with_attachments([("SLA signed.pdf", "application/pdf", mail.PDF)])
    await post_mail(api, raw, api.agent)
    (review,) = (await api.client.get("/api/v1/inbound/sla-documents", headers=api.agent)).json()
    assert review["organization_id"] == api.org_a["id"] and review["state"] == "needs_review"
    confirm = f"/api/v1/inbound/sla-documents/{review['id']}/confirm"
    assert (await api.client.post(confirm, headers=api.portal_a)).status_code == 403
    response = await api.client.post(confirm, headers=api.agent)
    assert response.status_code == 200 and response.json()["state"] == "confirmed"
    assert (await api.client.post(confirm, headers=api.agent)).status_code == 200  # again: no change
    organization = (
        await api.client.get(f"/api/v1/organizations/{api.org_a['id']}", headers=api.admin)
    ).json()
    assert organization["sla_signed"] is True
    assert (await api.outbox_types()).count("organization.sla_signed") == 1
    assert (await api.client.get("/api/v1/inbound/sla-documents", headers=api.agent)).json() == []
