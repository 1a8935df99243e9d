"""The closure mail's smiley links: opening one records nothing, submitting records once per
ticket (a later answer replaces it), forged, altered or expired links are refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from services.ticket_api.db import outbox
from services.ticket_api.feedback.service import PURPOSE
from shared.signed_links import sign
from tests.ticket_api.conftest import Actors, new_ticket


def link(
    api: Actors,
    ticket: dict[str, Any],
    *,
    rating: str = "happy",
    email: str = "jane@acme.test",
    expires_in: timedelta = timedelta(days=30),
    secret: str | None = None,
) -> str:
    token = sign(
        {"ticket_id": ticket["id"], "email": email, "rating": rating},
        purpose=PURPOSE,
        secret=secret or api.runtime.settings.secret_key.get_secret_value(),
        expires_at=datetime.now(UTC) + expires_in,
    )
    return f"/api/v1/feedback/{token}"


async def feedback_events(api: Actors) -> list[dict[str, Any]]:
    async with api.runtime.sessions() as session:
        rows = await session.execute(
            select(outbox.c.event).where(outbox.c.type == "feedback.received").order_by(outbox.c.id)
        )
        return [json.loads(row.event)["data"] for row in rows]


async def test_opening_shows_the_choice_and_submitting_records_it_once_per_ticket(api: Actors) -> None:
    ticket = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()
    await api.client.post(
        f"/api/v1/tickets/{ticket['id']}/status", json={"status": "closed"}, headers=api.agent
    )
    unhappy = link(api, ticket, rating="unhappy")

    page = await api.client.get(unhappy)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'value="unhappy" checked' in page.text and ticket["number"] in page.text
    assert (
        await api.client.get(f"/api/v1/tickets/{ticket['id']}/feedback", headers=api.agent)
    ).status_code == 404
    assert await feedback_events(api) == [], "a GET (a mail scanner) records nothing"

    sent = await api.client.post(unhappy, data={"rating": "unhappy", "comment": "Took too long"})
    assert sent.status_code == 200 and "Thank you" in sent.text
    again = await api.client.post(
        link(api, ticket), data={"rating": "happy", "comment": "Actually fine <b>now</b>"}
    )
    assert again.status_code == 200
    stored = (await api.client.get(f"/api/v1/tickets/{ticket['id']}/feedback", headers=api.portal_a)).json()
    assert (stored["rating"], stored["comment"]) == ("happy", "Actually fine <b>now</b>")
    # Opening a link again shows the words said before; a rating changed alone keeps them.
    reopened = await api.client.get(unhappy)
    assert "Actually fine &lt;b&gt;now&lt;/b&gt;</textarea>" in reopened.text
    third = await api.client.post(unhappy, data={"rating": "unhappy"})
    assert third.status_code == 200
    stored = (await api.client.get(f"/api/v1/tickets/{ticket['id']}/feedback", headers=api.portal_a)).json()
    assert (stored["rating"], stored["comment"]) == ("unhappy", "Actually fine <b>now</b>")
    events = await feedback_events(api)
    assert [(e["rating"], e["number"]) for e in events] == [
        ("unhappy", ticket["number"]),
        ("happy", ticket["number"]),
        ("unhappy", ticket["number"]),
    ]


async def test_forged_altered_expired_or_foreign_links_are_refused(api: Actors) -> None:
    ticket = (await api.client.post("/api/v1/tickets", json=new_ticket(), headers=api.portal_a)).json()
    good = link(api, ticket)
    bad_links = {
        "forged": link(api, ticket, secret="a guess"),
        "altered": good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"),
        "expired": link(api, ticket, expires_in=timedelta(seconds=-1)),
        "someone else's address": link(api, ticket, email="mallory@evil.test"),
    }
    for name, path in bad_links.items():
        opened = await api.client.get(path)
        assert opened.status_code == 400, name
        posted = await api.client.post(path, data={"rating": "happy"})
        assert posted.status_code == 400, name
    assert await feedback_events(api) == []
    wrong_rating = await api.client.post(good, data={"rating": "ecstatic"})
    assert wrong_rating.status_code == 422
