"""The SPA (web/: the agents' console and the customers' portal): its types check, it lints, its
unit tests pass, its API types match the services' OpenAPI, and journeys in a real browser (Debian's
Chromium, driven by playwright-core) against the real stack booted as ``make run`` boots it,
with the customer's mail read from the SMTP sink: an agent's day, and a customer and an agent
meeting over one ticket in the portal and the console."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local import web
from deploy.local.stack import ROOT, Stack, start_stack
from tests.e2e.mailbox import Mail, Mailbox

CUSTOMER = "jane@demo-customer.test"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is needed (scripts/bootstrap.sh)")


def _npm(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    npm = shutil.which("npm")
    assert npm is not None
    return subprocess.run(
        [npm, *args], cwd=web.WEB, capture_output=True, text=True, timeout=timeout, check=False
    )


@needs_node
@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    "script",
    [
        "typecheck",  # tsc --noEmit over the app and the journeys
        "lint",  # ESLint: typescript-eslint's type-checked rules, React's hook rules
    ],
)
def test_the_console_checks_pass(script: str) -> None:
    web.ensure_dependencies()
    result = _npm("run", "--silent", script)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_node
@pytest.mark.timeout(600)
def test_the_console_unit_tests_pass() -> None:
    web.ensure_dependencies()
    result = _npm("run", "--silent", "test", "--", "--reporter=dot", "--no-color")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout, result.stdout


@needs_node
@pytest.mark.timeout(600)
def test_the_committed_api_types_match_the_services() -> None:
    drifted = web.api_drift(log=lambda _message: None)
    assert drifted == [], f"run `make web-api` and commit: {drifted} differ from the services' OpenAPI"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack, booted as ``make run`` boots it, for the journeys of this module."""
    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing (scripts/bootstrap.sh installs chromium)"
    with start_stack(var_dir=tmp_path_factory.mktemp("web") / "var", timeout=180) as running:
        yield running


def _journey(stack: Stack, script: str, screenshots: Path) -> dict[str, str]:
    """Run one journey script against the stack; what it did (its last line, JSON)."""
    env = {
        **os.environ,
        "GATEWAY_URL": stack.gateway_url,
        "CREDENTIALS": str(stack.credentials_path),
        "SCREENSHOTS": str(screenshots),
        "CHROMIUM": CHROMIUM,
        "MAIL_DIR": str(stack.mail_dir),
        "INBOUND_SMTP_PORT": str(stack.ports.inbound_smtp),
        "PYTHON": sys.executable,
    }
    node = shutil.which("node")
    assert node is not None
    result = subprocess.run(
        [node, script], cwd=web.WEB, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    done: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return done


def _mailed_to_customer(mailbox: Mailbox, text: str) -> list[Mail]:
    """The mails to the customer containing ``text``, waiting up to 30 s for the first."""
    deadline = time.monotonic() + 30
    while not (found := [m for m in mailbox.find(to=CUSTOMER) if text in m.text]):
        assert time.monotonic() < deadline, f"no mail to {CUSTOMER} says {text!r}: {mailbox.find()}"
        time.sleep(0.2)
    return found


def _fresh_screenshots(prefix: str) -> Path:
    screenshots = ROOT / "var" / "screenshots"
    for old in screenshots.glob(f"{prefix}-*.png"):
        old.unlink()  # so the sizes checked afterwards are this run's
    return screenshots


JOURNEYS = {
    # an agent's day: sign-in and lockout, queue, note and reply, refresh, sign-out
    "console": (
        "e2e/journey.mjs",
        ("console-lockout.png", "console-queue.png", "console-ticket.png", "console-admin.png"),
    ),
    # a customer in the portal and an agent in the console over one ticket
    "portal": ("e2e/portal.mjs", ("portal-ticket.png",)),
}


@needs_node
@pytest.mark.stack
@pytest.mark.timeout(900)
@pytest.mark.parametrize("journey", list(JOURNEYS))
def test_a_journey_in_the_browser(stack: Stack, journey: str) -> None:
    script, pictures = JOURNEYS[journey]
    screenshots = _fresh_screenshots(journey)
    mailbox = Mailbox(stack.mail_dir)
    done = _journey(stack, script, screenshots)

    replies = _mailed_to_customer(mailbox, done["reply"])
    assert len(replies) == 1, "the reply reached the customer once"
    assert replies[0].ticket == done["ticket"]
    every_mail = " ".join(mail.text for mail in mailbox.find())
    assert done["note"] not in every_mail, "an internal note is never mailed"
    for name in pictures:
        assert (screenshots / name).stat().st_size > 10_000, name
