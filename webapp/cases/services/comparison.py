"""The comparison of a finished film with the patient's prior finished film (``Job.comparison``),
made when the film's job completes (``jobs.complete_job``, inside its transaction).

**Which prior.** Films of the same patient (``Case.patient_key``, a keyed hash, never the
identifier), of other cases only: the films of one case are one study (a repeat exposure, a
second view), not a follow-up. Only finished films (job done: a call and a size). Only in cases
the new case's owner may see (``access.visible_cases``): the owner's own, their teams', all for
an administrator. So a film of a team the owner is not in is never compared with, and its date
and size never reach this result; a teammate of the owner who cannot see the prior still reads
the sentence (it is this film's result), but not the prior's link (``comparison_display``).
The latest film before this one, by a film's **day**: the header's StudyDate where the film has
one, else its upload day; on the same day, by upload time. A film uploaded late, with an older
StudyDate, thus takes its place in the patient's history, not at the end.

**The trend**, from the model's calls (``Job.positive``) and then its size measures:
- prior negative, now positive: ``new``; prior positive, now negative: ``resolved``;
- both negative: ``unchanged``;
- both positive: ``larger`` or ``smaller`` when the area fraction (``Job.area_fraction``: the
  outlined share of the image) changed by more than the measurement noise, else ``unchanged``.
  The noise (``COMPARISON_AREA_NOISE`` absolute and ``COMPARISON_AREA_NOISE_RELATIVE`` of the
  larger of the two areas; a change must exceed both) was measured by bench/comparison_noise.py:
  the same real films re-encoded, rotated, shifted and scaled, through the real model
  (docs/develop/comparison-noise.md has the figures and why the area drives the call rather
  than the rim depth).
- ``larger`` makes the film review first (the worklist puts it on top, with the reason).

The rim depth in mm (``findings.rim_depth_mm``) is reported beside it, with its change, where
both films have a pixel spacing; a film with a spacing and nothing outlined has a rim of 0 mm.
"""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from webapp.cases.models import CaseImage, Job, JobStatus
from webapp.cases.services import access

NEW, LARGER, SMALLER, UNCHANGED, RESOLVED = "new", "larger", "smaller", "unchanged", "resolved"
TRENDS = (NEW, LARGER, SMALLER, UNCHANGED, RESOLVED)
# What the worklist says of a film that is review first for its comparison (worklist_row).
LARGER_REASON = "Larger than the prior film"


def film_day(image: CaseImage) -> date:
    """The day a film was taken: its StudyDate, else the day it was uploaded (the site's time
    zone, as ``prior_film``'s SQL computes it)."""
    return image.study_date or timezone.localdate(image.created_at)


def prior_film(image: CaseImage) -> CaseImage | None:
    """The patient's latest finished film before ``image`` that its case's owner may see, in
    another case; None where the case names no patient or there is none. The prior's job is
    loaded with it."""
    case = image.case
    if not case.patient_key:
        return None
    day = film_day(image)
    return (CaseImage.objects.select_related("job")
            .filter(case__patient_key=case.patient_key, job__status=JobStatus.DONE,
                    case__in=access.visible_cases(case.owner))
            .exclude(case_id=case.pk)
            .annotate(film_day=Coalesce("study_date", TruncDate("created_at")))
            .filter(Q(film_day__lt=day) | Q(film_day=day, created_at__lt=image.created_at))
            .order_by("-film_day", "-created_at", "-position")
            .first())


def area_change_is_noise(now: float, prior: float) -> bool:
    """Whether a change of area fraction from ``prior`` to ``now`` (both positive films) lies
    within the measured noise: not beyond both the absolute and the relative threshold."""
    change = abs(now - prior)
    relative = change / max(now, prior) if max(now, prior) > 0 else 0.0
    return (change <= settings.COMPARISON_AREA_NOISE
            or relative <= settings.COMPARISON_AREA_NOISE_RELATIVE)


def trend(now: Job, prior: Job) -> str:
    if now.positive and not prior.positive:
        return NEW
    if prior.positive and not now.positive:
        return RESOLVED
    if not now.positive:
        return UNCHANGED
    now_area, prior_area = now.area_fraction or 0.0, prior.area_fraction or 0.0
    if area_change_is_noise(now_area, prior_area):
        return UNCHANGED
    return LARGER if now_area > prior_area else SMALLER


def _rim_depth_mm(image: CaseImage, job: Job) -> float | None:
    """The rim depth in mm where the film has a pixel spacing (0 with nothing outlined); None
    where it is unknown. Findings the pipeline did not write (an older or edited row) are
    unknown, never an error: the result this runs beside must be saved whatever they hold."""
    if not image.pixel_spacing_mm:
        return None
    if not job.positive:
        return 0.0
    depth = (job.findings or {}).get("rim_depth_mm")
    if isinstance(depth, bool) or not isinstance(depth, (int, float)):
        return None
    return float(depth)


def compare(image: CaseImage, job: Job, prior: CaseImage) -> dict:
    """``Job.comparison`` for ``job`` (of ``image``, its result set) against ``prior``."""
    prior_job = prior.job
    area, prior_area = job.area_fraction or 0.0, prior_job.area_fraction or 0.0
    rim, prior_rim = _rim_depth_mm(image, job), _rim_depth_mm(prior, prior_job)
    both_rims = rim is not None and prior_rim is not None
    return {
        "prior_image_id": str(prior.pk),
        "prior_case_id": str(prior.case_id),
        "prior_date": film_day(prior).isoformat(),
        "trend": trend(job, prior_job),
        "area_fraction": area,
        "prior_area_fraction": prior_area,
        "area_fraction_change": round(area - prior_area, 8),
        "rim_depth_mm": rim if both_rims else None,
        "prior_rim_depth_mm": prior_rim if both_rims else None,
        "rim_depth_change_mm": round(rim - prior_rim, 1) if both_rims else None,
    }


def apply_comparison(job: Job) -> None:
    """Set ``job.comparison`` (and review first where the film is larger) from the job's result,
    not saved: ``complete_job`` calls it before it saves, in its transaction."""
    image = job.image
    prior = prior_film(image)
    job.comparison = compare(image, job, prior) if prior is not None else None
    if job.comparison and job.comparison["trend"] == LARGER:
        job.review_first = True
