"""The browser session's rules, apart from I/O: the refresh-token cookie and the CSRF check.

The agents' app keeps its access token in memory only. Its refresh token lives in a cookie the
page's scripts cannot read (HttpOnly), that is sent over TLS only (Secure), never on a request
started by another site (SameSite=Strict), and only to the session routes (its Path), so no
other route ever sees it. Because a cookie is sent by the browser on its own, the routes that
act on it alone also require a header no cross-site form or simple request can carry
(``X-Helpdesk-CSRF``) and refuse an ``Origin`` other than their own host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

SESSION_PATH = "/api/v1/auth/session"
COOKIE_NAME = "helpdesk_session"
CSRF_HEADER = "X-Helpdesk-CSRF"
CSRF_VALUE = "1"


def session_cookie(refresh_token: str, *, max_age_seconds: int) -> str:
    """The ``Set-Cookie`` value that stores a refresh token for the session routes."""
    return (
        f"{COOKIE_NAME}={refresh_token}; Path={SESSION_PATH}; Max-Age={max_age_seconds}; "
        "HttpOnly; Secure; SameSite=Strict"
    )


def cleared_cookie() -> str:
    """The ``Set-Cookie`` value that removes the session cookie."""
    return f"{COOKIE_NAME}=; Path={SESSION_PATH}; Max-Age=0; HttpOnly; Secure; SameSite=Strict"


@dataclass(frozen=True)
class CsrfRefusal:
    """Why a request to a cookie route is refused, and the header it names."""

    location: str
    message: str


def origin_refusal(headers: Mapping[str, str]) -> CsrfRefusal | None:
    """Refuse a request another site started: an ``Origin`` whose host is not the request's own
    ``Host``, or a ``Sec-Fetch-Site`` other than same-origin (or none, typed by the user)."""
    host = headers.get("host", "").lower()
    origin = headers.get("origin")
    if origin is not None and (origin == "null" or urlsplit(origin).netloc.lower() != host):
        return CsrfRefusal("header.Origin", f"{origin} is not this site ({host})")
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return CsrfRefusal("header.Sec-Fetch-Site", f"a {fetch_site} request may not use the session")
    return None


def csrf_refusal(headers: Mapping[str, str]) -> CsrfRefusal | None:
    """:func:`origin_refusal`, and the custom header the app sends on every session call."""
    if headers.get(CSRF_HEADER.lower()) != CSRF_VALUE:
        return CsrfRefusal(f"header.{CSRF_HEADER}", f"send {CSRF_HEADER}: {CSRF_VALUE} with this request")
    return origin_refusal(headers)
