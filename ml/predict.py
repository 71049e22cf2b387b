"""Predict pneumothorax on image files and folders; write masks and a CSV.

    python -m ml.predict --input chest1.dcm scans/ --out predictions/ [--model PATH] [--flip-tta]
                         [--backend torch|torch-bf16|onnx] [--onnx-model PATH]

For every input image (folders are searched recursively; the format is read from the bytes,
so any file name will do) it writes ``<out>/<image name without extension>.png``, the mask at
the input's own size (0 or 255), and one row of ``<out>/predictions.csv``:
``image_id, probability, positive, area_fraction, area_cm2, model_version, error, mask, source,
backend``.
A file that cannot be read gets a row with its error and no mask; the command goes on. The exit
status is non-zero only when no input at all could be predicted.

The model is the one that ships (``ml/weights``) or ``PNEUMOTHORAX_MODEL`` unless ``--model``
names one; weights are never downloaded.

``--backend`` chooses how the network runs (``ml.serving.backends``); the default, ``auto``, is
the fastest this machine supports: ``torch-bf16`` on a CPU with native bf16, else ``onnx`` where
onnxruntime and the model's ONNX file are there, else ``torch`` (eager fp32). The ``onnx``
backend reads the ``.onnx`` next to the model file (same stem), or ``--onnx-model`` /
``PNEUMOTHORAX_ONNX_MODEL``; where that is missing or was exported from another model file, it
exports it there first, once (tens of seconds), as a worker on ``INFERENCE_BACKEND=onnx`` does.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

from ml.core.checkpoint import CheckpointError
from ml.core.errors import XRayError
from ml.core.reading import read_xray
from ml.serving.backends import AUTO, BACKENDS
from ml.serving.inference import Predictor

COLUMNS = ("image_id", "probability", "positive", "area_fraction", "area_cm2", "model_version",
           "error", "mask", "source", "backend")


def expand_inputs(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files.extend(p for p in sorted(path.rglob("*"))
                         if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            files.append(path)  # a missing file becomes an error row, not a crash
    return files


def mask_name(image_id: str, taken: set[str]) -> str:
    """``<image_id>.png``; ``<image_id>-2.png``... where two inputs share a name."""
    name, n = f"{image_id}.png", 1
    while name in taken:
        n += 1
        name = f"{image_id}-{n}.png"
    taken.add(name)
    return name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Predict pneumothorax masks for image files.")
    parser.add_argument("--input", nargs="+", required=True, help="image files or folders")
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", help="model file (default: PNEUMOTHORAX_MODEL or ml/weights)")
    parser.add_argument("--flip-tta", action=argparse.BooleanOptionalAction, default=None,
                        help="horizontal-flip test-time augmentation (default: as the model's "
                             "operating point was chosen)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--backend", choices=(AUTO, *BACKENDS), default=AUTO,
                        help="how the network runs (default: auto, the fastest this machine supports)")
    parser.add_argument("--onnx-model", default=None,
                        help="the .onnx file for --backend onnx (default: PNEUMOTHORAX_ONNX_MODEL, "
                             "else next to the model file with the same stem)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    try:
        predictor = Predictor(args.model, device=args.device, flip_tta=args.flip_tta, threads=args.threads,
                              backend=args.backend, onnx_model=args.onnx_model)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = expand_inputs(args.input)
    if not files:
        print("error: no input files found", file=sys.stderr)
        return 1

    rows: dict[int, dict] = {}  # by input position, so the CSV follows the input order
    taken: set[str] = set()
    succeeded = 0
    bar = tqdm(total=len(files), desc="predicting", unit="img", disable=args.quiet, dynamic_ncols=True)
    for start in range(0, len(files), args.batch_size):
        batch = []
        for index, path in enumerate(files[start : start + args.batch_size], start):
            base = {"image_id": path.stem, "source": str(path), "model_version": predictor.version,
                    "backend": predictor.backend_name}
            try:
                batch.append((index, path, base, read_xray(path)))
            except (XRayError, OSError) as exc:
                rows[index] = {**base, "error": str(exc) or type(exc).__name__}
        if batch:
            predictions = predictor.predict_batch([xray for _, _, _, xray in batch])
            for (index, path, base, _), prediction in zip(batch, predictions):
                name = mask_name(path.stem, taken)
                if not cv2.imwrite(str(out / name), prediction.mask):
                    rows[index] = {**base, "error": f"could not write {out / name}"}
                    continue
                succeeded += 1
                rows[index] = {
                    **base,
                    "probability": f"{prediction.probability:.6f}",
                    "positive": int(prediction.positive),
                    "area_fraction": f"{prediction.area_fraction:.6f}",
                    "area_cm2": "" if prediction.area_cm2 is None else f"{prediction.area_cm2:.3f}",
                    "error": "",
                    "mask": name,
                }
        bar.update(len(files[start : start + args.batch_size]))
    bar.close()

    with open(out / "predictions.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows[i] for i in sorted(rows))
    failed = len(files) - succeeded
    print(f"{succeeded} predicted ({predictor.backend_name} backend), {failed} failed; "
          f"wrote {out / 'predictions.csv'}")
    return 0 if succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
