"""ops/: the alert rules pass `promtool check rules` and their unit tests (`promtool test rules`), the Prometheus
configuration passes `promtool check config`, and the Grafana dashboard is provisioning-ready. Which metrics
they name is checked against /metrics in tests/test_ops_metrics.py."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
OPS = ROOT / "ops"
PROMETHEUS = OPS / "prometheus"

PROMTOOL = shutil.which("promtool")
# CI installs promtool (.ci/run, Debian package `prometheus`): there a missing one is a failure, not a skip.
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None and not os.environ.get("CI"),
    reason="promtool not installed (Debian package `prometheus`; .ci/run installs it)",
)


def _promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess:
    assert PROMTOOL, "promtool is missing: apt-get install prometheus"
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True)


def _alerts() -> dict[str, dict]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


@needs_promtool
def test_promtool_checks_the_rules_and_the_config():
    rules = _promtool("check", "rules", "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = _promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


@needs_promtool
def test_promtool_unit_tests_of_the_rules_pass():
    result = _promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_can_fail(tmp_path):
    """The unit tests bite: with a threshold moved, the processor-down case no longer holds."""
    shutil.copy(PROMETHEUS / "alerts_test.yml", tmp_path)
    rules = (PROMETHEUS / "alerts.yml").read_text()
    assert "/ evpay:payment_processor_calls:rate5m > 0.5" in rules
    (tmp_path / "alerts.yml").write_text(rules.replace("/ evpay:payment_processor_calls:rate5m > 0.5", "> 100"))
    result = _promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0 and "EvpayPaymentProcessorDown" in result.stdout + result.stderr


def test_every_alert_the_issue_asks_for_has_a_runbook():
    alerts = _alerts()
    assert {
        "EvpayPaymentProcessorDown",
        "EvpayCardDeclineSpike",
        "EvpayCpmsCircuitOpen",
        "EvpayWebhookBacklogAge",
        "EvpayTerminalsOffline",
        "EvpayChargeSessionsStuck",
        "EvpayHigh5xxRate",
        "EvpayWorkerAbsent",
        "EvpayNotReady",
    } <= set(alerts)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), name
        assert "1." in rule["annotations"]["runbook"] and "2." in rule["annotations"]["runbook"], name


def test_every_alert_has_a_unit_test_that_fires_it():
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    fired = {c["alertname"] for t in tests for c in t["alert_rule_test"] if c["exp_alerts"]}
    assert fired == set(_alerts())


def test_dashboard_is_provisioning_ready():
    dashboard = json.loads((OPS / "grafana" / "dashboards" / "evpay.json").read_text())
    assert dashboard["uid"] == "evpay-overview" and "id" not in dashboard
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ["Money flow", "Charging", "Terminals", "CPMS adapters", "Webhooks", "Service (RED)"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]

    provider = yaml.safe_load((OPS / "grafana" / "provisioning" / "dashboards" / "evpay.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert f"./ops/grafana/dashboards:{path}:ro" in compose["services"]["grafana"]["volumes"]
    datasource = yaml.safe_load((OPS / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
