"""The status of jobs and cases, in the one place it is defined, in two forms that agree:

- in Python, for what is already loaded (the case page and its status JSON, the case list, the
  API's payloads): ``job_summary``, ``aggregate_status``, ``case_result``, ``case_status``;
- in SQL, for filtering a queryset without loading it (the API's ``?status=`` and
  ``?positive=``): ``with_status``, ``filter_status``, ``filter_positive``.

A case is done when every image is, failed when all finished and one failed, queued while every
image is queued (or it has none), running otherwise. Its result is that of its finished
images: positive when any is, and the highest probability among them."""

from __future__ import annotations

from django.db import models as db
from django.db.models import Count, F, Q, QuerySet, Value, When

from webapp.cases.models import Case, Job, JobStatus


def aggregate_status(statuses: list[str]) -> str:
    if not statuses:
        return JobStatus.QUEUED
    if all(s == JobStatus.DONE for s in statuses):
        return JobStatus.DONE
    if all(s in (JobStatus.DONE, JobStatus.FAILED) for s in statuses):
        return JobStatus.FAILED
    if all(s == JobStatus.QUEUED for s in statuses):
        return JobStatus.QUEUED
    return JobStatus.RUNNING


def job_summary(job: Job) -> dict:
    return {
        "status": job.status,
        "error": job.error if job.status == JobStatus.FAILED else "",
        "probability": job.probability,
        "positive": job.positive,
        "area_fraction": job.area_fraction,
        "area_cm2": job.area_cm2,
        **findings_summary(job),
        "model_version": job.model_version,
        "timings_ms": job.timings_ms,
        # With the patient's prior film (services.comparison); null without a prior or until done.
        "comparison": job.comparison if job.status == JobStatus.DONE else None,
    }


def findings_summary(job: Job) -> dict:
    """The findings in words (ml.serving.findings) as the API names them; nulls until done and
    where nothing is outlined. ``review_first`` is null until the job is done (a queued, running
    or failed image has not been triaged: neither "read first" nor "can wait")."""
    findings = job.findings or {}
    return {
        "side": findings.get("side"),
        "zones": list(findings.get("zones") or []),
        "rim_depth_mm": findings.get("rim_depth_mm"),
        "large": findings.get("large"),
        "review_first": bool(job.review_first) if job.status == JobStatus.DONE else None,
        "findings": findings,
    }


def case_result(images: list[dict]) -> dict:
    """``status``, ``positive`` and ``max_probability`` of a case from its images' summaries
    (``job_summary``, or anything with its status, positive and probability keys)."""
    done = [i for i in images if i["status"] == JobStatus.DONE]
    return {
        "status": aggregate_status([i["status"] for i in images]),
        "positive": any(i["positive"] for i in done) if done else None,
        "max_probability": max((i["probability"] for i in done), default=None),
    }


def case_status(case: Case) -> dict:
    """Status of a case and each image; the caller adds URLs (they depend on the interface)."""
    # A worklist page prefetches images with their jobs for all its cases at once; use that.
    prefetched = "images" in getattr(case, "_prefetched_objects_cache", {})
    images = list(case.images.all() if prefetched else case.images.select_related("job"))
    summaries = [{"id": str(image.pk), "name": image.original_name, **job_summary(image.job)}
                 for image in images]
    return {"id": str(case.pk), **case_result(summaries), "images": summaries}


# --- the same, in SQL --------------------------------------------------------------------------

def _images(**job) -> Count:
    return Count("images", filter=Q(**{f"images__job__{k}": v for k, v in job.items()}))


def with_status(cases: QuerySet) -> QuerySet:
    """``cases`` annotated with ``case_status`` (as ``aggregate_status``) and the counts that
    ``filter_positive`` reads."""
    cases = cases.annotate(
        n_images=Count("images"), n_done=_images(status=JobStatus.DONE),
        n_failed=_images(status=JobStatus.FAILED), n_queued=_images(status=JobStatus.QUEUED),
        n_positive=_images(status=JobStatus.DONE, positive=True))
    return cases.annotate(case_status=db.Case(
        When(Q(n_images__gt=0, n_done=F("n_images")), then=Value(JobStatus.DONE)),
        When(Q(n_failed__gt=0, n_images=F("n_done") + F("n_failed")), then=Value(JobStatus.FAILED)),
        When(Q(n_queued=F("n_images")), then=Value(JobStatus.QUEUED)),
        default=Value(JobStatus.RUNNING), output_field=db.CharField()))


def filter_status(cases: QuerySet, wanted: str) -> QuerySet:
    """Cases whose status is ``wanted``; ``cases`` must come from ``with_status``."""
    return cases.filter(case_status=wanted)


def filter_positive(cases: QuerySet, positive: bool) -> QuerySet:
    """True: any finished image positive; False: some finished, none positive (as
    ``case_result``); ``cases`` must come from ``with_status``."""
    if positive:
        return cases.filter(n_positive__gt=0)
    return cases.filter(n_done__gt=0, n_positive=0)
