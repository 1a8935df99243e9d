"""Customers with addresses that are not ASCII are acknowledged: an internationalized domain
travels in its xn-- form, a UTF-8 local part with SMTPUTF8 when the relay offers it, and when
it does not the mail fails saying so (the address is not suppressed: it is not at fault)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.notifier import repository as repo
from services.notifier.models import DeliveryState
from shared.email_address import display_address
from tests.notifier.conftest import Env, TicketStory, organization
from tests.notifier.test_smtp_failures import PickyRelay, relay  # noqa: F401 (the fixture)


def envelopes(env: Env) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(env.mail_dir.glob("*.json"))]


async def test_a_utf8_local_part_is_sent_with_smtputf8(env: Env) -> None:
    story = TicketStory(org=organization(sla_signed=True), contact_email="jörg@bücher.example")
    await env.deliver(story.created())
    [ack] = await env.notifications()
    assert (ack.state, ack.last_error) == (DeliveryState.SENT, None)
    [sent] = env.mail()
    assert sent["To"] == "jörg@bücher.example"  # UTF-8 in the header (RFC 6532), not an encoded-word
    assert "We have received your request" in sent["Subject"]
    [envelope] = envelopes(env)
    assert envelope["rcpt_tos"] == ["jörg@bücher.example"]


async def test_an_internationalized_domain_travels_in_its_a_label_form_without_smtputf8(env: Env) -> None:
    story = TicketStory(org=organization(sla_signed=True), contact_email="jane@bücher.example")
    await env.deliver(story.created())
    [ack] = await env.notifications()
    assert ack.state == DeliveryState.SENT
    [sent] = env.mail()
    assert sent["To"] == "jane@xn--bcher-kva.example"
    assert envelopes(env)[0]["rcpt_tos"] == ["jane@xn--bcher-kva.example"]


async def test_without_smtputf8_at_the_relay_the_mail_fails_saying_so(
    env: Env,
    relay: PickyRelay,  # noqa: F811 (the fixture)
) -> None:
    """The picky relay (aiosmtpd's defaults) does not offer SMTPUTF8."""
    story = TicketStory(org=organization(sla_signed=True), contact_email="jörg@bücher.example")
    await env.deliver(story.created())
    [ack] = await env.notifications()
    assert (ack.state, ack.smtp_code, ack.attempts) == (DeliveryState.FAILED, 553, 1)
    assert "the relay does not offer SMTPUTF8" in (ack.last_error or "")
    assert "UnicodeEncodeError" not in (ack.last_error or "")
    async with env.runtime.sessions() as session:
        assert await repo.get_suppression(session, "jörg@bücher.example") is None, "not the address's fault"
    assert relay.delivered == []
    # An internationalized domain alone needs no SMTPUTF8: the same relay takes it.
    other = TicketStory(org=organization(sla_signed=True), contact_email="jane@bücher.example")
    await env.deliver(other.created())
    assert relay.delivered == [["jane@xn--bcher-kva.example"]]


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("jane@acme.test", "jane@acme.test"),
        ("jane@bücher.example", "jane@bücher.example (xn--bcher-kva.example)"),
        ("admin@pаypal.com", "admin@pаypal.com (xn--pypal-4ve.com, mixed scripts)"),  # Cyrillic а
    ],
)
def test_an_idn_address_is_shown_with_its_xn_form_beside_it(address: str, shown: str) -> None:
    assert display_address(address) == shown
