"""The rules of tickets: opening them (``create_ticket``), their messages (``add_message``), status
(``set_status``), changes and time entries; each the one writer of its fact, called by the API,
inbound mail, triage's results and the customer pages alike. Functions take the unit of work
and the caller, raise domain errors, flush (never commit) and record the events their changes
cause."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from services.ticket_api.caller import Caller, audit, changes_between, jsonable, require_staff
from services.ticket_api.db import touch
from services.ticket_api.errors import (
    AgentNotFound,
    FieldNotAllowed,
    InvalidTransition,
    TicketNotFound,
    TimeEntryNotFound,
)
from services.ticket_api.identity import repository as identity_repo
from services.ticket_api.organizations import repository as organization_repo
from services.ticket_api.organizations.announcements import adopt_primary_contact
from services.ticket_api.organizations.models import Contact
from services.ticket_api.organizations.views import contact_ref, organization_ref
from services.ticket_api.tickets import repository as repo
from services.ticket_api.tickets.models import AuthorKind, Channel, Message, Ticket, TimeEntry, Visibility
from services.ticket_api.tickets.schemas import (
    STAFF_ONLY_TICKET_FIELDS,
    MessageCreate,
    StatusChange,
    TicketCreate,
    TicketUpdate,
    TimeEntryCreate,
    TimeEntryUpdate,
)
from services.ticket_api.tickets.transitions import (
    allowed_targets,
    can_transition,
    may_wait_on_customer,
    status_after_public_message,
)
from services.ticket_api.tickets.views import ticket_number
from shared import events as ev
from shared.clock import utcnow
from shared.ids import new_id
from shared.principal import Principal, PrincipalKind
from shared.problems import Unprocessable
from shared.uow import UnitOfWork
from shared.vocabulary import Impact, TicketStatus, Urgency


async def _ticket_organization(
    uow: UnitOfWork, caller: Caller, contact: organization_repo.ContactRow
) -> UUID | None:
    """The organization a new ticket belongs to: the contact's. A portal or customer may only
    open tickets for contacts of organizations it serves; a new contact with no known domain
    joins the caller's organization when it serves exactly one. A customer opens tickets only
    for themselves."""
    principal = caller.principal
    if principal.kind is PrincipalKind.CUSTOMER:
        if contact.id != principal.contact_id:
            raise Unprocessable(
                "Customers open tickets for themselves: give your own email address as the contact."
            )
        return contact.organization_id
    if principal.is_staff or (
        contact.organization_id is not None and contact.organization_id in principal.organization_ids
    ):
        return contact.organization_id
    if contact.organization_id is None and len(principal.organization_ids) == 1:
        (organization_id,) = principal.organization_ids
        if await organization_repo.get_organization(uow.session, organization_id) is None:
            raise Unprocessable("The organization this client serves no longer exists; ask an admin.")
        await touch(uow.session, Contact, contact.id, organization_id=organization_id)
        return organization_id
    raise Unprocessable(
        f"{contact.email} is not a contact of an organization you serve; "
        "tickets can only be opened for your own customers."
    )


async def snapshot_refs(uow: UnitOfWork, ticket: Ticket) -> tuple[ev.ContactRef, ev.OrganizationRef | None]:
    contact = await organization_repo.get_contact(uow.session, ticket.contact_id)
    assert contact is not None
    organization = (
        await organization_repo.get_organization(uow.session, ticket.organization_id)
        if ticket.organization_id
        else None
    )
    return contact_ref(contact), organization_ref(organization)


def _snapshot_fields(
    ticket: Ticket, contact: ev.ContactRef, organization: ev.OrganizationRef | None
) -> dict[str, Any]:
    return {
        "ticket_id": ticket.id,
        "number": ticket_number(ticket.number),
        "subject": ticket.subject,
        "urgency": ticket.urgency,
        "impact": ticket.impact,
        "category": ticket.category,
        "channel": ticket.channel,
        "status": ticket.status,
        "priority": ticket.priority,
        "assignee_id": ticket.assignee_id,
        "contact": contact,
        "organization": organization,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
    }


async def record_ticket_event(
    uow: UnitOfWork,
    caller: Caller,
    ticket: Ticket,
    event_type: ev.EventType,
    payload_type: type[ev.Payload],
    known_to: tuple[ev.Service, ...] = (),
    **extra: Any,
) -> None:
    """Announce a change of ``ticket``: its snapshot (contact, organization) plus ``extra``."""
    contact, organization = await snapshot_refs(uow, ticket)
    payload = payload_type(**_snapshot_fields(ticket, contact, organization), **extra)
    await uow.emit(
        event_type, payload, subject=f"ticket:{ticket.id}", request_id=caller.request_id, known_to=known_to
    )


def refuse_staff_only_fields(caller: Caller, fields: set[str]) -> None:
    """Impact, category, priority and assignee are staff's judgement, on create as on change:
    a customer or portal naming one gets 403 naming it (never a silent P1)."""
    forbidden = sorted(STAFF_ONLY_TICKET_FIELDS & fields) if not caller.principal.is_staff else []
    if forbidden:
        raise FieldNotAllowed(f"Only agents may set {', '.join(forbidden)}.", fields=forbidden)


@dataclass(frozen=True)
class NewTicket:
    """A ticket about to open, however it came in (the API, a portal, a mail)."""

    contact: organization_repo.ContactRow
    organization_id: UUID | None
    subject: str
    description: str
    urgency: Urgency
    channel: Channel
    at: datetime
    actor: str  # who opened it, as ``created_by`` and the audit trail name them
    audit_changes: dict[str, Any]
    impact: Impact | None = None
    category: str | None = None
    acknowledge: bool = True  # false: the customer is sent no acknowledgment
    source_message_id: str | None = None  # the mail that opened it (its acknowledgment threads under it)


async def requested_ticket(uow: UnitOfWork, caller: Caller, data: TicketCreate) -> NewTicket:
    """The ticket a caller of the API asks for, checked: staff-only fields refused, the contact
    named by email (created when new) and the organization it may be opened for."""
    refuse_staff_only_fields(
        caller, {name for name in data.model_fields_set if getattr(data, name) is not None}
    )
    contact = await organization_repo.upsert_contact(
        uow.session, email=data.contact.email.lower(), name=data.contact.name
    )
    return NewTicket(
        contact=contact,
        organization_id=await _ticket_organization(uow, caller, contact),
        subject=data.subject,
        description=data.description,
        urgency=data.urgency,
        impact=data.impact,
        category=data.category,
        channel=data.channel,
        at=utcnow(),
        actor=caller.principal.audit_ref,
        audit_changes=data.model_dump(),
    )


async def create_ticket(uow: UnitOfWork, caller: Caller, new: NewTicket) -> Ticket:
    """Open a ticket: the one writer of new tickets (the API and inbound mail alike), audited
    and announced as ``ticket.created``. The hot path: a handful of statements."""
    session = uow.session
    contact = new.contact
    organization = (
        await organization_repo.get_organization(session, new.organization_id)
        if new.organization_id
        else None
    )
    values: dict[str, Any] = {
        "id": new_id(),
        "subject": new.subject,
        "description": new.description,
        "urgency": new.urgency,
        "impact": new.impact,
        "category": new.category,
        "channel": new.channel,
        "status": TicketStatus.NEW,
        "priority": None,
        "assignee_id": None,
        "contact_id": contact.id,
        "organization_id": new.organization_id,
        "created_by": new.actor,
        "created_at": new.at,
        "updated_at": new.at,
        "closed_at": None,
    }
    number = await repo.insert_ticket(session, values)
    ticket = Ticket(**values, number=number)
    await repo.add_audit(
        session,
        entity_type="ticket",
        entity_id=ticket.id,
        action="created",
        actor=new.actor,
        changes=jsonable(new.audit_changes),
        request_id=caller.request_id,
    )
    payload = ev.TicketCreatedV1(
        **_snapshot_fields(
            ticket,
            ev.ContactRef(id=contact.id, email=contact.email, name=contact.name),
            organization_ref(organization),
        ),
        description=ticket.description,
        acknowledge=new.acknowledge,
        source_message_id=new.source_message_id,
    )
    await uow.emit(
        ev.EventType.TICKET_CREATED, payload, subject=f"ticket:{ticket.id}", request_id=caller.request_id
    )
    if organization is not None and organization.primary_contact_id is None:
        await adopt_primary_contact(uow, caller, organization, contact.id)
    return ticket


# --- reading and changing tickets ------------------------------------------------------------


def ticket_scope(principal: Principal) -> repo.TicketScope:
    """Which tickets a caller reaches: staff all; a portal its organizations'; a customer only
    the tickets they opened (colleagues' tickets may be private)."""
    if principal.kind is PrincipalKind.CUSTOMER:
        return repo.TicketScope(organizations=None, contact_id=principal.contact_id or new_id())
    return repo.TicketScope(organizations=principal.org_scope(), contact_id=None)


def _can_see_ticket(principal: Principal, ticket: Ticket) -> bool:
    if principal.kind is PrincipalKind.CUSTOMER:
        return ticket.contact_id == principal.contact_id
    return principal.can_see_organization(ticket.organization_id)


async def visible_ticket(
    uow: UnitOfWork, caller: Caller, ticket_id: UUID, *, for_update: bool = False
) -> Ticket:
    ticket = await repo.get_ticket(uow.session, ticket_id, for_update=for_update)
    if ticket is None or not _can_see_ticket(caller.principal, ticket):
        raise TicketNotFound(f"No ticket {ticket_id}.")
    return ticket


async def visible_ticket_by_number(uow: UnitOfWork, caller: Caller, number: int) -> Ticket:
    ticket = await repo.get_ticket_by_number(uow.session, number)
    if ticket is None or not _can_see_ticket(caller.principal, ticket):
        raise TicketNotFound(f"No ticket {ticket_number(number)}.")
    return ticket


async def update_ticket(uow: UnitOfWork, caller: Caller, ticket_id: UUID, data: TicketUpdate) -> Ticket:
    changes = data.model_dump(exclude_unset=True)
    ticket = await visible_ticket(uow, caller, ticket_id, for_update=True)
    refuse_staff_only_fields(caller, set(changes))
    for required in ("subject", "urgency"):
        if required in changes and changes[required] is None:
            raise Unprocessable(f"{required} cannot be removed.")
    if changes.get("assignee_id") is not None:
        agent = await identity_repo.get_agent(uow.session, changes["assignee_id"])
        if agent is None or not agent.active:
            raise AgentNotFound(f"No active agent {changes['assignee_id']} to assign.")
    diff = changes_between({key: getattr(ticket, key) for key in changes}, changes)
    if not diff:
        return ticket
    for key, (_old, new) in diff.items():
        setattr(ticket, key, new)
    ticket.updated_at = utcnow()
    await uow.session.flush()
    await audit(uow, caller, "ticket", ticket.id, "updated", diff)
    await record_ticket_event(
        uow, caller, ticket, ev.EventType.TICKET_UPDATED, ev.TicketUpdatedV1, changed=jsonable(diff)
    )
    return ticket


# --- status ----------------------------------------------------------------------------------


async def set_status(
    uow: UnitOfWork, caller: Caller, ticket: Ticket, target: TicketStatus, reason: str | None
) -> None:
    """Move ``ticket`` (locked by the caller) to ``target``: the one writer of a ticket's
    status, by the lifecycle's rules, audited and announced (and ``ticket.closed`` on closing)."""
    current = TicketStatus(ticket.status)
    if not can_transition(current, target):
        options = ", ".join(allowed_targets(current)) or "none"
        raise InvalidTransition(
            f"A {current.value} ticket cannot become {target.value}; allowed next: {options}.",
            current=current.value,
            allowed=[status.value for status in allowed_targets(current)],
        )
    if target is TicketStatus.PENDING_CUSTOMER and not may_wait_on_customer(
        await repo.last_public_author(uow.session, ticket.id)
    ):
        raise InvalidTransition(
            "Waiting on the customer needs a question to them first: add a public message to the "
            "customer, then set the ticket to pending_customer (the SLA clock pauses only then).",
            current=current.value,
            allowed=[status.value for status in allowed_targets(current)],
        )
    now = utcnow()
    ticket.status = target
    ticket.updated_at = now
    ticket.closed_at = now if target is TicketStatus.CLOSED else None
    await uow.session.flush()
    await audit(
        uow,
        caller,
        "ticket",
        ticket.id,
        "status_changed",
        {"status": [current.value, target.value], "reason": reason},
    )
    await record_ticket_event(
        uow,
        caller,
        ticket,
        ev.EventType.TICKET_STATUS_CHANGED,
        ev.TicketStatusChangedV1,
        from_status=current.value,
        to_status=target.value,
    )
    if target is TicketStatus.CLOSED:
        await record_ticket_event(
            uow, caller, ticket, ev.EventType.TICKET_CLOSED, ev.TicketClosedV1, closed_at=now
        )


async def change_status(uow: UnitOfWork, caller: Caller, ticket_id: UUID, data: StatusChange) -> Ticket:
    ticket = await visible_ticket(uow, caller, ticket_id, for_update=True)
    if not caller.principal.is_staff and data.status is not TicketStatus.CLOSED:
        raise FieldNotAllowed("Customers and portals may only close a ticket; agents change other statuses.")
    if ticket.status == data.status:
        return ticket
    await set_status(uow, caller, ticket, data.status, data.reason)
    return ticket


def _author_kind(principal: Principal) -> AuthorKind:
    if principal.kind in (PrincipalKind.CUSTOMER, PrincipalKind.PORTAL):
        return AuthorKind.CUSTOMER
    if principal.kind is PrincipalKind.SERVICE:
        return AuthorKind.SYSTEM
    return AuthorKind.AGENT


# --- messages --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewMessage:
    """A message about to be added to a ticket, however it came in."""

    body: str
    visibility: Visibility
    author_kind: AuthorKind
    author_id: UUID | None
    at: datetime | None = None  # None: now
    actor: str | None = None  # who the audit trail names (None: the caller)
    audit_context: dict[str, Any] = field(default_factory=dict)  # more for the audit trail
    status_reason: str = "public message"  # why a public message moves the status


async def post_message(uow: UnitOfWork, caller: Caller, ticket_id: UUID, data: MessageCreate) -> Message:
    """A message from a caller of the API (or the customer's page): internal notes are staff's,
    and only agents write on a closed ticket."""
    principal = caller.principal
    if data.visibility is Visibility.INTERNAL:
        require_staff(caller)
    ticket = await visible_ticket(uow, caller, ticket_id, for_update=True)
    author_kind = _author_kind(principal)
    if ticket.status == TicketStatus.CLOSED and author_kind is not AuthorKind.AGENT:
        raise InvalidTransition("This ticket is closed; reopen it or open a new ticket.")
    new = NewMessage(
        body=data.body,
        visibility=data.visibility,
        author_kind=author_kind,
        author_id=principal.agent_id or principal.contact_id,
    )
    return await add_message(uow, caller, ticket, new)


async def add_message(uow: UnitOfWork, caller: Caller, ticket: Ticket, new: NewMessage) -> Message:
    """Add a message to ``ticket`` (locked by the caller): the one writer of messages, audited
    and announced; a public one moves the status as the lifecycle says (a customer's answer
    resumes a ticket waiting on them)."""
    now = new.at or utcnow()
    message = Message(
        ticket_id=ticket.id,
        visibility=new.visibility,
        author_kind=new.author_kind,
        author_id=new.author_id,
        body=new.body,
        created_at=now,
    )
    uow.session.add(message)
    ticket.updated_at = now
    await uow.session.flush()
    await repo.add_audit(
        uow.session,
        entity_type="ticket",
        entity_id=ticket.id,
        action="message_added",
        actor=new.actor or caller.principal.audit_ref,
        changes=jsonable({"message_id": message.id, "visibility": new.visibility.value, **new.audit_context}),
        request_id=caller.request_id,
    )
    await record_ticket_event(
        uow,
        caller,
        ticket,
        ev.EventType.TICKET_MESSAGE_ADDED,
        ev.TicketMessageAddedV1,
        message_id=message.id,
        visibility=message.visibility,
        author_kind=message.author_kind,
        author_id=message.author_id,
        body=message.body,
    )
    if new.visibility is Visibility.PUBLIC:
        target = status_after_public_message(
            TicketStatus(ticket.status), from_customer=new.author_kind is AuthorKind.CUSTOMER
        )
        if target != ticket.status:
            await set_status(uow, caller, ticket, target, new.status_reason)
    return message


# --- time entries ----------------------------------------------------------------------------


async def _record_time_entry_event(
    uow: UnitOfWork, caller: Caller, entry: TimeEntry, ticket: Ticket, event_type: ev.EventType
) -> None:
    payload = ev.TimeEntryV1(
        time_entry_id=entry.id,
        revision=entry.revision,
        ticket_id=ticket.id,
        ticket_number=ticket_number(ticket.number),
        ticket_status=ticket.status,
        organization_id=ticket.organization_id,
        agent_id=entry.agent_id,
        minutes=entry.minutes,
        billable=entry.billable,
        started_at=entry.started_at,
        description=entry.description,
        source=entry.source,
        deleted=entry.deleted_at is not None,
    )
    await uow.emit(event_type, payload, subject=f"time_entry:{entry.id}", request_id=caller.request_id)


async def log_time(uow: UnitOfWork, caller: Caller, ticket_id: UUID, data: TimeEntryCreate) -> TimeEntry:
    """Record time worked on a ticket (agents); billing charges it by the organization's tier."""
    require_staff(caller)
    ticket = await visible_ticket(uow, caller, ticket_id)
    agent_id = data.agent_id or caller.principal.agent_id
    if agent_id is None:
        raise Unprocessable("Say which agent did the work (agent_id).")
    agent = await identity_repo.get_agent(uow.session, agent_id)
    if agent is None:
        raise AgentNotFound(f"No agent {agent_id}.")
    _require_started(data.started_at)
    entry = TimeEntry(
        ticket_id=ticket.id,
        agent_id=agent.id,
        minutes=data.minutes,
        billable=data.billable,
        started_at=data.started_at or utcnow(),
        description=data.description,
        source=data.source,
    )
    uow.session.add(entry)
    await uow.session.flush()
    await audit(
        uow, caller, "ticket", ticket.id, "time_logged", {"time_entry_id": entry.id, "minutes": entry.minutes}
    )
    await _record_time_entry_event(uow, caller, entry, ticket, ev.EventType.TIME_ENTRY_LOGGED)
    return entry


# Clocks of the caller and ours differ a little; more than this ahead is work not yet done.
_CLOCK_SKEW = timedelta(minutes=1)


def _require_started(started_at: datetime | None) -> None:
    """Time is logged for work that has started: a future start would bill what never happened."""
    if started_at is not None and started_at > utcnow() + _CLOCK_SKEW:
        raise Unprocessable(
            f"started_at: {started_at.isoformat()} is in the future; log time once the work has started.",
            errors=[{"location": "body.started_at", "message": "must not be in the future"}],
        )


async def _editable_time_entry(uow: UnitOfWork, caller: Caller, entry_id: UUID) -> tuple[TimeEntry, Ticket]:
    require_staff(caller)
    entry = await repo.get_time_entry(uow.session, entry_id, for_update=True)
    if entry is None:
        raise TimeEntryNotFound(f"No time entry {entry_id}.")
    return entry, await visible_ticket(uow, caller, entry.ticket_id)


async def update_time_entry(
    uow: UnitOfWork, caller: Caller, entry_id: UUID, data: TimeEntryUpdate
) -> TimeEntry:
    entry, ticket = await _editable_time_entry(uow, caller, entry_id)
    _require_started(data.started_at)
    changes = {k: v for k, v in data.model_dump(exclude_unset=True).items() if v is not None}
    diff = changes_between({key: getattr(entry, key) for key in changes}, changes)
    if not diff:
        return entry
    for key, (_old, new) in diff.items():
        setattr(entry, key, new)
    entry.revision += 1
    entry.updated_at = utcnow()
    await uow.session.flush()
    await audit(uow, caller, "time_entry", entry.id, "updated", diff)
    await _record_time_entry_event(uow, caller, entry, ticket, ev.EventType.TIME_ENTRY_UPDATED)
    return entry


async def delete_time_entry(uow: UnitOfWork, caller: Caller, entry_id: UUID) -> None:
    entry, ticket = await _editable_time_entry(uow, caller, entry_id)
    entry.deleted_at = utcnow()
    entry.revision += 1
    entry.updated_at = entry.deleted_at
    await uow.session.flush()
    await audit(uow, caller, "time_entry", entry.id, "deleted", {"minutes": entry.minutes})
    await _record_time_entry_event(uow, caller, entry, ticket, ev.EventType.TIME_ENTRY_DELETED)
