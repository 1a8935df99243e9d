"""The people and programs that use the system, each with their own access token, calling the
public API through the gateway: the admin and consultants (password sign-in), a portal (OAuth
client credentials) and a customer (a magic link read from her mailbox)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.e2e.mailbox import Mailbox


class ApiError(AssertionError):
    pass


@dataclass
class Api:
    """One caller. ``get``/``post``/… assert the status (200 for reads, 201 for POST unless
    told) and return the JSON; ``call`` returns the raw response."""

    name: str
    base_url: str
    token: str | None
    _client: httpx.Client | None = field(default=None, repr=False)

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=30)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, path, **kwargs)

    def _expect(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        if response.status_code != expect:
            raise ApiError(
                f"{self.name}: {method} {path} answered {response.status_code}, expected {expect}: "
                f"{response.text[:2000]}"
            )
        if not response.content:
            return None
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return response.text

    def get(self, path: str, expect: int = 200, **kwargs: Any) -> Any:
        return self._expect("GET", path, expect, **kwargs)

    def post(self, path: str, expect: int = 201, **kwargs: Any) -> Any:
        return self._expect("POST", path, expect, **kwargs)

    def patch(self, path: str, expect: int = 200, **kwargs: Any) -> Any:
        return self._expect("PATCH", path, expect, **kwargs)

    def put(self, path: str, expect: int = 200, **kwargs: Any) -> Any:
        return self._expect("PUT", path, expect, **kwargs)

    def delete(self, path: str, expect: int = 204, **kwargs: Any) -> Any:
        return self._expect("DELETE", path, expect, **kwargs)


def _token(response: httpx.Response, what: str) -> str:
    if response.status_code != 200:
        raise ApiError(f"{what} failed with {response.status_code}: {response.text[:1000]}")
    body = response.json()
    assert body["token_type"] == "Bearer"
    return str(body["access_token"])


def password_sign_in(gateway: str, email: str, password: str) -> str:
    with httpx.Client(base_url=gateway, timeout=30) as client:
        response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    return _token(response, f"sign-in of {email}")


def client_credentials(gateway: str, client_id: str, client_secret: str, scope: str) -> str:
    with httpx.Client(base_url=gateway, timeout=30) as client:
        response = client.post(
            "/api/v1/oauth/token",
            data={"grant_type": "client_credentials", "scope": scope},
            auth=(client_id, client_secret),
        )
    return _token(response, f"client credentials of {client_id}")


SIGN_IN_TOKEN = re.compile(r"/sign-in#token=([A-Za-z0-9_.\-~%=]+)")


def magic_link_sign_in(gateway: str, mailbox: Mailbox, email: str, ticket_number: str | None = None) -> str:
    """Ask for a sign-in link, read it from the customer's mailbox, redeem its token."""
    since = mailbox.mark()
    with httpx.Client(base_url=gateway, timeout=30) as client:
        asked = client.post("/api/v1/auth/magic-link", json={"email": email, "ticket_number": ticket_number})
        assert asked.status_code == 202, asked.text
        mail = mailbox.one(since, to=email, kind="sign_in_link")
        match = SIGN_IN_TOKEN.search(mail.text)
        assert match, f"no sign-in link in {mail.text!r}"
        redeemed = client.post("/api/v1/auth/magic-link/redeem", json={"token": match[1]})
        token = _token(redeemed, f"redeeming {email}'s sign-in link")
        again = client.post("/api/v1/auth/magic-link/redeem", json={"token": match[1]})
        assert again.status_code == 400, f"a sign-in link worked twice: {again.status_code} {again.text}"
    return token


def problem(response: httpx.Response) -> dict[str, Any]:
    """An RFC 9457 problem answer, checked for its media type."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    document: dict[str, Any] = json.loads(response.text)
    return document
