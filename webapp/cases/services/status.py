"""Status of jobs and cases as plain data (the JSON status view, the history page, the API)."""

from __future__ import annotations

from webapp.cases.models import Case, Job, JobStatus


def aggregate_status(statuses: list[str]) -> str:
    """A case is done when every image is, failed when all finished and one failed."""
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
        "model_version": job.model_version,
        "timings_ms": job.timings_ms,
    }


def case_status(case: Case) -> dict:
    """Status of a case and each image; the caller adds URLs (they depend on the interface)."""
    images = list(case.images.select_related("job"))
    summaries = [{"id": str(image.pk), "name": image.original_name, **job_summary(image.job)}
                 for image in images]
    done = [s for s in summaries if s["status"] == JobStatus.DONE]
    return {
        "id": str(case.pk),
        "status": aggregate_status([s["status"] for s in summaries]),
        "positive": any(s["positive"] for s in done) if done else None,
        "max_probability": max((s["probability"] for s in done), default=None),
        "images": summaries,
    }
