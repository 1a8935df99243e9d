"""Where a ticket's time goes, for one load (what to run before and after a change, back to
back: the machine's speed swings between runs, so compare runs made together)::

    python -m bench.profile                       # 400 tickets at 20/s
    python -m bench.profile --rate 25 --count 600
    python -m bench.profile --spy notifier-worker,triage-worker   # py-spy each process

Boots the stack as ``make bench`` does, warms it up, offers the tickets, and prints the
pipeline's latency, the CPU milliseconds a ticket of every process, the Redis commands a
ticket by command, and with ``--spy`` the hottest functions of the named processes (py-spy,
``pip install py-spy``; raw profiles are kept under var/bench/profiles/).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from redis import Redis

from bench.cpu import per_item_ms
from bench.environment import BenchConfig, running_stack, seed_agents, sign_sla
from bench.memory import process_tree
from bench.pipeline import at_rate
from bench.run import Run
from deploy.local.stack import ROOT, Stack

PROFILES = ROOT / "var" / "bench" / "profiles"
WARM_UP_TICKETS = 100


def redis_per_item(
    commandstats: dict[str, Any], items: int, top: int = 12
) -> tuple[float, list[tuple[str, float]]]:
    """``INFO commandstats`` as commands an item: all of them, and the busiest commands
    (``cmdstat_`` dropped)."""
    calls = {name.removeprefix("cmdstat_"): int(stats["calls"]) for name, stats in commandstats.items()}
    ranked = sorted(calls.items(), key=lambda kv: -kv[1])[:top]
    return round(sum(calls.values()) / items, 1), [(name, round(count / items, 2)) for name, count in ranked]


def hot_frames(raw_lines: Iterable[str], top: int = 15) -> list[tuple[str, float]]:
    """The functions a py-spy raw profile (``frame;frame;… count`` lines) spends most samples in
    itself, as shares of all samples, line numbers dropped."""
    own: Counter[str] = Counter()
    total = 0
    for line in raw_lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        own[re.sub(r":\d+\)$", ")", stack.rsplit(";", 1)[-1])] += int(count)
    return [(frame, round(100 * n / total, 1)) for frame, n in own.most_common(top)] if total else []


@contextlib.contextmanager
def spying(stack: Stack, names: list[str]) -> Iterator[list[Path]]:
    """py-spy on every process of the named stack children while the block runs."""
    if not names:
        yield []
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("--spy needs py-spy: .venv/bin/pip install py-spy")
    PROFILES.mkdir(parents=True, exist_ok=True)
    spies: list[subprocess.Popen[bytes]] = []
    outputs: list[Path] = []
    for name, processes in process_tree(stack).items():
        if name not in names:
            continue
        for pid, role in processes:
            output = PROFILES / f"{time.strftime('%Y%m%dT%H%M%S')}-{name}-{role.replace(' ', '_')}-{pid}.txt"
            command = [
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--rate",
                "200",
                "--nonblocking",
            ]
            spies.append(subprocess.Popen([*command, "-o", str(output)], stderr=subprocess.DEVNULL))
            outputs.append(output)
    try:
        yield outputs
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("::")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="tickets a second (default 20)")
    parser.add_argument("--count", type=int, default=400, help="tickets (default 400)")
    parser.add_argument(
        "--spy", default="", help="stack children to py-spy, comma-separated (e.g. notifier-worker)"
    )
    args = parser.parse_args(argv)
    config = BenchConfig()
    run = Run(config=config, database=f"helpdesk_profile_{int(time.time())}")
    with running_stack(config, run.database) as stack:
        run.running_stack = stack
        sign_sla(stack, run.tokens())
        seed_agents(stack, run.tokens())
        run.drain()
        at_rate(run, args.rate, WARM_UP_TICKETS)
        redis = Redis.from_url(stack.redis_url)
        redis.config_resetstat()
        with spying(stack, [name for name in args.spy.split(",") if name]) as profiles:
            outcome = at_rate(run, args.rate, args.count)
        stats: dict[str, Any] = redis.info("commandstats")  # type: ignore[assignment]
        commands_total, commands = redis_per_item(stats, args.count)
        redis.close()
    achieved = f"achieved {outcome.achieved:.1f}/s"
    print(f"{args.count} tickets at {args.rate:g}/s ({achieved}), statuses {outcome.statuses}")
    print(f"created → ack by SMTP: {outcome.ack_ms}")
    print(f"created → triaged applied: {outcome.triaged_ms}")
    shares = per_item_ms(outcome.cpu, args.count)
    print(f"CPU ms a ticket: all ours {sum(shares.values()):.1f}")
    for name, ms in shares.items():
        print(f"  {name:28s} {ms:6.2f}")
    print(
        f"Redis commands a ticket: {commands_total}; the busiest: "
        + ", ".join(f"{c} {n}" for c, n in commands)
    )
    for profile in profiles:
        print(f"py-spy {profile.relative_to(ROOT)}: most samples in")
        with contextlib.suppress(OSError):
            for frame, share in hot_frames(profile.read_text().splitlines()):
                print(f"  {share:5.1f}% {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
