"""What a worker does with one job: claim it, read the stored X-ray, predict, render the mask and
overlay, store them, mark the job done; or mark it failed with a reason a clinician can read."""

from __future__ import annotations

import logging
import time

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError

from ml.core.errors import XRayError
from ml.core.reading import read_xray
from webapp.cases.services import files, rendering
from webapp.cases.services.jobs import claim_job, complete_job, fail_job
from webapp.cases.services.projection import check_frontal

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
    except XRayError as exc:
        return _failed(job.pk, token, str(exc))
    except SoftTimeLimitExceeded:
        return _failed(job.pk, token, "The analysis hit its time limit "
                                      f"({settings.CELERY_TASK_SOFT_TIME_LIMIT} s) and was stopped.")
    except FileNotFoundError:
        return _failed(job.pk, token, "The stored image file is missing; please upload it again.")
    except DatabaseError:
        raise  # transient: the task retries, and the retry reclaims the job
    except Exception:
        log.exception("job %s failed unexpectedly", job.pk)  # ids only: no PHI in logs
        return _failed(job.pk, token, f"An internal error stopped the analysis (job {job.pk}); "
                                      "the service team has the details.")


def _run(job, token: str, predictor) -> str:
    timings = {"queue_wait": round((job.started_at - job.queued_at).total_seconds() * 1000, 1)}
    started = time.perf_counter()
    xray = read_xray(files.read(job.image.original.name))
    # Refused at upload; checked again for a job that got here another way. The header read at
    # upload (image.metadata) counts too, in case the stored file's header lost the field.
    check_frontal(xray.metadata)
    check_frontal(job.image.metadata or {})
    timings["read"] = _ms(started)

    prediction = predictor.predict(xray)
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
