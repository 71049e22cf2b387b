"""One evaluation run: held-out images, predictions, the operating point chosen on the calibration
half, the test half's figures and pictures, ``report.json``; optionally the point written into the
model file. The command and its options are ``python -m ml.evaluate``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from ml.core.checkpoint import read_info, update_metadata
from ml.core.decision import IMAGE_SCORES
from ml.core.model_card import review_first_figures
from ml.core.operating_point import CALIBRATION_GRID
from ml.evaluation.calibration import search_image_scores
from ml.evaluation.ensemble import AveragedPredictor
from ml.evaluation.figures import figures, high_sensitivity_figures
from ml.evaluation.held_out import (CALIBRATION_SPLIT_SEED, calibration_test_split, limit_samples,
                                   verified_held_out)
from ml.evaluation.plots import plot_gallery, plot_roc
from ml.evaluation.records import predict_records, with_image_score
from ml.evaluation.site import site_section
from ml.serving.inference import Predictor
from ml.training.datasets import load_dataset


def evaluate(args: argparse.Namespace) -> dict:
    """Evaluate ``args.model`` as ``ml.evaluate``'s arguments say; the report, also written to
    ``<out>/report.json`` beside ``roc.png`` and ``worst_cases.png``."""
    started = time.monotonic()
    model_path, out = Path(args.model), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = read_info(model_path)
    config = info.training.get("config", {})
    samples, held_out, verified, calibration, test = held_out_halves(args, model_path, config)

    predictor = Predictor(model_path, device=args.device, flip_tta=args.flip_tta, threads=args.threads)
    records, unreadable = predict_records(predictor, {"calibration": calibration, "test": test},
                                          args.batch_size, args.quiet)
    calibration_records = [r for r in records if r.part == "calibration"]
    test_records = [r for r in records if r.part == "test"]
    if not calibration_records or not test_records:
        raise SystemExit("Too few readable held-out images to calibrate and test.")

    chosen, point, calibration_score, searches = choose_on_calibration(calibration_records, args.image_score)
    calibration_records = with_image_score(calibration_records, chosen)
    test_records = with_image_score(test_records, chosen)
    records = calibration_records + test_records
    high_sensitivity = high_sensitivity_figures(calibration_records, test_records)
    # The worklist's "review first" threshold: 90% sensitivity on the calibration half, on the
    # same image score as the call (it changes no figure of the call itself).
    point.review_threshold = high_sensitivity.get("image_threshold")
    calibration_figures, _ = figures(calibration_records, point)
    test_figures, test_rows = figures(test_records, point)
    stored_figures, _ = figures(with_image_score(test_records, info.operating_point.image_score),
                                info.operating_point)

    plot_roc(test_rows, out / "roc.png")
    worst = plot_gallery(records, test_rows, point, out / "worst_cases.png")

    grid = CALIBRATION_GRID
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
                  # The training split's seed (above) chose the held-out patients; this fixed
                  # one halves them, the same halves for every model held out on them.
                  "calibration_test_seed": CALIBRATION_SPLIT_SEED,
                  "calibration_patients": len({s.patient_id for s in calibration}),
                  "test_patients": len({s.patient_id for s in test})},
        "operating_point": asdict(point),
        "operating_point_search": {"objective": "challenge metric at 22% positives, calibration half",
                                   "score": calibration_score,
                                   "image_score": chosen,
                                   "score_by_image_score": {k: v[1] for k, v in searches.items()},
                                   "pixel_thresholds": list(grid.pixel_thresholds),
                                   "min_area_fractions": list(grid.min_area_fractions),
                                   "image_thresholds": [grid.image_thresholds[0], grid.image_thresholds[-1], 0.01]},
        "high_sensitivity": high_sensitivity,
        "calibration": calibration_figures,
        "test": test_figures,
        "test_at_stored_operating_point": {"operating_point": asdict(info.operating_point),
                                           **stored_figures},
        "worst_cases": worst,
        **({"site": site_section(args, config, predictor, point)} if args.feedback else {}),
        "per_image": test_rows,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))

    if args.set_operating_point:
        info.operating_point = point
        # The review-first figures too: the model page shows both thresholds (ml.core.model_card).
        info.evaluation = {"test": test_figures, "review_first": review_first_figures(high_sensitivity),
                           "calibration_images": len(calibration_records),
                           "test_images": len(test_records), "flip_tta": args.flip_tta,
                           "layout": args.layout, "eval_limit": args.limit,
                           "evaluated": time.strftime("%Y-%m-%d")}
        update_metadata(model_path, info)
    print_summary(report, out)
    return report


def held_out_halves(args: argparse.Namespace, model_path: Path, config: dict):
    """The dataset, the verified held-out images, how they were verified, and their calibration
    and test halves (by patient)."""
    samples = load_dataset(args.layout, args.root, args.rle_csv, args.encoding, args.patients_csv)
    ids_path = Path(args.validation_ids) if args.validation_ids else model_path.parent / "validation_ids.txt"
    held_out, verified = verified_held_out(samples, config, args.layout, ids_path, args.validation_patients)
    if args.limit:
        held_out = limit_samples(held_out, args.limit)
    calibration, test = calibration_test_split(held_out)
    return samples, held_out, verified, calibration, test


def choose_on_calibration(calibration_records: list, image_score: str):
    """The image score, operating point and calibration score the search chooses, and every search."""
    searches = search_image_scores(calibration_records,
                                   IMAGE_SCORES if image_score == "best" else (image_score,))
    chosen = max(searches, key=lambda kind: searches[kind][1])
    point, score = searches[chosen]
    return chosen, point, score, searches


def evaluate_calibration_only(args: argparse.Namespace) -> dict:
    """Score a *candidate* on the calibration half alone: the operating point its search chooses
    and the calibration figures (challenge metric, AUC, DICOM-only AUC, specificity at 90%
    sensitivity). The test half is neither predicted nor scored, so that choosing between
    candidates never looks at it; the chosen one is then evaluated in full, once. Writes
    ``<out>/calibration.json``; the model file is not changed."""
    started = time.monotonic()
    model_path, out = Path(args.model), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = read_info(model_path)
    _, _, _, calibration, _ = held_out_halves(args, model_path, info.training.get("config", {}))
    def load(path):
        return Predictor(path, device=args.device, flip_tta=args.flip_tta, threads=args.threads)

    ensemble_with = args.ensemble_with
    predictor = load(model_path)
    if ensemble_with:  # a measurement: the worker serves one model file (ml.evaluation.ensemble)
        predictor = AveragedPredictor([predictor, *map(load, ensemble_with)])
    records, unreadable = predict_records(predictor, {"calibration": calibration}, args.batch_size, args.quiet)
    if not records:
        raise SystemExit("No readable calibration images.")
    chosen, point, score, searches = choose_on_calibration(records, args.image_score)
    records = with_image_score(records, chosen)
    # No bootstrap: candidates are compared on the point figures, and the intervals were discarded.
    calibration_figures, _ = figures(records, point, intervals=False)
    # The review-first threshold on the half that sets it: what it costs in specificity there.
    review_first = high_sensitivity_figures(records, records)
    report = {
        "model": str(model_path), "version": info.version, "flip_tta": args.flip_tta,
        **({"ensemble": {"models": [str(model_path), *map(str, ensemble_with)],
                         "versions": predictor.versions}} if ensemble_with else {}),
        "calibration_images": len(records), "unreadable": unreadable,
        "operating_point": asdict(point),
        "operating_point_search": {"score": score, "image_score": chosen,
                                   "score_by_image_score": {k: v[1] for k, v in searches.items()}},
        "calibration": calibration_figures,
        "review_first": {"image_threshold": review_first.get("image_threshold"),
                         "calibration": review_first.get("test"),
                         "calibration_dicom_only": review_first.get("test_dicom_only")},
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    (out / "calibration.json").write_text(json.dumps(report, indent=2))
    figures_, review = report["calibration"], report["review_first"]
    dicom = figures_["dicom_only"]
    print(f"calibration ({len(records)} images; image score {chosen}): challenge_22={_shown(score)} "
          f"auc={_shown(figures_['auc'])} dicom_auc={_shown(dicom['auc'])} ({dicom['positives']} positive) "
          f"dice_positive={_shown(figures_['dice_positive'])} "
          f"review-first specificity={_shown((review['calibration'] or {}).get('specificity'))} "
          f"(DICOM only {_shown((review['calibration_dicom_only'] or {}).get('specificity'))})")
    print(f"wrote {out / 'calibration.json'}")
    return report


def _shown(value) -> str:
    """A figure for the console; n/a where it is undefined (one class missing)."""
    return "n/a" if value is None else f"{value:.4f}"


def print_summary(report: dict, out: Path) -> None:
    test = report["test"]
    summary = {k: test[k] for k in ("challenge_own_mix", "challenge_22", "dice_positive",
                                    "auc", "sensitivity", "specificity")}
    print(f"operating point {report['operating_point']} "
          f"(calibration score {report['operating_point_search']['score']:.4f})")
    print("test: " + " ".join(f"{k}={_shown(v)}" for k, v in summary.items()))
    dicom = test["dicom_only"]
    print(f"test, DICOM only ({dicom['images']} images, {dicom['positives']} positive): "
          f"auc={dicom['auc']} sensitivity={dicom['sensitivity']} specificity={dicom['specificity']}")
    site = report.get("site")
    if site is not None:
        print(f"site, held out ({site['images']} films of {site['patients']} patients, "
              f"{site.get('positives', 0)} positive): auc={_shown(site.get('auc'))} "
              f"sensitivity={_shown(site.get('sensitivity'))} specificity={_shown(site.get('specificity'))} "
              f"dice_positive={_shown(site.get('dice_positive'))} ({site.get('outlined_positives', 0)} outlined)")
    print(f"wrote {out / 'report.json'}, {out / 'roc.png'}, {out / 'worst_cases.png'}")
