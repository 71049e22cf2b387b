"""Metrics from real processes: a real worker's job histograms on its own port after a real
upload, two gunicorn workers counted together (multiprocess mode), and a real Prometheus
scraping gunicorn on the production settings with the documented scrape job, where Debian's
prometheus package is installed."""

import shutil
import subprocess
import uuid

import pytest
import requests
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.support.connections import process_environment
from tests.support.data import ARTIFACTS, subset_image
from tests.support.factories import CaseFactory
from tests.support.metrics import (PROMETHEUS_CONFIG, TOKEN, dashboard_queries, samples, scrape,
                                   value)
from tests.support.pages import upload_through_page
from tests.support.processes import CeleryWorker, free_port
from tests.support.waiting import wait_until
from webapp.cases.models import Job


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
        # The pool process observes the job after its task returns (task_postrun), a moment
        # after the row says done: scrape again until it has, as Prometheus's next scrape would.
        scraped = []

        def observed():
            scraped.append(samples(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text))
            return value(scraped[-1], "triage_end_to_end_seconds_count", queue=private_queue,
                         outcome="done") is not None

        wait_until(observed, timeout=30, poll=0.2, what="the job's figures on the worker's port")
        after = scraped[-1]
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
    """Two gunicorn workers with PROMETHEUS_MULTIPROC_DIR (docs/operate/metrics.md): a scrape
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
