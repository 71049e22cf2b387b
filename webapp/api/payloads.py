"""Plain-dict payloads of cases, images and batches, built from the pipeline's status services
(``job_summary``, ``aggregate_status``); the API only adds its URLs."""

from __future__ import annotations

from django.db.models import Count, Q
from django.urls import reverse

from webapp.cases.models import CaseImage, Job, JobStatus
from webapp.cases.services.status import aggregate_status, job_summary


def _url(request, name, **kwargs):
    return request.build_absolute_uri(reverse(f"api:{name}", kwargs=kwargs))


def image_payload(request, image: CaseImage) -> dict:
    job = image.job
    summary = job_summary(job)
    done = job.status == JobStatus.DONE
    dicom = done and image.source_format == "dicom"
    ids = {"case_id": image.case_id, "image_id": image.pk}

    def file_url(kind, available=True):
        return _url(request, f"image-{kind}", **ids) if available else None

    return {
        "id": image.pk, "url": _url(request, "image-detail", **ids),
        "name": image.original_name, "position": image.position,
        "source_format": image.source_format, "width": image.width, "height": image.height,
        "sha256": image.sha256,
        **summary,
        "queued_at": job.queued_at, "finished_at": job.finished_at,
        "original_url": file_url("original"), "preview_url": file_url("preview"),
        "mask_url": file_url("mask", done), "overlay_url": file_url("overlay", done),
        "dicom_seg_url": file_url("dicom-seg", dicom), "dicom_sc_url": file_url("dicom-sc", dicom),
    }


def case_payload(request, case) -> dict:
    """``case`` with images (and their jobs) prefetched, or not: both work."""
    images = [image_payload(request, image) for image in case.images.all()]
    done = [i for i in images if i["status"] == JobStatus.DONE]
    link = getattr(case, "api_batch_link", None) if _has_link(case) else None
    return {
        "id": case.pk, "url": _url(request, "case-detail", case_id=case.pk),
        "status": aggregate_status([i["status"] for i in images]),
        "created_at": case.created_at, "owner": case.owner.get_username(),
        "client_reference": case.client_reference,
        "batch": link.batch_id if link else None,
        "positive": any(i["positive"] for i in done) if done else None,
        "max_probability": max((i["probability"] for i in done), default=None),
        "images": images,
    }


def _has_link(case) -> bool:
    from django.core.exceptions import ObjectDoesNotExist

    try:
        case.api_batch_link
    except ObjectDoesNotExist:
        return False
    return True


def batch_progress(batch, expected: int | None) -> dict:
    jobs = Job.objects.filter(image__case__api_batch_link__batch=batch)
    counts = jobs.aggregate(
        images=Count("pk"),
        queued=Count("pk", filter=Q(status=JobStatus.QUEUED)),
        running=Count("pk", filter=Q(status=JobStatus.RUNNING)),
        done=Count("pk", filter=Q(status=JobStatus.DONE)),
        failed=Count("pk", filter=Q(status=JobStatus.FAILED)),
        positive=Count("pk", filter=Q(status=JobStatus.DONE, positive=True)),
    )
    cases = batch.links.count()
    finished = counts["done"] + counts["failed"]
    complete = finished == counts["images"] and (expected is None or cases >= expected) \
        and (cases > 0 or expected == 0)
    return {"cases": cases, **counts,
            "fraction_finished": round(finished / counts["images"], 4) if counts["images"] else 0.0,
            "complete": complete}


def batch_payload(request, batch) -> dict:
    return {
        "id": batch.pk, "url": _url(request, "batch-detail", batch_id=batch.pk),
        "cases_url": request.build_absolute_uri(reverse("api:case-list") + f"?batch={batch.pk}"),
        "label": batch.label, "expected_cases": batch.expected_cases,
        "created_at": batch.created_at, "owner": batch.owner.get_username(),
        "progress": batch_progress(batch, batch.expected_cases),
    }
