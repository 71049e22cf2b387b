"""Job state transitions, each guarded by the state it expects (queued -> running ->
done | failed), and sending jobs to the queue.

A run *claims* a job and gets a fresh ``run_token``; only the run holding the current token may
write the result. So a job delivered twice (acks_late after a worker crash, or a reconciler
sending it again) yields one result, and a finished job is never run again.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webapp.cases.models import TERMINAL_STATUSES, Job, JobStatus
from webapp.cases.services import comparison

log = logging.getLogger(__name__)

ANALYSE_TASK = "workers.tasks.analyse_image"


def claim_job(job_id: int, worker: str = "") -> Job | None:
    """queued -> running (or running again after a lost worker). None: nothing to do."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status in TERMINAL_STATUSES:
            return None  # deleted meanwhile, or already finished by an earlier delivery
        if job.status == JobStatus.RUNNING and job.attempts >= settings.INFERENCE_MAX_ATTEMPTS:
            # Delivered again after every earlier run died: a poison file must not loop forever.
            _finish_failed(job, f"The analysis stopped {job.attempts} times without finishing "
                                "(its worker was lost or it hit the hard time limit); it was "
                                "given up.")
            return None
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.run_token = uuid.uuid4().hex
        job.worker = worker[:200]
        job.started_at = timezone.now()
        job.error = ""
        job.save(update_fields=["status", "attempts", "run_token", "worker", "started_at", "error"])
        return job


def complete_job(job_id: int, run_token: str, *, probability: float, positive: bool,
                 area_fraction: float, area_cm2: float | None, model_version: str,
                 timings_ms: dict, mask_name: str, overlay_name: str,
                 review_first: bool = False, findings: dict | None = None, backend: str = "") -> bool:
    """running -> done, only for the run that holds the job. False: the result is not ours.
    ``backend``: how the network ran (ml.serving.backends: torch, torch-bf16, onnx)."""
    with transaction.atomic():
        job = _locked_running(job_id, run_token)
        if job is None:
            return False
        job.probability, job.positive = probability, positive
        job.area_fraction, job.area_cm2 = area_fraction, area_cm2
        job.model_version, job.timings_ms = model_version, timings_ms
        job.backend = backend[:32]
        job.review_first, job.findings = review_first, findings or {}
        job.mask.name, job.overlay.name = mask_name, overlay_name
        # Against the patient's prior film, in this transaction: the comparison and the review
        # first it may add are saved with the result, never a moment after it.
        comparison.apply_comparison(job)
        job.status = JobStatus.DONE
        job.finished_at = timezone.now()
        job.save()
        if job.review_first:
            # After commit, the alert worker reads the stored job and alerts the configured
            # channels (webapp.alerts.services), once per film and channel however often the
            # job is completed or its message delivered.
            from webapp.alerts.services import schedule_alerts_on_commit

            schedule_alerts_on_commit(job.pk)
        return True


def fail_job(job_id: int, run_token: str | None, reason: str) -> bool:
    """running -> failed for the run holding the job; with no token, queued -> failed."""
    with transaction.atomic():
        if run_token is None:
            job = Job.objects.select_for_update().filter(pk=job_id, status=JobStatus.QUEUED).first()
        else:
            job = _locked_running(job_id, run_token)
        if job is None:
            return False
        _finish_failed(job, reason)
        return True


def _locked_running(job_id: int, run_token: str) -> Job | None:
    return Job.objects.select_for_update().filter(
        pk=job_id, status=JobStatus.RUNNING, run_token=run_token).first()


def _finish_failed(job: Job, reason: str) -> None:
    job.status = JobStatus.FAILED
    job.error = reason[:2000]
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "error", "finished_at"])


def stale_queued_job_ids(older_than: timedelta) -> list[int]:
    """Jobs still queued after ``older_than``: candidates to send again (the database is the
    source of truth; a message lost with a broker can be re-sent, and a duplicate is harmless)."""
    cutoff = timezone.now() - older_than
    return list(Job.objects.filter(status=JobStatus.QUEUED, queued_at__lt=cutoff)
                .order_by("queued_at").values_list("pk", flat=True))


def dispatch_job(job_id: int) -> None:
    """Send the job to the queue, by id only (no file, no patient data in the message). The
    message names no time limit: the worker that takes it applies its own (celery_app)."""
    from webapp.celery_app import app  # the Celery app is light; no worker code, no torch

    app.send_task(ANALYSE_TASK, kwargs={"job_pk": job_id}, queue=settings.INFERENCE_QUEUE,
                  retry=True,
                  retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5})


def enqueue_job_on_commit(job_id: int) -> None:
    """Send after commit, so the worker never sees a job that is not in the database yet.
    robust=True: a broker outage must not turn a stored upload into an error page; the job
    stays queued in the database (the source of truth) and can be sent again."""
    def send_job():  # a named function: Django logs a robust callback's failure by __qualname__
        dispatch_job(job_id)

    transaction.on_commit(send_job, robust=True)
