"""Render the gateway's nginx template for the local run, and check it with ``nginx -t``.

The template (``deploy/gateway/nginx.conf.template``) is the one containers use too; only
``${GW_*}`` placeholders are substituted, exactly as the nginx image's envsubst step does with
``NGINX_ENVSUBST_FILTER=^GW_``, so nginx's own ``$variables`` pass through untouched.

CLI::

    python -m deploy.local.gateway render --out var/gateway/nginx.conf [--listen 127.0.0.1:8080 ...]
    python -m deploy.local.gateway check  --out var/gateway/nginx.conf   # render, then nginx -t
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent / "gateway" / "nginx.conf.template"
# The built SPA (``python -m deploy.local.web build`` writes it; the local run builds it first).
WEB_ROOT = Path(__file__).resolve().parents[2] / "web" / "dist"
PLACEHOLDER = re.compile(r"\$\{(GW_[A-Z0-9_]+)\}")
SERVICES = ("ticket_api", "triage", "notifier", "billing")


class GatewayError(RuntimeError):
    """The template could not be rendered, or nginx rejected the result."""


def placeholders(template: str | None = None) -> set[str]:
    """Every ``GW_*`` name the template uses (what a container must set in its environment)."""
    text = TEMPLATE.read_text() if template is None else template
    return set(PLACEHOLDER.findall(text))


def render_text(values: Mapping[str, str], template: str | None = None) -> str:
    """Substitute ``${GW_*}`` placeholders; raise GatewayError when one has no value."""
    text = TEMPLATE.read_text() if template is None else template
    missing = sorted(placeholders(text) - set(values))
    if missing:
        raise GatewayError(f"no value for gateway placeholder(s): {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


# The loopback address the local gateway connects to the services from (all of 127/8 is loopback).
GATEWAY_SOURCE_ADDRESS = "127.0.0.2"


@dataclass(frozen=True)
class LocalGateway:
    """Values for a local (non-container) gateway; ``run_dir`` holds pid, temp files and the conf."""

    listen: str
    run_dir: Path
    access_log: Path
    upstreams: Mapping[str, str]
    rate_per_client: str = "100r/s"
    burst_per_client: int = 200
    rate_per_ip: str = "500r/s"
    burst_per_ip: int = 1000
    web_root: Path = WEB_ROOT
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def conf_path(self) -> Path:
        return self.run_dir / "nginx.conf"

    def values(self) -> dict[str, str]:
        # Started as root, nginx would hand workers to "nobody", who cannot reach temp dirs under a
        # private (0700) var dir; as a normal user the directive would only draw a warning.
        user = "user root;" if os.geteuid() == 0 else ""
        values = {
            "GW_WORKER_USER_DIRECTIVE": user,
            "GW_LISTEN": self.listen,
            "GW_RUN_DIR": str(self.run_dir.resolve()),
            "GW_ACCESS_LOG": str(self.access_log.resolve()),
            "GW_RATE_PER_CLIENT": self.rate_per_client,
            "GW_BURST_PER_CLIENT": str(self.burst_per_client),
            "GW_RATE_PER_IP": self.rate_per_ip,
            "GW_BURST_PER_IP": str(self.burst_per_ip),
            # The services trust X-Forwarded-For only from this address (uvicorn
            # --forwarded-allow-ips): a process calling a service port directly from 127.0.0.1
            # cannot claim another client address (and so dodge the per-address sign-in lockout).
            "GW_PROXY_BIND_DIRECTIVE": f"proxy_bind {GATEWAY_SOURCE_ADDRESS};",
            "GW_WEB_ROOT": str(self.web_root.resolve()),
        }
        for service in SERVICES:
            values[f"GW_{service.upper()}_UPSTREAM"] = self.upstreams[service]
        values.update(self.extra)
        return values

    def render(self) -> Path:
        """Write the rendered config to ``conf_path`` (atomically) and return that path."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.access_log.parent.mkdir(parents=True, exist_ok=True)
        text = render_text(self.values())
        tmp = self.conf_path.with_suffix(".conf.tmp")
        tmp.write_text(text)
        os.replace(tmp, self.conf_path)
        return self.conf_path

    def command(self, nginx: str = "nginx") -> list[str]:
        """The foreground nginx command line for the rendered config."""
        prefix = str(self.run_dir.resolve()) + "/"
        return [nginx, "-e", "stderr", "-p", prefix, "-c", str(self.conf_path.resolve()), "-g", "daemon off;"]


def nginx_binary() -> str | None:
    """Path of nginx (often in /usr/sbin, which a normal user's PATH may lack), or None."""
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def check(gateway: LocalGateway) -> str:
    """Render and run ``nginx -t``; return nginx's output, raise GatewayError if it fails."""
    nginx = nginx_binary()
    if nginx is None:
        raise GatewayError("nginx is not installed (scripts/bootstrap.sh installs nginx-light)")
    gateway.render()
    command = [*gateway.command(nginx), "-t"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise GatewayError(f"nginx -t failed for {gateway.conf_path}:\n{output}")
    return output


def default_local(
    var_dir: Path,
    listen: str,
    ports: Mapping[str, int],
    env: Mapping[str, str] | None = None,
    web_root: Path = WEB_ROOT,
) -> LocalGateway:
    """The local-run gateway under ``var_dir`` with upstreams on 127.0.0.1; rate limits from the
    ``HELPDESK_GATEWAY_RATE_PER_CLIENT/_IP`` and ``..._BURST_PER_CLIENT/_IP`` knobs in ``env``."""
    env = os.environ if env is None else env
    rate_client = env.get("HELPDESK_GATEWAY_RATE_PER_CLIENT", "100r/s")
    rate_ip = env.get("HELPDESK_GATEWAY_RATE_PER_IP", "500r/s")
    return LocalGateway(
        listen=listen,
        run_dir=var_dir / "gateway",
        access_log=var_dir / "log" / "gateway.access.log",
        upstreams={service: f"127.0.0.1:{ports[service]}" for service in SERVICES},
        rate_per_client=rate_client,
        burst_per_client=int(env.get("HELPDESK_GATEWAY_BURST_PER_CLIENT", "200")),
        rate_per_ip=rate_ip,
        burst_per_ip=int(env.get("HELPDESK_GATEWAY_BURST_PER_IP", "1000")),
        web_root=web_root,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["render", "check"])
    parser.add_argument("--var-dir", type=Path, default=Path(os.environ.get("HELPDESK_VAR_DIR", "var")))
    parser.add_argument("--listen", default=f"127.0.0.1:{os.environ.get('HELPDESK_GATEWAY_PORT', '8080')}")
    defaults = {"ticket_api": 8101, "triage": 8102, "notifier": 8103, "billing": 8104}
    for service, port in defaults.items():
        env_port = os.environ.get(f"HELPDESK_{service.upper()}_PORT", str(port))
        parser.add_argument(f"--{service.replace('_', '-')}-port", type=int, default=int(env_port))
    args = parser.parse_args(argv)
    ports = {service: int(getattr(args, f"{service}_port")) for service in SERVICES}
    gateway = default_local(args.var_dir, args.listen, ports)
    try:
        if args.action == "render":
            print(gateway.render())
        else:
            print(check(gateway), end="")
    except GatewayError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
