"""The monitoring files in deploy/: the scrape configuration (deploy/prometheus/prometheus.yml)
and the dashboard's queries (deploy/grafana/*.json): only metrics the product exports, and
promtool's checks where Debian's prometheus package is installed."""

import re
import shutil
import subprocess

import pytest
import yaml
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.support.metrics import FLOWER_METRICS, PROMETHEUS_CONFIG, TOKEN, dashboard_queries


def exported_sample_names(client) -> set[str]:
    """The sample names the product exports: the web's exposition (the worker's histograms are
    in this process's registry once workers.metrics is imported), by family and type."""
    import workers.metrics  # noqa: F401  (registers triage_inference_seconds, ...)

    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    suffixes = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("_total",), "gauge": ("",)}
    return {family.name + suffix
            for family in text_string_to_metric_families(response.content.decode())
            for suffix in suffixes.get(family.type, ("",))}


@pytest.mark.django_db
def test_dashboard_queries_use_only_metrics_that_are_exported(settings):
    settings.METRICS_TOKEN = TOKEN
    exported = exported_sample_names(Client())
    used = {name for expr in dashboard_queries()
            for name in re.findall(r"\b((?:triage|django|flower)_[a-z_]+)", expr)}
    assert {"triage_jobs", "triage_queue_length", "triage_inference_seconds_bucket",
            "triage_end_to_end_seconds_bucket",
            "django_http_requests_latency_seconds_by_view_method_bucket"} <= used
    assert used - exported - FLOWER_METRICS == set()


def test_prometheus_config_scrapes_the_web_with_a_bearer_token_the_workers_and_flower():
    jobs = {job["job_name"]: job for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]}
    assert set(jobs) == {"triage-web", "triage-worker", "flower"}
    web = jobs["triage-web"]
    assert web["metrics_path"] == "/metrics" and web["authorization"]["type"] == "Bearer"
    assert "credentials_file" in web["authorization"]  # the token is not in the file itself


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian: prometheus) not installed")
def test_promtool_accepts_the_config_and_every_dashboard_query(tmp_path):
    token = tmp_path / "token"
    token.write_text(TOKEN)
    config = PROMETHEUS_CONFIG.read_text().replace("/etc/prometheus/secrets/triage-metrics-token",
                                                   str(token))
    (tmp_path / "prometheus.yml").write_text(config)
    checked = subprocess.run(["promtool", "check", "config", str(tmp_path / "prometheus.yml")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": expr} for i, expr in enumerate(dashboard_queries())]}]}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    checked = subprocess.run(["promtool", "check", "rules", str(tmp_path / "rules.yml")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
