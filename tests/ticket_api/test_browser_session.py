"""The browser app's session: sign-in sets the refresh token as a cookie the page cannot read,
refresh rotates it (a used one closes the session), sign-out revokes and clears it, and the
cookie routes refuse requests another site could start. Through the API, on both databases."""

from __future__ import annotations

import httpx
import pytest

from services.ticket_api.identity import browser_session as bs
from tests.ticket_api.conftest import Actors

PASSWORD = "a long enough passphrase"
SAME_SITE = {bs.CSRF_HEADER: "1", "Origin": "http://ticket-api.test"}
SESSION = "/api/v1/auth/session"


async def _agent_with_password(api: Actors) -> None:
    response = await api.client.put(
        f"/api/v1/agents/{api.agent_id}/password", json={"password": PASSWORD}, headers=api.admin
    )
    assert response.status_code == 204


async def _sign_in(api: Actors, password: str = PASSWORD, **headers: str) -> httpx.Response:
    return await api.client.post(
        SESSION,
        json={"email": "alice@helpdesk.test", "password": password},
        headers={**SAME_SITE, **headers},
    )


def _cookie(response: httpx.Response) -> tuple[str, set[str]]:
    """The session cookie's value and its attributes, from the answer's one Set-Cookie."""
    (header,) = response.headers.get_list("set-cookie")
    pair, *attributes = [part.strip() for part in header.split(";")]
    name, _, value = pair.partition("=")
    assert name == bs.COOKIE_NAME
    return value, {attribute.lower() for attribute in attributes}


async def _refresh(api: Actors, cookie: str | None, **headers: str) -> httpx.Response:
    sent = {**SAME_SITE, **headers}
    if cookie is not None:
        sent["Cookie"] = f"{bs.COOKIE_NAME}={cookie}"
    return await api.client.post(f"{SESSION}/refresh", headers=sent)


async def test_sign_in_keeps_the_refresh_token_in_a_strict_http_only_cookie(api: Actors) -> None:
    await _agent_with_password(api)
    signed_in = await _sign_in(api)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.headers["cache-control"] == "no-store"
    body = signed_in.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}, "no refresh token for scripts"
    cookie, attributes = _cookie(signed_in)
    assert cookie.startswith("hdr_")
    assert {"httponly", "secure", "samesite=strict", f"path={SESSION}"} <= attributes
    assert f"max-age={30 * 86400}" in attributes
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await api.client.get("/api/v1/tickets", headers=headers)).status_code == 200


async def test_refresh_rotates_the_cookie_and_a_replayed_one_closes_the_session(api: Actors) -> None:
    await _agent_with_password(api)
    first, _ = _cookie(await _sign_in(api))
    refreshed = await _refresh(api, first)
    assert refreshed.status_code == 200, refreshed.text
    assert "refresh_token" not in refreshed.json()
    second, attributes = _cookie(refreshed)
    assert second != first and "httponly" in attributes
    fresh = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert (await api.client.get("/api/v1/tickets", headers=fresh)).status_code == 200

    replay = await _refresh(api, first)
    assert replay.status_code == 400
    assert replay.headers["content-type"] == "application/problem+json"
    assert replay.json()["detail"] == "This refresh token was already used; the session is closed."
    cleared, attributes = _cookie(replay)
    assert cleared == "" and "max-age=0" in attributes
    assert (await _refresh(api, second)).status_code == 400, "the stolen session's family is closed"


async def test_refresh_without_a_cookie_says_to_sign_in(api: Actors) -> None:
    missing = await _refresh(api, None)
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["errors"] == [{"location": f"cookie.{bs.COOKIE_NAME}", "message": "missing"}]
    unknown = await _refresh(api, "hdr_" + "x" * 40)
    assert unknown.status_code == 400
    assert _cookie(unknown)[0] == ""


async def test_sign_out_revokes_both_tokens_and_clears_the_cookie(api: Actors) -> None:
    await _agent_with_password(api)
    signed_in = await _sign_in(api)
    cookie, _ = _cookie(signed_in)
    bearer = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    out = await api.client.delete(SESSION, headers={**bearer, "Cookie": f"{bs.COOKIE_NAME}={cookie}"})
    assert out.status_code == 204
    assert _cookie(out)[0] == ""
    assert (await api.client.get("/api/v1/tickets", headers=bearer)).status_code == 401
    assert (await _refresh(api, cookie)).status_code == 400
    anonymous = await api.client.delete(SESSION)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("headers", "location"),
    [
        ({bs.CSRF_HEADER: ""}, f"header.{bs.CSRF_HEADER}"),
        ({"Origin": "https://evil.test"}, "header.Origin"),
        ({"Origin": "null"}, "header.Origin"),
        ({"Sec-Fetch-Site": "cross-site"}, "header.Sec-Fetch-Site"),
    ],
)
async def test_the_cookie_routes_refuse_what_another_site_could_send(
    api: Actors, headers: dict[str, str], location: str
) -> None:
    await _agent_with_password(api)
    cookie, _ = _cookie(await _sign_in(api))
    for refused in (await _sign_in(api, **headers), await _refresh(api, cookie, **headers)):
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"][0]["location"] == location
        assert "set-cookie" not in refused.headers
    assert (await _refresh(api, cookie)).status_code == 200, "a refused request uses nothing up"
    bearer = {"Authorization": f"Bearer {(await _sign_in(api)).json()['access_token']}"}
    if location != f"header.{bs.CSRF_HEADER}":
        foreign = await api.client.delete(SESSION, headers={**bearer, **headers})
        assert foreign.status_code == 403
        assert foreign.json()["errors"][0]["location"] == location


async def test_wrong_passwords_lock_the_session_sign_in_with_a_sentence(api: Actors) -> None:
    await _agent_with_password(api)
    for _ in range(5):
        wrong = await _sign_in(api, "not it")
        assert wrong.status_code == 401
        assert wrong.json()["detail"] == "Wrong email or password."
        assert "set-cookie" not in wrong.headers
    locked = await _sign_in(api)
    assert locked.status_code == 429
    assert locked.json()["detail"].startswith("Too many failed attempts; try again in ")
    assert int(locked.headers["retry-after"]) >= 1


def test_csrf_rules_directly() -> None:
    same = {"host": "helpdesk.test", bs.CSRF_HEADER.lower(): "1"}
    assert bs.csrf_refusal(same) is None
    assert (
        bs.csrf_refusal({**same, "origin": "https://helpdesk.test", "sec-fetch-site": "same-origin"}) is None
    )
    assert bs.csrf_refusal({**same, "origin": "https://helpdesk.test.evil.test"}) is not None
    assert bs.csrf_refusal({**same, "sec-fetch-site": "same-site"}) is not None
    assert bs.csrf_refusal({"host": "helpdesk.test"}) is not None
    assert bs.origin_refusal({"host": "helpdesk.test"}) is None
    assert "Max-Age=0" in bs.cleared_cookie() and "HttpOnly" in bs.session_cookie("t", max_age_seconds=5)
