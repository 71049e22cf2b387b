"""Plain-dict payloads of cases, images and batches, passed through ``webapp.api.serializers``.
Status and results come from the pipeline's status service (``job_summary``, ``case_result``),
as on the pages; the API adds its URLs."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.urls import reverse

from webapp.api import batches
from webapp.cases.models import CaseImage, JobStatus
from webapp.cases.services.status import case_result, job_summary


def _url(request, name, **kwargs):
    return request.build_absolute_uri(reverse(f"api:{name}", kwargs=kwargs))


def image_payload(request, image: CaseImage) -> dict:
    job = image.job
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
        **job_summary(job),
        "backend": job.backend,  # shown next to model_version (the serializer's field order)
        "queued_at": job.queued_at, "finished_at": job.finished_at,
        "original_url": file_url("original"), "preview_url": file_url("preview"),
        "mask_url": file_url("mask", done), "overlay_url": file_url("overlay", done),
        "dicom_seg_url": file_url("dicom-seg", dicom), "dicom_sc_url": file_url("dicom-sc", dicom),
        "dicom_sr_url": file_url("dicom-sr", dicom),
    }


def case_payload(request, case) -> dict:
    """``case`` with images (and their jobs) prefetched, or not: both work."""
    images = [image_payload(request, image) for image in case.images.all()]
    result = case_result(images)
    return {
        "id": case.pk, "url": _url(request, "case-detail", case_id=case.pk),
        "status": result["status"],
        "created_at": case.created_at, "owner": case.owner.get_username(),
        "client_reference": case.client_reference,
        "batch": _batch_id(case),
        "team": case.team.name if case.team_id else None,
        "positive": result["positive"], "max_probability": result["max_probability"],
        "images": images,
    }


def _batch_id(case):
    try:
        return case.api_batch_link.batch_id
    except ObjectDoesNotExist:  # not in a batch
        return None


def batch_payload(request, batch) -> dict:
    return {
        "id": batch.pk, "url": _url(request, "batch-detail", batch_id=batch.pk),
        "cases_url": request.build_absolute_uri(reverse("api:case-list") + f"?batch={batch.pk}"),
        "label": batch.label, "expected_cases": batch.expected_cases,
        "created_at": batch.created_at, "owner": batch.owner.get_username(),
        "progress": batches.progress(batch),
    }
