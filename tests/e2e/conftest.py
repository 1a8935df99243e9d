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
from typing import Any

import pytest

from tests.e2e.actors import Api, magic_link_sign_in
from tests.e2e.cast import Cast, assemble, wait_until
from tests.e2e.mailbox import Mail, Receipt, compose, send
from tests.e2e.world import ORDER, Scene, World

MOMENT_FIXTURES = ORDER  # ("tuesday", "friday"): a test's moment is the fixture it uses


def _moment_of(item: pytest.Item) -> int:
    names = getattr(item, "fixturenames", ())
    used = [index for index, name in enumerate(MOMENT_FIXTURES) if name in names]
    return max(used, default=0)


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Run the e2e tests in the order of their moments (stable otherwise): time only moves on."""
    positions = [i for i, item in enumerate(items) if "e2e" in item.path.parts]
    ordered = sorted((items[i] for i in positions), key=_moment_of)
    for position, item in zip(positions, ordered, strict=True):
        items[position] = item
    moments = {_moment_of(items[i]) for i in positions}
    config.stash[_FIRST_MOMENT] = ORDER[min(moments)] if moments else ORDER[0]


_FIRST_MOMENT = pytest.StashKey[str]()


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


@pytest.fixture(scope="session")
def jane(tuesday: Scene, jane_ticket: EmailedTicket) -> Iterator[Api]:
    """Jane signed in to the customer portal with a magic link from her mailbox."""
    token = magic_link_sign_in(tuesday.gateway, tuesday.mailbox, JANE, jane_ticket.number)
    api = Api("jane", tuesday.gateway, token)
    yield api
    api.close()
