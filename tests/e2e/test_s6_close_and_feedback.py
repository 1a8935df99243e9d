"""S6 — work, close, feedback.

The consultant logs time and the notes of an appointment (Jane reads the notes by mail), then
closes the ticket: Jane is told, with a green-smiley link and a red-sad-face link. Opening one
shows the form with that rating chosen (and records nothing: mail scanners open links);
submitting it records the rating and a comment. An altered or forged link is refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.signed_links import sign
from tests.e2e.actors import Api
from tests.e2e.cast import Cast
from tests.e2e.conftest import JANE, NOTES, ClosedTicket, EmailedTicket
from tests.e2e.world import Scene

pytestmark = pytest.mark.stack


def test_time_and_appointment_notes_are_recorded_and_jane_reads_the_notes(
    tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket, acme_closed: ClosedTicket, jane: Api
) -> None:
    entries = cast.api(tuesday, "admin").get(f"/api/v1/tickets/{jane_ticket.id}/time-entries")["items"]
    logged = sorted((e["minutes"], e["source"], e["agent_id"]) for e in entries)
    consultant_id = cast.consultants[acme_closed.consultant]
    assert logged == [(40, "appointment", consultant_id), (50, "manual", consultant_id)]
    assert acme_closed.appointment["status"] == "completed"
    # The notes were shared with Jane: on the ticket for her, and by mail.
    visible = jane.get(f"/api/v1/tickets/{jane_ticket.id}/messages")["items"]
    assert any(m["body"] == NOTES and m["author_kind"] == "agent" for m in visible)
    assert acme_closed.notes_mail.text.startswith(NOTES)
    assert acme_closed.notes_mail.subject == f"Re: [{jane_ticket.number}] Printer offline"


def test_closing_tells_jane_with_two_feedback_links(
    tuesday: Scene, jane_ticket: EmailedTicket, acme_closed: ClosedTicket
) -> None:
    assert acme_closed.closed["status"] == "closed" and acme_closed.closed["closed_at"]
    mail = acme_closed.closure_mail
    assert mail.subject == f"[{jane_ticket.number}] Your ticket is closed: Printer offline"
    happy, unhappy = feedback_links(tuesday, acme_closed)
    assert happy != unhappy
    # In the HTML part: a green button with a smiley, a red one with a sad face.
    html = mail.html
    green = html.index("background: #2f9e44")
    red = html.index("background: #e03131")
    assert html.rfind(f'href="{happy}"', 0, green) > 0 and "&#128578;" in html[green : green + 200]
    assert html.rfind(f'href="{unhappy}"', 0, red) > green and "&#128577;" in html[red : red + 200]
    # Only one closure mail (a status change mail is not sent for it).
    assert len(tuesday.mailbox.find(acme_closed.since, to=JANE, kind="closure")) == 1
    assert not tuesday.mailbox.find(acme_closed.since, to=JANE, kind="status_update")


def feedback_links(scene: Scene, closed: ClosedTicket) -> tuple[str, str]:
    text = closed.closure_mail.text
    happy = next(line.split("Happy:", 1)[1].strip() for line in text.splitlines() if "Happy:" in line)
    unhappy = next(line.split("Unhappy:", 1)[1].strip() for line in text.splitlines() if "Unhappy:" in line)
    for link in (happy, unhappy):
        assert link.startswith(f"{scene.gateway}/api/v1/feedback/"), link
    return happy, unhappy


def test_a_link_opens_the_form_and_submitting_records_the_rating(
    tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket, acme_closed: ClosedTicket
) -> None:
    happy, unhappy = feedback_links(tuesday, acme_closed)
    browser = Api("browser", tuesday.gateway, None)  # no sign-in: the signed link is the key
    admin = cast.api(tuesday, "admin")
    form = browser.call("GET", happy.removeprefix(tuesday.gateway))
    assert form.status_code == 200 and form.headers["content-type"].startswith("text/html")
    assert f"How did we do on {jane_ticket.number}?" in form.text
    assert 'value="happy" checked' in form.text and 'value="unhappy" checked' not in form.text
    sad_form = browser.call("GET", unhappy.removeprefix(tuesday.gateway))
    assert 'value="unhappy" checked' in sad_form.text
    # Opening the links recorded nothing.
    assert admin.call("GET", f"/api/v1/tickets/{jane_ticket.id}/feedback").status_code == 404

    sent = browser.call(
        "POST", happy.removeprefix(tuesday.gateway), data={"rating": "happy", "comment": "Fast and friendly!"}
    )
    assert sent.status_code == 200 and "Thank you" in sent.text
    recorded = admin.get(f"/api/v1/tickets/{jane_ticket.id}/feedback")
    assert (recorded["rating"], recorded["comment"], recorded["email"]) == (
        "happy",
        "Fast and friendly!",
        JANE,
    )
    browser.close()


def test_an_altered_or_forged_link_is_refused(
    tuesday: Scene, cast: Cast, jane_ticket: EmailedTicket, acme_closed: ClosedTicket
) -> None:
    _, unhappy = feedback_links(tuesday, acme_closed)
    token = unhappy.rsplit("/", 1)[1]
    body, signature = token.split(".")
    document = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert document["ticket_id"] == jane_ticket.id and document["rating"] == "unhappy"
    # Someone edits the sad link into a happy one (its signature no longer matches).
    altered_body = base64.urlsafe_b64encode(
        json.dumps({**document, "rating": "happy"}, separators=(",", ":"), sort_keys=True).encode()
    )
    altered = f"{altered_body.decode().rstrip('=')}.{signature}"
    # Someone makes a link of their own without the secret.
    forged = sign(
        {"ticket_id": jane_ticket.id, "email": JANE, "rating": "unhappy"},
        purpose="feedback",
        secret="a guess",
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    browser = Api("browser", tuesday.gateway, None)
    before = cast.api(tuesday, "admin").call("GET", f"/api/v1/tickets/{jane_ticket.id}/feedback")
    for bad in (altered, forged, token[:-2] + ("AA" if not token.endswith("AA") else "BB")):
        opened = browser.call("GET", f"/api/v1/feedback/{bad}")
        assert opened.status_code == 400 and "not valid" in opened.text, opened.text
        posted = browser.call("POST", f"/api/v1/feedback/{bad}", data={"rating": "unhappy", "comment": "x"})
        assert posted.status_code == 400, posted.text
    after = cast.api(tuesday, "admin").call("GET", f"/api/v1/tickets/{jane_ticket.id}/feedback")
    assert (before.status_code, before.text) == (after.status_code, after.text)
    browser.close()
