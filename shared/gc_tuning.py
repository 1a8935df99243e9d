"""Garbage-collector settings for long-running service processes (entry points only).

Start-up leaves hundreds of thousands of long-lived objects (modules, SQLAlchemy mappers,
pydantic models) that every full collection would walk again. :func:`tune` moves them to the
permanent generation and makes young collections rarer: request and job handling allocates
many short-lived containers, so the default threshold (700) runs a collection every few
statements.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000


def tune() -> None:
    """Freeze what exists now (call after the heavy imports) and collect the young less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
