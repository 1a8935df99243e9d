"""triage's event handlers (what it receives is declared in shared.events.ROUTES)."""

from __future__ import annotations

from shared.consumer import EventHandler

# Until triage's own issue lands, events routed here are acknowledged and recorded as processed.
HANDLERS: dict[str, EventHandler] = {}
