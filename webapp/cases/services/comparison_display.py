"""The comparison with the patient's prior film (``Job.comparison``, written by
``services.comparison`` when a job finishes) as the case page, its status JSON and the printable
report show it: one sentence ("Larger than on 2 December 2026: rim depth 18 mm, was 9 mm"), and
the prior's links for a viewer who may see the prior.

The prior is another case, perhaps of another team (the patient moved wards): whoever may see
this case does not always see that one. The sentence is theirs either way (it is part of this
film's result), but the prior's link, its film and its compare view are given only where
``access.visible_cases`` lets this viewer open the prior (``visible_priors``); the file views
check access again on every request."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from django.urls import reverse
from django.utils import timezone

from webapp.cases.models import CaseImage, JobStatus
from webapp.cases.services import access
from webapp.cases.services.display import MONTHS

TRENDS = ("new", "larger", "smaller", "unchanged", "resolved")


# --- the sentence ----------------------------------------------------------------------------

def day_text(value) -> str | None:
    """An ISO date (``2026-12-02``) as the site writes a day in words (``2 December 2026``, as the
    study panel writes a StudyDate: display.dicom_date); None when it is not a date."""
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def _number(value) -> float | None:
    # bool is an int: a stray true must not read as 1 mm.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _area(fraction: float) -> str:
    """As the result sentence writes the area (display.result_text): 2 decimals below 1%."""
    return f"{100 * fraction:.{2 if fraction < 0.01 else 1}f}%"


def _rim_agrees(trend: str, now: float, then: float) -> bool:
    """Whether the rim depths, as the sentence writes them (whole mm), go the trend's way. The
    trend is decided on the area (services.comparison: the steadier measure), and the widest
    point of an outline can move the other way or stay put; the sentence then gives the area,
    so that it never reads "Larger than …: rim depth 12 mm, was 14 mm"."""
    now, then = round(now), round(then)
    return {"larger": now > then, "smaller": now < then}.get(trend, True)


def size_text(comparison: Mapping) -> str:
    """``rim depth 18 mm, was 9 mm`` where both films have a rim depth in mm (a pixel spacing)
    that goes the trend's way, else ``area 1.2% of the image, was 3.4%``; "" where neither pair
    is complete."""
    now, then = _number(comparison.get("rim_depth_mm")), _number(comparison.get("prior_rim_depth_mm"))
    if now is not None and then is not None and _rim_agrees(comparison.get("trend"), now, then):
        return f"rim depth {now:.0f} mm, was {then:.0f} mm"
    now, then = _number(comparison.get("area_fraction")), _number(comparison.get("prior_area_fraction"))
    if now is not None and then is not None:
        return f"area {_area(now)} of the image, was {_area(then)}"
    return ""


def prior_size_text(comparison: Mapping) -> str:
    """The prior's size alone (``rim depth 9 mm``, else ``area 3.4% of the image``); "" if none."""
    then = _number(comparison.get("prior_rim_depth_mm"))
    if then is not None and then > 0:
        return f"rim depth {then:.0f} mm"
    then = _number(comparison.get("prior_area_fraction"))
    if then is not None and then > 0:
        return f"area {_area(then)} of the image"
    return ""


def _nothing_either_time(comparison: Mapping) -> bool:
    """Both films without a pneumothorax outlined: "unchanged" then means "still none"."""
    areas = [_number(comparison.get(key)) for key in ("area_fraction", "prior_area_fraction")]
    return all(not area for area in areas)


def comparison_text(comparison) -> str:
    """The comparison in one sentence; "" where there is none or it cannot be read (a stored
    value of another shape never breaks the page: it is just not described)."""
    if not isinstance(comparison, Mapping) or comparison.get("trend") not in TRENDS:
        return ""
    trend, day = comparison["trend"], day_text(comparison.get("prior_date"))
    on = f"on {day}" if day else "on the prior film"
    since = f"since {day}" if day else "since the prior film"
    size = size_text(comparison)
    if trend == "larger":
        return f"Larger than {on}" + (f": {size}" if size else "")
    if trend == "smaller":
        return f"Smaller than {on}" + (f": {size}" if size else "")
    if trend == "new":
        return f"New {since} (no pneumothorax then)"
    if trend == "resolved":
        then = prior_size_text(comparison)
        return f"Resolved {since}" + (f" ({then} then)" if then else "")
    if _nothing_either_time(comparison):
        return f"Unchanged {since}: no pneumothorax then or now"
    return f"Unchanged {since} (within the measurement noise)" + (f": {size}" if size else "")


# --- the prior, where this viewer may open it ------------------------------------------------

def _uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def _prior_ids(comparison) -> tuple[uuid.UUID, uuid.UUID] | None:
    if not isinstance(comparison, Mapping):
        return None
    image_id, case_id = _uuid(comparison.get("prior_image_id")), _uuid(comparison.get("prior_case_id"))
    return (image_id, case_id) if image_id and case_id else None


def visible_priors(user, comparisons: Iterable) -> dict[uuid.UUID, CaseImage]:
    """The prior films named by ``comparisons`` that ``user`` may see, by image id, with their
    case and job; a prior this user may not see, or one deleted since, is simply absent."""
    ids = [found for found in map(_prior_ids, comparisons) if found]
    if not ids:
        return {}
    images = (CaseImage.objects.select_related("case", "job")
              .filter(case__in=access.visible_cases(user), pk__in=[image_id for image_id, _ in ids]))
    cases = {image_id: case_id for image_id, case_id in ids}
    # The pair must agree: a prior image id is looked up in its own case only.
    return {image.pk: image for image in images if cases.get(image.pk) == image.case_id}


def visible_prior(user, comparison) -> CaseImage | None:
    found = _prior_ids(comparison)
    return visible_priors(user, [comparison]).get(found[0]) if found else None


@dataclass(frozen=True)
class ComparisonLine:
    """What the case page shows for one image: the sentence, and the prior's links for a viewer
    who may see the prior (None otherwise)."""
    trend: str
    text: str
    prior_url: str | None      # the prior's case page, at the prior film
    compare_url: str | None    # the two films side by side (cases:compare)

    def as_dict(self) -> dict:
        return {"trend": self.trend, "text": self.text, "prior_url": self.prior_url,
                "compare_url": self.compare_url}


def comparison_lines(user, images: Iterable[CaseImage]) -> dict[uuid.UUID, ComparisonLine]:
    """The comparison line of each finished image of ``images`` that has one, by image id; the
    links only where ``user`` may see the prior. One query for all the priors."""
    compared = [image for image in images
                if image.job.status == JobStatus.DONE and comparison_text(image.job.comparison)]
    priors = visible_priors(user, [image.job.comparison for image in compared])
    lines = {}
    for image in compared:
        comparison = image.job.comparison
        found = _prior_ids(comparison)
        prior = priors.get(found[0]) if found else None
        prior_url = compare_url = None
        if prior is not None:
            prior_url = reverse("cases:detail", kwargs={"case_id": prior.case_id}) + f"#image-{prior.pk}"
            compare_url = reverse("cases:compare", kwargs={"case_id": image.case_id, "image_id": image.pk})
        lines[image.pk] = ComparisonLine(comparison["trend"], comparison_text(comparison),
                                         prior_url, compare_url)
    return lines


# --- the compare view: the two films side by side --------------------------------------------

@dataclass(frozen=True)
class Film:
    """One film of the compare view: which, when, and the URLs its viewer loads."""
    image: CaseImage
    label: str            # "This film" / "Prior film"
    day: str | None       # in words
    preview_url: str
    mask_url: str | None  # where the model outlined something: the viewer draws it


def _file_url(image: CaseImage, kind: str) -> str:
    return reverse("cases:image_file", kwargs={"case_id": image.case_id, "image_id": image.pk,
                                               "kind": kind})


def _film(image: CaseImage, label: str, day) -> Film:
    outlined = image.job.status == JobStatus.DONE and bool(image.job.positive)
    return Film(image, label, day_text(day), _file_url(image, "preview"),
                _file_url(image, "mask") if outlined else None)


def film_day(image: CaseImage) -> date:
    """A film's day as the comparison dates it: its study date, else its upload day."""
    return image.study_date or timezone.localdate(image.created_at)


@dataclass(frozen=True)
class Comparison:
    """The compare view of one image: the sentence, the prior film first (the order they were
    taken, left to right), then this one."""
    text: str
    prior: Film
    current: Film

    @property
    def films(self) -> tuple[Film, Film]:
        return self.prior, self.current


def compare_films(user, image: CaseImage) -> Comparison | None:
    """The compare view of ``image`` (found through ``access``) for ``user``; None where it has
    no comparison, or names a prior that ``user`` may not see (or that was deleted since)."""
    comparison = image.job.comparison if image.job.status == JobStatus.DONE else None
    text = comparison_text(comparison)
    prior = visible_prior(user, comparison) if text else None
    if prior is None:
        return None
    return Comparison(text, _film(prior, "Prior film", comparison.get("prior_date") or film_day(prior)),
                      _film(image, "This film", film_day(image)))


def case_comparison_lines(user, case) -> dict[str, dict]:
    """``comparison_lines`` of a case's finished images, by image id as text, as dicts: what the
    case page's status JSON adds, so that a page open while the job ran shows the comparison
    when the result arrives."""
    images = (CaseImage.objects.select_related("job")
              .filter(case=case, job__status=JobStatus.DONE, job__comparison__isnull=False))
    return {str(image_id): line.as_dict()
            for image_id, line in comparison_lines(user, images).items()}
