"""The reported figures: the challenge metric, Dice, detection at the operating point, bootstrap
intervals, DICOM-only, and the high-sensitivity point a triage worklist would use.

Every figure is computed with the product's own decision rule at each image's own size
(``ml.evaluation.records.decide_and_score``). A figure undefined on the images given (one class
missing) is None, not zero.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ml.core import metrics
from ml.core.decision import OperatingPoint
from ml.evaluation.records import Record, decide_and_score


def _safe(function, *args):
    try:
        return function(*args)
    except ValueError:  # one class missing: the figure is undefined, not zero
        return None


def detection_figures(labels, probabilities, predicted) -> dict:
    labels, predicted = np.asarray(labels, dtype=bool), np.asarray(predicted, dtype=bool)
    sensitivity, specificity = metrics.sensitivity_specificity(predicted, labels)
    return {
        "images": int(labels.size),
        "positives": int(labels.sum()),
        "negatives": int((~labels).sum()),
        "auc": _safe(metrics.roc_auc, probabilities, labels),
        "sensitivity": sensitivity if labels.any() else None,
        "specificity": specificity if (~labels).any() else None,
        "true_positives": int((predicted & labels).sum()),
        "false_positives": int((predicted & ~labels).sum()),
        "true_negatives": int((~predicted & ~labels).sum()),
        "false_negatives": int((~predicted & labels).sum()),
    }


def high_sensitivity_figures(calibration: list[Record], test: list[Record],
                             target: float = 0.90) -> dict:
    """Detection on its own, as a triage list would use it: the image-probability threshold that
    reaches ``target`` sensitivity on the calibration half, and what it gives on the test half
    (all images and DICOM only). The challenge metric at 22% favours a cautious point; a
    worklist that must not miss cases wants this one."""
    def arrays(records):
        return (np.array([r.sample.has_pneumothorax for r in records], dtype=bool),
                np.array([r.probability for r in records], dtype=float),
                np.array([r.source_format == "dicom" for r in records], dtype=bool))

    labels, probabilities, _ = arrays(calibration)
    if not labels.any():
        return {}
    positives = np.sort(probabilities[labels])[::-1]
    threshold = float(positives[max(int(np.ceil(target * positives.size)) - 1, 0)])
    labels, probabilities, dicom = arrays(test)
    predicted = probabilities >= threshold
    return {"target_sensitivity": target, "image_threshold": threshold,
            "test": detection_figures(labels, probabilities, predicted),
            "test_dicom_only": detection_figures(labels[dicom], probabilities[dicom], predicted[dicom])}


def figures(records: list[Record], point: OperatingPoint, intervals: bool = True) -> tuple[dict, list[dict]]:
    """All reported figures for ``records`` at ``point``, computed with the product's own
    decision rule at each image's own size; also the per-image rows. ``intervals=False`` skips
    the bootstrap (``ci95`` is then absent), for callers that would throw the intervals away."""
    rows = []
    for record in records:
        _, positive, area_fraction, dice = decide_and_score(record, point)
        rows.append({"image_id": record.sample.image_id, "format": record.source_format,
                     "has_pneumothorax": record.sample.has_pneumothorax,
                     "probability": record.probability, "positive": positive,
                     "area_fraction": area_fraction, "dice": dice})
    labels = np.array([r["has_pneumothorax"] for r in rows], dtype=bool)
    dices = np.array([r["dice"] for r in rows], dtype=float)
    probabilities = np.array([r["probability"] for r in rows], dtype=float)
    predicted = np.array([r["positive"] for r in rows], dtype=bool)
    dicom = np.array([r["format"] == "dicom" for r in rows], dtype=bool)
    result = {
        "challenge_own_mix": float(dices.mean()) if dices.size else None,
        "challenge_22": _safe(metrics.challenge_score, dices, labels,
                              metrics.CHALLENGE_POSITIVE_FRACTION),
        "dice_positive": float(dices[labels].mean()) if labels.any() else None,
        "empty_on_negatives": float(dices[~labels].mean()) if (~labels).any() else None,
        **detection_figures(labels, probabilities, predicted),
        "formats": dict(Counter(f"{r['format']}:{'positive' if r['has_pneumothorax'] else 'negative'}"
                                for r in rows)),
        "dicom_only": detection_figures(labels[dicom], probabilities[dicom], predicted[dicom]),
    }
    if intervals:
        result["ci95"] = confidence_intervals(labels, dices, probabilities, dicom)
    return result, rows


def confidence_intervals(labels, dices, probabilities, dicom) -> dict:
    """Bootstrap 95% intervals (by image) of the headline figures."""
    def challenge_22(d, l):
        return metrics.challenge_score(d, l, metrics.CHALLENGE_POSITIVE_FRACTION)

    def dice_positive(d, l):
        if not l.any():
            raise ValueError("no positives")
        return float(d[l].mean())

    return {
        "challenge_22": metrics.bootstrap_ci(challenge_22, dices, labels),
        "dice_positive": metrics.bootstrap_ci(dice_positive, dices, labels),
        "auc": metrics.bootstrap_ci(metrics.roc_auc, probabilities, labels),
        "dicom_only_auc": metrics.bootstrap_ci(metrics.roc_auc, probabilities[dicom], labels[dicom]),
    }
