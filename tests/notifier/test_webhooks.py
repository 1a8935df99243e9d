"""Signed webhooks to a real HTTP receiver on loopback: Standard Webhooks signatures, one job
per delivery (a stuck endpoint holds up nobody else), retries, 410, redirects and SSRF."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from services.notifier import repository as repo
from services.notifier.delivery import sweep
from services.notifier.delivery_policy import WEBHOOK_RETRY_DELAYS, retry_after, webhook_retry_delay
from services.notifier.models import DeliveryState, WebhookDelivery, WebhookSubscription
from services.notifier.webhook_http import RefusedDestination, checked_destination, is_public
from services.notifier.webhook_signing import new_secret, signature, signed_headers
from tests.notifier.conftest import Env, Receiver, TicketStory, organization

ORG = organization(sla_signed=True)


def test_signatures_match_the_reference_library() -> None:
    # The Standard Webhooks spec's own test vector.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected
    reference = Webhook(secret).sign(
        "msg_p5jXN8AQM9LWM0D4loKWxJek", datetime.fromtimestamp(1614265330, UTC), body.decode()
    )
    assert reference == expected
    # A fresh secret, verified by the reference library; during rotation either secret verifies.
    old, new = new_secret(), new_secret()
    assert new.startswith("whsec_")
    now = int(datetime.now(UTC).timestamp())
    headers = signed_headers([new, old], "msg_1", now, b'{"a":1}')
    assert Webhook(old).verify(b'{"a":1}', headers) == {"a": 1}
    assert Webhook(new).verify(b'{"a":1}', headers) == {"a": 1}


def test_retry_schedule_spans_about_a_day_with_jitter_and_honours_retry_after() -> None:
    total = sum(WEBHOOK_RETRY_DELAYS, timedelta())
    assert timedelta(hours=24) <= total <= timedelta(hours=30)
    delays = {webhook_retry_delay(3) for _ in range(20)}
    assert len(delays) > 1 and all(
        d is not None and timedelta(minutes=24) <= d <= timedelta(minutes=36) for d in delays
    )
    assert webhook_retry_delay(len(WEBHOOK_RETRY_DELAYS) + 1) is None
    now = datetime(2025, 3, 4, tzinfo=UTC)
    assert retry_after("120", now) == timedelta(seconds=120)
    assert retry_after("Tue, 04 Mar 2025 00:10:00 GMT", now) == timedelta(minutes=10)
    assert retry_after("999999", now) == timedelta(hours=24)
    assert retry_after("soon", now) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://100.64.0.1/hook",
        "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
        "http://[2002:a9fe:a9fe::1]/latest/meta-data/",  # 6to4 of 169.254.169.254
        "http://[64:ff9b::7f00:1]/hook",  # NAT64 (well-known prefix) of 127.0.0.1
        "http://[64:ff9b:1::a01:203]/hook",  # local-use NAT64 of 10.1.2.3
        "http://[::7f00:1]/hook",  # IPv4-compatible 127.0.0.1
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",  # Teredo
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "http://224.0.0.1/hook",
        "http://0.0.0.0/hook",
        "ftp://example.com/hook",
    ],
)
async def test_private_and_odd_destinations_are_refused(url: str) -> None:
    with pytest.raises(RefusedDestination):
        await checked_destination(url, allow_private=False)


async def test_public_destinations_are_pinned_to_the_checked_address() -> None:
    assert is_public(ipaddress.ip_address("93.184.216.34"))
    assert is_public(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946"))
    assert is_public(ipaddress.ip_address("2002:5db8:d822::1"))  # 6to4 of a public address
    destination = await checked_destination("https://93.184.216.34:8443/hook?x=1", allow_private=False)
    assert destination.url == "https://93.184.216.34:8443/hook?x=1"
    allowed = await checked_destination("http://localhost:8080/hook", allow_private=True)
    assert allowed.host_header == "localhost:8080" and "localhost" not in allowed.url


async def subscribe(
    env: Env, url: str, *, event_types: list[str] | None = None, organizations: list[UUID] | None = None
) -> WebhookSubscription:
    subscription = WebhookSubscription(
        client_id=uuid4(),
        organization_ids=[str(o) for o in organizations] if organizations is not None else None,
        url=url,
        event_types=event_types or ["ticket.created", "ticket.message_added", "ticket.closed"],
        secret=new_secret(),
    )
    async with env.runtime.sessions() as session, session.begin():
        session.add(subscription)
    return subscription


async def deliveries(env: Env, subscription: WebhookSubscription) -> list[WebhookDelivery]:
    async with env.runtime.sessions() as session:
        rows = await session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription.id)  # type: ignore[arg-type]
        )
        return list(rows.all())


async def test_deliveries_are_signed_and_a_stuck_endpoint_holds_up_nobody(
    env: Env, receiver: Receiver
) -> None:
    receiver.gates["/slow"] = threading.Event()
    fast = await subscribe(env, receiver.url("/fast"))
    slow = await subscribe(env, receiver.url("/slow"))
    story = TicketStory(org=ORG)
    created = story.created()
    await env.publish(created)
    worker = asyncio.create_task(env.run_worker())
    try:
        async with asyncio.timeout(10):
            # The fast endpoint is answered while the slow one still holds its request.
            while [d.state for d in await deliveries(env, fast)] != [DeliveryState.SENT] or not any(  # noqa: ASYNC110
                r.path == "/slow" for r in receiver.received
            ):
                await asyncio.sleep(0.02)
        assert (await deliveries(env, slow))[0].state == DeliveryState.SENDING
    finally:
        receiver.gates["/slow"].set()
        await worker
    assert (await deliveries(env, slow))[0].state == DeliveryState.SENT

    for request in receiver.received:
        secret = fast.secret if request.path == "/fast" else slow.secret
        document = Webhook(secret).verify(request.body, request.headers)
        assert document["type"] == "ticket.created"
        assert document["data"]["ticket_id"] == str(story.ticket_id)
        assert request.headers["content-type"] == "application/json"
    [delivery] = await deliveries(env, fast)
    assert [r.headers["webhook-id"] for r in receiver.received if r.path == "/fast"] == [str(delivery.id)]
    assert delivery.attempts == 1 and delivery.delivered_at is not None

    # The same event again (duplicate delivery): no second webhook.
    await env.redis.flushdb()
    await env.deliver(created)
    assert len(receiver.received) == 2


async def test_failures_are_retried_honouring_retry_after_and_410_disables(
    env: Env, receiver: Receiver
) -> None:
    receiver.script["/flaky"] = [(503, {"Retry-After": "120"}), (200, {})]
    receiver.script["/gone"] = [(410, {})]
    receiver.script["/redirect"] = [(302, {"Location": receiver.url("/fast")})]
    flaky = await subscribe(env, receiver.url("/flaky"))
    gone = await subscribe(env, receiver.url("/gone"))
    moved = await subscribe(env, receiver.url("/redirect"))
    await env.deliver(TicketStory(org=ORG).created())

    [first] = await deliveries(env, flaky)
    assert (first.state, first.attempts, first.last_status_code) == (DeliveryState.PENDING, 1, 503)
    assert first.next_attempt_at >= env.clock() + timedelta(seconds=120), "Retry-After beats the 5 s retry"
    [redirected] = await deliveries(env, moved)
    assert (redirected.state, redirected.last_status_code) == (DeliveryState.PENDING, 302)
    assert "/fast" not in [r.path for r in receiver.received], "redirects are not followed"
    [to_gone] = await deliveries(env, gone)
    assert to_gone.state == DeliveryState.FAILED
    async with env.runtime.sessions() as session:
        disabled = await repo.get_subscription(session, gone.id)
    assert disabled is not None and not disabled.active and "410" in (disabled.disabled_reason or "")

    env.clock.advance(seconds=121)
    await sweep(env.notifier, grace=timedelta(0))
    await env.run_worker()
    [second] = await deliveries(env, flaky)
    assert (second.state, second.attempts) == (DeliveryState.SENT, 2)
    flaky_requests = [r for r in receiver.received if r.path == "/flaky"]
    assert len(flaky_requests) == 2
    assert (
        flaky_requests[0].headers["webhook-id"] == flaky_requests[1].headers["webhook-id"] == str(second.id)
    )
    for request in flaky_requests:
        Webhook(flaky.secret).verify(request.body, request.headers)
    async with env.runtime.sessions() as session:
        log = await repo.attempts_of(session, second.id)
    assert [(a.attempt, a.status_code) for a in log] == [(1, 503), (2, 200)]


async def test_subscriptions_see_only_their_organizations_and_public_messages(
    env: Env, receiver: Receiver
) -> None:
    other_org = uuid4()
    mine = await subscribe(env, receiver.url("/mine"), organizations=[ORG.id])
    theirs = await subscribe(env, receiver.url("/theirs"), organizations=[other_org])
    story = TicketStory(org=ORG)
    await env.deliver(story.created(), story.message("internal note", visibility="internal"))
    await env.deliver(story.message("public answer"))
    assert [d.event_type for d in await deliveries(env, mine)] == ["ticket.created", "ticket.message_added"]
    assert await deliveries(env, theirs) == []
    assert all(b"internal note" not in r.body for r in receiver.received)


async def test_private_destinations_are_refused_at_delivery(env: Env, receiver: Receiver) -> None:
    env.notifier.settings = env.settings.model_copy(update={"webhook_allow_private_addresses": False})
    subscription = await subscribe(env, receiver.url("/hook"))
    await env.deliver(TicketStory(org=ORG).created())
    [delivery] = await deliveries(env, subscription)
    assert delivery.state == DeliveryState.FAILED and "refused destination" in (delivery.last_error or "")
    assert receiver.received == []
