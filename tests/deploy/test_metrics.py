"""Prometheus metrics (issue 15): the web's /metrics (bearer token, no login) with the jobs per
status from the test database, the queue lengths from the real Redis and django-prometheus's
request histogram; the worker's job histograms, in-process. Every exposition is read back with
prometheus_client's own parser. Real processes (a worker, gunicorn, Prometheus):
test_metrics_processes.py; the files in deploy/: test_monitoring_files.py."""

import types
import uuid

import pytest
from django.test import Client
from django.urls import reverse

from tests.support.factories import CaseFactory
from tests.support.metrics import TOKEN, scrape, value
from tests.support.stubs import StubPredictor
from webapp.cases.models import Job, JobStatus
from webapp.cases.services.jobs import claim_job, dispatch_job, fail_job


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
