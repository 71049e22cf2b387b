"""Clinicians' feedback as CSV, for ``ml.training.datasets.load_feedback`` (and people): one row
per review. ``file`` is the stored original's path relative to the private media root (or an
absolute path), which ``ml`` resolves against the media root it is given."""

from __future__ import annotations

import csv
import datetime as dt

from django.db.models import QuerySet
from django.utils import timezone

from webapp.cases.storage import private_storage

from .models import Review

FIELDS = ("image_id", "case_id", "file", "source_format", "model_version", "probability",
          "positive", "true_label", "verdict", "comment", "reviewer", "reviewed_at")
# A cell starting with one of these is read as a formula by spreadsheet programs.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def feedback_reviews(since: dt.date | None = None) -> QuerySet:
    """Every review (from the start of ``since``, in the site's time zone), oldest first."""
    reviews = Review.objects.select_related("image", "reviewer").order_by("reviewed_at", "pk")
    if since is not None:
        start = timezone.make_aware(dt.datetime.combine(since, dt.time.min))
        reviews = reviews.filter(reviewed_at__gte=start)
    return reviews


def _cell(text: str) -> str:
    """Free text kept from being run as a spreadsheet formula when the CSV is opened."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def feedback_row(review: Review, absolute: bool = False) -> dict:
    image = review.image
    name = image.original.name
    return {
        "image_id": str(image.pk),
        "case_id": str(image.case_id),
        "file": private_storage.path(name) if absolute else name,
        "source_format": image.source_format,
        "model_version": review.model_version,
        "probability": "" if review.probability is None else repr(review.probability),
        "positive": {True: "1", False: "0", None: ""}[review.positive],
        "true_label": review.true_label,
        "verdict": review.verdict,
        "comment": _cell(review.comment),
        "reviewer": _cell(review.reviewer.get_username()),
        "reviewed_at": review.reviewed_at.isoformat(),
    }


def write_feedback(handle, since: dt.date | None = None, absolute: bool = False) -> int:
    """Write the CSV (header and rows) to the text ``handle``; the number of rows."""
    writer = csv.DictWriter(handle, fieldnames=FIELDS)
    writer.writeheader()
    count = 0
    for review in feedback_reviews(since).iterator(chunk_size=500):
        writer.writerow(feedback_row(review, absolute))
        count += 1
    return count
