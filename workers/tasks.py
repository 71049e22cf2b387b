"""Thin tasks: ids in, a service call, nothing else. Delivery guarantees (acks_late, reject on
worker lost, prefetch 1, time limits) come from settings; idempotence comes from the guarded
state transitions in webapp.cases.services.jobs."""

from django.db import DatabaseError

from workers.celery_app import app


@app.task(name="workers.tasks.analyse_image", bind=True, acks_late=True,
          reject_on_worker_lost=True, autoretry_for=(DatabaseError,), retry_backoff=2,
          retry_backoff_max=60, max_retries=8)
def analyse_image(self, job_pk: int) -> str:
    # The web sends kwargs={"job_pk": id}; a message queued before that (args=[id]) binds the
    # same parameter by position.
    from webapp.cases.services.pipeline import analyse_job
    from workers.model import get_predictor

    outcome = analyse_job(job_pk, get_predictor(), worker=self.request.hostname or "")
    if outcome in ("done", "failed"):
        # A case that came from a PACS goes back there once its last job has finished.
        from webapp.pacs.services.delivery import schedule_delivery_for_job

        schedule_delivery_for_job(job_pk)
    return outcome


@app.task(name="workers.tasks.deliver_results", bind=True, acks_late=True,
          reject_on_worker_lost=True, autoretry_for=(DatabaseError,), retry_backoff=2,
          retry_backoff_max=60, max_retries=20)
def deliver_results(self, delivery_pk: int) -> str:
    # Network work, no model: runs on the "dicom" queue (webapp.pacs.services.delivery). While
    # the PACS is down the task comes back with exponential backoff, a bounded number of times;
    # then the delivery is failed, visibly, for an administrator to retry.
    from django.conf import settings

    from webapp.pacs.services.delivery import deliver, give_up
    from webapp.pacs.services.sending import PacsUnavailable

    try:
        return deliver(delivery_pk)
    except PacsUnavailable as exc:
        attempt = self.request.retries
        if attempt >= settings.DICOM_DELIVERY_MAX_RETRIES:
            give_up(delivery_pk, f"{exc} Gave up after {attempt + 1} attempts.")
            return "failed"
        countdown = min(settings.DICOM_DELIVERY_BACKOFF_S * 2 ** attempt,
                        settings.DICOM_DELIVERY_BACKOFF_MAX_S)
        raise self.retry(exc=exc, countdown=countdown, max_retries=None)
