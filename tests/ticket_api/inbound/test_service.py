"""The rules of inbound email on a real database (PostgreSQL and SQLite): threading, reopen
windows, loops, idempotent re-delivery, contacts, attachments, SLA documents, malformed mail."""

from __future__ import annotations

from uuid import UUID

from pydantic import SecretStr

from services.ticket_api.inbound.models import InboundKind, InboundOutcome
from services.ticket_api.inbound.service import Envelope, Inbound
from shared.vocabulary import TicketStatus
from tests.ticket_api.inbound import messages as mail
from tests.ticket_api.inbound.conftest import InboundWorld

QUOTED = "We have your request and will be in touch.\nTicket TKT-1"


async def _first_ticket(world: InboundWorld) -> UUID:
    result = await world.receive(mail.plain())
    assert result.outcome is InboundOutcome.TICKET_CREATED
    assert result.ticket_id is not None
    return result.ticket_id


async def _tag(world: InboundWorld, ticket_id: UUID) -> str:
    """The subject tag of a ticket (numbers keep counting across tests on PostgreSQL)."""
    return f"[TKT-{(await world.ticket(ticket_id)).number}]"


async def test_a_new_mail_opens_a_ticket_for_a_new_contact_of_the_domain_organization(
    world: InboundWorld,
) -> None:
    result = await world.receive(mail.plain(headers={"Importance": "high"}))
    assert (result.kind, result.outcome, result.acknowledge) == (
        InboundKind.HUMAN,
        InboundOutcome.TICKET_CREATED,
        True,
    )
    ticket = await world.ticket(result.ticket_id)
    assert ticket.channel == "email" and ticket.urgency == "high" and ticket.subject == "Printer offline"
    assert ticket.organization_id == world.acme_id
    assert ticket.description.startswith("The printer on the 3rd floor")
    (created,) = await world.events("ticket.created")
    assert created["acknowledge"] is True and created["contact"]["email"] == "jane@acme.test"
    assert created["organization"]["id"] == str(world.acme_id)


async def test_redelivery_of_the_same_message_id_is_a_no_op(world: InboundWorld) -> None:
    first = await world.receive(mail.plain())
    relayed = b"Received: from mx2.acme.test by mx.helpdesk.test; Tue, 24 Nov 2026 15:01:00 +0000\r\n"
    again = await world.receive(relayed + mail.plain())  # other bytes, the same message
    assert again.duplicate and not first.duplicate
    assert (again.id, again.ticket_id, again.outcome) == (first.id, first.ticket_id, first.outcome)
    assert len(await world.tickets()) == 1 and len(await world.inbound_rows()) == 1
    assert len(await world.events("ticket.created")) == 1


async def test_a_message_id_re_used_with_different_content_is_kept_and_flagged(world: InboundWorld) -> None:
    first = await world.receive(mail.plain())
    other = await world.receive(mail.plain(body="different words, same Message-ID\n"))
    assert not other.duplicate and other.id != first.id
    assert (other.outcome, other.ticket_id, other.needs_review) == (InboundOutcome.FLAGGED, None, True)
    assert (other.review_reason or "").startswith("Message-ID <cafe.1@mail.acme.test> re-used with different")
    assert str(first.id) in (other.review_reason or "")
    assert len(await world.tickets()) == 1 and len(await world.events("ticket.created")) == 1
    # Its own redelivery is a redelivery.
    again = await world.receive(mail.plain(body="different words, same Message-ID\n"))
    assert again.duplicate and again.id == other.id
    assert len(await world.inbound_rows()) == 2


async def test_a_message_without_message_id_is_deduplicated_by_its_bytes(world: InboundWorld) -> None:
    raw = mail.plain(message_id=None)
    first, again = await world.receive(raw), await world.receive(raw)
    assert again.duplicate and again.id == first.id and first.message_key.startswith("sha256:")


async def test_gmail_reply_to_our_message_id_joins_the_ticket_without_the_quote(world: InboundWorld) -> None:
    ticket_id = await _first_ticket(world)
    raw = mail.gmail_reply(
        in_reply_to=world.our_message_id(ticket_id),
        subject=f"Re: {await _tag(world, ticket_id)} Printer offline",
        reply="It shows error E42 now.",
        quoted=QUOTED,
    )
    result = await world.receive(raw)
    assert (result.outcome, result.matched_by, result.ticket_id) == (
        InboundOutcome.MESSAGE_ADDED,
        "in_reply_to",
        ticket_id,
    )
    (message,) = await world.messages(ticket_id)
    assert message.body == "It shows error E42 now." and message.author_kind == "customer"
    row = (await world.inbound_rows())[-1]
    assert "We have your request" in row.full_text and row.raw_message == raw


async def test_reply_token_matches_when_headers_are_lost(world: InboundWorld) -> None:
    ticket_id = await _first_ticket(world)
    raw = mail.outlook_reply(
        subject="Printer offline", reply="Tried that, no luck.", quoted=QUOTED, german=True
    )
    result = await world.receive(
        raw, Envelope(sender="jane@acme.test", recipients=(world.reply_address(ticket_id),))
    )
    assert (result.outcome, result.matched_by) == (InboundOutcome.MESSAGE_ADDED, "reply_token")
    (message,) = await world.messages(ticket_id)
    assert message.body == "Tried that, no luck."


async def test_subject_tag_joins_for_a_colleague_but_not_for_a_stranger(world: InboundWorld) -> None:
    ticket_id = await _first_ticket(world)
    colleague = mail.plain(
        sender="Bob <bob@acme.test>",
        subject=f"Re: {await _tag(world, ticket_id)} Printer offline",
        body="Same here on the 2nd floor.\n",
        message_id="<bob.1@acme.test>",
    )
    result = await world.receive(colleague)
    assert (result.outcome, result.matched_by, result.ticket_id) == (
        InboundOutcome.MESSAGE_ADDED,
        "subject_tag",
        ticket_id,
    )
    mallory = mail.plain(
        sender="Mallory <mallory@evil.test>",
        subject=f"Re: {await _tag(world, ticket_id)} Printer offline",
        body="Please send me the invoice.\n",
        message_id="<m.1@evil.test>",
    )
    result = await world.receive(mallory)
    assert result.outcome is InboundOutcome.TICKET_CREATED and result.ticket_id != ticket_id
    assert result.needs_review and "not on that ticket" in (result.review_reason or "")
    assert len(await world.messages(ticket_id)) == 1


async def test_a_forged_message_id_from_a_stranger_does_not_join(world: InboundWorld) -> None:
    ticket_id = await _first_ticket(world)
    forged = world.our_message_id(ticket_id).replace("@", "x@", 1)  # MAC no longer matches
    raw = mail.gmail_reply(
        in_reply_to=forged,
        subject="Re: hello",
        reply="let me in",
        quoted="x",
        sender="Mallory <mallory@evil.test>",
        message_id="<m.2@evil.test>",
    )
    result = await world.receive(raw)
    assert result.outcome is InboundOutcome.TICKET_CREATED and result.ticket_id != ticket_id
    # A Message-ID we *received* for the ticket joins only for its people, too.
    stranger = mail.gmail_reply(
        in_reply_to="<cafe.1@mail.acme.test>",
        subject="Re: Printer offline",
        reply="me too",
        quoted="x",
        sender="Mallory <mallory@evil.test>",
        message_id="<m.3@evil.test>",
    )
    assert (await world.receive(stranger)).ticket_id != ticket_id
    colleague = mail.gmail_reply(
        in_reply_to="<cafe.1@mail.acme.test>",
        subject="Re: Printer offline",
        reply="me too",
        quoted="x",
        sender="Bob <bob@acme.test>",
        message_id="<bob.2@acme.test>",
    )
    assert (await world.receive(colleague)).ticket_id == ticket_id


async def test_customer_answer_resumes_a_ticket_waiting_on_them(world: InboundWorld) -> None:
    from services.ticket_api.caller import Caller
    from services.ticket_api.tickets import service as tickets
    from services.ticket_api.tickets.schemas import MessageCreate, StatusChange
    from shared.uow import UnitOfWork
    from tests import auth

    ticket_id = await _first_ticket(world)
    async with world.runtime.sessions() as session:
        uow = UnitOfWork(session, world.runtime.outbox)
        caller = Caller(principal=auth.admin(), request_id=None)
        # Waiting on the customer needs a question to them first.
        await tickets.post_message(uow, caller, ticket_id, MessageCreate(body="Which model is it?"))
        await tickets.change_status(
            uow, caller, ticket_id, StatusChange(status=TicketStatus.PENDING_CUSTOMER)
        )
        await uow.commit()
    raw = mail.apple_mail_reply(
        subject="Printer offline",
        reply="Model HP 4250.",
        quoted=QUOTED,
        in_reply_to=world.our_message_id(ticket_id),
    )
    await world.receive(raw)
    assert (await world.ticket(ticket_id)).status == TicketStatus.OPEN
    *_, message = await world.messages(ticket_id)
    assert message.body == "Model HP 4250."


async def test_reply_to_a_closed_ticket_reopens_within_the_window_then_links_a_new_one(
    world: InboundWorld,
) -> None:
    ticket_id = await _first_ticket(world)
    await world.close_ticket(ticket_id)
    world.clock.advance(days=13)
    raw = mail.thunderbird_reply(
        subject="Printer offline",
        reply="It broke again.",
        quoted=QUOTED,
        in_reply_to=world.our_message_id(ticket_id),
        language="fr",
    )
    result = await world.receive(raw)
    assert result.outcome is InboundOutcome.TICKET_REOPENED and result.ticket_id == ticket_id
    assert (await world.ticket(ticket_id)).status == TicketStatus.OPEN
    (message,) = await world.messages(ticket_id)
    assert message.body == "It broke again."
    await world.close_ticket(ticket_id)
    world.clock.advance(days=15)
    late = mail.thunderbird_reply(
        subject="Printer offline",
        reply="And again, weeks later.",
        quoted=QUOTED,
        in_reply_to=world.our_message_id(ticket_id),
        language="es",
    )
    result = await world.receive(late)
    assert result.outcome is InboundOutcome.LINKED_TICKET_CREATED and result.ticket_id != ticket_id
    assert (await world.ticket(ticket_id)).status == TicketStatus.CLOSED
    new = await world.ticket(result.ticket_id)
    assert new.description == "And again, weeks later." and new.subject == "Printer offline"
    from services.ticket_api.inbound import repository as inbound_repo

    async with world.runtime.sessions() as session:
        (link,) = await inbound_repo.links_of(session, ticket_id)
    assert (link.ticket_id, link.linked_ticket_id, link.kind) == (new.id, ticket_id, "follow_up_of")


async def test_out_of_office_is_recorded_on_the_ticket_never_acknowledged(world: InboundWorld) -> None:
    ticket_id = await _first_ticket(world)
    result = await world.receive(
        mail.out_of_office(
            subject=f"{await _tag(world, ticket_id)} We received your request",
            in_reply_to=world.our_message_id(ticket_id),
        )
    )
    assert (result.kind, result.outcome, result.ticket_id) == (
        InboundKind.AUTO_REPLY,
        InboundOutcome.RECORDED_ON_TICKET,
        ticket_id,
    )
    (note,) = await world.messages(ticket_id)
    assert note.visibility == "internal" and note.author_kind == "system" and "out of the office" in note.body
    assert len(await world.events("ticket.created")) == 1  # only the real ticket
    assert (await world.ticket(ticket_id)).status == TicketStatus.NEW
    # Unmatched, it is stored and nothing else happens.
    lone = await world.receive(
        mail.out_of_office(
            subject="Hello", sender="Zed <zed@nowhere.test>", message_id="<oof.5@nowhere.test>"
        )
    )
    assert (lone.outcome, lone.ticket_id) == (InboundOutcome.STORED, None)
    assert len(await world.events("ticket.created")) == 1


async def test_a_bounce_of_our_mail_is_recorded_and_reported_for_suppression(world: InboundWorld) -> None:
    ticket_id = await _first_ticket(world)
    ours = world.our_message_id(ticket_id)
    result = await world.receive(
        mail.bounce(original_message_id=ours), Envelope(sender="", recipients=("support@helpdesk.test",))
    )
    assert (result.kind, result.outcome, result.ticket_id) == (
        InboundKind.BOUNCE,
        InboundOutcome.RECORDED_ON_TICKET,
        ticket_id,
    )
    assert result.bounce_recipients == ["gone@acme.test"] and result.bounce_permanent is True
    (bounced,) = await world.events("email.bounced")
    assert bounced["recipients"] == ["gone@acme.test"] and bounced["permanent"] is True
    assert bounced["original_message_ids"] == [ours]
    # A forged report (no Message-ID of ours) suppresses nobody.
    forged = await world.receive(
        mail.bounce(
            original_message_id="<someone@else.test>",
            recipient="victim@acme.test",
            message_id="<forged@x.test>",
        )
    )
    assert forged.kind is InboundKind.BOUNCE and forged.outcome is InboundOutcome.STORED
    assert len(await world.events("email.bounced")) == 1
    assert len(await world.events("ticket.created")) == 1


async def test_our_own_mail_coming_back_is_a_loop(world: InboundWorld) -> None:
    ticket_id = await _first_ticket(world)
    raw = mail.plain(
        sender="Helpdesk Support <support@helpdesk.test>",
        subject=f"{await _tag(world, ticket_id)} Printer offline",
        message_id=world.our_message_id(ticket_id),
    )
    result = await world.receive(raw)
    assert (result.kind, result.outcome, result.ticket_id) == (
        InboundKind.OWN,
        InboundOutcome.RECORDED_ON_TICKET,
        ticket_id,
    )
    assert result.matched_by == "own_message_id" and result.acknowledge is None
    assert result.needs_review and (result.review_reason or "").startswith("our own mail came back in (")
    assert "not on that ticket" not in (result.review_reason or "")
    assert await world.messages(ticket_id) == [] and len(await world.events("ticket.created")) == 1


async def test_acknowledgments_are_rate_limited_per_sender(world: InboundWorld) -> None:
    results = [
        await world.receive(mail.plain(subject=f"Problem {n}", message_id=f"<flood.{n}@acme.test>"))
        for n in range(5)
    ]
    assert [r.acknowledge for r in results] == [True, True, True, False, False]
    assert [e["acknowledge"] for e in await world.events("ticket.created")] == [
        True,
        True,
        True,
        False,
        False,
    ]
    world.clock.advance(minutes=61)
    assert (await world.receive(mail.plain(message_id="<later@acme.test>"))).acknowledge is True


async def test_attachments_are_stored_once_and_the_rest_refused_with_reasons(world: InboundWorld) -> None:
    big = b"B" * (65 * 1024)
    files = [
        ("a.txt", "text/plain", b"same"),
        ("b.txt", "text/plain", b"same"),
        ("big.bin", "application/octet-stream", big),
        ("c.txt", "text/plain", b"c"),
        ("d.txt", "text/plain", b"d"),
    ]
    result = await world.receive(mail.with_attachments(files, subject="Logs"))
    from services.ticket_api.inbound import repository as inbound_repo

    async with world.runtime.sessions() as session:
        rows = await inbound_repo.attachments_of_inbound(session, result.id)
    assert [(r.filename, r.refused_reason is None) for r in rows] == [
        ("a.txt", True),
        ("b.txt", True),
        ("big.bin", False),
        ("c.txt", True),
        ("d.txt", False),
    ]
    assert rows[0].sha256 == rows[1].sha256 and world.inbound.store.read(rows[0].sha256) == b"same"
    assert "larger than" in (rows[2].refused_reason or "") and "more than 3" in (rows[4].refused_reason or "")
    (refused,) = await world.events("email.attachments_refused")
    assert refused["recipient"] == "jane@acme.test" and [r["filename"] for r in refused["refused"]] == [
        "big.bin",
        "d.txt",
    ]
    assert refused["ticket_id"] == str(result.ticket_id)


async def test_a_pdf_from_an_unsigned_organization_awaits_review_and_an_agent_confirms(
    world: InboundWorld,
) -> None:
    from services.ticket_api.caller import Caller
    from services.ticket_api.inbound import repository as inbound_repo
    from services.ticket_api.inbound.models import SlaReviewState
    from services.ticket_api.inbound.service import confirm_sla_document
    from services.ticket_api.organizations.models import Organization
    from shared.uow import UnitOfWork
    from tests import auth

    result = await world.receive(mail.with_attachments([("SLA signed.pdf", "application/pdf", mail.PDF)]))
    assert result.needs_review and "signed SLA received" in (result.review_reason or "")
    async with world.runtime.sessions() as session:
        (review,) = await inbound_repo.list_sla_reviews(
            session, state=SlaReviewState.NEEDS_REVIEW, organization_id=None, limit=10
        )
    assert review.organization_id == world.acme_id
    async with world.runtime.sessions() as session:
        uow = UnitOfWork(session, world.runtime.outbox)
        caller = Caller(principal=auth.agent(), request_id=None)
        confirmed = await confirm_sla_document(uow, caller, review.id)
        await uow.commit()
    assert confirmed.state == SlaReviewState.CONFIRMED
    async with world.runtime.sessions() as session:
        organization = await session.get(Organization, world.acme_id)
        assert organization is not None and organization.sla_signed_at is not None
    assert len(await world.events("organization.sla_signed")) == 1
    # Signed organizations' PDFs are just attachments.
    again = await world.receive(
        mail.with_attachments([("x.pdf", "application/pdf", mail.PDF)], message_id="<att.6@acme.test>")
    )
    assert not again.needs_review


async def test_client_styles_and_broken_mime_become_tickets(world: InboundWorld) -> None:
    html = await world.receive(mail.html_only())
    body = (await world.ticket(html.ticket_id)).description
    assert (
        "I cannot log in since the update." in body
        and "Café" in body
        and "alert" not in body
        and "color" not in body
    )
    tnef = await world.receive(mail.tnef_and_inline_image())
    from services.ticket_api.inbound import repository as inbound_repo

    async with world.runtime.sessions() as session:
        rows = await inbound_repo.attachments_of_inbound(session, tnef.id)
    assert {(r.filename, r.content_type, r.inline) for r in rows} == {
        ("image001.png", "image/png", True),
        ("winmail.dat", "application/ms-tnef", False),
    }
    broken = await world.receive(mail.broken_mime())
    assert broken.outcome is InboundOutcome.TICKET_CREATED
    ticket = await world.ticket(broken.ticket_id)
    assert "Drucker" in ticket.subject and "Der Drucker" in ticket.description


async def test_garbage_and_senderless_mail_is_kept_raw_and_flagged(world: InboundWorld) -> None:
    result = await world.receive(mail.garbage(), Envelope(sender=None))
    assert result.outcome is InboundOutcome.FLAGGED and result.needs_review and result.ticket_id is None
    (row,) = await world.inbound_rows()
    assert row.raw_message == mail.garbage()
    assert await world.tickets() == []


async def test_a_slow_parse_is_cut_off_and_flagged(world: InboundWorld) -> None:
    import time

    from services.ticket_api.inbound.parsing import Limits, parse_email

    def slow(raw: bytes, limits: Limits) -> object:
        time.sleep(0.5)
        return parse_email(raw, limits)

    world.inbound.parser = slow  # type: ignore[assignment]
    world.inbound.config = world.inbound.config.__class__(
        **{**world.inbound.config.__dict__, "parse_limits": Limits(time_limit_seconds=0.05)}
    )
    result = await world.receive(mail.plain())
    assert result.outcome is InboundOutcome.FLAGGED and "longer than" in (result.review_reason or "")


async def test_after_a_key_rotation_replies_to_mail_sent_before_still_thread(world: InboundWorld) -> None:
    """Our Message-IDs and reply addresses are checked by their MAC alone (no record of what
    was sent): after HELPDESK_SECRET_KEY changes, the old key listed in
    HELPDESK_PREVIOUS_SECRET_KEYS keeps older mail's replies on their tickets."""
    ticket_id = await _first_ticket(world)
    sent_before = world.our_message_id(ticket_id)
    reply_address_before = world.reply_address(ticket_id)
    rotated = world.settings.model_copy(
        update={"secret_key": SecretStr("the-new-key"), "previous_secret_keys": [world.settings.secret_key]}
    )
    world.inbound = Inbound(
        sessions=world.runtime.sessions, outbox=world.runtime.outbox, settings=rotated, clock=world.clock
    )
    by_id = await world.receive(
        mail.gmail_reply(in_reply_to=sent_before, subject="Re: x", reply="Still broken.", quoted=QUOTED)
    )
    assert (by_id.outcome, by_id.matched_by, by_id.ticket_id) == (
        InboundOutcome.MESSAGE_ADDED,
        "in_reply_to",
        ticket_id,
    )
    by_address = await world.receive(
        mail.plain(subject="no tag, no ids", body="Any news?", message_id="<rotation.2@mail.acme.test>"),
        Envelope(sender="jane@acme.test", recipients=(reply_address_before,)),
    )
    assert (by_address.outcome, by_address.ticket_id) == (InboundOutcome.MESSAGE_ADDED, ticket_id)
