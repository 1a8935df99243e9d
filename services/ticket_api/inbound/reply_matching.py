"""The email threading rules, as pure functions (ARCHITECTURE.md, "Email threading").

In order: (1) In-Reply-To/References naming a Message-ID we sent (MAC-verified, under the
current key or an older one still listed) or received for a ticket; (2) the plus-addressed Reply-To token
(``support+<token>@…``, MAC-verified); (3) the ``[TKT-n]`` subject tag, only when the sender
belongs to the ticket's organization or is the ticket's contact. A Message-ID we merely
*received* proves nothing about who writes now, so it gets the same sender check as the
subject tag. A MAC-verified one of ours, or a reply token, proves which ticket is meant but not
who writes (a forwarded mail, a CC or a leaked thread hands it to anyone): it matches, and a
sender who is not one of the ticket's people is kept on it for agents only, flagged "sender not
on ticket" (``sender_may_join`` decides who is).

A match on a closed ticket reopens it within the reopen window; after that the message
opens a new ticket linked to the old one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from shared.mail_ids import MacKeys, owner_of_message_id, owner_of_reply_token, token_of_plus_address
from shared.vocabulary import TicketStatus

_SUBJECT_TAG = re.compile(r"\[\s*TKT-(\d{1,12})\s*\]", re.IGNORECASE)
MAX_THREAD_IDS = 50


class MatchedBy(StrEnum):
    IN_REPLY_TO = "in_reply_to"
    REPLY_TOKEN = "reply_token"
    SUBJECT_TAG = "subject_tag"
    OWN_MESSAGE_ID = "own_message_id"  # our own mail sent back in: its Message-ID names the ticket


class FollowUp(StrEnum):
    APPEND = "append"
    REOPEN = "reopen"
    NEW_LINKED_TICKET = "new_linked_ticket"


@dataclass(frozen=True)
class Sender:
    """Who wrote: the address, and the organization that address belongs to (by contact
    record or email domain), if any."""

    email: str
    organization_id: UUID | None


@dataclass(frozen=True)
class TicketFacts:
    """What the rules need to know about a candidate ticket."""

    ticket_id: UUID
    organization_id: UUID | None
    contact_email: str
    status: TicketStatus
    closed_at: datetime | None


def thread_ids(in_reply_to: Sequence[str], references: Sequence[str]) -> list[str]:
    """Message-IDs to try, best first: In-Reply-To, then References newest first."""
    ordered = [*in_reply_to, *reversed(references)]
    return list(dict.fromkeys(mid.strip() for mid in ordered if mid.strip()))[:MAX_THREAD_IDS]


def ticket_of_our_message_id(message_id: str, *, secret: MacKeys) -> UUID | None:
    """The ticket id a Message-ID we generated names (None: not ours, altered or forged)."""
    return owner_of_message_id(message_id, secret=secret)


def ticket_of_reply_address(
    recipients: Iterable[str], *, support_address: str, secret: MacKeys
) -> UUID | None:
    """The ticket a plus-addressed reply address names (``support+<token>@domain``)."""
    for recipient in recipients:
        token = token_of_plus_address(recipient, support_address)
        if token is not None:
            owner = owner_of_reply_token(token, secret=secret)
            if owner is not None:
                return owner
    return None


def ticket_number_in_subject(subject: str) -> int | None:
    match = _SUBJECT_TAG.search(subject)
    return int(match.group(1)) if match else None


def sender_may_join(sender: Sender, ticket: TicketFacts) -> bool:
    """A subject tag (or a Message-ID anyone could have seen) joins a ticket only for its
    contact or someone of its organization: a stranger quoting a ticket number opens their
    own ticket instead."""
    if sender.email.lower() == ticket.contact_email.lower():
        return True
    return ticket.organization_id is not None and sender.organization_id == ticket.organization_id


def follow_up_for(ticket: TicketFacts, *, now: datetime, reopen_window: timedelta) -> FollowUp:
    """What a person's message does to the ticket it matched."""
    if ticket.status != TicketStatus.CLOSED:
        return FollowUp.APPEND
    closed_at = ticket.closed_at or now
    return FollowUp.REOPEN if now - closed_at <= reopen_window else FollowUp.NEW_LINKED_TICKET


_REPLY_PREFIX = re.compile(
    r"^\s*((re|aw|sv|vs|antw|réf|ref|rif|odp|fw|fwd|wg|tr|rv|enc)\s*(\[\d+\])?\s*:\s*)+", re.I
)


def subject_for_new_ticket(subject: str) -> str:
    """A ticket's subject from a mail's: without reply/forward prefixes and without the
    ``[TKT-n]`` tags of other tickets (the new ticket's acknowledgment puts its own first),
    never empty."""
    untagged = " ".join(_SUBJECT_TAG.sub(" ", subject).split())
    return (_REPLY_PREFIX.sub("", untagged).strip() or untagged or "(no subject)")[:300]
