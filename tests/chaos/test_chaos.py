"""The fault-injection run, reduced to fit ``make test`` (2 tickets/s, a mail every 3 s, outages
of 4 s): the same faults and the same checks as ``make chaos``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deploy.local import gateway as gw
from tests.chaos.harness import ChaosConfig, run
from tests.servers import postgres_bin


@pytest.mark.stack
@pytest.mark.timeout(600)  # about 90 s; the pipeline may take minutes to catch up on a busy machine
@pytest.mark.skipif(
    postgres_bin() is None or gw.nginx_binary() is None or shutil.which("redis-server") is None,
    reason="needs PostgreSQL's server binaries, nginx and redis-server",
)
def test_nothing_is_lost_or_duplicated_through_kills_and_outages(tmp_path: Path) -> None:
    outcome = run(ChaosConfig(ticket_rate=2.0, mail_interval=3.0, outage_seconds=4.0), tmp_path / "var")
    print(outcome.report())
    assert outcome.accepted > 0 and outcome.sent >= outcome.accepted
    assert outcome.ok(), outcome.report()
    for fault in ("redis down", "postgres down"):
        assert outcome.unavailable_during(fault) > 0, f"{fault}: the APIs never answered 503"
