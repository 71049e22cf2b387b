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

    return analyse_job(job_pk, get_predictor(), worker=self.request.hostname or "")
