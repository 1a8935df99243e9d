"""The agents' console (web/): its types check, its unit tests pass, its API types match the
services' OpenAPI, and an agent's journey in a real browser (Debian's Chromium, driven by
playwright-core) against the real stack booted as ``make run`` boots it, with the customer's
mail read from the SMTP sink."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from deploy.local import web
from deploy.local.stack import ROOT, start_stack
from tests.e2e.mailbox import Mailbox

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
def test_the_console_type_checks() -> None:
    web.ensure_dependencies()
    result = _npm("run", "--silent", "typecheck")
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


@needs_node
@pytest.mark.stack
@pytest.mark.timeout(900)
def test_an_agent_works_a_ticket_in_the_browser(tmp_path: Path) -> None:
    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing (scripts/bootstrap.sh installs chromium)"
    screenshots = ROOT / "var" / "screenshots"
    for old in screenshots.glob("console-*.png"):
        old.unlink()  # so the sizes checked below are this run's
    with start_stack(var_dir=tmp_path / "var", timeout=180) as stack:
        mailbox = Mailbox(stack.mail_dir)
        env = {
            **os.environ,
            "GATEWAY_URL": stack.gateway_url,
            "CREDENTIALS": str(stack.credentials_path),
            "SCREENSHOTS": str(screenshots),
            "CHROMIUM": CHROMIUM,
        }
        node = shutil.which("node")
        assert node is not None
        result = subprocess.run(
            [node, "e2e/journey.mjs"], cwd=web.WEB, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, f"the journey failed:\n{result.stdout}\n{result.stderr}"
        done = json.loads(result.stdout.strip().splitlines()[-1])

        deadline = time.monotonic() + 30
        while not (replies := [m for m in mailbox.find(to=CUSTOMER) if done["reply"] in m.text]):
            assert time.monotonic() < deadline, f"no reply mailed to {CUSTOMER}: {mailbox.find()}"
            time.sleep(0.2)
        assert len(replies) == 1, "the reply reached the customer once"
        assert replies[0].ticket == done["ticket"]
        every_mail = " ".join(mail.text for mail in mailbox.find())
        assert done["note"] not in every_mail, "an internal note is never mailed"
    for name in ("console-lockout.png", "console-queue.png", "console-ticket.png"):
        assert (screenshots / name).stat().st_size > 10_000, name
