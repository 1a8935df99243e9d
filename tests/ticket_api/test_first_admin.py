"""The first admin of a production installation (the seed refuses prod): made once, by the
command, as the API makes agents; it signs in with its password; a second run changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from services.ticket_api.db import outbox
from services.ticket_api.identity.first_admin import make_first_admin
from services.ticket_api.settings import Settings
from tests.ticket_api.conftest import Actors
from tests.ticket_api.test_auth import sign_in

PASSWORD = "the first admin's passphrase"


def _settings(api: Actors) -> Settings:
    settings: Settings = api.runtime.settings  # type: ignore[assignment]
    return settings


async def test_the_first_admin_is_made_once_and_signs_in(api: Actors) -> None:
    made = await make_first_admin(_settings(api), email="Ops@Example.test", name="Ops", password=PASSWORD)
    assert made.created, made.message
    login = await sign_in(api, PASSWORD, email="ops@example.test")
    assert login.status_code == 200, login.text
    as_admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await api.client.get("/api/v1/clients", headers=as_admin)).status_code == 200, "admins only"
    async with api.runtime.sessions() as session:
        types = list(await session.scalars(select(outbox.c.type)))
    assert types.count("agent.created") == 2, "alice from the fixture, and the admin"

    again = await make_first_admin(
        _settings(api), email="other@example.test", name="Other", password=PASSWORD
    )
    assert not again.created and "exists already" in again.message
    assert (await sign_in(api, PASSWORD, email="other@example.test")).status_code == 401


async def test_a_short_password_is_refused_before_anything_is_made(api: Actors) -> None:
    with pytest.raises(ValidationError):
        await make_first_admin(_settings(api), email="ops@example.test", name="Ops", password="short")
    assert (await sign_in(api, "short", email="ops@example.test")).status_code == 401


def test_the_command_reads_the_password_from_the_environment_never_its_arguments(tmp_path: Path) -> None:
    """The command's own process, end to end, on a fresh SQLite database."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'ticket_api.db'}"
    env = {
        **os.environ,
        "TICKET_API_DATABASE_URL": database,
        "HELPDESK_VAR_DIR": str(tmp_path),
        "HELPDESK_FIRST_ADMIN_PASSWORD": PASSWORD,
    }
    subprocess.run(
        [sys.executable, "-m", "shared.migrate", "ticket_api"], env=env, check=True, capture_output=True
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.ticket_api.identity.first_admin",
            "--email",
            "ops@example.test",
            "--name",
            "Ops",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "admin ops@example.test created" in run.stdout
    env["HELPDESK_FIRST_ADMIN_PASSWORD"] = "short"
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.ticket_api.identity.first_admin",
            "--email",
            "x@example.test",
            "--name",
            "X",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "12 characters" in refused.stderr
