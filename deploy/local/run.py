"""``make run``: boot the whole stack locally and supervise it until Ctrl-C.

    python -m deploy.local.run            # run until Ctrl-C / SIGTERM
    python -m deploy.local.run --check    # boot, verify every part is ready, print the table, stop

Knobs come from the environment (and ``.env``): ``HELPDESK_VAR_DIR`` (default ./var),
``HELPDESK_REDIS_URL`` (started locally when nothing answers there), ``HELPDESK_*_PORT`` and the
services' own settings. Once up, a process that exits is started again with backoff (0.5 s,
doubling to 30 s while it keeps dying right after its start); nothing else stops. Exit codes: 0
after a clean stop or check, 1 if the stack failed to start, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from deploy.local.stack import Stack, StackError, build_stack


class _StopRequested(Exception):
    """Raised from the signal handler while the stack is still starting."""


def _say(message: str) -> None:
    print(f"[run] {message}", flush=True)


def _shout(message: str) -> None:
    bar = "!" * 78
    print(f"\n{bar}\n{message}\n{bar}\n", file=sys.stderr, flush=True)


class Supervisor:
    """Signal handling around a Stack: stop requests during start abort it; later they end the loop."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.starting = True
        self.stop_signal: int | None = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_signal is not None:
            return  # already stopping; a second Ctrl-C must not interrupt the clean-up
        self.stop_signal = signum
        if self.starting:
            raise _StopRequested

    def run(self, check_only: bool) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        try:
            try:
                self.stack.start()
            except _StopRequested:
                _say("interrupted while starting; everything is stopped")
                return 0
            except StackError as error:
                _shout(f"the stack failed to start:\n{error}")
                return 1
            self.starting = False
            print("\n" + self.stack.summary() + "\n", flush=True)
            if check_only:
                _say("check passed: every part answered; stopping")
                return 0
            _say("Ctrl-C stops everything")
            return self._watch()
        finally:
            self.stop_signal = self.stop_signal or signal.SIGTERM  # from here on, signals are ignored
            self.stack.stop()
            _say("all processes stopped")

    def _watch(self) -> int:
        """Supervise until a stop signal: a process that dies is started again with backoff
        (hand-written, ``Stack.supervise``); the rest of the stack keeps running meanwhile."""
        while self.stop_signal is None:
            for note in self.stack.supervise():
                _say(note)
            time.sleep(0.5)
        _say(f"got {signal.Signals(self.stop_signal).name}; stopping")
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", "--once", action="store_true", help="boot, verify, print the table, stop")
    parser.add_argument("--var-dir", type=Path, default=None, help="default: $HELPDESK_VAR_DIR or ./var")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness")
    parser.add_argument("--no-seed", action="store_true", help="skip the development seed")
    args = parser.parse_args(argv)
    try:
        stack = build_stack(var_dir=args.var_dir, timeout=args.timeout, seed=not args.no_seed, log=_say)
    except StackError as error:
        _shout(str(error))
        return 1
    return Supervisor(stack).run(check_only=args.check)


if __name__ == "__main__":
    sys.exit(main())
