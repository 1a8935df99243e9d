"""The SPA in ``web/``: its npm dependencies, its build (served by the gateway at ``/``) and its
API types, generated from each service's OpenAPI (``app.openapi()``, no server needed).

Each step runs only when its inputs changed (a hash of them is kept beside the result), so
``make run`` and the tests that boot the stack pay for a build once.

CLI::

    python -m deploy.local.web build        # npm ci when the lock changed, vite build when stale
    python -m deploy.local.web api          # write web/src/api/<service>.ts from the OpenAPI
    python -m deploy.local.web check-api    # exit 1 when the committed types differ from a fresh run
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
DIST = WEB / "dist"
API_TYPES = WEB / "src" / "api"
SERVICES = ("ticket_api", "triage", "notifier", "billing")
BUILD_INPUTS = ("index.html", "package-lock.json", "tsconfig.json", "vite.config.ts", "src", "public")
DEPS_STAMP = WEB / "node_modules" / ".helpdesk-lock.sha256"
BUILD_STAMP = DIST / ".helpdesk-sources.sha256"


class WebError(RuntimeError):
    """npm or node is missing, or a step failed; the message says which and how to fix it."""


def _files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            found.append(path)
    return found


def digest(paths: Iterable[Path], base: Path = WEB) -> str:
    """One hash over the names and contents of ``paths`` (directories walked, sorted)."""
    h = hashlib.sha256()
    for file in _files(paths):
        h.update(str(file.relative_to(base)).encode() + b"\0" + file.read_bytes() + b"\0")
    return h.hexdigest()


def _stale(stamp: Path, wanted: str) -> bool:
    return not stamp.is_file() or stamp.read_text().strip() != wanted


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise WebError("node and npm are needed to build web/ (scripts/bootstrap.sh installs them)")
    return npm


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, cwd=WEB, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise WebError(f"{what} failed (exit {result.returncode}) in {WEB}:\n{tail}")


def ensure_dependencies(log: Callable[[str], None] = print) -> None:
    """``npm ci`` from the committed lock, when node_modules was installed from another lock."""
    wanted = digest([WEB / "package-lock.json"])
    if _stale(DEPS_STAMP, wanted):
        log("web: npm ci")
        _run([_npm(), "ci", "--no-audit", "--no-fund"], "npm ci")
        DEPS_STAMP.write_text(wanted + "\n")


def ensure_built(log: Callable[[str], None] = print) -> Path:
    """The built SPA's directory, building it first when its sources changed."""
    ensure_dependencies(log)
    wanted = digest([WEB / name for name in BUILD_INPUTS])
    if _stale(BUILD_STAMP, wanted) or not (DIST / "index.html").is_file():
        log("web: vite build")
        _run([_npm(), "run", "--silent", "build"], "vite build")
        BUILD_STAMP.write_text(wanted + "\n")
    return DIST


def openapi(service: str) -> dict[str, object]:
    """A service's OpenAPI document, from its app (no server, no database)."""
    from shared.events import Service
    from shared.migrate import service_settings

    module = importlib.import_module(f"services.{service}.app")
    document: dict[str, object] = module.create_app(service_settings(Service(service))).openapi()
    return document


def write_api_types(out_dir: Path = API_TYPES, log: Callable[[str], None] = print) -> list[Path]:
    """``<service>.ts`` for each service, by openapi-typescript from its OpenAPI document, and
    ``transitions.json`` (ticket_api's status rules)."""
    ensure_dependencies(log)
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = WEB / "node_modules" / ".bin" / "openapi-typescript"
    written = []
    with tempfile.TemporaryDirectory(prefix="helpdesk-openapi-") as tmp:
        for service in SERVICES:
            source = Path(tmp) / f"{service}.json"
            source.write_text(json.dumps(openapi(service), indent=1, sort_keys=True))
            target = out_dir / f"{service}.ts"
            _run([str(generator), str(source), "--output", str(target)], f"openapi-typescript {service}")
            written.append(target)
    # A rule the console needs that the OpenAPI does not carry: which status may follow which.
    from services.ticket_api.tickets.transitions import ALLOWED, allowed_targets

    transitions = out_dir / "transitions.json"
    transitions.write_text(
        json.dumps({s.value: [t.value for t in allowed_targets(s)] for s in ALLOWED}, indent=2) + "\n"
    )
    written.append(transitions)
    return written


def api_drift(log: Callable[[str], None] = print) -> list[str]:
    """The services whose committed types differ from a fresh generation (empty: none)."""
    with tempfile.TemporaryDirectory(prefix="helpdesk-api-types-") as tmp:
        fresh = write_api_types(Path(tmp), log)
        return [
            path.name
            for path in fresh
            if not (API_TYPES / path.name).is_file()
            or (API_TYPES / path.name).read_text() != path.read_text()
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["build", "api", "check-api"])
    args = parser.parse_args(argv)
    try:
        if args.action == "build":
            print(ensure_built())
        elif args.action == "api":
            for path in write_api_types():
                print(path.relative_to(ROOT))
        elif drifted := api_drift():
            print(
                f"web/src/api differs from the services' OpenAPI for: {', '.join(drifted)}; "
                "run `make web-api` and commit the result",
                file=sys.stderr,
            )
            return 1
    except WebError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
