"""Detection on the product's own cases, labelled by its clinicians (``--layout feedback``).

    python manage.py export_feedback --out feedback.csv
    python -m ml.evaluate --model ml/weights/pneumothorax-unet.safetensors --layout feedback \\
        --root feedback.csv --media-root var/private-media --out runs/local-eval

Why apart from the held-out evaluation (``ml.evaluation.report``): these images were never
trained on, so there is no split to recompute, and clinicians give a label, not an outline, so
there is no Dice and nothing to choose an operating point with. Every image is scored at the
operating point stored in the model file, as the product would call it: AUC, sensitivity and
specificity (all images and DICOM only), the "review first" threshold's, and what the product
said at the time of review (the CSV's snapshot), which needs no model at all.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ml.core import metrics
from ml.core.checkpoint import read_info
from ml.core.decision import decide
from ml.evaluation.figures import detection_figures
from ml.evaluation.held_out import limit_samples
from ml.evaluation.plots import plot_roc
from ml.evaluation.records import predict_records, with_image_score
from ml.serving.inference import Predictor
from ml.training.datasets import load_feedback


def _served(csv_path: Path, rows: list[dict]) -> dict:
    """Detection as the product reported it when the clinicians reviewed (first review's copy)."""
    snapshot: dict[str, dict] = {}
    with open(csv_path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            snapshot.setdefault(row["image_id"], row)
    kept = [(r, snapshot[r["image_id"]]) for r in rows if snapshot[r["image_id"]]["probability"]]
    labels = [r["has_pneumothorax"] for r, _ in kept]
    return {"model_versions": dict(Counter(s["model_version"] for _, s in kept)),
            **detection_figures(labels, [float(s["probability"]) for _, s in kept],
                                [s["positive"] == "1" for _, s in kept])}


def evaluate_feedback(args: argparse.Namespace) -> dict:
    """``python -m ml.evaluate --layout feedback``: the report, also ``<out>/report.json``."""
    if args.set_operating_point:
        raise SystemExit("--set-operating-point needs outlines: the feedback layout has labels only.")
    started = time.monotonic()
    model_path, out = Path(args.model), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    samples = load_feedback(args.root, args.media_root)
    if args.limit:
        samples = limit_samples(samples, args.limit)
    if not samples:
        raise SystemExit(f"No image with a definite label in {args.root}.")
    point = read_info(model_path).operating_point
    predictor = Predictor(model_path, device=args.device, flip_tta=args.flip_tta, threads=args.threads)
    records, unreadable = predict_records(predictor, {"local": samples}, args.batch_size, args.quiet)
    rows = []
    for record in with_image_score(records, point.image_score):
        _, positive, area_fraction = decide(record.probability_map, record.probability, point,
                                            record.height, record.width)
        rows.append({"image_id": record.sample.image_id, "format": record.source_format,
                     "has_pneumothorax": record.sample.has_pneumothorax,
                     "probability": record.probability, "positive": positive,
                     "area_fraction": area_fraction})
    labels = np.array([r["has_pneumothorax"] for r in rows], dtype=bool)
    probabilities = np.array([r["probability"] for r in rows], dtype=float)
    predicted = np.array([r["positive"] for r in rows], dtype=bool)
    dicom = np.array([r["format"] == "dicom" for r in rows], dtype=bool)
    review = point.review_threshold
    plot_roc(rows, out / "roc.png")
    report = {
        "model": str(model_path), "version": predictor.version, "flip_tta": predictor.flip_tta,
        "data": {"layout": "feedback", "root": str(args.root), "media_root": args.media_root,
                 "labelled_images": len(samples), "images": len(rows), "unreadable": unreadable},
        "operating_point": asdict(point),
        "test": {**detection_figures(labels, probabilities, predicted),
                 "dicom_only": detection_figures(labels[dicom], probabilities[dicom], predicted[dicom]),
                 "ci95": {"auc": metrics.bootstrap_ci(metrics.roc_auc, probabilities, labels)}},
        "review_first": (None if review is None else
                         {"image_threshold": review,
                          **detection_figures(labels, probabilities, probabilities >= review)}),
        "as_served": _served(Path(args.root), rows),
        "per_image": rows,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    test = report["test"]
    print(f"{len(rows)} local images ({test['positives']} positive) at the stored operating point: "
          f"auc={test['auc']} sensitivity={test['sensitivity']} specificity={test['specificity']}")
    print(f"wrote {out / 'report.json'}, {out / 'roc.png'}")
    return report
