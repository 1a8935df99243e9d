"""deploy/monitoring/alerts.yaml: a valid Prometheus rule file whose every rule names only
metrics the services export (shared/metrics.py), with a severity and a summary."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import shared.metrics  # noqa: F401  (registers the metrics)

RULES = Path(__file__).resolve().parents[2] / "deploy" / "monitoring" / "alerts.yaml"


def exported_names() -> set[str]:
    """Every sample name shared.metrics can expose (counters' _total, histograms' _bucket …)."""
    names: set[str] = set()
    for metric in REGISTRY.collect():
        if metric.name.startswith("helpdesk_"):
            names.add(metric.name)
            names |= {metric.name + suffix for suffix in ("_total", "_bucket", "_count", "_sum", "_created")}
    return names


def test_every_rule_names_exported_metrics_and_says_what_is_wrong() -> None:
    document = yaml.safe_load(RULES.read_text())
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert {r["alert"] for r in rules} >= {
        "HelpdeskQueueGrowing",
        "HelpdeskWorkerNotPolling",
        "HelpdeskOutboxStale",
        "Helpdesk5xxRate",
    }
    exported = exported_names()
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        used = set(re.findall(r"\bhelpdesk_[a-z_]+", rule["expr"]))
        assert used, f"{rule['alert']} uses no Helpdesk metric"
        assert used <= exported, f"{rule['alert']}: {sorted(used - exported)} are not exported"
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
