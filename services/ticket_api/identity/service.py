"""Sign-in rules: OAuth2 client credentials for portals and services, password sign-in with
refresh tokens for agents, logout, the management of clients and their secrets, and agents
(created and changed by admins)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from redis.asyncio import Redis
from sqlalchemy import select, update

from services.ticket_api.caller import Caller, audit, changes_between, require_admin, require_staff
from services.ticket_api.errors import (
    AgentNotFound,
    ClientNotFound,
    DuplicateResource,
    WrongCurrentPassword,
)
from services.ticket_api.identity import credentials as cred
from services.ticket_api.identity import repository as repo
from services.ticket_api.identity import revocations
from services.ticket_api.identity.lockout import Lockout
from services.ticket_api.identity.models import (
    Agent,
    AgentRole,
    ApiClient,
    ApiClientKind,
    ApiClientSecret,
    RefreshToken,
)
from services.ticket_api.identity.schemas import (
    AgentCreate,
    AgentUpdate,
    ApiClientCreate,
    ClientSecretIssued,
    PasswordChange,
    TokenResponse,
)
from services.ticket_api.organizations import repository as organization_repo
from services.ticket_api.organizations.models import Contact
from services.ticket_api.organizations.service import visible_organization
from services.ticket_api.settings import Settings
from services.ticket_api.tickets import repository as ticket_repo
from services.ticket_api.tickets.views import parse_ticket_number
from shared import events as ev
from shared import sign_in_links
from shared.clock import utcnow
from shared.ids import new_id
from shared.principal import Principal, PrincipalKind
from shared.problems import Problem, Unauthorized
from shared.signed_links import ExpiredLink, InvalidLink
from shared.tokens import TokenIssuer
from shared.uow import UnitOfWork


class InvalidClient(Problem):
    status, slug, title = 401, "invalid-client", "Client authentication failed"


class InvalidGrant(Problem):
    status, slug, title = 400, "invalid-grant", "The grant is not valid"


class InvalidScope(Problem):
    status, slug, title = 400, "invalid-scope", "Scope not granted to this client"


@dataclass(frozen=True)
class Identity:
    """What sign-in needs besides the database: the token issuer, Redis (revocations' cache)."""

    issuer: TokenIssuer
    redis: Redis
    settings: Settings

    def access_token(self, principal: Principal) -> TokenResponse:
        """A fresh access token for ``principal``, as the token endpoints answer it."""
        ttl = self.settings.access_token_ttl_seconds
        token = self.issuer.issue(principal, ttl_seconds=ttl)
        return TokenResponse(
            access_token=token.token, expires_in=ttl, scope=" ".join(sorted(principal.scopes)) or None
        )


# --- client credentials --------------------------------------------------------------------


async def client_credentials(
    uow: UnitOfWork,
    identity: Identity,
    *,
    client_id: str,
    client_secret: str,
    scope: str | None,
    address: str,
) -> TokenResponse:
    """RFC 6749 §4.4: a portal (or service) trades its id and secret for an access token."""
    # Each way in counts failures per address on its own: a colleague mistyping a password does
    # not lock the office's portal out of its client-credentials grant.
    subjects = (f"client:{client_id}", f"token-ip:{address}")
    lockout = Lockout(uow)
    await lockout.check(*subjects)
    client = await uow.session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))
    now = utcnow()
    secret = await uow.session.scalar(
        select(ApiClientSecret).where(ApiClientSecret.secret_hash == cred.digest(client_secret))
    )
    valid = (
        client is not None
        and client.revoked_at is None
        and secret is not None
        and secret.api_client_id == client.id
        and (secret.expires_at is None or secret.expires_at > now)
    )
    if not valid:
        await lockout.failed(*subjects)
        raise InvalidClient(
            "Unknown client, wrong secret, or a revoked or expired credential.", error="invalid_client"
        )
    assert client is not None
    await lockout.succeeded(subjects[0])
    granted = set(client.scopes)
    requested = set(scope.split()) if scope else granted
    if not requested <= granted:
        raise InvalidScope(
            f"This client may ask for: {' '.join(sorted(granted)) or 'nothing'}.", error="invalid_scope"
        )
    principal = Principal(
        kind=PrincipalKind.PORTAL if client.kind == ApiClientKind.PORTAL else PrincipalKind.SERVICE,
        subject_id=client.id,
        name=client.name,
        organization_ids=frozenset(UUID(org) for org in client.organization_ids),
        scopes=frozenset(requested),
    )
    return identity.access_token(principal)


# --- agents: password, refresh, logout ---------------------------------------------------------


def agent_principal(agent: Agent, session_id: UUID | None = None) -> Principal:
    """The agent signed in; ``session_id``: the sign-in session (refresh-token family)."""
    return Principal(
        kind=PrincipalKind.ADMIN if agent.role == AgentRole.ADMIN else PrincipalKind.AGENT,
        subject_id=agent.id,
        name=agent.name,
        agent_id=agent.id,
        session_id=session_id,
    )


async def _new_refresh_token(uow: UnitOfWork, identity: Identity, agent: Agent, family_id: UUID) -> str:
    token = cred.new_refresh_token()
    uow.session.add(
        RefreshToken(
            agent_id=agent.id,
            family_id=family_id,
            token_hash=cred.digest(token),
            expires_at=utcnow() + timedelta(days=identity.settings.refresh_token_ttl_days),
        )
    )
    await uow.session.flush()
    return token


async def login(
    uow: UnitOfWork, identity: Identity, *, email: str, password: str, address: str
) -> TokenResponse:
    subjects = (f"agent:{email}", f"login-ip:{address}")
    lockout = Lockout(uow)
    await lockout.check(*subjects)
    agent = await repo.get_agent_by_email(uow.session, email)
    if agent is None or not agent.active or not cred.password_matches(agent.password_hash, password):
        await lockout.failed(*subjects)
        raise Unauthorized("Wrong email or password.")
    await lockout.succeeded(subjects[0])
    session_id = new_id()
    response = identity.access_token(agent_principal(agent, session_id))
    response.refresh_token = await _new_refresh_token(uow, identity, agent, session_id)
    return response


async def refresh(uow: UnitOfWork, identity: Identity, *, refresh_token: str) -> TokenResponse:
    """Trade a refresh token for a new pair. A refresh token works once: presenting a used one
    again means it leaked, and the whole session family is revoked."""
    stored = await uow.session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == cred.digest(refresh_token)).with_for_update()
    )
    now = utcnow()
    if stored is None or stored.revoked_at is not None or stored.expires_at <= now:
        raise InvalidGrant(
            "The refresh token is unknown, expired or revoked; sign in again.", error="invalid_grant"
        )
    if stored.used_at is not None:
        await close_session(uow, identity, stored.family_id)
        await uow.commit()
        raise InvalidGrant(
            "This refresh token was already used; the session is closed.", error="invalid_grant"
        )
    agent = await repo.get_agent(uow.session, stored.agent_id)
    if agent is None or not agent.active:
        raise InvalidGrant("The account is disabled.", error="invalid_grant")
    stored.used_at = now
    response = identity.access_token(agent_principal(agent, stored.family_id))
    response.refresh_token = await _new_refresh_token(uow, identity, agent, stored.family_id)
    return response


async def close_session(uow: UnitOfWork, identity: Identity, family_id: UUID) -> None:
    """End a sign-in session: its refresh tokens and every access token it issued stop working."""
    await uow.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))  # type: ignore[union-attr]
        .values(revoked_at=utcnow())
    )
    await revocations.revoke_session(
        uow.session, identity.redis, family_id, max_token_ttl=identity.settings.access_token_ttl_seconds
    )


async def logout(uow: UnitOfWork, identity: Identity, caller: Caller, *, refresh_token: str | None) -> None:
    """End the session: the access token used here stops working at once, and so do the
    session's refresh tokens and other access tokens (the session of the token, and of the
    refresh token when given)."""
    principal = caller.principal
    await revocations.revoke_token(uow.session, identity.redis, principal)
    if principal.session_id is not None:
        await close_session(uow, identity, principal.session_id)
    if refresh_token:
        stored = await uow.session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == cred.digest(refresh_token))
        )
        if (
            stored is not None
            and stored.agent_id == principal.agent_id
            and stored.family_id != principal.session_id
        ):
            await close_session(uow, identity, stored.family_id)


async def set_password(uow: UnitOfWork, caller: Caller, agent_id: UUID, data: PasswordChange) -> None:
    own = caller.principal.agent_id == agent_id
    if not own:
        require_admin(caller)
    agent = await repo.get_agent(uow.session, agent_id)
    if agent is None:
        raise AgentNotFound(f"No agent {agent_id}.")
    if (
        own
        and agent.password_hash is not None
        and not cred.password_matches(agent.password_hash, data.current_password or "")
    ):
        raise WrongCurrentPassword(
            "The current password is wrong.",
            errors=[{"location": "body.current_password", "message": "does not match your password"}],
        )
    agent.password_hash = cred.hash_password(data.password)
    agent.updated_at = utcnow()
    await uow.session.flush()


# --- managing clients -----------------------------------------------------------------------


async def _issue_secret(
    uow: UnitOfWork, client: ApiClient, *, previous_expire_at: object = None
) -> ClientSecretIssued:
    secret = cred.new_client_secret()
    uow.session.add(
        ApiClientSecret(
            api_client_id=client.id,
            secret_prefix=cred.visible_prefix(secret),
            secret_hash=cred.digest(secret),
        )
    )
    await uow.session.flush()
    return ClientSecretIssued(
        client_id=client.client_id,
        client_secret=secret,
        secret_prefix=cred.visible_prefix(secret),
        previous_secrets_expire_at=previous_expire_at,  # type: ignore[arg-type]
    )


async def create_client(
    uow: UnitOfWork, caller: Caller, data: ApiClientCreate
) -> tuple[ApiClient, ClientSecretIssued]:
    require_admin(caller)
    for organization_id in data.organization_ids:
        await visible_organization(uow, caller, organization_id)
    client = ApiClient(
        client_id=cred.new_client_id(),
        name=data.name,
        kind=data.kind,
        organization_ids=[str(org) for org in data.organization_ids],
        scopes=data.scopes,
    )
    uow.session.add(client)
    await uow.session.flush()
    return client, await _issue_secret(uow, client)


async def get_client(uow: UnitOfWork, caller: Caller, client_uuid: UUID) -> ApiClient:
    require_admin(caller)
    client = await uow.session.get(ApiClient, client_uuid)
    if client is None:
        raise ClientNotFound(f"No client {client_uuid}.")
    return client


async def rotate_secret(
    uow: UnitOfWork, caller: Caller, client_uuid: UUID, *, overlap_hours: int
) -> ClientSecretIssued:
    """A new secret; the older ones keep working for ``overlap_hours`` so the portal can switch."""
    client = await get_client(uow, caller, client_uuid)
    if client.revoked_at is not None:
        raise ClientNotFound(f"Client {client_uuid} is revoked.")
    expire_at = utcnow() + timedelta(hours=overlap_hours)
    await uow.session.execute(
        update(ApiClientSecret)
        .where(
            ApiClientSecret.api_client_id == client.id,
            (ApiClientSecret.expires_at.is_(None)) | (ApiClientSecret.expires_at > expire_at),  # type: ignore[union-attr, operator]
        )
        .values(expires_at=expire_at)
    )
    return await _issue_secret(uow, client, previous_expire_at=expire_at)


async def revoke_client(uow: UnitOfWork, identity: Identity, caller: Caller, client_uuid: UUID) -> None:
    """Revoke the client: its secrets stop working and so do the tokens it already holds."""
    client = await get_client(uow, caller, client_uuid)
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        await uow.session.flush()
    await revocations.revoke_subject(
        uow.session, identity.redis, client.id, max_token_ttl=identity.settings.access_token_ttl_seconds
    )


# --- customers: sign-in by emailed link ----------------------------------------------------

SIGN_IN_LINKS_PER_HOUR = 5


async def request_sign_in_link(
    uow: UnitOfWork,
    identity: Identity,
    *,
    email: str,
    ticket_number: str | None,
    address: str,
    request_id: str | None,
) -> None:
    """Mail a sign-in link if ``email`` is a contact (and, when given, opened ``ticket_number``).
    The answer is the same either way, so nobody learns who is a customer."""
    lockout = Lockout(uow)
    await lockout.limit(f"sign-in-link:ip:{address}", per_hour=SIGN_IN_LINKS_PER_HOUR * 4)
    await lockout.limit(f"sign-in-link:email:{email}", per_hour=SIGN_IN_LINKS_PER_HOUR)
    contact = await organization_repo.get_contact_by_email(uow.session, email)
    if contact is None:
        return
    if ticket_number is not None:
        number = parse_ticket_number(ticket_number)
        ticket = await ticket_repo.get_ticket_by_number(uow.session, number) if number is not None else None
        if ticket is None or ticket.contact_id != contact.id:
            return
    expires_at = utcnow() + timedelta(minutes=identity.settings.sign_in_link_ttl_minutes)
    payload = ev.CustomerSignInRequestedV1(
        contact_id=contact.id,
        email=contact.email,
        name=contact.name,
        nonce=secrets.token_urlsafe(16),
        expires_at=expires_at,
        ticket_number=ticket_number.upper() if ticket_number else None,
    )
    await uow.emit(
        ev.EventType.CUSTOMER_SIGN_IN_REQUESTED,
        payload,
        subject=f"contact:{contact.id}",
        request_id=request_id,
    )


async def redeem_sign_in_link(uow: UnitOfWork, identity: Identity, *, token: str) -> TokenResponse:
    """Trade a sign-in link's token (once) for a customer access token."""
    secret = identity.settings.secret_key.get_secret_value()
    try:
        contact_id, nonce, expires = sign_in_links.read_token(token, secret=secret)
    except ExpiredLink:
        raise InvalidGrant(
            "This sign-in link has expired; ask for a new one.", error="invalid_grant"
        ) from None
    except InvalidLink:
        raise InvalidGrant("This is not a valid sign-in link.", error="invalid_grant") from None
    # Marked used in the database (committed by the route), whatever becomes of Redis.
    first_use = await revocations.use_once(
        uow.session, revocations.SIGN_IN_LINK, nonce, expires_at=datetime.fromtimestamp(expires + 60, UTC)
    )
    if not first_use:
        raise InvalidGrant("This sign-in link was already used; ask for a new one.", error="invalid_grant")
    contact = await organization_repo.get_contact(uow.session, contact_id)
    if contact is None:
        raise InvalidGrant("This sign-in link is not valid any more.", error="invalid_grant")
    ttl = identity.settings.customer_token_ttl_seconds
    token = identity.issuer.issue(customer_principal(contact), ttl_seconds=ttl).token
    return TokenResponse(access_token=token, expires_in=ttl)


def customer_principal(contact: Contact) -> Principal:
    """A contact acting as themselves: their own tickets and contact record only."""
    return Principal(
        kind=PrincipalKind.CUSTOMER,
        subject_id=contact.id,
        name=contact.name or contact.email,
        organization_ids=frozenset({contact.organization_id}) if contact.organization_id else frozenset(),
        contact_id=contact.id,
    )


# --- agents ------------------------------------------------------------------------------


def _agent_payload(agent: Agent) -> ev.AgentV1:
    return ev.AgentV1(
        agent_id=agent.id,
        email=agent.email,
        name=agent.name,
        skills=agent.skills,
        timezone=agent.timezone,
        working_hours=agent.working_hours,
        capacity=agent.capacity,
        active=agent.active,
    )


async def create_agent(uow: UnitOfWork, caller: Caller, data: AgentCreate) -> Agent:
    require_admin(caller)
    email = data.email.lower()
    if await repo.get_agent_by_email(uow.session, email) is not None:
        raise DuplicateResource(f"An agent with email {email} already exists.")
    agent = Agent.model_validate({**data.model_dump(), "email": email})
    uow.session.add(agent)
    await uow.session.flush()
    await audit(uow, caller, "agent", agent.id, "created", data.model_dump())
    await uow.emit(
        ev.EventType.AGENT_CREATED,
        _agent_payload(agent),
        subject=f"agent:{agent.id}",
        request_id=caller.request_id,
    )
    return agent


async def get_agent(uow: UnitOfWork, caller: Caller, agent_id: UUID) -> Agent:
    require_staff(caller)
    agent = await repo.get_agent(uow.session, agent_id)
    if agent is None:
        raise AgentNotFound(f"No agent {agent_id}.")
    return agent


async def update_agent(uow: UnitOfWork, caller: Caller, agent_id: UUID, data: AgentUpdate) -> Agent:
    require_admin(caller)
    agent = await get_agent(uow, caller, agent_id)
    changes = {k: v for k, v in data.model_dump(exclude_unset=True).items() if v is not None}
    diff = changes_between({key: getattr(agent, key) for key in changes}, changes)
    if not diff:
        return agent
    for key, (_old, new) in diff.items():
        setattr(agent, key, new)
    agent.updated_at = utcnow()
    await uow.session.flush()
    await audit(uow, caller, "agent", agent.id, "updated", diff)
    await uow.emit(
        ev.EventType.AGENT_UPDATED,
        _agent_payload(agent),
        subject=f"agent:{agent.id}",
        request_id=caller.request_id,
    )
    return agent
