"""CPU inference backends (ml.serving.backends) side by side, as ratios to eager fp32 from one run.

    .venv/bin/python bench/cpu_backends.py [--model PATH] [--onnx PATH] [--threads 2] [--repeats 15]
                                           [--int8] [--e2e-images 40] [--e2e-rounds 2]

Per 1024 x 1024 shared DICOM, at the model file's resolution, with ``--threads`` threads (torch
and ONNX Runtime intra-op alike), it times for each configuration:
- ``forward``: one forward pass of one image (``backend.run`` on a batch of 1, no TTA);
- ``predict``: ``Predictor.predict`` of the already read image as the product serves it
  (resize, the network with flip TTA as the model file was evaluated, upsampling, decision);
alternating the configurations round by round so that a change in the machine's load hits all
of them alike, and prints the median of ``--repeats`` after a warm-up and the ratio to eager
fp32. Configurations: ``torch`` (eager fp32, the baseline), ``torch-bf16`` (as served: channels-
last, bf16 autocast, the encoder's stem and first two blocks in fp32 with their batch norms
folded), ``torch-bf16 (all layers)`` (every layer in bf16, nothing folded: faster, less exact), ``onnx`` at each ORT graph optimisation level, and with ``--int8`` a statically
quantised ONNX model (QDQ, per channel, calibrated on 8 other shared images).

Accuracy against fp32 on 8 shared images (6 positive, 2 negative): the largest difference in
probability, the smallest mask Dice where either mask is non-empty, and whether every yes/no
call is the same.

End to end: ``python -m ml.predict`` over ``--e2e-images`` shared images (half positive, all three
formats) with the default backend and with ``--backend torch``, alternated ``--e2e-rounds``
times; wall-clock seconds of the whole command (start-up and reading included).

Writes ``bench/results/cpu_backends.json``. Numbers depend on what else the machine is doing:
the load average before and after is printed and recorded; say so with the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ml.core.contrast import network_pixels  # noqa: E402
from ml.core.model import to_input_tensor  # noqa: E402
from ml.core.reading import read_xray  # noqa: E402
from ml.serving.backends import (OnnxBackend, TorchBf16Backend, cpu_supports_bf16,  # noqa: E402
                                 default_backend, export_onnx, onnx_path_for)
from ml.serving.inference import Predictor, configured_model_path  # noqa: E402

SHARED = (REPO / ".." / "shared" / "data" / "siim-acr-subset").resolve()
RESULTS = REPO / "bench" / "results" / "cpu_backends.json"
LEVELS = ("disable", "basic", "extended", "all")


def shared_rows() -> list[dict]:
    with open(SHARED / "labels.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def pick(rows: list[dict], positive: bool, count: int, suffixes=(".dcm", ".png", ".jpg")) -> list[dict]:
    """``count`` rows, taken in turn from each format, in labels.csv order."""
    by_format = [[r for r in rows if r["image"].endswith(s) and (r["has_pneumothorax"] == "1") == positive]
                 for s in suffixes]
    chosen: list[dict] = []
    while len(chosen) < count and any(by_format):
        for group in by_format:
            if group and len(chosen) < count:
                chosen.append(group.pop(0))
    return chosen


def model_input(xray, info) -> np.ndarray:
    """(1, 1, S, S): one image as the predictor feeds it to its backend."""
    return to_input_tensor(network_pixels(xray.pixels, info.image_size, info.input_contrast))[None].numpy()


def dice(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = a > 0, b > 0
    total = int(a.sum() + b.sum())
    return None if total == 0 else 2 * float((a & b).sum()) / total


def int8_model(onnx_path: Path, calibration: list[np.ndarray], out: Path) -> Path:
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"image": batch}

    prepared = out.with_suffix(".pre.onnx")
    quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def end_to_end(model: Path, onnx: Path, count: int, rounds: int, threads: int, work: Path) -> dict:
    rows = shared_rows()
    images = work / "e2e-images"
    images.mkdir()
    for row in pick(rows, True, count // 2) + pick(rows, False, count - count // 2):
        (images / Path(row["image"]).name).symlink_to(SHARED / row["image"])
    runs = {"default": [], "torch": []}
    backend = {}
    for n in range(rounds):
        for name, extra in (("default", []), ("torch", ["--backend", "torch"])):
            out = work / f"e2e-{name}-{n}"
            command = [sys.executable, "-m", "ml.predict", "--input", str(images), "--out", str(out),
                       "--model", str(model), "--onnx-model", str(onnx), "--threads", str(threads),
                       "--quiet", *extra]
            started = time.perf_counter()
            subprocess.run(command, cwd=REPO, check=True, capture_output=True)
            runs[name].append(time.perf_counter() - started)
            with open(out / "predictions.csv", newline="") as handle:
                backend[name] = sorted({r["backend"] for r in csv.DictReader(handle)})
    medians = {name: statistics.median(seconds) for name, seconds in runs.items()}
    return {"images": len(list(images.iterdir())), "rounds": rounds, "seconds": runs,
            "median_s": medians, "backends": backend,
            "speedup": medians["torch"] / medians["default"]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model file (default: the shipped one)")
    p.add_argument("--onnx", default=None, help="its ONNX export (default: next to the model, "
                                                "else exported to a temporary folder)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--int8", action="store_true", help="also a statically quantised int8 ONNX model")
    p.add_argument("--e2e-images", type=int, default=40, help="0: no end-to-end run")
    p.add_argument("--e2e-rounds", type=int, default=2)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    model_path = Path(args.model) if args.model else configured_model_path()
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="cpu-backends-"))
    onnx_path = Path(args.onnx) if args.onnx else onnx_path_for(model_path)
    export_s = None
    if not onnx_path.is_file():
        onnx_path = work / f"{model_path.stem}.onnx"
        started = time.perf_counter()
        export_onnx(model_path, onnx_path)
        export_s = time.perf_counter() - started

    rows = shared_rows()
    accuracy_rows = pick(rows, True, 6) + pick(rows, False, 2)
    accuracy_images = [read_xray(SHARED / r["image"]) for r in accuracy_rows]
    timing_row = next(r for r in rows if r["image"].endswith(".dcm"))
    xray = read_xray(SHARED / timing_row["image"])

    predictors = {"torch": Predictor(model_path, threads=args.threads, backend="torch")}
    predictors["torch-bf16"] = Predictor(model_path, threads=args.threads, backend="torch-bf16")
    every_layer = Predictor(model_path, threads=args.threads, backend="torch")
    every_layer.backend = TorchBf16Backend(every_layer.model, every_layer.device, fp32_layers=())
    predictors["torch-bf16 (all layers)"] = every_layer
    for level in LEVELS:
        predictor = Predictor(model_path, threads=args.threads, backend="onnx", onnx_model=onnx_path)
        predictor.backend = OnnxBackend(onnx_path, predictor.version, args.threads, optimization=level)
        predictors[f"onnx ({level})"] = predictor
    if args.int8:
        calibration_rows = [r for r in pick(rows, True, 12) + pick(rows, False, 6)
                            if r not in accuracy_rows][:8]
        calibration = [model_input(read_xray(SHARED / r["image"]), predictors["torch"].info)
                       for r in calibration_rows]
        quantised = int8_model(onnx_path, calibration, work / "int8.onnx")
        predictor = Predictor(model_path, threads=args.threads, backend="onnx", onnx_model=onnx_path)
        predictor.backend = OnnxBackend(quantised, None, args.threads, optimization="all")
        predictors["onnx int8 (static QDQ)"] = predictor

    flip_tta = predictors["torch"].flip_tta
    info = predictors["torch"].info
    size = info.image_size
    batch = model_input(xray, info)

    print(f"model {info.version} ({info.encoder}, {size} px), torch {torch.__version__}, "
          f"{args.threads} threads, {os.cpu_count()} CPUs, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {'yes' if cpu_supports_bf16() else 'no'}, "
          f"default backend: {default_backend('cpu', model_path, onnx_path)}")
    print(f"image {timing_row['image'].split('/')[-1]} ({xray.width} x {xray.height}); flip TTA "
          f"{'on' if flip_tta else 'off'} in predict; median of {args.repeats} after a warm-up; "
          f"load average before {load_before[0]:.1f}" + (f"; ONNX export {export_s:.0f} s" if export_s else ""))

    for predictor in predictors.values():  # warm-up: oneDNN and ORT pick their kernels
        predictor.backend.run(batch)
        predictor.predict(xray)
    forward = {name: [] for name in predictors}
    predict = {name: [] for name in predictors}
    for _ in range(args.repeats):
        for name, predictor in predictors.items():
            started = time.perf_counter()
            predictor.backend.run(batch)
            forward[name].append(time.perf_counter() - started)
            started = time.perf_counter()
            predictor.predict(xray)
            predict[name].append(time.perf_counter() - started)

    reference = predictors["torch"].predict_batch(accuracy_images)
    results = {}
    base_forward = statistics.median(forward["torch"])
    base_predict = statistics.median(predict["torch"])
    print(f"\n{'configuration':<24} {'forward ms':>10} {'vs fp32':>8} {'predict ms':>11} {'vs fp32':>8}"
          f" {'max |dp|':>9} {'min Dice':>9} {'calls':>6}")
    for name, predictor in predictors.items():
        answers = reference if name == "torch" else predictor.predict_batch(accuracy_images)
        dp = max(abs(a.probability - b.probability) for a, b in zip(answers, reference))
        dices = [d for d in (dice(a.mask, b.mask) for a, b in zip(answers, reference)) if d is not None]
        same_calls = all(a.positive == b.positive for a, b in zip(answers, reference))
        f_ms, p_ms = statistics.median(forward[name]) * 1000, statistics.median(predict[name]) * 1000
        results[name] = {"forward_ms": round(f_ms, 1), "forward_speedup": round(base_forward * 1000 / f_ms, 2),
                         "predict_ms": round(p_ms, 1), "predict_speedup": round(base_predict * 1000 / p_ms, 2),
                         "max_probability_difference": dp, "min_mask_dice": min(dices) if dices else None,
                         "same_calls": same_calls,
                         "forward_samples_ms": [round(s * 1000, 1) for s in forward[name]],
                         "predict_samples_ms": [round(s * 1000, 1) for s in predict[name]]}
        print(f"{name:<24} {f_ms:>10.0f} {base_forward * 1000 / f_ms:>7.2f}x {p_ms:>11.0f} "
              f"{base_predict * 1000 / p_ms:>7.2f}x {dp:>9.1e} "
              f"{(min(dices) if dices else float('nan')):>9.4f} {'same' if same_calls else 'DIFFER':>6}")

    e2e = None
    if args.e2e_images:
        e2e = end_to_end(model_path, onnx_path, args.e2e_images, args.e2e_rounds, args.threads, work)
        print(f"\nml.predict over {e2e['images']} shared images, {args.threads} threads, median of "
              f"{e2e['rounds']}: default ({', '.join(e2e['backends']['default'])}) "
              f"{e2e['median_s']['default']:.1f} s, --backend torch {e2e['median_s']['torch']:.1f} s: "
              f"{e2e['speedup']:.2f}x")
    load_after = os.getloadavg()
    print(f"load average after {load_after[0]:.1f} (1 min), {load_after[1]:.1f} (5 min)")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "model": info.version, "image_size": size, "threads": args.threads, "repeats": args.repeats,
        "flip_tta_in_predict": flip_tta, "torch": torch.__version__,
        "onnxruntime": __import__("onnxruntime").__version__, "cpu": platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "native_bf16": cpu_supports_bf16(),
        "default_backend": default_backend("cpu", model_path, onnx_path),
        "load_average_before": load_before, "load_average_after": load_after,
        "onnx_export_s": export_s, "configurations": results, "end_to_end": e2e,
        "accuracy_images": [r["image"] for r in accuracy_rows], "timing_image": timing_row["image"],
    }, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
