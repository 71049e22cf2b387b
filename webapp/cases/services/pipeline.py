"""What a worker does with one job: claim it, read the stored X-ray, predict, render the mask and
overlay, store them, mark the job done; or mark it failed with a reason a clinician can read.
``analyse_jobs`` does the same for several jobs with one forward pass (the GPU worker's batches)."""

from __future__ import annotations

import logging
import time

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError

from ml.core.errors import XRayError
from webapp.cases.models import Job, JobStatus
from webapp.cases.services import files, rendering
from webapp.cases.services.checks import read_checked
from webapp.cases.services.jobs import claim_job, complete_job, fail_job

log = logging.getLogger(__name__)


def analyse_job(job_id: int, predictor, worker: str = "") -> str:
    """Run one job with a loaded predictor (ml.serving.inference.Predictor or anything with .predict).
    Returns the job's outcome: 'done', 'failed', 'skipped' or 'superseded'."""
    job = claim_job(job_id, worker)
    if job is None:
        return "skipped"
    token = job.run_token
    try:
        return _run(job, token, predictor)
    except DatabaseError:
        raise  # transient: the task retries, and the retry reclaims the job
    except Exception as exc:
        return _failed_by(job.pk, token, exc)


def analyse_jobs(job_ids, predictor, worker: str = "") -> dict[int, str]:
    """Run several jobs with one forward pass (``predictor.predict_batch``), each as
    ``analyse_job`` would: claimed (guarded), read and checked, then rendered, stored and
    completed by the run that holds it. Returns each job's outcome by id, in the order given.

    A file that cannot be read fails its own job only. If the batch's forward pass itself
    raises, its images are predicted one at a time, so that only the image that breaks it fails.
    A job that is already *running* when it arrives was in a run that died (a batch whose worker
    was lost, or a run the reconciler presumed dead): it may be the image that killed it, so it
    runs alone after the batch, claimed only when its turn comes; the others of that batch then
    finish, and the culprit alone is given up after INFERENCE_MAX_ATTEMPTS.
    A DatabaseError propagates (transient): the caller sends the jobs again."""
    ids = list(dict.fromkeys(int(job_id) for job_id in job_ids))  # one job twice: one run
    lost_before = set(Job.objects.filter(pk__in=ids, status=JobStatus.RUNNING)
                      .values_list("pk", flat=True))
    outcomes: dict[int, str] = {}
    runs = []  # (job, xray, timings) of the jobs claimed and read
    for job_id in ids:
        if job_id in lost_before:
            continue
        job = claim_job(job_id, worker)
        if job is None:
            outcomes[job_id] = "skipped"
            continue
        try:
            runs.append((job, *_read(job)))
        except DatabaseError:
            raise
        except Exception as exc:
            outcomes[job_id] = _failed_by(job.pk, job.run_token, exc)
    try:
        results = _predict_each(predictor, [xray for _, xray, _ in runs])
    except SoftTimeLimitExceeded as exc:  # the batch's time is up: each of its jobs says so
        results = [exc] * len(runs)
    for (job, xray, timings), result in zip(runs, results):
        try:
            if isinstance(result, Exception):
                raise result
            outcomes[job.pk] = _finish(job, job.run_token, xray, result, timings)
        except DatabaseError:
            raise
        except Exception as exc:
            outcomes[job.pk] = _failed_by(job.pk, job.run_token, exc)
    if runs:
        log.info("batch of %d job(s) by %s: %s", len(runs), worker or "?",
                 ", ".join(str(job.pk) for job, _, _ in runs))  # ids only
    for job_id in ids:
        if job_id in lost_before:
            outcomes[job_id] = analyse_job(job_id, predictor, worker)
    return {job_id: outcomes[job_id] for job_id in ids}


def _predict_each(predictor, xrays: list) -> list:
    """One prediction (or the exception that stopped it) per X-ray: one forward pass for all;
    if that raises, one image at a time. Out of time or out of database: no second try."""
    if not xrays:
        return []
    try:
        predictions = list(predictor.predict_batch(xrays))
        if len(predictions) != len(xrays):
            raise RuntimeError(f"{len(predictions)} predictions for {len(xrays)} images")
        return predictions
    except (DatabaseError, SoftTimeLimitExceeded):
        raise
    except Exception:
        log.warning("a batch of %d failed; predicting its images one at a time", len(xrays),
                    exc_info=True)
    results = []
    for xray in xrays:
        try:
            results.append(predictor.predict_batch([xray])[0])
        except (DatabaseError, SoftTimeLimitExceeded):
            raise
        except Exception as exc:
            results.append(exc)
    return results


def _failed_by(job_id: int, token: str, exc: Exception) -> str:
    """The run's job failed with ``exc`` (not a DatabaseError): failed, with a readable reason."""
    if isinstance(exc, XRayError):
        return _failed(job_id, token, str(exc))
    if isinstance(exc, SoftTimeLimitExceeded):
        return _failed(job_id, token, "The analysis hit its time limit "
                                      f"({settings.CELERY_TASK_SOFT_TIME_LIMIT} s) and was stopped.")
    if isinstance(exc, FileNotFoundError):
        return _failed(job_id, token, "The stored image file is missing; please upload it again.")
    log.error("job %s failed unexpectedly", job_id, exc_info=exc)  # ids only: no PHI in logs
    return _failed(job_id, token, f"An internal error stopped the analysis (job {job_id}); "
                                  "the service team has the details.")


def _run(job, token: str, predictor) -> str:
    xray, timings = _read(job)
    prediction = predictor.predict(xray)
    return _finish(job, token, xray, prediction, timings)


def _read(job):
    """The job's stored X-ray, checked, and the timings so far (queue wait, read)."""
    timings = {"queue_wait": round((job.started_at - job.queued_at).total_seconds() * 1000, 1)}
    started = time.perf_counter()
    # Checked at upload; checked again, by the same rules and limits, for a job that got here
    # another way (a stored copy changed since). The header read at upload counts too.
    xray = read_checked(files.read(job.image.original.name), job.image.metadata or {})
    timings["read"] = _ms(started)
    return xray, timings


def _finish(job, token: str, xray, prediction, timings: dict) -> str:
    """Render, store and complete one job from its prediction: 'done', or 'superseded' when
    another run holds the job now (its files are removed again)."""
    timings["inference"] = prediction.timings_ms.get("inference", 0.0)

    started = time.perf_counter()
    mask = rendering.mask_png(prediction.mask)
    overlay = rendering.overlay_png(xray.pixels, prediction.mask)
    timings["render"] = _ms(started)

    started = time.perf_counter()
    # Named by run token: a superseded run never overwrites the files of the run that won.
    mask_name = files.save(files.result_name(job.image, "mask", token), mask)
    overlay_name = files.save(files.result_name(job.image, "overlay", token), overlay)
    timings["store"] = _ms(started)

    stored = complete_job(
        job.pk, token, probability=float(prediction.probability), positive=bool(prediction.positive),
        area_fraction=float(prediction.area_fraction),
        area_cm2=None if prediction.area_cm2 is None else float(prediction.area_cm2),
        model_version=prediction.model_version, timings_ms=timings,
        backend=getattr(prediction, "backend", ""),  # ml.serving.backends; stand-ins may have none
        mask_name=mask_name, overlay_name=overlay_name,
        review_first=bool(prediction.review_first), findings=prediction.findings.as_dict(),
    )
    if not stored:
        files.remove([mask_name, overlay_name])
        return "superseded"
    return "done"


def _failed(job_id: int, token: str, reason: str) -> str:
    return "failed" if fail_job(job_id, token, reason) else "superseded"


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
