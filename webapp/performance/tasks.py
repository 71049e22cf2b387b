"""Thin task: the drift alarm's delivery on one channel, on the alerts queue (the light worker
that sends review-first alerts), retried with the alerts' backoff while the receiver is down."""

from django.conf import settings
from django.db import DatabaseError

from webapp.celery_app import app


@app.task(name="webapp.performance.tasks.deliver_drift_alarm", bind=True, acks_late=True,
          reject_on_worker_lost=True, autoretry_for=(DatabaseError,), retry_backoff=2,
          retry_backoff_max=60, max_retries=20)
def deliver_drift_alarm(self, alarm_pk: int, channel: str) -> str:
    from webapp.alerts.services import DeliveryError
    from webapp.performance.notify import deliver, give_up

    try:
        return deliver(alarm_pk, channel)
    except DeliveryError as exc:
        attempt = self.request.retries
        if attempt >= settings.ALERT_MAX_RETRIES:
            give_up(alarm_pk, channel, f"{exc} Gave up after {attempt + 1} attempts.")
            return "failed"
        countdown = min(settings.ALERT_BACKOFF_S * 2 ** attempt, settings.ALERT_BACKOFF_MAX_S)
        raise self.retry(exc=exc, countdown=countdown, max_retries=None)
