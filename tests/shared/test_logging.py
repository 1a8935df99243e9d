"""arq's per-job lines are left out (our consumer writes one line per event); the rest of arq's
lines stay, among them the start-up line the local stack waits for."""

from __future__ import annotations

import logging

from deploy.local.stack import WORKER_STARTED_MARKER
from shared.logging import configure_logging


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_arq_per_job_lines_are_dropped_and_its_other_lines_kept() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    collect = Collect()
    try:
        configure_logging("test", "INFO")
        root.addHandler(collect)
        arq_worker = logging.getLogger("arq.worker")
        arq_worker.info("%6.2fs → %s(%s)%s", 0.01, "job:handle_event", "{...}", "")
        arq_worker.info("%6.2fs ← %s ● %s", 0.02, "job:handle_event", "applied")
        arq_worker.info("%6.2fs ↻ %s retrying job in %0.2fs", 0.5, "job:handle_event", 2.0)
        arq_worker.info("Starting worker for %d functions: %s", 3, "handle_event")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    messages = collect.messages
    assert len(messages) == 2, messages
    assert "retrying job" in messages[0]
    assert messages[1].startswith(WORKER_STARTED_MARKER)
