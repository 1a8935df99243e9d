"""deploy/k8s, checked offline: the committed base is what ``deploy.k8s.generate`` writes; every
overlay renders (kustomize's namespace, images and replicas, the only transformers the overlays
use) and validates against the Kubernetes 1.32 schemas (kubernetes-validate, strict); each workload
gets every setting its service requires (ConfigMap + the Secret's documented keys), runs as
non-root on a read-only root with every capability dropped, with requests and limits; probes
name routes the service really serves on a port the container opens; Secrets are referenced,
never inlined. No cluster here: nothing is applied."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from deploy.k8s import generate
from tests.deploy import settings_contract as contract

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
KUBERNETES_VERSION = "1.32.0"
OVERLAY_KEYS = {"apiVersion", "kind", "namespace", "resources", "images", "replicas"}


def load_kustomization(directory: Path) -> list[dict[str, Any]]:
    """Render a kustomization as kustomize does for the transformers used here."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - OVERLAY_KEYS
    assert not unknown, f"{directory}: this test renders only {sorted(OVERLAY_KEYS)}, not {sorted(unknown)}"
    documents: list[dict[str, Any]] = []
    for resource in spec.get("resources", []):
        path = (directory / resource).resolve()
        if path.is_dir():
            documents += load_kustomization(path)
        else:
            documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for document in documents:
        if "namespace" in spec:
            document["metadata"]["namespace"] = spec["namespace"]
        if document["kind"] == "Deployment":
            for replica in spec.get("replicas", []):
                if replica["name"] == document["metadata"]["name"]:
                    document["spec"]["replicas"] = replica["count"]
        for container in pod_spec(document).get("containers", []):
            repository, _, tag = container["image"].partition(":")
            for image in spec.get("images", []):
                if image["name"] == repository:
                    name = image.get("newName", repository)
                    container["image"] = (
                        f"{name}:{image.get('newTag', tag)}" if image.get("newTag", tag) else name
                    )
    return documents


def pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    if document["kind"] in ("Deployment", "Job"):
        spec: dict[str, Any] = document["spec"]["template"]["spec"]
        return spec
    return {}


@pytest.fixture(scope="module", params=OVERLAYS, ids=[p.name for p in OVERLAYS])
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return load_kustomization(request.param)


def by_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def test_the_committed_base_is_what_the_generator_writes() -> None:
    for name, text in generate.render().items():
        committed = K8S / "base" / name
        assert committed.is_file() and committed.read_text() == text, (
            f"deploy/k8s/base/{name} is stale: run python -m deploy.k8s.generate"
        )
    assert {p.name for p in (K8S / "base").glob("*.yaml")} == set(generate.render())


def test_there_are_dev_and_prod_overlays() -> None:
    assert {p.name for p in OVERLAYS} >= {"dev", "prod"}


def test_every_document_validates_against_the_kubernetes_schemas(rendered: list[dict[str, Any]]) -> None:
    errors = []
    for document in rendered:
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{document['kind']}/{document['metadata']['name']}: {error.message}")
    assert not errors, "\n".join(errors)
    assert all(d["metadata"].get("namespace") for d in rendered), "the overlay sets the namespace"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_the_same(
    rendered: list[dict[str, Any]], request: pytest.FixtureRequest
) -> None:
    overlay = OVERLAYS[[p.name for p in OVERLAYS].index(request.node.callspec.id)]
    out = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    theirs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}
    ours = {(d["kind"], d["metadata"]["name"]): d for d in rendered}
    assert theirs == ours


def test_workloads_and_their_companions(rendered: list[dict[str, Any]]) -> None:
    deployments = by_kind(rendered, "Deployment")
    for service in generate.SERVICES:
        assert service.dns in deployments and f"{service.dns}-worker" in deployments
    assert {"gateway", "inbound-smtp"} <= set(deployments)
    assert "helpdesk-migrate" in by_kind(rendered, "Job")
    services = by_kind(rendered, "Service")
    hpas = by_kind(rendered, "HorizontalPodAutoscaler")
    pdbs = by_kind(rendered, "PodDisruptionBudget")
    for name, deployment in deployments.items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        assert name in pdbs and pdbs[name]["spec"]["selector"]["matchLabels"] == selector
    for name in [s.dns for s in generate.SERVICES] + [f"{s.dns}-worker" for s in generate.SERVICES]:
        assert hpas[name]["spec"]["scaleTargetRef"]["name"] == name
    for name, svc in services.items():
        assert (
            svc["spec"]["selector"].items()
            <= deployments[name]["spec"]["template"]["metadata"]["labels"].items()
        )
    policies = by_kind(rendered, "NetworkPolicy")
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_every_container_is_locked_down_with_requests_and_limits(rendered: list[dict[str, Any]]) -> None:
    for document in rendered:
        spec = pod_spec(document)
        if not spec:
            continue
        where = f"{document['kind']}/{document['metadata']['name']}"
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] != 0, where
        assert spec.get("automountServiceAccountToken") is False, where
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), where


def secret_keys() -> dict[str, str]:
    """The Secret's documented keys, with values a filled-in copy would have."""
    values: dict[str, str] = {}
    for line in (K8S / "secrets.example.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value.replace("PASSWORD", secrets.token_urlsafe(16)) or secrets.token_urlsafe(32)
    return values


def container_env(container: dict[str, Any], config: dict[str, str], keys: dict[str, str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert source.get("configMapRef", {}).get("name") == "helpdesk-config", (
            "config comes from the ConfigMap"
        )
        env |= config
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "helpdesk-secrets" and ref["key"] in keys, (
            f"{item['name']}: undocumented secret key"
        )
        env[item["name"]] = keys[ref["key"]]
    return env


def test_secrets_are_referenced_never_inlined(rendered: list[dict[str, Any]]) -> None:
    assert not by_kind(rendered, "Secret"), "Secrets are created from secrets.example.env, never committed"
    config = by_kind(rendered, "ConfigMap")["helpdesk-config"]["data"]
    keys = set(secret_keys())
    assert not keys & set(config), "a secret in the ConfigMap"
    for key in config:
        assert not any(word in key for word in ("SECRET", "PASSWORD", "DATABASE_URL", "REDIS_URL")), key


@pytest.mark.parametrize("service", sorted(contract.SETTINGS))
def test_each_workload_has_every_setting_its_service_requires(
    rendered: list[dict[str, Any]], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = by_kind(rendered, "ConfigMap")["helpdesk-config"]["data"]
    peers = set(by_kind(rendered, "Service"))
    keys = secret_keys()
    seen = []
    for document in rendered:
        for container in pod_spec(document).get("containers", []):
            if service not in contract.services_run_by(container.get("command", [])):
                continue
            where = f"{document['kind']}/{document['metadata']['name']}"
            env = container_env(container, config, keys)
            settings = contract.build_settings(contract.SETTINGS[service], env, monkeypatch)
            contract.check(settings, service, where, peers)
            seen.append(where)
    assert seen, f"nothing runs {service}"


def test_probes_name_real_routes_on_open_ports(rendered: list[dict[str, Any]]) -> None:
    from services.billing.app import create_app as billing_app
    from services.notifier.app import create_app as notifier_app
    from services.ticket_api.app import create_app as ticket_api_app
    from services.triage.app import create_app as triage_app

    apps = {
        "ticket_api": ticket_api_app,
        "triage": triage_app,
        "notifier": notifier_app,
        "billing": billing_app,
    }
    for document in rendered:
        for container in pod_spec(document).get("containers", []):
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            command = container.get("command", [])
            runs = contract.services_run_by(command)
            for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = container.get(kind)
                if probe is None:
                    continue
                where = f"{document['metadata']['name']} {kind}"
                if "httpGet" in probe:
                    assert probe["httpGet"]["port"] in ports, f"{where}: no such port"
                    path = probe["httpGet"]["path"]
                    if runs:
                        (service,) = runs
                        settings = contract.SETTINGS[service](_env_file=None, env="test")  # type: ignore[call-arg]
                        paths = apps[service](settings).openapi()["paths"]
                        assert path in paths and "get" in paths[path], f"{where}: {path} is no route"
                    else:
                        assert path == "/healthz", where  # the gateway's own (deploy/gateway template)
                elif "exec" in probe:
                    check = probe["exec"]["command"]
                    assert check[:4] == ["python", "-m", "shared.worker_main", "--check"], where
                    assert check[4] == command[-1], f"{where}: checks another worker than it runs"
                else:
                    assert probe["tcpSocket"]["port"] in ports, f"{where}: no such port"
        if document["kind"] == "Deployment" and document["metadata"]["name"] != "inbound-smtp":
            (container,) = pod_spec(document)["containers"]
            assert "livenessProbe" in container, f"{document['metadata']['name']} has no liveness probe"


KEDA = K8S / "components" / "keda"


def test_the_keda_component_scales_each_worker_on_its_queue_instead_of_cpu() -> None:
    spec = yaml.safe_load((KEDA / "kustomization.yaml").read_text())
    assert spec["kind"] == "Component"
    base = load_kustomization(K8S / "base")
    workers = {n for n, d in by_kind(base, "Deployment").items() if n.endswith("-worker")}
    scaled = [d for d in yaml.safe_load_all((KEDA / "scaled-objects.yaml").read_text()) if d]
    assert {d["spec"]["scaleTargetRef"]["name"] for d in scaled} == workers
    for document in scaled:
        worker = document["spec"]["scaleTargetRef"]["name"]
        command = by_kind(base, "Deployment")[worker]["spec"]["template"]["spec"]["containers"][0]["command"]
        (service,) = contract.services_run_by(command)
        (trigger,) = document["spec"]["triggers"]
        assert trigger["type"] == "prometheus"
        assert f'helpdesk_queue_depth{{queue="helpdesk:queue:{service}"}}' in trigger["metadata"]["query"]
    deleted = {yaml.safe_load(p["patch"])["metadata"]["name"] for p in spec["patches"]}
    assert deleted == workers, "KEDA's autoscalers replace exactly the workers' CPU ones"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_an_overlay_with_the_keda_component_renders_and_validates(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(K8S / "overlays" / "prod", tmp_path)],
                "components": [os.path.relpath(KEDA, tmp_path)],
            }
        )
    )
    out = subprocess.run(
        ["kubectl", "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    documents = [d for d in yaml.safe_load_all(out) if d]
    assert len(by_kind(documents, "ScaledObject")) == 4
    assert not [n for n in by_kind(documents, "HorizontalPodAutoscaler") if n.endswith("-worker")]
    for document in documents:
        if document["kind"] != "ScaledObject":  # KEDA's own kind: no schema here
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
