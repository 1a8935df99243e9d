"""The first admin of a new installation: ``python -m services.ticket_api.identity.first_admin``.

Production has no seed (it refuses to run there), so an operator makes the first admin with
this command, once, after the migrations: ``--email`` and ``--name`` name the person, and the
password comes from ``HELPDESK_FIRST_ADMIN_PASSWORD`` or, without it, from standard input (never
from the command line, where ``ps`` and shell history would keep it). The admin is created as
the API creates agents (audited, announced as ``agent.created`` through the outbox) and signs in
with that password; everyone else is then created through the API or the console. Once any
admin exists the command changes nothing and says so (exit 0), so a deploy job may run it on
every release.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import func, select

from services.ticket_api.caller import Caller
from services.ticket_api.db import outbox
from services.ticket_api.identity import service as identity
from services.ticket_api.identity.models import Agent, AgentRole
from services.ticket_api.identity.schemas import AgentCreate, PasswordChange
from services.ticket_api.settings import Settings
from shared.db import create_engine, session_maker
from shared.events import Service
from shared.ids import new_id
from shared.outbox import Outbox
from shared.principal import Principal, PrincipalKind
from shared.uow import UnitOfWork

PASSWORD_VARIABLE = "HELPDESK_FIRST_ADMIN_PASSWORD"


@dataclass(frozen=True)
class Outcome:
    created: bool
    message: str


async def make_first_admin(settings: Settings, *, email: str, name: str, password: str) -> Outcome:
    """Create the first admin unless an admin exists; the password is checked like any other."""
    PasswordChange(password=password)  # the API's rule: at least 12 characters
    installer = Caller(
        principal=Principal(kind=PrincipalKind.ADMIN, subject_id=new_id(), name="first-admin"),
        request_id=None,
    )
    engine = create_engine(settings.database_url, schema=settings.schema_name, pool_size=1)
    try:
        async with session_maker(engine)() as session:
            uow = UnitOfWork(session, Outbox(outbox, Service.TICKET_API))
            admins = await session.scalar(
                select(func.count()).select_from(Agent).where(Agent.role == AgentRole.ADMIN)
            )
            if admins:
                return Outcome(False, f"an admin exists already ({admins}); nothing changed")
            agent = await identity.create_agent(
                uow, installer, AgentCreate(email=email, name=name, role=AgentRole.ADMIN)
            )
            await identity.set_password(uow, installer, agent.id, PasswordChange(password=password))
            await uow.commit()
            return Outcome(True, f"admin {agent.email} created ({agent.id}); sign in with the password given")
    finally:
        await engine.dispose()


def _password() -> str:
    if password := os.environ.get(PASSWORD_VARIABLE):
        return password
    if sys.stdin.isatty():
        return getpass.getpass("Password for the first admin (12 characters or more): ")
    return sys.stdin.readline().rstrip("\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--email", required=True)
    parser.add_argument("--name", required=True)
    arguments = parser.parse_args()
    password = _password()
    try:
        outcome = asyncio.run(
            make_first_admin(Settings(), email=arguments.email, name=arguments.name, password=password)
        )
    except ValidationError as refused:
        error = refused.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        sys.exit(f"refused, {field}: {error['msg']} (the password comes from {PASSWORD_VARIABLE} or stdin)")
    print(outcome.message)


if __name__ == "__main__":
    main()
