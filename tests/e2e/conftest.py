"""Fixtures of the end-to-end stories (SCENARIOS.md S1–S8), run against the whole stack.

One database and one stack at a time for the whole e2e run (see ``world.py``): first the
Tuesday, March 31, 2026 at 10:00 in Chicago, then the Friday after at 18:30. Tests that need the
Friday are run after all others (``pytest_collection_modifyitems`` below), so the stack is
booted twice per run, not once per module.

Stories continue each other as in SCENARIOS.md (the ticket Jane emails in S1 is triaged in S3,
discussed in S4 …): what a later story builds on is a session fixture, made on first use, so
every test also runs alone (``-k``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from tests.e2e.actors import Api, magic_link_sign_in
from tests.e2e.cast import Cast, assemble, wait_until
from tests.e2e.mailbox import Mail, Receipt, compose, reply, send
from tests.e2e.world import ORDER, Scene, World

MOMENT_FIXTURES = ORDER  # ("tuesday", "friday"): a test's moment is the fixture it uses
_FIRST_MOMENT = pytest.StashKey[str]()


def _moments_of(item: pytest.Item) -> list[int]:
    names = getattr(item, "fixturenames", ())
    return [index for index, name in enumerate(MOMENT_FIXTURES) if name in names] or [0]


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Run the e2e tests in the order of their (latest) moments, stable otherwise: time only
    moves on. Remember the earliest moment any of them needs: the stack starts there."""
    positions = [i for i, item in enumerate(items) if "e2e" in item.path.parts]
    ordered = sorted((items[i] for i in positions), key=lambda item: max(_moments_of(item)))
    for position, item in zip(positions, ordered, strict=True):
        items[position] = item
    earliest = min((min(_moments_of(items[i])) for i in positions), default=0)
    config.stash[_FIRST_MOMENT] = ORDER[earliest]


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    running = World(tmp_path_factory.mktemp("e2e"))
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="session")
def cast(world: World, request: pytest.FixtureRequest) -> Iterator[Cast]:
    """Organizations, consultants and calendars, made once (in whichever moment comes first)."""
    scene = world.scene or world.enter(request.config.stash.get(_FIRST_MOMENT, ORDER[0]))
    everybody = assemble(scene)
    yield everybody
    everybody.close()


@pytest.fixture(scope="session")
def tuesday(world: World, cast: Cast) -> Scene:
    """Tuesday, March 31, 2026, 10:00 in Chicago: office hours, and a month's last day."""
    return world.enter("tuesday")


@pytest.fixture(scope="session")
def friday(world: World, cast: Cast) -> Scene:
    """Friday, April 3, 2026, 18:30 in Chicago: after hours, Good Friday, a new month."""
    return world.enter("friday")


# --- the story so far ---------------------------------------------------------------------------

JANE = "jane@acme.test"


@dataclass(frozen=True)
class EmailedTicket:
    """A ticket a customer opened by email: what she sent, the ticket, her acknowledgment."""

    receipt: Receipt
    ticket: dict[str, Any]
    acknowledgment: Mail
    seconds_to_acknowledgment: float

    @property
    def id(self) -> str:
        return str(self.ticket["id"])

    @property
    def number(self) -> str:
        return str(self.ticket["number"])


def email_in(scene: Scene, cast: Cast, sender: str, subject: str, body: str, **kwargs: Any) -> EmailedTicket:
    """A customer emails support about something new; returns the ticket and her acknowledgment."""
    since = scene.mailbox.mark()
    started = time.monotonic()
    receipt = send(scene.inbound_port, compose(sender, subject, body, **kwargs))
    assert receipt.outcome == "ticket_created", receipt
    admin = cast.api(scene, "admin")
    record = admin.get(f"/api/v1/inbound/emails/{receipt.inbound_id}")
    ticket = admin.get(f"/api/v1/tickets/{record['ticket_id']}")
    address = sender.rpartition("<")[2].rstrip(">")
    acknowledgment = scene.mailbox.one(since, to=address, kind="acknowledgment", ticket=ticket["number"])
    return EmailedTicket(receipt, ticket, acknowledgment, time.monotonic() - started)


@pytest.fixture(scope="session")
def jane_ticket(tuesday: Scene, cast: Cast) -> EmailedTicket:
    """S1: Jane of Acme (new, no SLA signed yet) emails that the printer is offline, urgently."""
    return email_in(
        tuesday,
        cast,
        "Jane Doe <jane@acme.test>",
        "Printer offline",
        "Hello,\n\nmy printer has been offline since this morning and I must print contracts "
        "today. This is urgent!\n\nJane Doe\nAcme Corp",
        headers={"Importance": "High", "X-Priority": "1 (Highest)"},
    )


def triaged(scene: Scene, cast: Cast, ticket_id: str) -> dict[str, Any]:
    """The ticket once triage's decision is applied (priority and assignee set)."""
    admin = cast.api(scene, "admin")

    def applied() -> dict[str, Any] | None:
        ticket: dict[str, Any] = admin.get(f"/api/v1/tickets/{ticket_id}")
        return ticket if ticket["priority"] and ticket["assignee_id"] else None

    result: dict[str, Any] = wait_until(applied, what=f"triage of ticket {ticket_id}")
    return result


def consultant_news(scene: Scene, *, to: str, ticket: str, since: int = 0) -> Mail:
    """The mail that tells a customer who their consultant is and where to book time: the
    acknowledgment when triage decided while it waited (as it normally does, a few hundred ms
    in), else a mail of its own."""

    def found() -> Mail | None:
        for mail in scene.mailbox.find(since, to=to, ticket=ticket):
            if mail.kind == "assignment_customer" or (
                mail.kind == "acknowledgment" and "is your consultant for this ticket" in mail.text
            ):
                return mail
        return None

    news: Mail = wait_until(found, what=f"the news of {ticket}'s consultant for {to}")
    return news


@pytest.fixture(scope="session")
def jane(tuesday: Scene, jane_ticket: EmailedTicket) -> Iterator[Api]:
    """Jane signed in to the customer portal with a magic link from her mailbox."""
    token = magic_link_sign_in(tuesday.gateway, tuesday.mailbox, JANE, jane_ticket.number)
    api = Api("jane", tuesday.gateway, token)
    yield api
    api.close()


@dataclass(frozen=True)
class SignedSla:
    receipt: Receipt
    inbound: dict[str, Any]
    review: dict[str, Any]
    confirmed: dict[str, Any]


@pytest.fixture(scope="session")
def acme_signed_sla(tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket) -> SignedSla:
    """S5.2: Jane replies to her acknowledgment with the signed SLA attached; an agent checks
    the document and confirms it."""
    signed = jane_ticket.acknowledgment.attachment("application/pdf").data  # she signed our PDF
    mail = reply(
        jane_ticket.acknowledgment,
        "Jane Doe <jane@acme.test>",
        "Please find our signed SLA attached.",
        attachments=[("acme-signed-sla.pdf", "application/pdf", signed)],
    )
    receipt = send(tuesday.inbound_port, mail)
    admin = cast.api(tuesday, "admin")
    inbound = admin.get(f"/api/v1/inbound/emails/{receipt.inbound_id}")
    reviews = admin.get(
        "/api/v1/inbound/sla-documents", params={"organization_id": cast.organizations["acme"]}
    )
    review = next(r for r in reviews if r["inbound_email_id"] == str(receipt.inbound_id))
    confirmed = admin.post(f"/api/v1/inbound/sla-documents/{review['id']}/confirm", expect=200)
    # Billing, triage and the notifier hear of it before the story goes on.
    tuesday.backstage.await_subject(
        "ticket_api", f"organization:{cast.organizations['acme']}", types=["organization.sla_signed"]
    )
    return SignedSla(receipt, inbound, review, confirmed)


@dataclass(frozen=True)
class ClosedTicket:
    """S6: the consultant's work on Jane's ticket, and its close."""

    consultant: str
    time_entry: dict[str, Any]
    appointment: dict[str, Any]
    closed: dict[str, Any]
    notes_mail: Mail
    closure_mail: Mail
    since: int  # the mailbox's mark before the work began


NOTES = "Replaced the fuser unit and printed a test page: the printer works again."


@pytest.fixture(scope="session")
def acme_closed(
    tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket, acme_signed_sla: SignedSla
) -> ClosedTicket:
    """S6: the consultant logs 50 minutes, meets Jane (40 minutes, notes for her to read) and
    closes the ticket."""
    ticket = triaged(tuesday, cast, jane_ticket.id)
    key = next(k for k, agent_id in cast.consultants.items() if agent_id == ticket["assignee_id"])
    consultant = cast.api(tuesday, key)
    since = tuesday.mailbox.mark()
    entry = consultant.post(
        f"/api/v1/tickets/{jane_ticket.id}/time-entries",
        json={"minutes": 50, "description": "Diagnosed the printer remotely"},
    )
    slots = consultant.get(f"/api/v1/tickets/{jane_ticket.id}/appointment-slots", params={"days": 1})
    booked = consultant.post(
        f"/api/v1/tickets/{jane_ticket.id}/appointments",
        json={"starts_at": slots["slots"][0]["starts_at"], "duration_minutes": 60},
    )
    # They meet (an appointment is completed only once it has begun): it began an hour ago.
    tuesday.backstage.meeting_began(booked["id"], tuesday.moment - timedelta(hours=1))
    completed = consultant.post(
        f"/api/v1/appointments/{booked['id']}/complete",
        expect=200,
        json={"notes": NOTES, "notes_visibility": "public", "minutes": 40},
    )
    notes_mail = tuesday.mailbox.one(since, to=JANE, kind="agent_reply", ticket=jane_ticket.number)
    closed = consultant.post(
        f"/api/v1/tickets/{jane_ticket.id}/status", expect=200, json={"status": "closed", "reason": "Fixed"}
    )
    closure = tuesday.mailbox.one(since, to=JANE, kind="closure", ticket=jane_ticket.number)
    return ClosedTicket(key, entry, completed, closed, notes_mail, closure, since)
