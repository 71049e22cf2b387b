"""Clinicians' feedback as a training folder for ``ml`` (``manage.py export_feedback --out-dir``):
``images/<image_id>.png``, ``masks/<image_id>.png``, ``labels.csv`` and ``manifest.json``, the
layout of ``docs/develop/feedback-export.md`` (a superset of the shared subset's, so that
``ml.train --feedback`` and ``ml.evaluate`` read it as they read that one).

One row per film with a ground truth: its reviewers' definite label ("uncertain" says nothing),
else the label its corrected outline implies; the outline, where a clinician drew one, is the
mask. A film with a label and no outline is exported without a mask (``has_mask`` 0): an empty
mask would teach the model that a pneumothorax has nothing in it. A confirmed-absent film needs
no drawing: its mask is empty. Films whose readers disagree, or whose label contradicts the
latest outline, have no ground truth and are left out (counted in the manifest).

What leaves the product: pixels (the preview, which is the film as the model reads it: 8-bit
grey, the DICOM window applied, no header), masks, and pseudonymous ids. No reviewer, comment,
file name, DICOM field or client reference."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.db.models import Q
from django.utils import timezone

from ml.core.reading import read_xray
from webapp.cases.models import CaseImage
from webapp.cases.services import files
from webapp.cases.services.rendering import mask_png, preview_png

from .models import CorrectedOutline, Review, TrueLabel

FORMAT = "pneumothorax-feedback"
FORMAT_VERSION = 1
COLUMNS = ("image_id", "image", "mask", "has_pneumothorax", "has_mask", "patient_id",
           "model_version", "case_id", "label_source", "outline_version", "width", "height")
DEFINITE = {TrueLabel.PRESENT: True, TrueLabel.ABSENT: False}


class ExportRefused(Exception):
    """Nothing was written; the message says why (the command's one-line error)."""


@dataclass(frozen=True)
class Film:
    image: CaseImage
    has_pneumothorax: bool
    label_source: str  # review | outline
    outline: CorrectedOutline | None


def _start(since: dt.date | None):
    return timezone.make_aware(dt.datetime.combine(since, dt.time.min)) if since else None


def _candidates(since: dt.date | None) -> list[CaseImage]:
    """Films with a definite review or a corrected outline (given or drawn from ``since``)."""
    start = _start(since)
    reviewed = Q(reviews__true_label__in=list(DEFINITE))
    drawn = Q(corrected_outlines__isnull=False)
    if start is not None:
        reviewed &= Q(reviews__reviewed_at__gte=start)
        drawn &= Q(corrected_outlines__created_at__gte=start)
    ids = CaseImage.objects.filter(reviewed | drawn).values("pk").distinct()
    return list(CaseImage.objects.filter(pk__in=ids).select_related("case", "job").order_by("pk"))


def ground_truth(images: list[CaseImage]) -> tuple[list[Film], Counter]:
    """The films with a ground truth, and the counts of those left out, by reason."""
    ids = [image.pk for image in images]
    labels: dict = defaultdict(set)
    for image_id, label in Review.objects.filter(image_id__in=ids).values_list("image_id", "true_label"):
        if label in DEFINITE:
            labels[image_id].add(DEFINITE[label])
    latest: dict = {}
    for outline in CorrectedOutline.objects.filter(image_id__in=ids).order_by("image_id", "-version"):
        latest.setdefault(outline.image_id, outline)
    films, skipped = [], Counter()
    for image in images:
        said, outline = labels[image.pk], latest.get(image.pk)
        if len(said) > 1:
            skipped["skipped_conflicting"] += 1
            continue
        if said:
            label, source = next(iter(said)), "review"
            if outline is not None and outline.empty == label:  # present but empty, or the reverse
                skipped["skipped_conflicting"] += 1
                continue
        elif outline is not None:
            label, source = not outline.empty, "outline"
        else:
            skipped["skipped_unlabelled"] += 1
            continue
        films.append(Film(image, label, source, outline))
    return films, skipped


def _film_png(image: CaseImage) -> bytes:
    """The film as the model reads it: the stored preview (``rendering.preview_png`` of the
    pixels ``read_xray`` gave at upload), else the same made from the stored original."""
    if image.preview.name and files.exists(image.preview.name):
        return files.read(image.preview.name)
    return preview_png(read_xray(files.read(image.original.name)).pixels)


def _prepare(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportRefused(f"{out} exists and is not an empty folder: export into a new one.")
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)


def write_folder(out: str | Path, since: dt.date | None = None) -> dict:
    """Write the folder (the manifest last: a folder without one is an interrupted export);
    returns the manifest. Raises ExportRefused."""
    out = Path(out)
    _prepare(out)
    films, counts = ground_truth(_candidates(since))
    rows, per_image = [], {}
    for film in films:
        image, job = film.image, getattr(film.image, "job", None)
        image_id = str(image.pk)
        (out / "images" / f"{image_id}.png").write_bytes(_film_png(image))
        mask = ""
        if film.outline is not None:
            mask = f"masks/{image_id}.png"
            (out / mask).write_bytes(files.read(film.outline.mask.name))
        elif not film.has_pneumothorax:
            mask = f"masks/{image_id}.png"
            (out / mask).write_bytes(mask_png(np.zeros((image.height, image.width), np.uint8)))
        model_version = job.model_version if job is not None else ""
        rows.append({
            "image_id": image_id, "image": f"images/{image_id}.png", "mask": mask,
            "has_pneumothorax": int(film.has_pneumothorax), "has_mask": int(bool(mask)),
            "patient_id": image.case.patient_key or f"case-{image.case_id}",
            "model_version": model_version, "case_id": str(image.case_id),
            "label_source": film.label_source,
            "outline_version": film.outline.version if film.outline else "",
            "width": image.width, "height": image.height})
        per_image[image_id] = {"model_version": model_version,
                               "outline_version": film.outline.version if film.outline else None}
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(), "since": since.isoformat() if since else None,
        "counts": {
            "images": len(rows), "positive": sum(r["has_pneumothorax"] for r in rows),
            "negative": sum(1 - r["has_pneumothorax"] for r in rows),
            "with_mask": sum(r["has_mask"] for r in rows),
            "label_only": sum(1 - r["has_mask"] for r in rows),
            "corrected_outlines": sum(r["outline_version"] != "" for r in rows),
            "skipped_conflicting": counts["skipped_conflicting"],
            "skipped_unlabelled": counts["skipped_unlabelled"]},
        "model_versions": dict(sorted(Counter(r["model_version"] for r in rows).items())),
        "images": per_image,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
