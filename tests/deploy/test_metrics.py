"""Prometheus metrics (issue 15): the web's /metrics (bearer token, no login) with the jobs per
status from the test database, the queue lengths from the real Redis and django-prometheus's
request histogram; the worker's job histograms, in-process and from a real worker's port after a
real upload. Every exposition is read back with prometheus_client's own parser. Then the files
in deploy/: the scrape configuration and the dashboard's queries, checked by promtool and run by
a real Prometheus against a real gunicorn where Debian's prometheus package is installed."""

import json
import re
import shutil
import subprocess
import types
import uuid

import pytest
import requests
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from tests.support.connections import process_environment
from tests.support.data import ARTIFACTS, REPO, subset_image
from tests.support.pages import upload_through_page
from tests.support.factories import CaseFactory
from tests.support.processes import CeleryWorker, free_port
from tests.support.stubs import StubPredictor
from tests.support.waiting import wait_until
from webapp.cases.models import Job, JobStatus
from webapp.cases.services.jobs import claim_job, dispatch_job, fail_job

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


@pytest.fixture
def private_queue(settings):
    """The web sends jobs to a queue of this test's own: no worker of another test takes them,
    and the count read back is exactly what was sent. Emptied afterwards."""
    from webapp.celery_app import app

    name = f"metrics-test-{uuid.uuid4().hex[:8]}"
    settings.INFERENCE_QUEUE = name
    yield name
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(name)


@pytest.mark.django_db
def test_metrics_are_refused_while_no_token_is_configured(settings):
    settings.METRICS_TOKEN = ""
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 403 and b"triage_" not in response.content


@pytest.mark.django_db
def test_metrics_need_the_right_bearer_token_and_no_login(settings):
    settings.METRICS_TOKEN = TOKEN
    client = Client()
    missing = client.get("/metrics")
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {TOKEN}").status_code == 401
    for wrong in ("wrong", TOKEN[:-1], TOKEN + "x"):
        assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {wrong}").status_code == 403
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code in (403, 405)
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


@pytest.mark.django_db
def test_metrics_allowed_networks_limit_the_peer_address(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = ["10.9.0.0/16"]
    header = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics", **header).status_code == 403
    assert Client(REMOTE_ADDR="10.9.8.7").get("/metrics", **header).status_code == 200


@pytest.mark.django_db
def test_exposition_has_jobs_by_status_queue_lengths_and_request_latency(settings, owner, login,
                                                                         private_queue):
    settings.METRICS_TOKEN = TOKEN
    done = [CaseFactory(owner=owner, predictor=StubPredictor()) for _ in range(2)]
    queued = [CaseFactory(owner=owner).images.get().job for _ in range(4)]
    assert claim_job(queued[0].pk, "w") is not None  # one running
    assert fail_job(queued[1].pk, None, "refused")  # one failed
    for job in queued[2:]:  # the two still queued: really sent to Redis, as on commit
        dispatch_job(job.pk)
    dispatch_job(queued[2].pk)  # a job sent twice (a reconciler's resend) is two messages
    assert login(owner).get(reverse("cases:list")).status_code == 200  # a request to measure

    parsed = scrape()
    expected = {"queued": 2, "running": 1, "done": 2, "failed": 1}
    assert Job.objects.filter(image__case__in=done, status=JobStatus.DONE).count() == 2
    for status, count in expected.items():
        assert value(parsed, "triage_jobs", status=status) == count, status
    for status in ("pending", "sending", "delivered", "failed", "nothing"):
        assert value(parsed, "triage_pacs_deliveries", status=status) == 0
    assert value(parsed, "triage_queue_length", queue=private_queue) == 3
    for queue in ("cpu", "gpu", "dicom"):
        assert value(parsed, "triage_queue_length", queue=queue) is not None
    assert value(parsed, "triage_metrics_source_up", source="database") == 1
    assert value(parsed, "triage_metrics_source_up", source="broker") == 1
    # django-prometheus: the latency histogram by view and method, the worklist request counted
    assert value(parsed, "django_http_requests_latency_seconds_by_view_method_count",
                 view="cases:list", method="GET") >= 1
    assert value(parsed, "django_http_requests_latency_seconds_by_view_method_bucket",
                 view="cases:list", method="GET", le="+Inf") >= 1


@pytest.mark.django_db
def test_a_broker_that_is_down_leaves_the_database_figures(settings, monkeypatch, owner):
    import time

    settings.METRICS_TOKEN = TOKEN
    CaseFactory(owner=owner)
    monkeypatch.setenv("CELERY_BROKER_READ_URL", "redis://127.0.0.1:1/0")  # nothing listens
    started = time.monotonic()
    parsed = scrape()
    assert time.monotonic() - started < 8  # within Prometheus's default scrape timeout
    assert value(parsed, "triage_metrics_source_up", source="broker") == 0
    assert not [key for key in parsed if key[0] == "triage_queue_length"]
    assert value(parsed, "triage_jobs", status="queued") == 1


@pytest.mark.django_db
def test_the_worker_hook_observes_a_finished_job(owner):
    """The task_postrun receiver, in-process, against a real job finished by the real pipeline
    service (the real worker is below): inference from timings_ms, end to end from the row."""
    from prometheus_client import REGISTRY

    from workers import metrics

    def count(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0

    queue = f"hook-{uuid.uuid4().hex[:6]}"
    job = CaseFactory(owner=owner, predictor=StubPredictor()).images.get().job
    failed = CaseFactory(owner=owner).images.get().job
    fail_job(failed.pk, None, "refused")
    task = types.SimpleNamespace(name=metrics.ANALYSE_TASK,
                                 request=types.SimpleNamespace(delivery_info={"routing_key": queue}))
    metrics._observe_finished_task(task=task, args=(), kwargs={"job_pk": job.pk}, retval="done")
    metrics._observe_finished_task(task=task, args=(failed.pk,), kwargs={}, retval="failed")
    metrics._observe_finished_task(task=task, args=(), kwargs={"job_pk": job.pk}, retval="skipped")
    # The gpu queue's batch task (workers.batching): {job id: outcome} for its messages.
    batch_queue = f"{queue}-batch"
    batch = types.SimpleNamespace(name=metrics.BATCH_TASK, request=types.SimpleNamespace())
    message = types.SimpleNamespace(kwargs={"job_pk": job.pk}, args=[],
                                    delivery_info={"routing_key": batch_queue})
    metrics._observe_finished_task(task=batch, args=([message],), kwargs={},
                                   retval={job.pk: "done", failed.pk: "skipped"})

    job.refresh_from_db()
    assert count("triage_inference_seconds_count", queue=queue) == 1
    assert count("triage_inference_seconds_sum", queue=queue) == pytest.approx(
        job.timings_ms["inference"] / 1000)
    assert count("triage_end_to_end_seconds_count", queue=queue, outcome="done") == 1
    assert count("triage_end_to_end_seconds_sum", queue=queue, outcome="done") == pytest.approx(
        (job.finished_at - job.queued_at).total_seconds())
    assert count("triage_end_to_end_seconds_count", queue=queue, outcome="failed") == 1
    assert count("triage_inference_seconds_count", queue=batch_queue) == 1
    assert count("triage_end_to_end_seconds_count", queue=batch_queue, outcome="done") == 1
    assert count("triage_end_to_end_seconds_count", queue=batch_queue, outcome="failed") == 0


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_serves_its_job_histograms_after_a_real_upload(settings, login, owner,
                                                                    wait_for_case, private_queue):
    """A real ``celery -A workers worker`` with WORKER_METRICS_PORT, consuming this test's queue
    (and "cpu", so that it loads the model; the gpu queue's batches are the in-process test's):
    the upload's job runs in its prefork pool process and the main process serves the figures
    (prometheus_client multiprocess mode)."""
    settings.METRICS_TOKEN = TOKEN
    port = free_port()
    worker = CeleryWorker(process_environment(settings, WORKER_METRICS_PORT=str(port),
                                              WORKER_METRICS_ADDRESS="127.0.0.1"),
                          ARTIFACTS / "metrics-worker.log", hostname=f"metrics-{uuid.uuid4().hex[:6]}@%h",
                          options=("-Q", f"cpu,{private_queue}"))
    worker.start()
    try:
        before = samples(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
        assert value(before, "triage_inference_seconds_count", queue=private_queue) is None

        client = login(owner)
        path = subset_image("dcm")
        case_id = upload_through_page(client, [SimpleUploadedFile(path.name, path.read_bytes())])
        payload = wait_for_case(client, case_id)
        assert payload["status"] == "done", payload["images"][0]["error"]

        job = Job.objects.get(image_id=payload["images"][0]["id"])
        after = samples(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
    finally:
        worker.stop()
    assert value(after, "triage_inference_seconds_count", queue=private_queue) == 1
    assert value(after, "triage_inference_seconds_sum", queue=private_queue) == pytest.approx(
        job.timings_ms["inference"] / 1000)
    assert value(after, "triage_end_to_end_seconds_count", queue=private_queue, outcome="done") == 1
    assert value(after, "triage_end_to_end_seconds_sum", queue=private_queue,
                 outcome="done") == pytest.approx((job.finished_at - job.queued_at).total_seconds())
    assert value(scrape(client), "triage_jobs", status="done") == 1
    assert "metrics on 127.0.0.1:" in worker.log_text()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_gunicorn_workers_are_counted_together_in_multiprocess_mode(settings, tmp_path):
    """Two gunicorn workers with PROMETHEUS_MULTIPROC_DIR (deploy/README.md, "Metrics"): a scrape
    reaches one of them and still counts the requests that both served."""
    from tests.support.processes import start_gunicorn, stop_process

    port = free_port()
    env = process_environment(settings, METRICS_TOKEN=TOKEN,
                              PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    gunicorn = start_gunicorn(env, port, ARTIFACTS / "metrics-gunicorn-workers.log",
                              "--workers", "2", ready_path="/metrics")
    try:
        session = requests.Session()  # fresh connections: gunicorn hands them to either worker
        for _ in range(20):
            assert requests.get(f"http://127.0.0.1:{port}/login/", timeout=10).status_code == 200
        counts = set()
        for _ in range(6):
            text = session.get(f"http://127.0.0.1:{port}/metrics", timeout=10,
                               headers={"Authorization": f"Bearer {TOKEN}"}).text
            counts.add(value(samples(text), "django_http_requests_latency_seconds_by_view_method_count",
                             view="login", method="GET"))
        assert counts == {20}
        assert len({path.name.rsplit("_", 1)[-1] for path in tmp_path.glob("*.db")}) == 2  # 2 pids
    finally:
        stop_process(gunicorn)


# --- The monitoring files: deploy/prometheus/prometheus.yml, deploy/grafana/*.json ----------------

DASHBOARD = REPO / "deploy" / "grafana" / "pneumothorax-triage.json"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
FLOWER_METRICS = {"flower_worker_online", "flower_events_total", "flower_task_runtime_seconds"}


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


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


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus (Debian) not installed")
@pytest.mark.django_db(transaction=True)
def test_a_real_prometheus_scrapes_gunicorn_on_production_settings(settings, owner, tmp_path,
                                                                   private_queue):
    """The documented scrape job, as it is (bearer token from a file, plain HTTP), run by a real
    Prometheus against a real gunicorn on the production settings (HTTPS redirect on: /metrics
    is exempt); then every dashboard query evaluates."""
    from tests.support.processes import start_gunicorn, stop_process, wait_until_serving

    CaseFactory(owner=owner)  # one job queued (in this test's queue: no worker takes it)
    web_port, prometheus_port = free_port(), free_port()
    env = process_environment(settings, DJANGO_SETTINGS_MODULE="webapp.settings.production",
                              DJANGO_SECRET_KEY="metrics-test-" + uuid.uuid4().hex * 2,
                              DJANGO_ALLOWED_HOSTS="127.0.0.1", METRICS_TOKEN=TOKEN)
    gunicorn = start_gunicorn(env, web_port, ARTIFACTS / "metrics-gunicorn.log",
                              ready_path="/metrics")
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")  # as an editor saves it: Prometheus strips the newline
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    web_job = next(job for job in config["scrape_configs"] if job["job_name"] == "triage-web")
    web_job["authorization"]["credentials_file"] = str(token)
    web_job["static_configs"] = [{"targets": [f"127.0.0.1:{web_port}"]}]
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"}, "scrape_configs": [web_job]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log_path = ARTIFACTS / "metrics-prometheus.log"
    with open(log_path, "wb") as log:
        prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{prometheus_port}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{prometheus_port}/api/v1/query"

    def query(expr):
        answer = requests.get(api, params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", (expr, answer)
        return answer["data"]["result"]

    try:
        wait_until_serving(f"http://127.0.0.1:{prometheus_port}/-/ready", prometheus, log_path,
                           60, "prometheus")
        wait_until(lambda: query('triage_jobs{job="triage-web",status="queued"}'), timeout=60,
                   what="Prometheus to scrape the web")
        assert query('up{job="triage-web"}')[0]["value"][1] == "1"
        assert query('triage_jobs{status="queued"}')[0]["value"][1] == "1"
        for expr in dashboard_queries():
            query(expr)  # valid PromQL over what was scraped
    finally:
        stop_process(prometheus)
        stop_process(gunicorn)
