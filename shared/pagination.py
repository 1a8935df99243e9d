"""Opaque cursors for keyset pagination over time-ordered UUID ids."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, Field

from shared.problems import Problem

T = TypeVar("T")


class InvalidCursor(Problem):
    status, slug, title = 400, "invalid-cursor", "Cursor is not valid"


def encode_cursor(last_id: UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> UUID | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return UUID(bytes=raw)
    except (ValueError, binascii.Error):
        raise InvalidCursor("Pass back the next_cursor of a previous page unchanged.") from None


class Page(BaseModel, Generic[T]):
    """One page of a list, newest or id-ordered; follow ``next_cursor`` for the next one."""

    items: list[T]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


def _next_cursor(ids: Sequence[UUID], limit: int) -> str | None:
    return encode_cursor(ids[limit - 1]) if len(ids) > limit else None


def page_of(items: Sequence[T], ids: Sequence[UUID], limit: int) -> Page[T]:
    """Build a page from up to ``limit + 1`` fetched rows (the extra row only says more exist)."""
    return Page[T](items=list(items[:limit]), next_cursor=_next_cursor(ids, limit))


def page_document(items: Sequence[dict[str, Any]], ids: Sequence[UUID], limit: int) -> dict[str, Any]:
    """:func:`page_of` for items that are plain values already (answered with ``json_response``)."""
    return {"items": list(items[:limit]), "next_cursor": _next_cursor(ids, limit)}
