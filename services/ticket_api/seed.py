"""Development credentials: ``python -m services.ticket_api.seed``.

Creates (once) an admin agent with an admin token, a demo organization and a portal client
serving it, writes the tokens to ``<var>/credentials.json`` and prints them. Tokens are
stored hashed, so a lost credentials file means new tokens (the old ones are revoked).
Refuses to run in production.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from services.ticket_api.credentials import new_token, token_hash, token_prefix
from services.ticket_api.models import (
    Agent,
    AgentRole,
    ApiClient,
    ApiClientKind,
    Organization,
    OrganizationDomain,
    SupportTier,
    utcnow,
)
from services.ticket_api.settings import Settings
from shared.db import create_engine, session_maker

ADMIN_EMAIL = "admin@helpdesk.test"
DEMO_ORGANIZATION = "Demo Customer Ltd"
DEMO_DOMAIN = "demo-customer.test"


def _credentials_file(settings: Settings) -> Path:
    return settings.var_dir / "credentials.json"


async def seed(settings: Settings) -> dict[str, Any]:
    path = _credentials_file(settings)
    if path.exists():
        existing: dict[str, Any] = json.loads(path.read_text())
        if await _tokens_still_valid(settings, existing):
            return existing
    engine = create_engine(settings.database_url, schema=settings.schema_name, pool_size=1)
    try:
        async with session_maker(engine)() as session, session.begin():
            admin = await session.scalar(select(Agent).where(Agent.email == ADMIN_EMAIL))
            if admin is None:
                admin = Agent(
                    email=ADMIN_EMAIL, name="Helpdesk Admin", role=AgentRole.ADMIN, skills=["general"]
                )
                session.add(admin)
            organization = await session.scalar(
                select(Organization).where(Organization.name == DEMO_ORGANIZATION)
            )
            if organization is None:
                organization = Organization(name=DEMO_ORGANIZATION, support_tier=SupportTier.HOURLY)
                session.add(organization)
                await session.flush()
                session.add(OrganizationDomain(domain=DEMO_DOMAIN, organization_id=organization.id))
            await session.flush()
            # Tokens are stored hashed: replace the seeded clients with fresh ones.
            await session.execute(
                update(ApiClient)
                .where(ApiClient.name.in_(["dev admin", "dev portal"]), ApiClient.revoked_at.is_(None))  # type: ignore[attr-defined]
                .values(revoked_at=utcnow())
            )
            admin_token = new_token(ApiClientKind.ADMIN)
            portal_token = new_token(ApiClientKind.PORTAL)
            session.add_all(
                [
                    ApiClient(
                        name="dev admin",
                        kind=ApiClientKind.ADMIN,
                        token_prefix=token_prefix(admin_token),
                        token_hash=token_hash(admin_token),
                        agent_id=admin.id,
                    ),
                    ApiClient(
                        name="dev portal",
                        kind=ApiClientKind.PORTAL,
                        token_prefix=token_prefix(portal_token),
                        token_hash=token_hash(portal_token),
                        organization_ids=[str(organization.id)],
                    ),
                ]
            )
            credentials = {
                "admin": {"token": admin_token, "agent_id": str(admin.id), "email": ADMIN_EMAIL},
                "portal": {
                    "token": portal_token,
                    "organization_id": str(organization.id),
                    "organization": DEMO_ORGANIZATION,
                    "email_domain": DEMO_DOMAIN,
                },
            }
    finally:
        await engine.dispose()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(credentials, indent=2))
    path.chmod(0o600)
    return credentials


async def _tokens_still_valid(settings: Settings, credentials: dict[str, Any]) -> bool:
    engine = create_engine(settings.database_url, schema=settings.schema_name, pool_size=1)
    try:
        async with session_maker(engine)() as session:
            for role in ("admin", "portal"):
                token = credentials.get(role, {}).get("token", "")
                found = await session.scalar(
                    select(ApiClient.id).where(
                        ApiClient.token_hash == token_hash(token),
                        ApiClient.revoked_at.is_(None),  # type: ignore[union-attr]
                    )
                )
                if found is None:
                    return False
        return True
    finally:
        await engine.dispose()


def main() -> None:
    settings = Settings()
    if settings.env == "prod":
        sys.exit("refusing to seed development credentials in production")
    credentials = asyncio.run(seed(settings))
    for role, values in credentials.items():
        print(json.dumps({"role": role, **values}))


if __name__ == "__main__":
    main()
