"""What the metrics tests share (tests/deploy/test_metrics*.py, test_monitoring_files.py): the
token they configure, reading an exposition back with prometheus_client's own parser, a scrape
of the web's /metrics, and the monitoring files in deploy/ with the dashboard's queries."""

import json

from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.support.data import REPO

TOKEN = "s3cret-metrics-token-for-tests"


def samples(text: str) -> dict:
    """{(name, frozenset(labels)): value} of an exposition; the parser fails on a bad one."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(parsed: dict, name: str, **labels):
    return parsed.get((name, frozenset(labels.items())))


def scrape(client=None, token=TOKEN) -> dict:
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return samples(response.content.decode())


DASHBOARD = REPO / "deploy" / "grafana" / "pneumothorax-triage.json"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
FLOWER_METRICS = {"flower_worker_online", "flower_events_total", "flower_task_runtime_seconds"}


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
