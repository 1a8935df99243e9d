"""The gateway template renders, passes ``nginx -t``, and behaves: routing by path, request ids,
problem+json errors, body limits and rate limits — with a real nginx in front of tiny HTTP
upstreams on free ports (no mocks of nginx)."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from deploy.local import gateway as gw
from deploy.local.probes import free_ports, http_status

NGINX = gw.nginx_binary()
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (scripts/bootstrap.sh)")


class _EchoHandler(BaseHTTPRequestHandler):
    """Answers every request with JSON naming the upstream and echoing what nginx sent."""

    protocol_version = "HTTP/1.1"
    upstream_name = "?"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(
            {
                "upstream": self.upstream_name,
                "path": self.path,
                "request_id": self.headers.get("X-Request-ID"),
                "forwarded_for": self.headers.get("X-Forwarded-For"),
                "forwarded_proto": self.headers.get("X-Forwarded-Proto"),
                "connection": self.headers.get("Connection"),
            }
        ).encode()
        status = 503 if self.path.endswith("/unavailable") else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-ID", "from-upstream-must-be-hidden")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(name: str) -> ThreadingHTTPServer:
    handler = type(f"Echo_{name}", (_EchoHandler,), {"upstream_name": name})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


SPA_INDEX = '<!doctype html><div id="root"></div><script type="module" src="/assets/app-1234.js"></script>\n'


@dataclass
class RunningGateway:
    url: str
    config: gw.LocalGateway


def _gateway(tmp_path: Path, upstreams: dict[str, str], **limits: object) -> gw.LocalGateway:
    (port,) = free_ports(1)
    return gw.LocalGateway(
        listen=f"127.0.0.1:{port}",
        run_dir=tmp_path / "gateway",
        access_log=tmp_path / "log" / "gateway.access.log",
        upstreams=upstreams,
        **limits,  # type: ignore[arg-type]
    )


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[RunningGateway]:
    servers = {name: _serve(name) for name in gw.SERVICES}
    upstreams = {name: f"127.0.0.1:{server.server_address[1]}" for name, server in servers.items()}
    web_root = tmp_path / "web"
    (web_root / "assets").mkdir(parents=True)
    (web_root / "index.html").write_text(SPA_INDEX)
    (web_root / "assets" / "app-1234.js").write_text("console.log('app')\n")
    config = _gateway(tmp_path, upstreams, rate_per_client="5r/s", burst_per_client=5, web_root=web_root)
    gw.check(config)
    assert NGINX is not None
    log = open(tmp_path / "nginx.log", "wb")  # noqa: SIM115 - closed in the teardown
    process = subprocess.Popen(config.command(NGINX), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{config.listen}"
    try:
        deadline = time.monotonic() + 10
        while http_status(f"{url}/healthz") != 200:
            assert process.poll() is None, (tmp_path / "nginx.log").read_text()
            assert time.monotonic() < deadline, "nginx did not answer /healthz within 10 s"
            time.sleep(0.05)
        yield RunningGateway(url=url, config=config)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        for server in servers.values():
            server.shutdown()
            server.server_close()


def test_template_placeholders_are_all_gw_prefixed() -> None:
    text = gw.TEMPLATE.read_text()
    assert gw.placeholders(text) >= {"GW_LISTEN", "GW_TICKET_API_UPSTREAM", "GW_RUN_DIR"}
    # A ${name} that is not GW_* would be left alone by the container's envsubst filter and then
    # break nginx; nginx's own variables are written $name.
    assert "${" not in gw.PLACEHOLDER.sub("", text)


def test_render_refuses_missing_values() -> None:
    with pytest.raises(gw.GatewayError, match="GW_LISTEN"):
        gw.render_text({})


@needs_nginx
def test_rendered_local_config_passes_nginx_t(tmp_path: Path) -> None:
    config = gw.default_local(
        tmp_path, "127.0.0.1:18080", {s: 18101 + i for i, s in enumerate(gw.SERVICES)}, {}
    )
    output = gw.check(config)
    assert "test is successful" in output
    text = config.conf_path.read_text()
    assert "${GW_" not in text
    assert str(tmp_path.resolve() / "gateway" / "nginx.pid") in text


@needs_nginx
def test_routes_each_prefix_to_its_service(gateway: RunningGateway) -> None:
    expected = {
        "/api/v1/triage/decisions": "triage",
        "/api/v1/notifications/log": "notifier",
        "/api/v1/webhooks/subscriptions": "notifier",
        "/api/v1/billing/invoices": "billing",
        "/api/v1/tickets": "ticket_api",
        "/api/v1/organizations/1": "ticket_api",
        "/api/v1/inbound/email": "ticket_api",
        "/_services/billing/readyz": "billing",
    }
    with httpx.Client(base_url=gateway.url, headers={"Authorization": "Bearer routing"}) as client:
        for path, service in expected.items():
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)
            body = response.json()
            assert body["upstream"] == service, path
            assert body["path"] == ("/readyz" if path.startswith("/_services/") else path)
            # Keepalive to the upstream needs HTTP/1.1 with the hop-by-hop header cleared.
            assert body["connection"] is None
            assert body["forwarded_proto"] == "http"
            assert body["forwarded_for"] == "127.0.0.1"
            time.sleep(0.25)  # stay under the 5 r/s test limit


@needs_nginx
def test_request_id_is_kept_when_sane_and_generated_otherwise(gateway: RunningGateway) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        kept = client.get(
            "/api/v1/tickets", headers={"X-Request-ID": "abc-123-def-456", "X-Forwarded-For": "6.6.6.6"}
        )
        assert kept.json()["request_id"] == "abc-123-def-456"
        assert kept.json()["forwarded_for"] == "127.0.0.1", "a client must not choose its own address"
        assert kept.headers.get_list("X-Request-ID") == ["abc-123-def-456"]  # upstream's one hidden
        time.sleep(0.25)
        replaced = client.get("/api/v1/tickets", headers={"X-Request-ID": 'bad id" with quotes'})
        generated = replaced.headers["X-Request-ID"]
        assert len(generated) == 32 and generated == replaced.json()["request_id"]


@needs_nginx
def test_gateway_errors_are_problem_json(gateway: RunningGateway, tmp_path: Path) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        not_found = client.get("/assets/no-such-file.js")
        assert not_found.status_code == 404
        assert not_found.headers["Content-Type"] == "application/problem+json"
        problem = not_found.json()
        assert problem["status"] == 404 and problem["title"] == "Not Found" and problem["type"]
        assert problem["request_id"] == not_found.headers["X-Request-ID"]

        too_big = client.post("/api/v1/tickets", content=b"x" * (2 * 1024 * 1024))
        assert too_big.status_code == 413
        assert too_big.json()["status"] == 413
        time.sleep(0.25)
        inbound = client.post("/api/v1/inbound/email", content=b"x" * (2 * 1024 * 1024))
        assert inbound.status_code == 200, "inbound mail may be up to 26m"

        # A service's own error passes through untouched (no interception).
        time.sleep(0.25)
        passthrough = client.get("/api/v1/tickets/unavailable")
        assert passthrough.status_code == 503 and passthrough.json()["upstream"] == "ticket_api"


@needs_nginx
def test_unreachable_upstream_is_502_problem(tmp_path: Path) -> None:
    dead = {name: f"127.0.0.1:{port}" for name, port in zip(gw.SERVICES, free_ports(4), strict=True)}
    config = _gateway(tmp_path, dead)
    gw.check(config)
    assert NGINX is not None
    process = subprocess.Popen(config.command(NGINX), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://{config.listen}"
        deadline = time.monotonic() + 10
        while http_status(f"{url}/healthz") != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        response = httpx.get(f"{url}/api/v1/billing/invoices")
        assert response.status_code == 502
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["title"] == "Bad Gateway"
    finally:
        process.terminate()
        process.wait(timeout=10)


@needs_nginx
def test_rate_limit_answers_429_problem_per_client(gateway: RunningGateway) -> None:
    with httpx.Client(base_url=gateway.url, headers={"Authorization": "Bearer flood"}) as client:
        answers = [client.get("/api/v1/tickets") for _ in range(20)]
        assert answers[0].status_code == 200
        # The first refusal (a later request may find the bucket refilled on a slow machine).
        limited = next(answer for answer in answers if answer.status_code == 429)
        assert limited.headers["Content-Type"] == "application/problem+json"
        assert limited.headers["Retry-After"] == "1"
        assert limited.headers["X-Request-ID"]
        # Another credential has its own budget.
        other = client.get("/api/v1/tickets", headers={"Authorization": "Bearer someone-else"})
        assert other.status_code == 200


@needs_nginx
def test_access_log_is_json_with_request_id_and_upstream_timing(gateway: RunningGateway) -> None:
    httpx.get(f"{gateway.url}/api/v1/triage/x", headers={"X-Request-ID": "log-check-0001"})
    # The log is buffered (flush=1s); a clean stop flushes it too, but polling keeps nginx running.
    log_path = gateway.config.access_log
    deadline = time.monotonic() + 5
    entries: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        if log_path.exists():
            entries = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
            if any(e["request_id"] == "log-check-0001" for e in entries):
                break
        time.sleep(0.2)
    entry = next(e for e in entries if e["request_id"] == "log-check-0001")
    assert entry["status"] == 200 and entry["uri"] == "/api/v1/triage/x"
    assert entry["upstream_response_time"] not in ("", "-")


@needs_nginx
def test_sign_in_endpoints_have_a_tight_budget_per_address(gateway: RunningGateway) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        statuses = [client.post("/api/v1/auth/login", json={}).status_code for _ in range(15)]
        # 10 at once are let through (the burst), then the 30-a-minute pace refuses the rest.
        assert statuses[:10] == [200] * 10
        assert statuses[-1] == 429
        assert client.post("/api/v1/oauth/token").status_code == 429, "one budget for every sign-in path"
        assert client.get("/api/v1/tickets").status_code == 200, "other paths keep their own budget"


@needs_nginx
def test_service_roots_route_without_a_redirect_loop(gateway: RunningGateway) -> None:
    """``/api/v1/notifications`` (no slash) went 301 → ``/notifications/`` → the service's 307
    back, for ever: each prefix now reaches its service with and without the slash."""
    with httpx.Client(base_url=gateway.url, headers={"Authorization": "Bearer roots"}) as client:
        for path, service in {
            "/api/v1/notifications": "notifier",
            "/api/v1/webhooks": "notifier",
            "/api/v1/billing": "billing",
            "/api/v1/triage": "triage",
            "/api/v1/inbound": "ticket_api",
            "/.well-known/jwks.json": "ticket_api",
            "/api/v1/notificationsx": "ticket_api",  # not a prefix of another word
        }.items():
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            assert response.json() == {**response.json(), "upstream": service, "path": path}
            time.sleep(0.25)


@needs_nginx
def test_every_gateway_answer_is_problem_json(gateway: RunningGateway) -> None:
    """What nginx answers itself (a bad request line, a method it refuses, a huge URI or header)
    is problem+json with the request id, never nginx's HTML page."""
    host, port = gateway.config.listen.split(":")
    raw_requests = {
        b"GET /api/v1/tickets/%00 HTTP/1.1\r\nHost: x\r\n\r\n": 400,
        b"GET /api/v1/tickets/%zz HTTP/1.1\r\nHost: x\r\n\r\n": 400,
        b"TRACE / HTTP/1.1\r\nHost: x\r\n\r\n": 405,
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n": 414,
        b"GET / HTTP/1.1\r\nHost: x\r\nCookie: " + b"c" * 20_000 + b"\r\n\r\n": 400,
    }
    for raw, status in raw_requests.items():
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            connection.sendall(raw)
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split()[1] == str(status).encode(), (raw[:40], head)
        assert b"Content-Type: application/problem+json" in head, (raw[:40], head)
        assert json.loads(body)["status"] == status
        time.sleep(0.25)


@needs_nginx
def test_access_log_never_keeps_a_signed_link(gateway: RunningGateway) -> None:
    token = "eyJ0aWNrZXQiOiIxMjMifQ.c2lnbmF0dXJlLXRoYXQtYWN0cy1mb3ItdGhlLWN1c3RvbWVy"
    paths = {
        f"/api/v1/ticket-status/{token}/appointment": "/api/v1/ticket-status/[redacted]/appointment",
        f"/api/v1/feedback/{token}?rating=happy": "/api/v1/feedback/[redacted]",
        f"/api/v1/auth/magic-link/redeem?token={token}": "/api/v1/auth/magic-link/redeem?[query redacted]",
        "/api/v1/tickets?status=open": "/api/v1/tickets?status=open",
    }
    for index, path in enumerate(paths):
        httpx.get(f"{gateway.url}{path}", headers={"X-Request-ID": f"redaction-{index:04d}"})
        time.sleep(0.25)
    log_path = gateway.config.access_log
    deadline = time.monotonic() + 5
    logged: dict[str, str] = {}
    while time.monotonic() < deadline and len(logged) < len(paths):
        if log_path.exists():
            for line in log_path.read_text().splitlines():
                entry = json.loads(line)
                if str(entry["request_id"]).startswith("redaction-"):
                    logged[str(entry["request_id"])] = str(entry["uri"])
        time.sleep(0.2)
    assert [logged.get(f"redaction-{i:04d}") for i in range(len(paths))] == list(paths.values())
    assert token not in log_path.read_text()


@needs_nginx
def test_the_console_is_served_at_the_root_with_a_strict_policy(gateway: RunningGateway) -> None:
    """The SPA's index.html for / and for any path its router owns, never cached; its hashed
    assets cached for good; a Content-Security-Policy that lets no inline script run."""
    with httpx.Client(base_url=gateway.url) as client:
        for path in ("/", "/tickets/0190-abc", "/sign-in?next=%2F"):
            page = client.get(path)
            assert page.status_code == 200, path
            assert page.text == SPA_INDEX, path
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            assert page.headers["cache-control"] == "no-cache"
            policy = page.headers["content-security-policy"]
            directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
            assert directives["script-src"] == "'self'" and directives["default-src"] == "'self'"
            assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
            assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
            assert page.headers.get_list("X-Request-ID") == [page.headers["X-Request-ID"]]
            time.sleep(0.25)
        asset = client.get("/assets/app-1234.js")
        assert asset.status_code == 200 and asset.text == "console.log('app')\n"
        assert "immutable" in asset.headers["cache-control"]
        assert asset.headers["content-type"] == "text/javascript; charset=utf-8", "modules need their type"
        assert asset.headers["x-content-type-options"] == "nosniff"
        time.sleep(0.25)
        api = client.get("/api/v1/tickets", headers={"Authorization": "Bearer routing"})
        assert api.json()["upstream"] == "ticket_api", "the API keeps its routes"
