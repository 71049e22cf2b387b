"""Thin tasks: ids in, a service call, nothing else. Delivery guarantees (acks_late, reject on
worker lost, prefetch 1, time limits) come from settings; idempotence comes from the guarded
state transitions in webapp.cases.services.jobs. A worker on the gpu queue runs analyse_image's
messages in batches (analyse_images_batch; how it acknowledges them: workers.batching)."""

import logging

from django.db import DatabaseError

from workers.celery_app import app

try:
    from workers import batching  # celery-batches: the gpu queue's batches (issue 15)
except ModuleNotFoundError as missing:  # without it a gpu worker runs its jobs one at a time
    if missing.name != "celery_batches":  # (workers.startup says so at start-up)
        raise
    batching = None


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


def _schedule_deliveries(outcomes: dict) -> None:
    from webapp.pacs.services.delivery import schedule_delivery_for_job

    for job_pk, outcome in outcomes.items():
        if outcome not in ("done", "failed"):
            continue
        try:
            schedule_delivery_for_job(job_pk)
        except DatabaseError:  # the results are stored; one case's delivery must not stop the rest
            logging.getLogger(__name__).warning("job %s: could not schedule its PACS delivery "
                                                "(database unavailable)", job_pk)


if batching is not None:
    @app.task(name=batching.BATCH_TASK, base=batching.AcksLateBatches, bind=True,
              acks_late=True, reject_on_worker_lost=True)
    def analyse_images_batch(self, requests) -> dict:
        # The gpu queue's jobs, several at a time (workers.batching): ``requests`` are
        # celery-batches' SimpleRequests, each the message of one job (analyse_image's, routed
        # here, or this task's own), job id only. Acknowledged once this returns.
        from webapp.cases.services.pipeline import analyse_jobs
        from workers.model import get_predictor

        job_ids = [job_id for job_id in map(batching.job_id_of, requests) if job_id is not None]
        worker = next((r.hostname for r in requests if r.hostname), "")
        try:
            outcomes = analyse_jobs(job_ids, get_predictor(), worker=worker)
        except DatabaseError:
            batching.send_again_later(requests, analyse_image.max_retries)
            return {}
        _schedule_deliveries(outcomes)
        return outcomes


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


@app.task(name="workers.tasks.validate_model_upload", acks_late=True, reject_on_worker_lost=True,
          autoretry_for=(DatabaseError,), retry_backoff=2, retry_backoff_max=60, max_retries=8)
def validate_model_upload(model_pk: int) -> str:
    # An admin's upload to the model registry: the web has no torch, so a worker loads the file
    # (as it would to serve it) and marks the candidate valid or invalid.
    from webapp.cases.services.registry import validate_upload

    return validate_upload(model_pk)
