"""Review-first alerts on real parts: a real Celery worker (the light one, no model) sends them
to a real HTTP receiver on loopback that verifies the signature, and to a real SMTP server
(aiosmtpd). The film is a real DICOM of the shared set uploaded through the real page; its job
runs through the real pipeline service with a stub predictor (the call is the test's choice, not
the model's), and its completion triggers the alerts as in production.

The worker and the test send on a queue of their own (not "alerts"), so that no other worker of
the session takes these tasks; the upload's inference job goes to a queue nobody consumes."""

import os
import subprocess
import sys

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.support.alerts import SECRET, AlertWorker, SmtpSink, WebhookReceiver
from tests.support.connections import process_environment
from tests.support.data import ARTIFACTS, REPO, SHARED_IMAGES
from tests.support.factories import TeamFactory
from tests.support.pages import upload_through_page
from tests.support.stubs import StubPredictor
from tests.support.waiting import wait_until
from webapp.alerts.models import Alert, AlertStatus, Channel
from webapp.audit.models import AuditEvent
from webapp.cases.models import Job
from webapp.cases.services.pipeline import analyse_job

pytestmark = [pytest.mark.django_db(transaction=True)]

QUEUE = f"alerts-test-{os.getpid()}"
UNCONSUMED = f"alerts-test-inference-{os.getpid()}"
SITE_URL = "https://triage.example.org"
MAX_RETRIES, BACKOFF_S, BACKOFF_MAX_S = 4, 0.3, 1.0  # gives up after about 3 s
ON_CALL = "on-call-ward7@example.org"
# A positive film whose header names its patient: none of this may reach an alert.
DICOM = SHARED_IMAGES / "1.2.276.0.7230010.3.1.4.8323329.6319.1517875197.587372.dcm"
FILE_NAME = "Doe_Jane_chest_portable.dcm"
NEGATIVE_PNG = SHARED_IMAGES / "1.2.276.0.7230010.3.1.4.8323329.10265.1517875222.899187.png"


@pytest.fixture(scope="module")
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def smtp():
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def alert_worker(django_db_setup, receiver, smtp):
    from django.conf import settings

    env = process_environment(settings, ALERT_QUEUE=QUEUE, ALERT_WEBHOOK_URL=receiver.url,
                              ALERT_WEBHOOK_SECRET=SECRET, EMAIL_URL=smtp.url, SITE_URL=SITE_URL,
                              ALERT_MAX_RETRIES=str(MAX_RETRIES), ALERT_BACKOFF_S=str(BACKOFF_S),
                              ALERT_BACKOFF_MAX_S=str(BACKOFF_MAX_S), ALERT_TIMEOUT_S="5",
                              DEFAULT_FROM_EMAIL="triage@example.org")
    worker = AlertWorker(env, ARTIFACTS / "alert-worker.log", QUEUE).start()
    yield worker
    worker.kill_all()  # nothing is in flight any more: no need to wait for a warm shutdown
    from webapp.celery_app import app

    with app.connection_for_write() as connection:  # the inference jobs nobody ran
        connection.default_channel.queue_delete(UNCONSUMED)


@pytest.fixture(autouse=True)
def queues(settings, alert_worker, receiver):
    settings.ALERT_QUEUE = QUEUE
    settings.INFERENCE_QUEUE = UNCONSUMED
    receiver.status = 200
    if receiver._server is None:
        receiver.start()


@pytest.fixture
def upload(login, owner):
    """Upload a real file through the real page; run its job with a stub predictor (as the
    worker would, through the pipeline service); return the finished job."""
    def post(path=DICOM, name=FILE_NAME, probability=0.97, positive=True):
        case_id = upload_through_page(login(owner), [SimpleUploadedFile(name, path.read_bytes())])
        job = Job.objects.get(image__case_id=case_id)
        assert analyse_job(job.pk, StubPredictor(probability, positive)) == "done"
        job.refresh_from_db()
        return job
    return post


def wait_for_alert(image_id, channel, status=AlertStatus.DELIVERED, timeout=60):
    def reached():
        alert = Alert.objects.filter(image_id=image_id, channel=channel).first()
        return alert is not None and alert.status == status
    wait_until(reached, timeout=timeout, poll=0.05, what=f"a {channel} alert {status}")
    return Alert.objects.get(image_id=image_id, channel=channel)


def identifiers() -> list[str]:
    header = pydicom.dcmread(DICOM, stop_before_pixels=True)
    found = [str(header.PatientID), str(header.PatientName), FILE_NAME, FILE_NAME.rsplit(".", 1)[0]]
    assert all(len(text) > 8 for text in found)  # long enough not to match by chance
    return found


def test_a_review_first_film_reaches_the_webhook_signed_and_the_on_call_email(
        upload, owner, receiver, smtp):
    TeamFactory(members=[owner], on_call_email=ON_CALL)
    job = upload()
    image_id = str(job.image_id)
    webhook = wait_for_alert(image_id, Channel.WEBHOOK)
    email = wait_for_alert(image_id, Channel.EMAIL)
    assert (webhook.reason, webhook.attempts, email.attempts) == ("positive", 1, 1)

    [received] = receiver.for_image(image_id)
    assert received.signature_valid  # the receiver's own HMAC of the exact body matches
    case_url = f"{SITE_URL}/cases/{job.image.case_id}/"
    assert received.payload == {
        "event": "review_first", "alert_id": webhook.pk, "case_url": case_url,
        "image_id": image_id, "reason": "positive", "probability": 0.97,
        "created_at": webhook.created_at.isoformat()}
    assert received.delivery_id == str(webhook.pk)

    [message] = [m for m in smtp.messages if image_id in m["raw"].decode()]
    assert message["to"] == [ON_CALL] and message["email"]["To"] == ON_CALL
    assert message["email"]["From"] == "triage@example.org"
    assert case_url in message["email"].get_content()
    assert message["email"]["Subject"] == "Review first: chest X-ray (pneumothorax found)"

    # No patient identifier, name or file name anywhere: body, headers, e-mail (subject too).
    everything = [received.body.decode(), repr(received.headers), message["raw"].decode()]
    for text in identifiers():
        for sent in everything:
            assert text not in sent
    audit = AuditEvent.objects.filter(action="alert_sent").order_by("pk")
    assert sorted(a.detail["channel"] for a in audit) == ["email", "webhook"]
    for row in audit:
        assert not any(text in repr(row.detail) for text in identifiers() + [ON_CALL])


def test_a_film_that_is_not_review_first_alerts_nobody_and_a_redelivery_alerts_once(
        upload, receiver, smtp):
    from webapp.alerts.services import dispatch_alert
    from webapp.celery_app import app

    negative = upload(path=NEGATIVE_PNG, name="negative.png", probability=0.05, positive=False)
    assert negative.review_first is False
    flagged = upload()
    alert = wait_for_alert(flagged.image_id, Channel.WEBHOOK)
    # The completion's message delivered again (acks_late after a lost worker), and the alert's
    # own task too: neither makes a second alert or sends a second time.
    app.send_task("webapp.alerts.tasks.schedule_alerts", kwargs={"job_pk": flagged.pk}, queue=QUEUE)
    dispatch_alert(alert.pk)
    # One worker, one process, in order: once a later film's alert is in, those have run.
    marker = upload(name="later-film.dcm")
    wait_for_alert(marker.image_id, Channel.WEBHOOK)

    assert not Alert.objects.filter(image_id=negative.image_id).exists()
    assert receiver.for_image(str(negative.image_id)) == []
    assert Alert.objects.filter(image_id=flagged.image_id).count() == 1  # no team e-mail here
    assert len(receiver.for_image(str(flagged.image_id))) == 1
    assert Alert.objects.get(pk=alert.pk).attempts == 1


def test_the_reconciler_makes_the_alert_whose_scheduling_message_was_lost(login, owner, receiver,
                                                                          settings):
    """A worker that died between the result's commit and the alerts' message: the film is done
    and review first, with no alert. The reconciler makes it, once."""
    from datetime import timedelta

    from django.utils import timezone

    from webapp.alerts.reconcile import reconcile_alerts

    # The reconciler's own settings, as the worker's: the webhook is configured.
    settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET = receiver.url, SECRET
    case_id = upload_through_page(login(owner), [SimpleUploadedFile("lost.dcm", DICOM.read_bytes())])
    job = Job.objects.get(image__case_id=case_id)
    # The result as complete_job leaves it, without its on-commit hook (the lost message).
    Job.objects.filter(pk=job.pk).update(status="done", positive=True, probability=0.93,
                                         review_first=True,
                                         finished_at=timezone.now() - timedelta(minutes=10))
    assert not Alert.objects.filter(image_id=job.image_id).exists()
    assert reconcile_alerts(window=timedelta(minutes=5)) == []  # older than the window: left
    [made] = reconcile_alerts(older_than=timedelta(minutes=1))
    alert = wait_for_alert(job.image_id, Channel.WEBHOOK)
    assert alert.pk == made and alert.reason == "positive"
    assert reconcile_alerts(older_than=timedelta(minutes=1)) == []  # made once
    assert len(receiver.for_image(str(job.image_id))) == 1


def test_a_receiver_down_then_up_gets_the_alert_exactly_once(upload, receiver):
    receiver.stop()  # connections refused
    job = upload()
    wait_until(lambda: Alert.objects.filter(image_id=job.image_id, attempts__gte=2).exists(),
               timeout=30, poll=0.05, what="two failed attempts")
    pending = Alert.objects.get(image_id=job.image_id)
    assert pending.status == AlertStatus.PENDING
    assert "could not be reached" in pending.last_error
    receiver.start()

    delivered = wait_for_alert(job.image_id, Channel.WEBHOOK)
    assert delivered.attempts >= 3 and delivered.last_error == ""
    received = receiver.for_image(str(job.image_id))
    assert len(received) == 1 and received[0].signature_valid
    assert list(receiver.distinct(str(job.image_id))) == [str(delivered.pk)]


def test_a_whole_alert_worker_killed_mid_delivery_still_gives_one_alert(
        upload, receiver, alert_worker):
    """SIGKILL of the whole worker (main and pool) while the receiver holds the alert's request:
    the receiver has it, the database does not know. The restarted worker sends it again at
    start-up (not an hour later, when Redis would hand the message back); the copy carries the
    same X-Triage-Delivery id, so a de-duplicating receiver keeps one alert."""
    import threading

    receiver.hold = threading.Event()
    try:
        job = upload()
        wait_until(lambda: receiver.for_image(str(job.image_id)), timeout=30, poll=0.05,
                   what="the receiver to get the alert")
        alert_worker.kill_all()
    finally:
        receiver.hold.set()
        receiver.hold = None
    alert = Alert.objects.get(image_id=job.image_id)
    assert alert.status == AlertStatus.PENDING  # as far as the database knows, not sent

    alert_worker.start(same_name=True)
    delivered = wait_for_alert(job.image_id, Channel.WEBHOOK, timeout=30)
    assert "resent 1 pending alert(s)" in alert_worker.log_text()
    copies = receiver.for_image(str(job.image_id))
    assert len(copies) == 2 and all(c.signature_valid for c in copies)
    assert list(receiver.distinct(str(job.image_id))) == [str(delivered.pk)]  # one alert
    assert Alert.objects.filter(image_id=job.image_id).count() == 1


def test_a_receiver_that_refuses_the_alert_fails_it_at_once_with_the_reason(upload, receiver):
    receiver.status = 400  # the receiver says the request is wrong: retrying cannot help
    job = upload()
    failed = wait_for_alert(job.image_id, Channel.WEBHOOK, status=AlertStatus.FAILED)
    assert failed.attempts == 1 and "HTTP 400" in failed.last_error
    [row] = AuditEvent.objects.filter(action="alert_failed")
    assert row.detail["channel"] == "webhook" and "HTTP 400" in row.detail["error"]


def test_an_alert_that_gave_up_is_shown_to_admins_and_their_retry_delivers_it(
        upload, receiver, administrator, login):
    receiver.status = 503  # down behind its proxy, for longer than the retries last
    job = upload()
    failed = wait_for_alert(job.image_id, Channel.WEBHOOK, status=AlertStatus.FAILED, timeout=60)
    assert failed.attempts == MAX_RETRIES + 1
    assert "HTTP 503" in failed.last_error and "Gave up after" in failed.last_error

    admin = login(administrator)
    changelist = reverse("admin:alerts_alert_changelist")
    listing = admin.get(changelist).content.decode()
    assert "1 alert(s) could not be delivered" in listing
    only_failed = admin.get(changelist, {"status__exact": "failed"}).content.decode()
    assert "HTTP 503" in only_failed and "positive" in only_failed

    receiver.status = 200
    response = admin.post(changelist, {"action": "retry", "_selected_action": [failed.pk]})
    assert response.status_code == 302
    delivered = wait_for_alert(job.image_id, Channel.WEBHOOK)
    assert delivered.attempts == MAX_RETRIES + 2 and delivered.last_error == ""
    assert receiver.for_image(str(job.image_id))[-1].signature_valid
    actions = list(AuditEvent.objects.filter(action__startswith="alert_").order_by("pk")
                   .values_list("action", "user__username"))
    assert actions == [("alert_failed", "owner"), ("alert_retry", "administrator"),
                       ("alert_sent", "owner")]


def test_a_clinician_cannot_see_the_alerts_admin(login, owner):
    assert login(owner).get(reverse("admin:alerts_alert_changelist")).status_code in (302, 403)


def test_the_site_refuses_to_start_with_a_webhook_but_no_secret():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings.test",
           "ALERT_WEBHOOK_URL": "https://receiver.example.org/hook", "ALERT_WEBHOOK_SECRET": ""}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "ALERT_WEBHOOK_SECRET" in result.stderr.strip().splitlines()[-1]


def test_the_reason_says_why_the_film_is_review_first():
    from webapp.alerts.services import alert_reason
    from webapp.cases.models import JobStatus

    def job(**fields):
        return Job(status=JobStatus.DONE, **fields)

    assert alert_reason(job(review_first=True, positive=True)) == "positive"
    assert alert_reason(job(review_first=True, positive=False)) == "above_review_threshold"
    larger = {"trend": "larger", "area_fraction_change": 0.04}
    assert alert_reason(job(review_first=True, positive=True, comparison=larger)) == "larger"
    assert alert_reason(job(review_first=False, positive=False)) is None
    assert alert_reason(Job(status=JobStatus.RUNNING, review_first=True, positive=True)) is None
