"""Writes the Kubernetes manifests of ``deploy/k8s/base`` from one table: ``python -m deploy.k8s.generate``.

One source for every workload (the same image, security context, settings and probes), so the
YAML a reviewer reads is plain kustomize input; ``tests/deploy/test_k8s.py`` fails when the
committed files differ from a fresh run, renders each overlay and validates it.

The gateway is nginx from the same template as the local run and compose
(``deploy/gateway/nginx.conf.template``, carried in a ConfigMap), not an Ingress: its routing,
problem+json errors, request ids, rate limits and X-Forwarded-For handling are the contract the
services trust. An Ingress (or a cloud load balancer) goes in front of the gateway Service.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
BASE = HERE / "base"
TEMPLATE = HERE.parent / "gateway" / "nginx.conf.template"
IMAGE = "helpdesk"
NGINX_IMAGE = "nginx:1.27-alpine"
APP_UID = 10001
NGINX_UID = 101  # the nginx user of the official image
API_PORT = 8000
METRICS_PORT = 9100
PART_OF = {"app.kubernetes.io/part-of": "helpdesk"}


@dataclass(frozen=True)
class Service:
    name: str  # the Python package (services/<name>)
    dns: str  # its Kubernetes name (no underscores)
    secrets: tuple[str, ...]  # Secret keys its processes read
    calls: tuple[str, ...]  # APIs it calls (besides ticket_api's token and JWKS endpoints)


SERVICES = (
    Service("ticket_api", "ticket-api", ("TICKET_API_DATABASE_URL",), ()),
    Service("triage", "triage", ("TRIAGE_DATABASE_URL",), ()),
    Service(
        "notifier",
        "notifier",
        ("NOTIFIER_DATABASE_URL", "NOTIFIER_CLIENT_ID", "NOTIFIER_CLIENT_SECRET"),
        ("billing",),
    ),
    Service("billing", "billing", ("BILLING_DATABASE_URL",), ()),
)
COMMON_SECRETS = ("HELPDESK_SECRET_KEY", "HELPDESK_REDIS_URL")
SMTP_SECRETS = ("NOTIFIER_SMTP_USERNAME", "NOTIFIER_SMTP_PASSWORD")
# Settings every process reads, none of them secret (the overlays change what differs).
CONFIG = {
    "HELPDESK_ENV": "prod",
    "HELPDESK_LOG_LEVEL": "INFO",
    "HELPDESK_VAR_DIR": "/app/var",
    "HELPDESK_PUBLIC_BASE_URL": "https://helpdesk.example.com",
    "HELPDESK_TICKET_API_URL": f"http://ticket-api:{API_PORT}",
    "HELPDESK_JWKS_URL": f"http://ticket-api:{API_PORT}/.well-known/jwks.json",
    "HELPDESK_SMTP_HOST": "smtp-relay.example.com",
    "HELPDESK_SMTP_PORT": "587",
    "NOTIFIER_SMTP_SECURITY": "starttls",
    "NOTIFIER_BILLING_BASE_URL": f"http://billing:{API_PORT}",
    "TICKET_API_JWT_KEYS_DIR": "/app/keys",
    "TICKET_API_INBOUND_SMTP_HOST": "0.0.0.0",
    "HELPDESK_INBOUND_SMTP_PORT": "2525",
}
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": APP_UID,
    "runAsGroup": APP_UID,
    "fsGroup": APP_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
}
API_RESOURCES = {"requests": {"cpu": "100m", "memory": "192Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}
WORKER_RESOURCES = {"requests": {"cpu": "100m", "memory": "192Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}


def labels(component: str, role: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": component, "app.kubernetes.io/component": role, **PART_OF}


def secret_env(keys: tuple[str, ...], *, optional: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Environment variables read from the ``helpdesk-secrets`` Secret (referenced, never inlined)."""
    env = []
    for key in keys:
        ref: dict[str, Any] = {"name": "helpdesk-secrets", "key": key}
        if key in optional:
            ref["optional"] = True
        env.append({"name": key, "valueFrom": {"secretKeyRef": ref}})
    return env


def scratch_volumes() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The writable places of a read-only root filesystem: /tmp and the var dir."""
    volumes = [{"name": "tmp", "emptyDir": {}}, {"name": "var", "emptyDir": {}}]
    mounts = [{"name": "tmp", "mountPath": "/tmp"}, {"name": "var", "mountPath": "/app/var"}]
    return volumes, mounts


def app_container(
    name: str, command: list[str], env: list[dict[str, Any]], resources: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "envFrom": [{"configMapRef": {"name": "helpdesk-config"}}],
        "env": env,
        "securityContext": CONTAINER_SECURITY,
        "resources": resources,
    }


def pod_template(
    meta: dict[str, str], containers: list[dict[str, Any]], volumes: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    annotations = extra.pop("annotations", {})
    return {
        "metadata": {"labels": meta, **({"annotations": annotations} if annotations else {})},
        "spec": {
            "securityContext": POD_SECURITY,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 40,
            "containers": containers,
            "volumes": volumes,
            **extra,
        },
    }


def scrape(port: int) -> dict[str, str]:
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"}


def deployment(
    name: str, meta: dict[str, str], template: dict[str, Any], replicas: int = 2
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": meta},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": meta["app.kubernetes.io/name"]}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": template,
        },
    }


def api(service: Service) -> list[dict[str, Any]]:
    meta = labels(service.dns, "api")
    volumes, mounts = scratch_volumes()
    if service.name == "ticket_api":
        volumes += [
            {"name": "jwt-keys", "secret": {"secretName": "helpdesk-jwt-keys", "defaultMode": 0o440}},
            {"name": "attachments", "persistentVolumeClaim": {"claimName": "helpdesk-attachments"}},
        ]
        mounts += [
            {"name": "jwt-keys", "mountPath": "/app/keys", "readOnly": True},
            {"name": "attachments", "mountPath": "/app/var/attachments"},
        ]
    command = ["uvicorn", "--factory", f"services.{service.name}.app:create_app", "--host", "0.0.0.0"]
    command += ["--port", str(API_PORT), "--proxy-headers", "--forwarded-allow-ips", "*"]
    command += ["--timeout-keep-alive", "75", "--no-access-log"]
    container = app_container(
        "api",
        command,
        secret_env(COMMON_SECRETS + service.secrets, optional=service.secrets[1:]),
        API_RESOURCES,
    )
    container["ports"] = [{"name": "http", "containerPort": API_PORT}]
    container["volumeMounts"] = mounts
    container["readinessProbe"] = {
        "httpGet": {"path": "/readyz", "port": "http"},
        "periodSeconds": 5,
        "timeoutSeconds": 3,
        "failureThreshold": 2,
    }
    container["livenessProbe"] = {
        "httpGet": {"path": "/healthz", "port": "http"},
        "periodSeconds": 10,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }
    container["startupProbe"] = {
        "httpGet": {"path": "/healthz", "port": "http"},
        "periodSeconds": 2,
        "failureThreshold": 30,
    }
    template = pod_template(meta, [container], volumes, annotations=scrape(API_PORT))
    svc = service_object(service.dns, meta, "http", API_PORT)
    return [deployment(service.dns, meta, template), svc, hpa(service.dns, 2, 6), pdb(service.dns)]


def worker(service: Service) -> list[dict[str, Any]]:
    name = f"{service.dns}-worker"
    meta = labels(name, "worker")
    volumes, mounts = scratch_volumes()
    settings = f"services.{service.name}.worker.WorkerSettings"
    command = ["python", "-m", "shared.worker_main", "--metrics-port", str(METRICS_PORT), settings]
    secrets = COMMON_SECRETS + service.secrets + (SMTP_SECRETS if service.name == "notifier" else ())
    optional = service.secrets[1:] + (SMTP_SECRETS if service.name == "notifier" else ())
    container = app_container("worker", command, secret_env(secrets, optional=optional), WORKER_RESOURCES)
    container["ports"] = [{"name": "metrics", "containerPort": METRICS_PORT}]
    container["volumeMounts"] = mounts
    # Fresh while the worker polls Redis (arq's health key, written every 15 s).
    check = {"exec": {"command": ["python", "-m", "shared.worker_main", "--check", settings]}}
    container["livenessProbe"] = {**check, "periodSeconds": 30, "timeoutSeconds": 10, "failureThreshold": 3}
    container["startupProbe"] = {**check, "periodSeconds": 5, "timeoutSeconds": 10, "failureThreshold": 24}
    template = pod_template(meta, [container], volumes, annotations=scrape(METRICS_PORT))
    return [deployment(name, meta, template), hpa(name, 2, 6), pdb(name)]


def inbound_smtp() -> list[dict[str, Any]]:
    name = "inbound-smtp"
    meta = labels(name, "smtp")
    volumes, mounts = scratch_volumes()
    volumes.append({"name": "attachments", "persistentVolumeClaim": {"claimName": "helpdesk-attachments"}})
    mounts.append({"name": "attachments", "mountPath": "/app/var/attachments"})
    command = ["python", "-m", "services.ticket_api.inbound.smtp_listener"]
    container = app_container(
        "smtp", command, secret_env((*COMMON_SECRETS, "TICKET_API_DATABASE_URL")), API_RESOURCES
    )
    container["ports"] = [{"name": "smtp", "containerPort": 2525}]
    container["volumeMounts"] = mounts
    container["readinessProbe"] = {"tcpSocket": {"port": "smtp"}, "periodSeconds": 10}
    container["livenessProbe"] = {"tcpSocket": {"port": "smtp"}, "periodSeconds": 20, "failureThreshold": 3}
    template = pod_template(meta, [container], volumes)
    svc = service_object(name, meta, "smtp", 25)
    return [deployment(name, meta, template), svc, pdb(name)]


def migrate_job() -> dict[str, Any]:
    meta = labels("migrate", "migrate")
    volumes, mounts = scratch_volumes()
    env = secret_env(COMMON_SECRETS + tuple(f"{s.name.upper()}_DATABASE_URL" for s in SERVICES))
    command = ["python", "-m", "shared.migrate", *(s.name for s in SERVICES)]
    container = app_container("migrate", command, env, API_RESOURCES)
    container["volumeMounts"] = mounts
    template = pod_template(meta, [container], volumes, restartPolicy="Never")
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "helpdesk-migrate", "labels": meta},
        "spec": {"backoffLimit": 4, "ttlSecondsAfterFinished": 86400, "template": template},
    }


def gateway() -> list[dict[str, Any]]:
    name = "gateway"
    meta = labels(name, "gateway")
    env = {
        "NGINX_ENVSUBST_OUTPUT_DIR": "/etc/nginx",
        "NGINX_ENVSUBST_FILTER": "^GW_",
        "GW_WORKER_USER_DIRECTIVE": "",
        "GW_PROXY_BIND_DIRECTIVE": "",
        "GW_LISTEN": "8080",
        "GW_RUN_DIR": "/tmp",
        "GW_ACCESS_LOG": "/dev/stdout",
        "GW_WEB_ROOT": "/srv/web",
        "GW_RATE_PER_CLIENT": "100r/s",
        "GW_BURST_PER_CLIENT": "200",
        "GW_RATE_PER_IP": "500r/s",
        "GW_BURST_PER_IP": "1000",
        **{f"GW_{s.name.upper()}_UPSTREAM": f"{s.dns}:{API_PORT}" for s in SERVICES},
    }
    container = {
        "name": "nginx",
        "image": NGINX_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "ports": [{"name": "http", "containerPort": 8080}],
        "securityContext": CONTAINER_SECURITY,
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "1", "memory": "256Mi"},
        },
        "volumeMounts": [
            {"name": "template", "mountPath": "/etc/nginx/templates", "readOnly": True},
            {"name": "conf", "mountPath": "/etc/nginx"},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "cache", "mountPath": "/var/cache/nginx"},
            {"name": "web", "mountPath": "/srv/web", "readOnly": True},
        ],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
    }
    volumes = [
        {"name": "template", "configMap": {"name": "helpdesk-gateway-template"}},
        {"name": "conf", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "cache", "emptyDir": {}},
        # The console's files (web/dist): an overlay replaces this with its volume or image.
        {"name": "web", "emptyDir": {}},
    ]
    template = pod_template(meta, [container], volumes)
    template["spec"]["securityContext"] = {
        **POD_SECURITY,
        "runAsUser": NGINX_UID,
        "runAsGroup": NGINX_UID,
        "fsGroup": NGINX_UID,
    }
    svc = service_object(name, meta, "http", 80)
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "helpdesk-gateway-template", "labels": meta},
        "data": {"nginx.conf.template": TEMPLATE.read_text()},
    }
    return [config, deployment(name, meta, template), svc, pdb(name), hpa(name, 2, 4)]


def service_object(name: str, meta: dict[str, str], port_name: str, port: int) -> dict[str, Any]:
    """A ClusterIP Service in front of the Deployment ``name``, on its named container port."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": meta},
        "spec": {
            "selector": {"app.kubernetes.io/name": name},
            "ports": [{"name": port_name, "port": port, "targetPort": port_name}],
        },
    }


def hpa(name: str, minimum: int, maximum: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "labels": PART_OF},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": minimum,
            "maxReplicas": maximum,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    }


def pdb(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "labels": PART_OF},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": name}}},
    }


def network_policies() -> list[dict[str, Any]]:
    """Deny by default; then each workload reaches DNS, PostgreSQL and Redis (wherever they run:
    by port), and what it calls; APIs take traffic from the gateway and the workloads calling
    them; metrics ports from the monitoring namespace."""
    dns = {
        "to": [{"namespaceSelector": {}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    data = {"ports": [{"protocol": "TCP", "port": 5432}, {"protocol": "TCP", "port": 6379}]}
    app_pods = {
        "matchExpressions": [
            {
                "key": "app.kubernetes.io/component",
                "operator": "In",
                "values": ["api", "worker", "smtp", "migrate"],
            }
        ]
    }

    def api_egress(dns_name: str) -> dict[str, Any]:
        return {
            "to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": dns_name}}}],
            "ports": [{"protocol": "TCP", "port": API_PORT}],
        }

    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    policies: list[dict[str, Any]] = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "labels": PART_OF},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "app-egress", "labels": PART_OF},
            "spec": {
                "podSelector": app_pods,
                "policyTypes": ["Egress"],
                # Every service gets its own tokens and the JWKS from ticket_api.
                "egress": [dns, data, api_egress("ticket-api")],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "notifier-egress", "labels": PART_OF},
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "notifier-worker"}},
                "policyTypes": ["Egress"],
                # The mail relay and portals' webhooks (HTTPS), and billing's invoice PDFs.
                "egress": [
                    {"ports": [{"protocol": "TCP", "port": p} for p in (25, 465, 587, 443)]},
                    api_egress("billing"),
                ],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "gateway", "labels": PART_OF},
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"ports": [{"protocol": "TCP", "port": 8080}]}],
                "egress": [dns, *(api_egress(s.dns) for s in SERVICES)],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "inbound-smtp", "labels": PART_OF},
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "inbound-smtp"}},
                "policyTypes": ["Ingress"],
                "ingress": [{"ports": [{"protocol": "TCP", "port": 2525}]}],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "metrics", "labels": PART_OF},
            "spec": {
                "podSelector": app_pods,
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [monitoring],
                        "ports": [{"protocol": "TCP", "port": p} for p in (API_PORT, METRICS_PORT)],
                    }
                ],
            },
        },
    ]
    for service in SERVICES:
        callers: list[dict[str, Any]] = [
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}}
        ]
        if service.name == "ticket_api":
            callers.append({"podSelector": app_pods})
        callers += [
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": f"{s.dns}-worker"}}}
            for s in SERVICES
            if service.name in s.calls
        ]
        policies.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": f"{service.dns}-api", "labels": PART_OF},
                "spec": {
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": service.dns}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": callers, "ports": [{"protocol": "TCP", "port": API_PORT}]}],
                },
            }
        )
    return policies


def config_map() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "helpdesk-config", "labels": PART_OF},
        "data": CONFIG,
    }


def attachments_claim() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "helpdesk-attachments", "labels": PART_OF},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "20Gi"}}},
    }


def files() -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {
        "config.yaml": [config_map(), attachments_claim()],
        "migrate-job.yaml": [migrate_job()],
        "gateway.yaml": gateway(),
        "inbound-smtp.yaml": inbound_smtp(),
        "network-policies.yaml": network_policies(),
    }
    for service in SERVICES:
        out[f"{service.dns}.yaml"] = api(service) + worker(service)
    return out


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # yaml has no types here
    def ignore_aliases(self, data: Any) -> bool:
        return True  # plain YAML: no &anchors


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render() -> dict[str, str]:
    """File name → text, as committed under deploy/k8s/base."""
    header = (
        "# Generated by `python -m deploy.k8s.generate` from deploy/k8s/generate.py: edit that, not this.\n"
    )
    texts = {
        name: header + yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, width=120)
        for name, documents in files().items()
    }
    resources = sorted(texts)
    texts["kustomization.yaml"] = header + yaml.dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": resources,
        },
        Dumper=_Dumper,
        sort_keys=False,
    )
    return texts


def main() -> None:
    BASE.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (BASE / name).write_text(text)
        print(f"wrote {BASE / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
