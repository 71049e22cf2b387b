"""The worker's service, run in-process with a stub predictor: results stored, runs are
idempotent, and a file that fails in the worker ends as a failed job with its reason."""

import io

import numpy as np
import pytest
from PIL import Image
from django.urls import reverse

from tests.support.factories import CaseFactory, JobFactory
from webapp.cases.models import Job, JobStatus
from webapp.cases.services import jobs
from webapp.cases.services.pipeline import analyse_job
from webapp.cases.storage import private_storage

pytestmark = pytest.mark.django_db


def png(name):
    with private_storage.open(name, "rb") as handle:
        return np.asarray(Image.open(io.BytesIO(handle.read())))


def test_done_job_stores_probability_mask_overlay_and_timings(owner, stub_predictor):
    job = JobFactory(owner=owner)
    assert analyse_job(job.pk, stub_predictor, worker="w1") == "done"
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.attempts == 1 and job.worker == "w1"
    assert job.probability == 0.9 and job.positive is True and job.model_version == "stub-1"
    assert set(job.timings_ms) >= {"queue_wait", "read", "inference", "render", "store"}
    mask, overlay = png(job.mask.name), png(job.overlay.name)
    assert mask.shape == (1024, 1024) and set(np.unique(mask)) == {0, 255}
    assert overlay.shape == (1024, 1024, 3)
    grey = png(job.image.preview.name)
    # Outside the mask the overlay is the X-ray; inside it is tinted (red > green).
    assert (overlay[600:700, 600:700, 0] == grey[600:700, 600:700]).all()
    inside = overlay[150:250, 200:300].astype(int)
    assert (inside[..., 0] > inside[..., 1]).mean() > 0.9


def test_the_job_records_the_backend_that_ran_the_network(owner, stub_predictor):
    """prediction.backend (ml.serving.backends) is stored with the result; a stand-in predictor
    without one stores nothing."""
    class OnnxPredictor:
        def predict(self, xray):
            prediction = stub_predictor.predict(xray)
            prediction.backend = "onnx"
            return prediction

    job = JobFactory(owner=owner)
    assert analyse_job(job.pk, OnnxPredictor()) == "done"
    assert Job.objects.get(pk=job.pk).backend == "onnx"
    other = JobFactory(owner=owner)
    assert analyse_job(other.pk, stub_predictor) == "done"
    assert Job.objects.get(pk=other.pk).backend == ""


def test_running_twice_gives_one_result(owner, stub_predictor):
    job = JobFactory(owner=owner)
    assert analyse_job(job.pk, stub_predictor) == "done"
    first = Job.objects.get(pk=job.pk)
    assert analyse_job(job.pk, stub_predictor) == "skipped"
    again = Job.objects.get(pk=job.pk)
    assert stub_predictor.calls == 1 and again.attempts == 1 and again.overlay.name == first.overlay.name


def test_stale_run_cannot_overwrite_the_current_one(owner):
    job = JobFactory(owner=owner)
    first = jobs.claim_job(job.pk)
    second = jobs.claim_job(job.pk)  # redelivered, e.g. after the first worker was lost
    assert second.attempts == 2 and second.run_token != first.run_token
    assert not jobs.fail_job(job.pk, first.run_token, "late")
    assert jobs.fail_job(job.pk, second.run_token, "current")
    assert Job.objects.get(pk=job.pk).error == "current"


def test_job_lost_too_often_is_given_up(owner, stub_predictor, settings):
    settings.INFERENCE_MAX_ATTEMPTS = 2
    job = JobFactory(owner=owner)
    jobs.claim_job(job.pk)
    jobs.claim_job(job.pk)  # both runs "died" without finishing
    assert analyse_job(job.pk, stub_predictor) == "skipped"
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "stopped 2 times" in job.error
    assert stub_predictor.calls == 0


def test_worker_side_failure_is_shown_on_case_page(login, owner, make_case, stub_predictor):
    case = make_case(owner)
    image = case.images.get()
    with private_storage.open(image.original.name, "wb") as handle:  # storage corruption
        handle.write(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    assert analyse_job(image.job.pk, stub_predictor) == "failed"
    client = login(owner)
    status = client.get(reverse("cases:status", args=[case.pk])).json()
    assert status["status"] == "failed"
    reason = status["images"][0]["error"]
    assert "damaged or truncated" in reason and status["images"][0]["overlay_url"] is None
    page = client.get(reverse("cases:detail", args=[case.pk]))
    assert page.status_code == 200 and "damaged or truncated" in page.content.decode()


def test_unexpected_error_fails_job_without_leaking_details(owner):
    class Broken:
        def predict(self, xray):
            raise RuntimeError("secret internals")

    job = JobFactory(owner=owner)
    assert analyse_job(job.pk, Broken()) == "failed"
    job.refresh_from_db()
    assert "internal error" in job.error and "secret" not in job.error


def test_deleted_case_job_is_skipped(owner, make_case, stub_predictor):
    case = make_case(owner)
    job_id = case.images.get().job.pk
    case.delete()
    assert analyse_job(job_id, stub_predictor) == "skipped"


def test_stale_queued_jobs_are_found_for_resending(owner, stub_predictor):
    from datetime import timedelta

    from django.utils import timezone

    old, fresh, done = JobFactory.create_batch(3, owner=owner)
    Job.objects.filter(pk__in=[old.pk, done.pk]).update(queued_at=timezone.now() - timedelta(minutes=10))
    analyse_job(done.pk, stub_predictor)
    assert jobs.stale_queued_job_ids(timedelta(minutes=5)) == [old.pk]


def test_lateral_film_that_reached_the_worker_fails_with_the_reason(owner, stub_predictor):
    """Refused at upload; a job queued another way (e.g. before the check existed) fails in the
    worker with the same reason, and the model is never run on it."""
    from tests.support.dicom import chest_dicom

    case = CaseFactory(owner=owner, uploads=[chest_dicom("PA")])
    image = case.images.get()
    lateral = chest_dicom("LL").read()
    with private_storage.open(image.original.name, "wb") as handle:
        handle.write(lateral)
    assert analyse_job(image.job.pk, stub_predictor) == "failed"
    job = Job.objects.get(pk=image.job.pk)
    assert "lateral view (ViewPosition LL): the model reads frontal PA/AP chest films only" in job.error
    assert stub_predictor.calls == 0 and not job.mask.name and job.probability is None


def test_header_recorded_at_upload_counts_in_the_worker(owner, stub_predictor):
    from tests.support.dicom import chest_dicom

    case = CaseFactory(owner=owner, uploads=[chest_dicom(None)])
    image = case.images.get()
    image.metadata = {**image.metadata, "ViewPosition": "RLD"}  # as the upload read it
    image.save(update_fields=["metadata"])
    assert analyse_job(image.job.pk, stub_predictor) == "failed"
    assert "lateral decubitus view (ViewPosition RLD)" in Job.objects.get(pk=image.job.pk).error


def test_dispatch_sends_the_job_by_task_name_with_a_keyword_id(monkeypatch, settings):
    from webapp.celery_app import app

    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, **options: sent.append((name, options)))
    settings.INFERENCE_QUEUE = "gpu"
    jobs.dispatch_job(42)
    [(name, options)] = sent
    assert name == "workers.tasks.analyse_image"
    assert options["kwargs"] == {"job_pk": 42} and "args" not in options
    assert options["queue"] == "gpu"


@pytest.mark.parametrize("sender", ["job", "alert"])
def test_messages_leave_the_time_limits_to_the_worker(settings, sender):
    """Through the real broker, with the tasks registered in this process (as in a worker, or a
    test that imported workers.tasks) under limits of its own: the message names no limit, so
    the worker's INFERENCE_*_TIME_LIMIT apply, the ones its "time limit" message quotes."""
    import os

    from celery.signals import before_task_publish

    import webapp.alerts.tasks
    import workers.tasks
    from webapp.alerts.services import dispatch_alert
    from webapp.celery_app import app

    task = {"job": workers.tasks.analyse_image, "alert": webapp.alerts.tasks.deliver_alert}[sender]
    assert task.soft_time_limit and task.time_limit  # this process's own limits are set
    queue = f"limits-{os.getpid()}"  # nobody consumes it
    settings.INFERENCE_QUEUE = settings.ALERT_QUEUE = queue
    published = []

    def capture(sender=None, headers=None, **kwargs):
        published.append((sender, headers))

    before_task_publish.connect(capture)
    try:
        jobs.dispatch_job(42) if sender == "job" else dispatch_alert(42)
    finally:
        before_task_publish.disconnect(capture)
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)
    [(name, headers)] = published
    assert name == task.name
    assert list(headers["timelimit"]) == [None, None]


@pytest.mark.parametrize("form", ["kwargs", "queued-before-kwargs-positional"])
def test_task_runs_the_job_sent_by_keyword_or_by_position(owner, stub_predictor, monkeypatch, form):
    import workers.model
    from workers.tasks import analyse_image

    monkeypatch.setattr(workers.model, "get_predictor", lambda: stub_predictor)
    job = JobFactory(owner=owner)
    result = analyse_image.run(job_pk=job.pk) if form == "kwargs" else analyse_image.run(job.pk)
    assert result == "done" and Job.objects.get(pk=job.pk).status == JobStatus.DONE
    assert stub_predictor.calls == 1


def test_filesystem_broker_folders_are_made_by_the_celery_app_not_by_settings(tmp_path):
    from types import SimpleNamespace

    from webapp.celery_app import ensure_broker_folders
    from webapp.settings.base import broker_transport_options

    options = broker_transport_options("filesystem://localhost/")
    folder = tmp_path / "broker"
    options.update({name: str(folder / name) for name in
                    ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")})
    assert not folder.exists()
    ensure_broker_folders(SimpleNamespace(broker_url="filesystem://localhost/",
                                          broker_transport_options=options))
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["data_folder_in", "data_folder_out", "processed_folder", "control_folder"])
    ensure_broker_folders(SimpleNamespace(broker_url="redis://127.0.0.1:6379/0",
                                          broker_transport_options={"visibility_timeout": 3600}))
