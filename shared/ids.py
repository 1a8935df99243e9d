"""Identifiers: time-ordered UUIDs (RFC 9562 version 7) for rows and events."""

from __future__ import annotations

import uuid

from uuid_utils.compat import uuid7


def new_id() -> uuid.UUID:
    """A new time-ordered UUID: sorts by creation time, so it indexes like a sequence."""
    return uuid7()
