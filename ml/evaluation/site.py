"""The report's ``site`` section: a model on the held-out part of this site's films
(``ml.evaluate --feedback DIR``).

The films are the export's (``manage.py export_feedback --out-dir``), split by patient exactly as
``ml.train --feedback`` splits them (``ml.training.feedback``): the hold-out share recorded in a
fine-tuned model file is the one used, so a candidate is never scored on a film it trained on,
and every model (the active one, the candidate) is scored on the same films. Each film is called
at the operating point the evaluation reports (chosen on the shared calibration half, never on
these films): sensitivity, specificity, PPV and NPV with 95% Wilson intervals, AUC, and Dice on
the positives that have an outline (a film with a true label but no outline counts for
detection only).
"""

from __future__ import annotations

import argparse
import math
from collections import Counter

import numpy as np

from ml.core import metrics
from ml.core.decision import OperatingPoint, decide
from ml.evaluation.figures import detection_figures
from ml.evaluation.records import predict_records, with_image_score
from ml.serving.inference import Predictor
from ml.training.datasets import Sample
from ml.training.feedback import DEFAULT_HOLDOUT, FeedbackError, load_site_films, split_site_films

Z95 = 1.959963984540054


def wilson(successes: int, total: int) -> list[float] | None:
    """The 95% Wilson score interval of a proportion; None with no trial. Wilson rather than
    p ± 1.96·SE: a site's held-out films are a few dozen, where Wald's leaves [0, 1]."""
    if total == 0:
        return None
    p, z2 = successes / total, Z95 * Z95
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = Z95 * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / (1 + z2 / total)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def site_holdout(args: argparse.Namespace, config: dict) -> float:
    """The hold-out share: the one the model was fine-tuned with, else ``--feedback-holdout``
    (default 0.2). A different share asked of a fine-tuned model is refused: it would move
    patients the model trained on into the held-out part."""
    recorded = config.get("feedback_holdout") if config.get("feedback") else None
    asked = args.feedback_holdout
    if recorded is not None and asked is not None and float(asked) != float(recorded):
        raise SystemExit(f"This model was fine-tuned holding out {recorded} of the site's patients; "
                         f"--feedback-holdout {asked} would score it on films it trained on")
    return float(recorded if recorded is not None else (asked if asked is not None else DEFAULT_HOLDOUT))


def site_held_out(args: argparse.Namespace, config: dict) -> tuple[list[Sample], dict, float]:
    """The held-out site films, the export's manifest and the hold-out share."""
    holdout = site_holdout(args, config)
    try:
        films, manifest = load_site_films(args.feedback)
        _, held_out = split_site_films(films, holdout)
    except FeedbackError as exc:
        raise SystemExit(str(exc)) from None
    return held_out, manifest, holdout


def rates(true: int, false: int) -> dict:
    total = true + false
    return {"value": true / total if total else None, "n": total, "ci95": wilson(true, total)}


def site_section(args: argparse.Namespace, config: dict, predictor: Predictor,
                 point: OperatingPoint) -> dict:
    """The ``site`` section of the report: figures on the held-out site films at ``point``."""
    samples, manifest, holdout = site_held_out(args, config)
    section = {"export": manifest.get("exported_at"), "holdout": holdout,
               "split": "by patient: sha256 of the patient key (ml.training.feedback)",
               "patients": len({s.patient_id for s in samples}),
               "fine_tuned_on_site_films": bool(config.get("feedback")),
               "operating_point": "the report's (chosen on the shared calibration half)"}
    if not samples:
        return {**section, "images": 0, "unreadable": []}
    records, unreadable = predict_records(predictor, {"site": samples}, args.batch_size, args.quiet)
    labels, probabilities, predicted, dices = [], [], [], []
    for record in with_image_score(records, point.image_score):
        mask, positive, _ = decide(record.probability_map, record.probability, point, record.height, record.width)
        labels.append(record.sample.has_pneumothorax)
        probabilities.append(record.probability)
        predicted.append(positive)
        if record.sample.has_pneumothorax and record.sample.has_mask:
            dices.append(metrics.dice(mask, record.sample.load_mask(record.height, record.width)))
    detection = detection_figures(labels, probabilities, predicted)
    tp, fp = detection["true_positives"], detection["false_positives"]
    tn, fn = detection["true_negatives"], detection["false_negatives"]
    versions = manifest.get("images", {}) if isinstance(manifest.get("images"), dict) else {}
    return {
        **section, **detection,
        "unreadable": unreadable,
        "sensitivity_ci95": rates(tp, fn)["ci95"], "specificity_ci95": rates(tn, fp)["ci95"],
        "ppv": rates(tp, fp), "npv": rates(tn, fn),
        "outlined_positives": len(dices),
        "dice_positive": float(np.mean(dices)) if dices else None,
        "read_by": dict(Counter((versions.get(r.sample.image_id) or {}).get("model_version") or ""
                                for r in records)),
    }
