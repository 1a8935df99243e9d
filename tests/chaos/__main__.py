"""``make chaos``: the fault-injection run at full load (5 tickets/s through the API, a mail every
2 s through SMTP), on a private PostgreSQL cluster and Redis. Prints sent / stored / duplicated /
lost and what else must hold; exits 1 if anything did not.

    python -m tests.chaos [--rate 5] [--mail-interval 2] [--outage 6]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.chaos.harness import ChaosConfig, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=5.0, help="tickets a second through the API")
    parser.add_argument("--mail-interval", type=float, default=2.0, help="seconds between inbound mails")
    parser.add_argument("--outage", type=float, default=6.0, help="seconds each outage lasts")
    args = parser.parse_args(argv)
    config = ChaosConfig(ticket_rate=args.rate, mail_interval=args.mail_interval, outage_seconds=args.outage)
    with tempfile.TemporaryDirectory(prefix="helpdesk-chaos-") as directory:
        outcome = run(config, Path(directory) / "var", log=lambda line: print(f"[chaos] {line}", flush=True))
    print(outcome.report(), flush=True)
    return 0 if outcome.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
