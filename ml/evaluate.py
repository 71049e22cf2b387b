"""Evaluate a model file on held-out patients, choose its operating point, write a report.

    python -m ml.evaluate --model runs/lite0-256/best.safetensors --layout subset \\
        --root ../shared/data/siim-acr-subset --out runs/lite0-256/eval [--flip-tta] [--set-operating-point]

Which images, and why:
- The held-out images are the validation patients of the split recorded in the model file
  (``training.config``: seed, val_fraction, limit), recomputed with
  ``ml.training.datasets.split_by_patient`` on the original dataset. Where a ``validation_ids.txt`` lies
  beside the model file (``ml.train`` writes one) the recomputed list must equal it.
- Those patients are split again, by patient, stratified and deterministic, 50/50: the
  *calibration* half chooses the operating point (pixel threshold, minimum area fraction,
  image threshold) by grid search maximising the challenge metric at 22% positives; the *test*
  half, never looked at while choosing, gives every reported figure.

Images are read from the original files (``ml.core.reading.read_xray``), predicted with the
predictor's own code (``Predictor.probability_maps``) and decided with ``ml.core.decision.decide``
at the image's own (1024 px) size, exactly as the product decides.

Writes ``report.json``, ``roc.png`` (all images and DICOM only) and ``worst_cases.png``.

``--layout feedback --root feedback.csv --media-root <PRIVATE_MEDIA_ROOT>``: the product's own
cases as its clinicians labelled them (``manage.py export_feedback``), never trained on and
without outlines: detection only, every image at the model file's stored operating point
(``ml.evaluation.local``).
``--calibration-only`` scores a candidate on the calibration half alone and leaves the test half
unread: choose between candidates that way, then evaluate the chosen one in full, once.
With ``--set-operating-point`` the chosen point and the test figures are written into the model
file (weights unchanged).
``--feedback DIR`` (``manage.py export_feedback --out-dir``) adds a ``site`` section to
``report.json``: the model on the held-out part of this site's films, split by patient as
``ml.train --feedback`` splits them, at the operating point chosen on the calibration half
(``ml.evaluation.site``). It is a test set: ``--calibration-only`` refuses it.
"""

from __future__ import annotations

import argparse

from ml.evaluation.local import evaluate_feedback
from ml.evaluation.report import evaluate, evaluate_calibration_only


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Evaluate a model file on held-out patients.")
    p.add_argument("--model", required=True)
    p.add_argument("--layout", choices=("subset", "siim", "folders", "feedback"), default="subset")
    p.add_argument("--root", required=True, help="the dataset's folder (feedback layout: the CSV)")
    p.add_argument("--media-root", help="feedback layout: the folder the CSV's file paths are "
                                        "relative to, PRIVATE_MEDIA_ROOT (default: the CSV's folder)")
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
    p.add_argument("--calibration-only", action="store_true",
                   help="score a candidate on the calibration half alone (calibration.json); the "
                        "test half is not predicted, so choosing between candidates never sees it")
    p.add_argument("--ensemble-with", action="append", metavar="MODEL", default=[],
                   help="with --calibration-only: score the mean of this model's and --model's "
                        "probability maps (repeatable); a measurement, the worker serves one file")
    p.add_argument("--image-score", choices=("head", "mask_max", "best"), default="best",
                   help="what the image threshold reads: the classification head, the mask's top "
                        "pixel probability (sneddy's triplet), or the better of the two on the "
                        "calibration half (default)")
    p.add_argument("--feedback", metavar="DIR",
                   help="also score the held-out part of this site's films (manage.py "
                        "export_feedback --out-dir): the report's site section")
    p.add_argument("--feedback-holdout", type=float, default=None,
                   help="share of the site's patients held out (default: the one the model was "
                        "fine-tuned with, else 0.2; must match ml.train's)")
    p.add_argument("--limit", type=int, default=None,
                   help="evaluate only about N held-out images (whole patients; for smoke tests)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    """Evaluate as the arguments say; the report (also written as ``<out>/report.json``)."""
    args = parse_args(argv)
    if args.feedback and (args.layout == "feedback" or args.calibration_only):
        raise SystemExit("--feedback scores the site's held-out films, a test set: evaluate the "
                         "chosen candidate in full, on the shared data's layout")
    if args.layout == "feedback":
        return evaluate_feedback(args)
    if args.ensemble_with and not args.calibration_only:
        raise SystemExit("--ensemble-with measures an ensemble on the calibration half "
                         "(--calibration-only); the worker cannot serve one, so it has no test figures")
    if args.calibration_only:
        if args.set_operating_point:
            raise SystemExit("--calibration-only chooses between candidates; evaluate the chosen one "
                             "in full to --set-operating-point")
        return evaluate_calibration_only(args)
    return evaluate(args)


if __name__ == "__main__":
    main()
