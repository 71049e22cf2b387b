"""Dice on positives: the model's outline (``Job.mask``, never changed) against the outline a
clinician corrected it to in the viewer (``webapp.reviews.models.CorrectedOutline``, latest
version), on films the reviews confirm have a pneumothorax.

Only an outline drawn on this version's result counts (``based_on_model_version``), and only
while the job still holds that version's mask: a job re-run with another model has another mask.
Below PERFORMANCE_MIN_OUTLINES such films the mean says nothing, and none is given."""

from __future__ import annotations

import hashlib
import io

import numpy as np
from django.conf import settings
from django.core.cache import cache
from PIL import Image

from webapp.cases.models import Job
from webapp.cases.services import files


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """2|A∩B| / (|A|+|B|); two empty outlines agree perfectly (1.0)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def _read(name: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(files.read(name))).convert("L")) > 0


def _dice_of_files(model_mask: str, corrected: str) -> float | None:
    try:
        a, b = _read(model_mask), _read(corrected)
    except (OSError, files.NotAvailable, ValueError):
        return None
    return dice(a, b) if a.shape == b.shape else None


def dice_on_positives(positives, version: str) -> dict:
    """{"films": n, "mean": m or None, "enough": bool, "needed": N} over ``positives`` (the
    FilmOutcomes of confirmed positives of ``version``) that carry a corrected outline."""
    from webapp.reviews.models import CorrectedOutline  # issue 23's outlines (helper 22)

    needed = settings.PERFORMANCE_MIN_OUTLINES
    image_ids = [o.image_id for o in positives]
    latest = {}
    for outline in (CorrectedOutline.objects.filter(image_id__in=image_ids,
                                                    based_on_model_version=version)
                    .order_by("image_id", "-version")):
        latest.setdefault(outline.image_id, outline)
    jobs = {job.image_id: job for job in Job.objects.filter(image_id__in=list(latest),
                                                            model_version=version).exclude(mask="")}
    pairs = [(jobs[i].mask.name, o.mask.name) for i, o in latest.items() if i in jobs]
    result = {"films": len(pairs), "mean": None, "enough": len(pairs) >= needed, "needed": needed}
    if not result["enough"]:
        return result  # not read at all: a page view must not decode masks for nothing
    # Both files are write-once under names of their own (a new result or outline is a new
    # file), so a pair's Dice never changes: kept in the cache, a page view decodes only the new.
    keys = {pair: "performance-dice:" + hashlib.sha256("\0".join(pair).encode()).hexdigest()
            for pair in pairs}
    known = cache.get_many(list(keys.values()))
    scores = []
    for pair in pairs:
        score = known.get(keys[pair])
        if score is None:
            score = _dice_of_files(*pair)
            if score is None:  # a file gone, or of another size: that film is left out
                continue
            cache.set(keys[pair], score, timeout=None)
        scores.append(score)
    result["films"] = len(scores)
    result["enough"] = len(scores) >= needed
    result["mean"] = float(np.mean(scores)) if result["enough"] else None
    return result
