"""Evaluate a model file on held-out patients, choose its operating point, write a report.

    python -m ml.evaluate --model runs/lite0-256/best.safetensors --layout subset \\
        --root ../shared/data/siim-acr-subset --out runs/lite0-256/eval [--flip-tta] [--set-operating-point]

Which images, and why:
- The held-out images are the validation patients of the split recorded in the model file
  (``training.config``: seed, val_fraction, limit), recomputed with
  ``ml.datasets.split_by_patient`` on the original dataset. Where a ``validation_ids.txt`` lies
  beside the model file (``ml.train`` writes one) the recomputed list must equal it.
- Those patients are split again, by patient, stratified and deterministic, 50/50: the
  *calibration* half chooses the operating point (pixel threshold, minimum area fraction,
  image threshold) by grid search maximising the challenge metric at 22% positives; the *test*
  half, never looked at while choosing, gives every reported figure.

Images are read from the original files (``ml.reading.read_xray``), predicted with the
predictor's own code (``Predictor.probability_maps``) and decided with ``ml.inference.decide``
at the image's own (1024 px) size, exactly as the product decides.

Writes ``report.json``, ``roc.png`` (all images and DICOM only) and ``worst_cases.png``.
With ``--set-operating-point`` the chosen point and the test figures are written into the model
file (weights unchanged).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ml import metrics
from ml.checkpoint import OperatingPoint, read_info, update_metadata
from ml.datasets import (SUBSET_VALIDATION_PATIENTS, Sample, load_dataset, read_patient_list,
                         split_by_patient)
from ml.errors import XRayError
from ml.inference import IMAGE_SCORES, Predictor, decide, image_probability, upsample
from ml.reading import read_xray

PIXEL_THRESHOLDS = tuple(round(float(t), 2) for t in np.arange(0.20, 0.951, 0.05))
MIN_AREA_FRACTIONS = (0.0, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2e-3, 3e-3, 5e-3)
# Finer at the top: a mask's top pixel probability (image_score "mask_max") is near 1 on most films.
IMAGE_THRESHOLDS = (tuple(round(float(t), 2) for t in np.arange(0.02, 0.981, 0.01))
                    + (0.99, 0.995, 0.998, 0.999, 0.9995))
GALLERY_SIZE = 8


@dataclass
class Record:
    """One held-out image: what the model said, kept small (the map stays at model resolution)."""

    sample: Sample
    part: str  # "calibration" | "test"
    source_format: str
    height: int
    width: int
    probability: float  # what the image threshold reads (the head's, unless rescored)
    probability_map: np.ndarray  # (S, S) float32
    truth_pixels: int
    # per pixel threshold of the grid: predicted pixels and intersection with the truth
    areas: np.ndarray
    intersections: np.ndarray
    head_probability: float = float("nan")  # the classification head's, kept when rescored


# --------------------------------------------------------------------------- which images


def held_out_samples(samples: list[Sample], config: dict) -> list[Sample]:
    """The validation images of the split the model was trained with."""
    limit = config.get("limit")
    pool = samples[:limit] if limit else samples
    _, validation = split_by_patient(pool, float(config.get("val_fraction", 0.2)),
                                     int(config.get("seed", 0)), config.get("validation_patients"))
    return validation


def calibration_test_split(samples: list[Sample], seed: int = 0) -> tuple[list[Sample], list[Sample]]:
    """50/50 by patient, stratified by whether a patient has a positive image."""
    calibration, test = split_by_patient(samples, 0.5, seed + 1)
    return calibration, test


def limit_samples(samples: list[Sample], limit: int) -> list[Sample]:
    """About ``limit`` images, whole patients, alternating positive and negative patients."""
    by_patient: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_patient[sample.patient_id].append(sample)
    positive = sorted(p for p, s in by_patient.items() if any(x.has_pneumothorax for x in s))
    negative = sorted(p for p in by_patient if p not in set(positive))
    chosen: set[str] = set()
    count = 0
    for index in range(max(len(positive), len(negative))):
        for group in (positive, negative):
            if index < len(group) and count < limit:
                chosen.add(group[index])
                count += len(by_patient[group[index]])
    return [s for s in samples if s.patient_id in chosen]


# --------------------------------------------------------------------------- figures


def with_image_score(records: list[Record], image_score: str) -> list[Record]:
    """The records with ``probability`` read as ``image_score`` (see OperatingPoint), always
    from the map and the head's own probability, so records can be rescored again."""
    return [replace(r, probability=image_probability(r.probability_map, r.head_probability, image_score))
            for r in records]


def dice_from_counts(positive, area, intersection, truth) -> np.ndarray:
    """Per-image Dice of the decision rule from pixel counts (1 when both empty)."""
    area = np.where(positive, area, 0)
    intersection = np.where(positive, intersection, 0)
    total = area + truth
    return np.where(total == 0, 1.0, 2.0 * intersection / np.maximum(total, 1))


def choose_operating_point(records: list[Record]) -> tuple[OperatingPoint, float]:
    """Grid search on the calibration records, maximising the challenge metric at 22%
    positives (the data's own mix where one class is missing)."""
    labels = np.array([r.sample.has_pneumothorax for r in records])
    probabilities = np.array([r.probability for r in records])[:, None]
    truth = np.array([r.truth_pixels for r in records])[:, None]
    pixels = np.array([r.height * r.width for r in records])[:, None]
    image_thresholds = np.array(IMAGE_THRESHOLDS)[None, :]
    reweight = labels.any() and not labels.all()
    weights = np.ones(len(records)) / len(records)
    if reweight:
        fraction = metrics.CHALLENGE_POSITIVE_FRACTION
        weights = np.where(labels, fraction / labels.sum(), (1 - fraction) / (~labels).sum())
    best_score, best = -1.0, OperatingPoint()
    for t_index, pixel_threshold in enumerate(PIXEL_THRESHOLDS):
        area = np.array([r.areas[t_index] for r in records])[:, None]
        intersection = np.array([r.intersections[t_index] for r in records])[:, None]
        for min_area in MIN_AREA_FRACTIONS:
            positive = (probabilities >= image_thresholds) & (area > 0) & (area / pixels >= min_area)
            scores = weights @ dice_from_counts(positive, area, intersection, truth)
            i = int(np.argmax(scores))
            if scores[i] > best_score + 1e-12:
                best_score = float(scores[i])
                best = OperatingPoint(pixel_threshold=float(pixel_threshold),
                                      min_area_fraction=float(min_area),
                                      image_threshold=float(IMAGE_THRESHOLDS[i]))
    return best, best_score


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


def figures(records: list[Record], point: OperatingPoint) -> tuple[dict, list[dict]]:
    """All reported figures for ``records`` at ``point``, computed with the product's own
    decision rule at each image's own size; also the per-image rows."""
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
        "ci95": confidence_intervals(labels, dices, probabilities, dicom),
    }
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


def decide_and_score(record: Record, point: OperatingPoint) -> tuple[np.ndarray, bool, float, float]:
    mask, positive, area_fraction = decide(record.probability_map, record.probability, point,
                                           record.height, record.width)
    truth = record.sample.load_mask(record.height, record.width)
    return mask, positive, area_fraction, metrics.dice(mask, truth)


# --------------------------------------------------------------------------- predicting


def predict_records(predictor: Predictor, parts: dict[str, list[Sample]], batch_size: int,
                    quiet: bool = False) -> tuple[list[Record], list[dict]]:
    jobs = [(name, sample) for name, samples in parts.items() for sample in samples]
    records, unreadable = [], []
    bar = tqdm(total=len(jobs), desc="predicting", unit="img", disable=quiet, dynamic_ncols=True)
    for start in range(0, len(jobs), batch_size):
        batch = []
        for part, sample in jobs[start : start + batch_size]:
            try:
                batch.append((part, sample, read_xray(sample.image_path)))
            except (XRayError, OSError) as exc:
                unreadable.append({"image_id": sample.image_id, "error": str(exc)})
        if batch:
            maps, probabilities = predictor.probability_maps([x for _, _, x in batch])
            for (part, sample, xray), probability_map, probability in zip(batch, maps, probabilities):
                truth = sample.load_mask(xray.height, xray.width) > 0
                full = upsample(probability_map, xray.height, xray.width)
                areas, intersections = [], []
                for threshold in PIXEL_THRESHOLDS:
                    predicted = full >= threshold
                    areas.append(int(predicted.sum()))
                    intersections.append(int(np.logical_and(predicted, truth).sum()))
                records.append(Record(sample, part, xray.source_format, xray.height, xray.width,
                                      float(probability), np.ascontiguousarray(probability_map),
                                      int(truth.sum()), np.array(areas), np.array(intersections),
                                      float(probability)))
        bar.update(len(jobs[start : start + batch_size]))
    bar.close()
    return records, unreadable


# --------------------------------------------------------------------------- plots


def plot_roc(test_rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(5.5, 5.5))
    for name, keep, style in (("all images", lambda r: True, "-"),
                              ("DICOM only", lambda r: r["format"] == "dicom", "--")):
        rows = [r for r in test_rows if keep(r)]
        labels = np.array([r["has_pneumothorax"] for r in rows], dtype=bool)
        if not labels.any() or labels.all():
            continue
        scores = [r["probability"] for r in rows]
        fpr, tpr, _ = metrics.roc_curve(scores, labels)
        auc = metrics.roc_auc(scores, labels)
        line, = axis.plot(fpr, tpr, style, label=f"{name} (AUC {auc:.3f}, n={len(rows)})")
        sensitivity, specificity = metrics.sensitivity_specificity(
            [r["positive"] for r in rows], labels)
        axis.plot([1 - specificity], [sensitivity], "o", color=line.get_color())
    axis.plot([0, 1], [0, 1], ":", color="grey")
    axis.set_xlabel("1 - specificity"), axis.set_ylabel("sensitivity")
    axis.set_title("Image-level ROC, test half (dot: operating point)")
    if axis.get_legend_handles_labels()[0]:
        axis.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_gallery(records: list[Record], test_rows: list[dict], point: OperatingPoint,
                 path: Path, count: int = GALLERY_SIZE) -> list[str]:
    """The worst test cases by Dice (then by confidence in the wrong call): truth outlined in
    green, prediction filled in red."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_id = {r.sample.image_id: r for r in records}
    worst = sorted(test_rows, key=lambda r: (r["dice"], -abs(r["probability"] - r["has_pneumothorax"])))
    worst = worst[:count]
    columns = 4
    rows = max(1, -(-len(worst) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.5 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, row in zip(axes.flat, worst):
        record = by_id[row["image_id"]]
        pixels = read_xray(record.sample.image_path).pixels
        mask, _, _, _ = decide_and_score(record, point)
        truth = record.sample.load_mask(record.height, record.width)
        side = 384
        image = cv2.cvtColor(cv2.resize(pixels, (side, side), interpolation=cv2.INTER_AREA),
                             cv2.COLOR_GRAY2RGB)
        predicted = cv2.resize(mask.astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST) > 0
        image[predicted] = (0.55 * image[predicted] + 0.45 * np.array([255, 0, 0])).astype(np.uint8)
        small_truth = cv2.resize(truth, (side, side), interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(small_truth, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(image, contours, -1, (0, 255, 0), 1)
        axis.imshow(image)
        axis.set_title(f"…{row['image_id'][-10:]} ({row['format']})\n"
                       f"truth {'+' if row['has_pneumothorax'] else '-'}  p={row['probability']:.2f}  "
                       f"Dice {row['dice']:.2f}", fontsize=8)
    fig.suptitle("Worst test cases: truth outlined green, prediction red", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [row["image_id"] for row in worst]


# --------------------------------------------------------------------------- command


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Evaluate a model file on held-out patients.")
    p.add_argument("--model", required=True)
    p.add_argument("--layout", choices=("subset", "siim", "folders"), default="subset")
    p.add_argument("--root", required=True)
    p.add_argument("--rle-csv", help="siim layout: the challenge's annotation CSV")
    p.add_argument("--encoding", choices=("relative", "standard"), default="relative")
    p.add_argument("--patients-csv", help="siim layout: image_id,patient_id rows for the split")
    p.add_argument("--out", required=True)
    p.add_argument("--flip-tta", action="store_true", help="horizontal-flip test-time augmentation")
    p.add_argument("--set-operating-point", action="store_true",
                   help="write the chosen operating point and test figures into the model file")
    p.add_argument("--validation-ids", help="list the held-out images must equal "
                   "(default: validation_ids.txt beside the model file, if there)")
    p.add_argument("--validation-patients", metavar="FILE",
                   help="the held-out patients, for a model file that does not record them "
                        "(default for the subset layout: ml/splits/, the split its models were trained on)")
    p.add_argument("--image-score", choices=("head", "mask_max", "best"), default="best",
                   help="what the image threshold reads: the classification head, the mask's top "
                        "pixel probability (sneddy's triplet), or the better of the two on the "
                        "calibration half (default)")
    p.add_argument("--limit", type=int, default=None,
                   help="evaluate only about N held-out images (whole patients; for smoke tests)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    started = time.monotonic()
    model_path = Path(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    info = read_info(model_path)
    config = info.training.get("config", {})
    samples = load_dataset(args.layout, args.root, args.rle_csv, args.encoding,
                           args.patients_csv)
    if "validation_patients" not in config:
        # Models trained before the split was frozen held out exactly these patients; a split
        # redrawn on the grown subset would score them on images they were trained on.
        patients_file = args.validation_patients or (SUBSET_VALIDATION_PATIENTS if args.layout == "subset" else None)
        if patients_file:
            config = {**config, "validation_patients": read_patient_list(patients_file)}
    held_out = held_out_samples(samples, config)

    ids_path = Path(args.validation_ids) if args.validation_ids else model_path.parent / "validation_ids.txt"
    verified = None
    if ids_path.is_file():
        expected = ids_path.read_text().split()
        if sorted(expected) != sorted(s.image_id for s in held_out):
            raise SystemExit(f"The recomputed held-out images differ from {ids_path}: wrong --root/"
                             "--layout for this model? Refusing to evaluate on training images.")
        verified = str(ids_path)
    if args.limit:
        held_out = limit_samples(held_out, args.limit)
    calibration, test = calibration_test_split(held_out, int(config.get("seed", 0)))

    predictor = Predictor(model_path, device=args.device, flip_tta=args.flip_tta, threads=args.threads)
    records, unreadable = predict_records(predictor, {"calibration": calibration, "test": test},
                                          args.batch_size, args.quiet)
    calibration_records = [r for r in records if r.part == "calibration"]
    test_records = [r for r in records if r.part == "test"]
    if not calibration_records or not test_records:
        raise SystemExit("Too few readable held-out images to calibrate and test.")

    # The image score is part of the operating point: chosen on the calibration half, the test
    # half then scored with it alone.
    kinds = IMAGE_SCORES if args.image_score == "best" else (args.image_score,)
    searches = {}
    for kind in kinds:
        kind_point, kind_score = choose_operating_point(with_image_score(calibration_records, kind))
        kind_point.image_score = kind
        searches[kind] = (kind_point, kind_score)
    chosen = max(searches, key=lambda kind: searches[kind][1])
    point, calibration_score = searches[chosen]
    calibration_records = with_image_score(calibration_records, chosen)
    test_records = with_image_score(test_records, chosen)
    records = calibration_records + test_records
    calibration_figures, _ = figures(calibration_records, point)
    test_figures, test_rows = figures(test_records, point)
    stored_figures, _ = figures(with_image_score(test_records, info.operating_point.image_score),
                                info.operating_point)

    plot_roc(test_rows, out / "roc.png")
    worst = plot_gallery(records, test_rows, point, out / "worst_cases.png")

    report = {
        "model": str(model_path),
        "version": info.version,
        "encoder": info.encoder,
        "image_size": info.image_size,
        "flip_tta": args.flip_tta,
        "data": {"layout": args.layout, "root": str(args.root), "dataset_images": len(samples),
                 "held_out_images": len(held_out), "calibration_images": len(calibration_records),
                 "test_images": len(test_records), "unreadable": unreadable},
        "split": {"seed": int(config.get("seed", 0)), "val_fraction": float(config.get("val_fraction", 0.2)),
                  "train_limit": config.get("limit"), "eval_limit": args.limit,
                  "verified_against": verified,
                  "calibration_patients": len({s.patient_id for s in calibration}),
                  "test_patients": len({s.patient_id for s in test})},
        "operating_point": asdict(point),
        "operating_point_search": {"objective": "challenge metric at 22% positives, calibration half",
                                   "score": calibration_score,
                                   "image_score": chosen,
                                   "score_by_image_score": {k: v[1] for k, v in searches.items()},
                                   "pixel_thresholds": list(PIXEL_THRESHOLDS),
                                   "min_area_fractions": list(MIN_AREA_FRACTIONS),
                                   "image_thresholds": [IMAGE_THRESHOLDS[0], IMAGE_THRESHOLDS[-1], 0.01]},
        "high_sensitivity": high_sensitivity_figures(calibration_records, test_records),
        "calibration": calibration_figures,
        "test": test_figures,
        "test_at_stored_operating_point": {"operating_point": asdict(info.operating_point),
                                           **stored_figures},
        "worst_cases": worst,
        "per_image": test_rows,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))

    if args.set_operating_point:
        info.operating_point = point
        info.evaluation = {"test": test_figures, "calibration_images": len(calibration_records),
                           "test_images": len(test_records), "flip_tta": args.flip_tta,
                           "layout": args.layout, "eval_limit": args.limit,
                           "evaluated": time.strftime("%Y-%m-%d")}
        update_metadata(model_path, info)

    summary = {k: test_figures[k] for k in ("challenge_own_mix", "challenge_22", "dice_positive",
                                            "auc", "sensitivity", "specificity")}
    print(f"operating point {asdict(point)} (calibration score {calibration_score:.4f})")
    print("test: " + " ".join(f"{k}={'n/a' if v is None else f'{v:.4f}'}" for k, v in summary.items()))
    dicom = test_figures["dicom_only"]
    print(f"test, DICOM only ({dicom['images']} images, {dicom['positives']} positive): "
          f"auc={dicom['auc']} sensitivity={dicom['sensitivity']} specificity={dicom['specificity']}")
    print(f"wrote {out / 'report.json'}, {out / 'roc.png'}, {out / 'worst_cases.png'}")
    return report


if __name__ == "__main__":
    main()
