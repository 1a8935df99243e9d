"""The ticket lifecycle: which status may follow which.

new → open → pending_customer ⇄ open → closed; a closed ticket can be reopened. A ticket may
also be closed from any open state (resolved without a reply, spam, duplicate).
"""

from __future__ import annotations

from shared.vocabulary import TicketStatus

ALLOWED: dict[TicketStatus, frozenset[TicketStatus]] = {
    TicketStatus.NEW: frozenset({TicketStatus.OPEN, TicketStatus.PENDING_CUSTOMER, TicketStatus.CLOSED}),
    TicketStatus.OPEN: frozenset({TicketStatus.PENDING_CUSTOMER, TicketStatus.CLOSED}),
    TicketStatus.PENDING_CUSTOMER: frozenset({TicketStatus.OPEN, TicketStatus.CLOSED}),
    TicketStatus.CLOSED: frozenset({TicketStatus.OPEN}),
}


def can_transition(current: TicketStatus, target: TicketStatus) -> bool:
    return target in ALLOWED[current]


def allowed_targets(current: TicketStatus) -> list[TicketStatus]:
    return sorted(ALLOWED[current], key=list(TicketStatus).index)


def status_after_public_message(current: TicketStatus, *, from_customer: bool) -> TicketStatus:
    """Where a public message moves a ticket: a customer answer resumes a ticket waiting on
    them; the first agent reply opens a new one. Anything else keeps its status (a reply to a
    closed ticket is handled by the reopen rules of inbound mail, not here)."""
    if from_customer and current is TicketStatus.PENDING_CUSTOMER:
        return TicketStatus.OPEN
    if not from_customer and current is TicketStatus.NEW:
        return TicketStatus.OPEN
    return current


def may_wait_on_customer(last_public_author: str | None) -> bool:
    """Waiting on the customer (which pauses the SLA clocks) needs a question to them first:
    the ticket's latest public message is ours (an agent's), not the customer's, and not none."""
    return last_public_author == "agent"
