"""Development credentials: ``python -m services.ticket_api.seed``.

Creates (once) an admin agent with a password, a demo organization, and a portal OAuth
client serving it; writes what is needed to sign in to ``<var>/credentials.json`` and prints
it. Secrets are stored hashed, so a lost credentials file means new secrets (a new admin
password, a new client secret). Refuses to run in production.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.ticket_api.caller import Caller
from services.ticket_api.db import outbox
from services.ticket_api.identity import credentials as cred
from services.ticket_api.identity.models import (
    PORTAL_SCOPES,
    Agent,
    AgentRole,
    ApiClient,
    ApiClientKind,
    ApiClientSecret,
)
from services.ticket_api.organizations import service as organization_service
from services.ticket_api.organizations.models import Organization
from services.ticket_api.organizations.schemas import OrganizationCreate
from services.ticket_api.settings import Settings
from shared.db import create_engine, session_maker
from shared.events import Service
from shared.ids import new_id
from shared.outbox import Outbox
from shared.principal import Principal, PrincipalKind
from shared.uow import UnitOfWork
from shared.vocabulary import SupportTier

ADMIN_EMAIL = "admin@helpdesk.test"
DEMO_ORGANIZATION = "Demo Customer Ltd"
DEMO_DOMAIN = "demo-customer.test"
PORTAL_NAME = "Demo portal"
SERVICE_CLIENTS = ("triage", "notifier", "billing")


async def seed(settings: Settings) -> dict[str, Any]:
    path = settings.var_dir / "credentials.json"
    engine = create_engine(settings.database_url, schema=settings.schema_name, pool_size=1)
    try:
        async with session_maker(engine)() as session, session.begin():
            known: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
            admin = await _admin(session, known.get("admin", {}).get("password"))
            organization = await _demo_organization(session)
            portal = await _portal(session, organization, known.get("portal", {}).get("client_secret"))
            known_services = known.get("services", {})
            services = {
                name: await _service_client(session, name, known_services.get(name, {}).get("client_secret"))
                for name in SERVICE_CLIENTS
            }
            credentials = {"admin": admin, "portal": portal, "services": services}
    finally:
        await engine.dispose()
    _write_private(path, credentials)
    return credentials


async def _admin(session: AsyncSession, known_password: str | None) -> dict[str, Any]:
    agent = await session.scalar(select(Agent).where(Agent.email == ADMIN_EMAIL))
    if agent is None:
        agent = Agent(email=ADMIN_EMAIL, name="Helpdesk Admin", role=AgentRole.ADMIN, skills=["general"])
        session.add(agent)
    password = known_password
    if password is None or not cred.password_matches(agent.password_hash, password):
        password = secrets.token_urlsafe(12)
        agent.password_hash = cred.hash_password(password)
    await session.flush()
    return {"email": ADMIN_EMAIL, "password": password, "agent_id": str(agent.id)}


async def _demo_organization(session: AsyncSession) -> Organization:
    """Made as an admin makes one, so its ``organization.created`` event sits in the outbox and
    the worker's relay announces it: triage learns its calendar, billing opens its account."""
    organization = await session.scalar(select(Organization).where(Organization.name == DEMO_ORGANIZATION))
    if organization is None:
        seeder = Caller(
            principal=Principal(kind=PrincipalKind.SERVICE, subject_id=new_id(), name="seed"), request_id=None
        )
        organization, _domains = await organization_service.create_organization(
            UnitOfWork(session, Outbox(outbox, Service.TICKET_API)),
            seeder,
            OrganizationCreate(
                name=DEMO_ORGANIZATION, support_tier=SupportTier.HOURLY, email_domains=[DEMO_DOMAIN]
            ),
        )
    return organization


async def _portal(
    session: AsyncSession, organization: Organization, known_secret: str | None
) -> dict[str, Any]:
    client = await session.scalar(select(ApiClient).where(ApiClient.name == PORTAL_NAME))
    if client is None:
        client = ApiClient(
            client_id=cred.new_client_id(),
            name=PORTAL_NAME,
            kind=ApiClientKind.PORTAL,
            organization_ids=[str(organization.id)],
            scopes=list(PORTAL_SCOPES),
        )
        session.add(client)
        await session.flush()
    return {
        "client_id": client.client_id,
        "client_secret": await _secret_of(session, client, known_secret),
        "organization_id": str(organization.id),
        "organization": DEMO_ORGANIZATION,
        "email_domain": DEMO_DOMAIN,
    }


async def _service_client(session: AsyncSession, name: str, known_secret: str | None) -> dict[str, Any]:
    """The OAuth client a service uses to call another (e.g. the notifier fetching invoices)."""
    client = await session.scalar(select(ApiClient).where(ApiClient.name == f"service:{name}"))
    if client is None:
        client = ApiClient(client_id=cred.new_client_id(), name=f"service:{name}", kind=ApiClientKind.SERVICE)
        session.add(client)
        await session.flush()
    return {"client_id": client.client_id, "client_secret": await _secret_of(session, client, known_secret)}


async def _secret_of(session: AsyncSession, client: ApiClient, known_secret: str | None) -> str:
    """``known_secret`` when it is still one of the client's secrets, else a new one."""
    if known_secret:
        stored = await session.scalar(
            select(ApiClientSecret).where(
                ApiClientSecret.secret_hash == cred.digest(known_secret),
                ApiClientSecret.api_client_id == client.id,
            )
        )
        if stored is not None:
            return known_secret
    secret = cred.new_client_secret()
    session.add(
        ApiClientSecret(
            api_client_id=client.id,
            secret_prefix=cred.visible_prefix(secret),
            secret_hash=cred.digest(secret),
        )
    )
    await session.flush()
    return secret


def _write_private(path: Path, credentials: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(credentials, indent=2))
    temporary.chmod(0o600)
    temporary.replace(path)


def main() -> None:
    settings = Settings()
    if settings.env == "prod":
        sys.exit("refusing to seed development credentials in production")
    credentials = asyncio.run(seed(settings))
    for role, values in credentials.items():
        print(json.dumps({"role": role, **values}))


if __name__ == "__main__":
    main()
