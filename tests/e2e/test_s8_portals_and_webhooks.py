"""S8 — portals and webhooks.

A third-party portal (OAuth client credentials) opens a ticket for one of its customers with
an Idempotency-Key (a retry answers the same ticket), lists only its own customers' tickets,
and receives a signed webhook (Standard Webhooks) for each step of the ticket at its receiver.
An endpoint that fails is retried with backoff, and holds up no other delivery."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.e2e.cast import Cast, wait_until
from tests.e2e.conftest import EmailedTicket, triaged
from tests.e2e.world import Scene

pytestmark = pytest.mark.stack

STEPS = [
    "ticket.created",
    "ticket.triaged",
    "ticket.updated",
    "ticket.message_added",
    "ticket.status_changed",
    "ticket.closed",
]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int


@dataclass
class Receiver:
    """The portal's HTTP endpoint on loopback. ``/ok`` answers 204; ``/flaky`` answers 503 the
    first time it sees a webhook-id, then 200."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            status = 204
            if path == "/flaky":
                webhook_id = headers.get("webhook-id", "")
                status = 200 if webhook_id in self._seen else 503
                self._seen.add(webhook_id)
            self.requests.append(Received(path, headers, body, time.monotonic(), status))
            return status

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            status = state.answer(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Subscriptions:
    ok: dict[str, Any]
    flaky: dict[str, Any]


@pytest.fixture(scope="module")
def subscriptions(tuesday: Scene, cast: Cast, receiver: Receiver) -> Subscriptions:
    portal = cast.api(tuesday, "portal")
    base = f"http://127.0.0.1:{receiver.port}"
    ok = portal.post(
        "/api/v1/webhooks/subscriptions",
        json={"url": f"{base}/ok", "event_types": STEPS, "description": "every step"},
    )
    flaky = portal.post(
        "/api/v1/webhooks/subscriptions",
        json={"url": f"{base}/flaky", "event_types": ["ticket.created", "ticket.closed"]},
    )
    for subscription in (ok, flaky):
        assert subscription["secret"].startswith("whsec_")
        assert subscription["organization_ids"] == [cast.portal_organization]
    return Subscriptions(ok, flaky)


NEW_TICKET = {
    "contact": {"email": "chris@demo-customer.test", "name": "Chris Demo"},
    "subject": "Cannot log in to the CRM",
    "description": "Since this morning the CRM rejects my password.",
    "urgency": "medium",
}


@pytest.fixture(scope="module")
def portal_ticket(tuesday: Scene, cast: Cast, subscriptions: Subscriptions) -> dict[str, Any]:
    portal = cast.api(tuesday, "portal")
    created = portal.call(
        "POST", "/api/v1/tickets", json=NEW_TICKET, headers={"Idempotency-Key": "crm-login-1"}
    )
    assert created.status_code == 201, created.text
    ticket: dict[str, Any] = created.json()
    ticket["_created_at_monotonic"] = time.monotonic()
    return ticket


def test_a_retry_with_the_same_idempotency_key_answers_the_same_ticket(
    tuesday: Scene, cast: Cast, portal_ticket: dict[str, Any]
) -> None:
    portal = cast.api(tuesday, "portal")
    retry = portal.call(
        "POST", "/api/v1/tickets", json=NEW_TICKET, headers={"Idempotency-Key": "crm-login-1"}
    )
    assert retry.status_code == 201
    assert retry.json()["id"] == portal_ticket["id"] and retry.json()["number"] == portal_ticket["number"]
    assert retry.headers.get("idempotent-replayed") == "true"
    other = portal.call(
        "POST",
        "/api/v1/tickets",
        json={**NEW_TICKET, "subject": "Something else"},
        headers={"Idempotency-Key": "crm-login-1"},
    )
    assert (
        other.status_code == 422
        and other.json()["title"] == "Idempotency-Key reused with a different request"
    )
    mine = portal.get("/api/v1/tickets", params={"limit": 200})["items"]
    assert [t["id"] for t in mine].count(portal_ticket["id"]) == 1


def test_the_portal_sees_only_its_own_customers_tickets(
    tuesday: Scene, cast: Cast, portal_ticket: dict[str, Any], jane_ticket: EmailedTicket
) -> None:
    portal = cast.api(tuesday, "portal")
    listed = portal.get("/api/v1/tickets", params={"limit": 200})["items"]
    assert portal_ticket["id"] in {t["id"] for t in listed}
    assert {t["organization_id"] for t in listed} == {cast.portal_organization}
    everything = cast.api(tuesday, "admin").get("/api/v1/tickets", params={"limit": 200})["items"]
    assert len(everything) > len(listed)
    # Another customer's ticket does not exist for the portal.
    assert portal.call("GET", f"/api/v1/tickets/{jane_ticket.id}").status_code == 404
    assert portal.call("GET", f"/api/v1/tickets/by-number/{jane_ticket.number}").status_code == 404
    refused = portal.call(
        "POST",
        "/api/v1/tickets",
        json={**NEW_TICKET, "contact": {"email": "jane@acme.test"}},
        headers={"Idempotency-Key": "not-my-customer"},
    )
    assert refused.status_code == 422 and "not a contact of an organization you serve" in refused.text


def verified(subscription: dict[str, Any], received: Received) -> dict[str, Any]:
    """The payload, once its Standard Webhooks signature checks out with the secret."""
    payload: dict[str, Any] = Webhook(subscription["secret"]).verify(received.body, received.headers)
    assert json.loads(received.body) == payload
    return payload


def test_signed_webhooks_for_each_step_and_a_failing_endpoint_retried(
    tuesday: Scene,
    cast: Cast,
    receiver: Receiver,
    subscriptions: Subscriptions,
    portal_ticket: dict[str, Any],
) -> None:
    ticket_id = portal_ticket["id"]
    ticket = triaged(tuesday, cast, ticket_id)
    consultant = next(k for k, v in cast.consultants.items() if v == ticket["assignee_id"])
    agent = cast.api(tuesday, consultant)
    agent.post(f"/api/v1/tickets/{ticket_id}/messages", json={"body": "Your password is reset; try again."})
    agent.post(f"/api/v1/tickets/{ticket_id}/status", expect=200, json={"status": "closed"})

    def steps_received() -> list[str] | None:
        steps = []
        for received in receiver.at("/ok"):
            payload = verified(subscriptions.ok, received)
            if payload["data"].get("ticket_id") == ticket_id:
                steps.append((datetime.fromisoformat(payload["timestamp"]), payload["type"]))
        types = [kind for _, kind in sorted(steps, key=lambda step: step[0])]
        return types if set(STEPS) <= set(types) else None

    # Each delivery is a job of its own, so deliveries of events close in time (the reply's
    # status change, the closing one's) may arrive in any order: receivers order by the
    # payload's time, as here. Events of one transaction (status_changed, closed) share it.
    types = wait_until(steps_received, timeout=20, what="a webhook for every step")
    assert types[0] == "ticket.created" and "ticket.closed" in types[-2:]
    # Every request carries the Standard Webhooks headers, each delivery its own webhook-id.
    ok_requests = receiver.at("/ok")
    assert len({r.headers["webhook-id"] for r in ok_requests}) == len(ok_requests)
    assert all(r.headers["content-type"] == "application/json" for r in ok_requests)
    # Nothing about other organizations' tickets reached the portal.
    for received in ok_requests:
        data = verified(subscriptions.ok, received)["data"]
        assert (data.get("organization") or {}).get("id") == cast.portal_organization, data

    # The flaky endpoint: created failed once (503) and came on the retry, about five seconds
    # later; meanwhile the healthy endpoint had its deliveries at once.
    def flaky_created() -> list[Received] | None:
        mine = [
            r
            for r in receiver.at("/flaky")
            if verified(subscriptions.flaky, r)["data"]["ticket_id"] == ticket_id
        ]
        created = [r for r in mine if json.loads(r.body)["type"] == "ticket.created"]
        return created if len(created) >= 2 else None

    first, second = wait_until(flaky_created, timeout=30, what="the retry of the failed delivery")[:2]
    assert (first.status, second.status) == (503, 200)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert int(second.headers["webhook-timestamp"]) > int(first.headers["webhook-timestamp"])
    waited = second.at - first.at
    assert 3.9 <= waited <= 15, f"retried after {waited:.1f} s (5 s ± 20 % expected, plus scheduling)"
    healthy = [
        r
        for r in receiver.at("/ok")
        if json.loads(r.body)["type"] == "ticket.created"
        and json.loads(r.body)["data"]["ticket_id"] == ticket_id
    ]
    assert healthy and healthy[0].at < second.at, "the healthy endpoint waited for the failing one"

    # The portal can read what happened in its delivery log.
    portal = cast.api(tuesday, "portal")
    log = portal.get(f"/api/v1/webhooks/subscriptions/{subscriptions.flaky['id']}/deliveries")["items"]
    delivery = next(d for d in log if d["id"] == first.headers["webhook-id"])
    assert (delivery["event_type"], delivery["state"], delivery["attempts"]) == ("ticket.created", "sent", 2)
    detail = portal.get(f"/api/v1/webhooks/deliveries/{delivery['id']}")
    assert [a["status_code"] for a in detail["attempt_log"]] == [503, 200]
