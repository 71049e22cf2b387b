"""A whole worker (main process and pool) SIGKILLed in the middle of a review-first film's job,
then restarted under its own name: the job is sent again and finishes once, and the film
alerts once. The real model on a real positive DICOM of the shared set, a real receiver on
loopback that verifies the signature; the worker (test entry point with the fault hook)
consumes the inference and the alert queues, on a Redis database of its own."""

import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.support.alerts import SECRET, WebhookReceiver
from tests.support.connections import process_environment, use_broker
from tests.support.data import ARTIFACTS, SHARED_IMAGES
from tests.support.fault_fixtures import SLOW_S
from tests.support.pages import upload_through_page
from tests.support.processes import FAULT_APP, CeleryWorker
from tests.support.waiting import wait_for_jobs, wait_until
from webapp.alerts.models import Alert, AlertStatus
from webapp.cases.models import Job, JobStatus

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The model calls this film positive (p = 0.998): review first.
POSITIVE_DICOM = SHARED_IMAGES / "1.2.276.0.7230010.3.1.4.8323329.6319.1517875197.587372.dcm"
# A full-size DICOM on a busy 2-core machine: more time than the fault suite's small PNGs get.
SOFT_LIMIT_S, HARD_LIMIT_S = 90, 120


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def alerting_worker(django_db_setup, own_redis, receiver, settings):
    # Database 7 of our own Redis: the session's fault worker (database 0) never sees these.
    broker = own_redis.url.rsplit("/", 1)[0] + "/7"
    env = process_environment(
        settings, broker=broker, ALERT_WEBHOOK_URL=receiver.url, ALERT_WEBHOOK_SECRET=SECRET,
        ALERT_BACKOFF_S="0.3", ALERT_BACKOFF_MAX_S="1", INFERENCE_SOFT_TIME_LIMIT=str(SOFT_LIMIT_S),
        INFERENCE_HARD_TIME_LIMIT=str(HARD_LIMIT_S), TRIAGE_TEST_FAULTS="1",
        TRIAGE_TEST_SLOW_S=str(SLOW_S))
    worker = CeleryWorker(env, ARTIFACTS / "alert-kill-worker.log", app=FAULT_APP,
                          hostname=f"alert-kill-{os.getpid()}@%h",
                          options=("--without-heartbeat",))
    worker.start()
    previous = use_broker(broker)
    try:
        yield worker
    finally:
        use_broker(previous)
        worker.kill_all()  # nothing is in flight any more: no need to wait for a warm shutdown


def test_a_whole_worker_killed_mid_job_still_alerts_once(alerting_worker, receiver, login, owner):
    data = POSITIVE_DICOM.read_bytes()
    case_id = upload_through_page(login(owner), [SimpleUploadedFile("fault-slow-alert.dcm", data)])
    job_id = Job.objects.get(image__case_id=case_id).pk
    wait_until(lambda: Job.objects.get(pk=job_id).status == JobStatus.RUNNING, 60, what="running")
    alerting_worker.kill_all()  # main process and pool at once: no ack, no clean-up

    alerting_worker.start(same_name=True)  # resends the job it left running
    wait_for_jobs([job_id], timeout=180)
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.DONE and job.attempts == 2 and job.review_first
    wait_until(lambda: Alert.objects.filter(image_id=job.image_id,
                                            status=AlertStatus.DELIVERED).exists(),
               timeout=60, poll=0.1, what="the alert delivered")
    [alert] = Alert.objects.filter(image_id=job.image_id)
    assert alert.reason == "positive" and alert.attempts == 1
    [received] = receiver.for_image(str(job.image_id))
    assert received.signature_valid and received.delivery_id == str(alert.pk)
