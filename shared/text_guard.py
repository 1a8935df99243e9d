"""Text no database may store is refused at the door, with a 422 naming where it was.

PostgreSQL's text and JSON types cannot hold the NUL character, and no UTF-8 column can hold a
lone surrogate (``"\\ud800"`` is valid JSON but not a character). Without this guard such input
reaches a statement and fails there as a 500, or is stored in SQLite and breaks later reads. The
ASGI middleware checks the path, every query parameter and JSON or form bodies before any route
runs; the finding functions are pure and tested directly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.problems import problem_response

MESSAGE = "contains a character that cannot be stored (NUL or a lone surrogate)"
# Cheap pre-checks on raw bytes: only a body that could hold such text is parsed again.
_JSON_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})|\x00")
_FORM_SUSPECT = re.compile(rb"%00|%[eE][dD]%[aAbB]|\x00")


def storable(text: str) -> bool:
    """True when every character of ``text`` can be stored (no NUL, no lone surrogate)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _strings(value: Any, location: str) -> Iterator[tuple[str, str]]:
    """Every string in a JSON document (keys too) with where it is: ``body.skills.0``."""
    if isinstance(value, str):
        yield location, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield location, key
            yield from _strings(item, f"{location}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{location}.{index}")


def unstorable_in_json(body: bytes) -> str | None:
    """Where the first unstorable string of a JSON body is, or ``None`` (also for bodies that
    are not JSON at all: the route's own validation says what is wrong with those)."""
    if not _JSON_SUSPECT.search(body):
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return next((where for where, text in _strings(document, "body") if not storable(text)), None)


def _unstorable_in_pairs(encoded: str, prefix: str) -> str | None:
    for name, value in parse_qsl(encoded, keep_blank_values=True, errors="surrogateescape"):
        if not storable(name) or not storable(value):
            return f"{prefix}.{name}" if storable(name) else prefix
    return None


def unstorable_in_form(body: bytes) -> str | None:
    """Where the first unstorable field of a form-encoded body is, or ``None``."""
    if not _FORM_SUSPECT.search(body):
        return None
    return _unstorable_in_pairs(body.decode("latin-1"), "body")


def unstorable_in_target(path: str, query_string: bytes) -> str | None:
    """``path`` or ``query.<name>`` when the request line carries unstorable text."""
    if not storable(path):
        return "path"
    query = query_string.decode("latin-1")
    if "%" not in query and "\x00" not in query:
        return None
    return _unstorable_in_pairs(query, "query")


def _content_type(scope: Scope) -> str:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for key, value in headers:
        if key == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return ""


class UnstorableTextGuard:
    """Answers 422 (problem+json, ``errors[0].location`` naming the field) for a request whose
    path, query or JSON/form body holds text no database can store; passes the rest through
    with the body it read replayed unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = unstorable_in_target(scope.get("path", ""), scope["query_string"])  # path: decoded
        content_type = _content_type(scope)
        check = (
            unstorable_in_json
            if content_type == "application/json" or content_type.endswith("+json")
            else unstorable_in_form
            if content_type == "application/x-www-form-urlencoded"
            else None
        )
        if where is None and check is not None:
            body, receive = await _buffered(receive)
            where = check(body)
        if where is None:
            await self.app(scope, receive, send)
            return
        response = problem_response(
            422,
            "validation-error",
            "Request is not valid",
            f"{where}: {MESSAGE}",
            instance=scope.get("path", ""),
            errors=[{"location": where, "message": MESSAGE, "type": "unstorable_text"}],
        )
        await response(scope, receive, send)


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that hands it on as one message."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), _replay_then(message, receive)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    return body, _replay_then({"type": "http.request", "body": body, "more_body": False}, receive)


def _replay_then(first: Message, receive: Receive) -> Receive:
    pending = [first]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay
