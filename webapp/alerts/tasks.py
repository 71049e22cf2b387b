"""Thin alert tasks: ids in, a service call (webapp.alerts.services), the retry schedule. They run
on the ``alerts`` queue (ALERT_QUEUE), network work with no model: the web image's light worker
(dicom-sender in docker-compose.yml and deploy/kubernetes) and scripts/run's worker consume it.

acks_late + reject_on_worker_lost: a worker killed mid-delivery gets the message back; the
alert's guarded state (pending -> delivered, under its row lock) makes the second run send only
what the first did not mark delivered."""

import logging

from celery.signals import celeryd_after_setup
from django.conf import settings
from django.db import DatabaseError

from webapp.celery_app import app

log = logging.getLogger(__name__)


@app.task(name="webapp.alerts.tasks.schedule_alerts", acks_late=True, reject_on_worker_lost=True,
          autoretry_for=(DatabaseError,), retry_backoff=2, retry_backoff_max=60, max_retries=8)
def schedule_alerts(job_pk: int) -> int:
    # Decides from the committed job: review first or not, which channels. Idempotent.
    from webapp.alerts.services import schedule_alerts as schedule

    return len(schedule(job_pk))


@app.task(name="webapp.alerts.tasks.deliver_alert", bind=True, acks_late=True,
          reject_on_worker_lost=True, autoretry_for=(DatabaseError,), retry_backoff=2,
          retry_backoff_max=60, max_retries=20)
def deliver_alert(self, alert_pk: int) -> str:
    # While the receiver is down (a 5xx, 408/429, a timeout, a refused connection) the task comes
    # back with exponential backoff, ALERT_MAX_RETRIES times; then the alert is failed, visibly,
    # for an administrator to retry. A permanent refusal (another 4xx) fails it at once.
    from webapp.alerts.services import DeliveryError, deliver, give_up

    try:
        return deliver(alert_pk)
    except DeliveryError as exc:
        attempt = self.request.retries
        if attempt >= settings.ALERT_MAX_RETRIES:
            give_up(alert_pk, f"{exc} Gave up after {attempt + 1} attempts.")
            return "failed"
        countdown = min(settings.ALERT_BACKOFF_S * 2 ** attempt, settings.ALERT_BACKOFF_MAX_S)
        raise self.retry(exc=exc, countdown=countdown, max_retries=None)


@celeryd_after_setup.connect
def resend_pending_alerts(sender, instance, conf, **kwargs):
    # A worker that consumes the alert queue starts: the alerts its previous life was sending
    # when it was killed go out now, not after the broker's visibility timeout (an hour).
    if settings.ALERT_QUEUE not in instance.app.amqp.queues.consume_from:
        return
    from django.db import connections

    from webapp.alerts.services import resend_pending_alerts as resend

    try:
        resend()
    except DatabaseError as exc:  # sent on the next start, or by an administrator's retry
        log.warning("could not look for pending alerts (database unavailable: %s)", exc)
    finally:
        connections.close_all()  # pool processes fork from this one: no shared connection
