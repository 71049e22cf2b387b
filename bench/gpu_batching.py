"""Images per second of the batched GPU worker's model step at batch 1, 8 and 32, against
unbatched, in one command:

    .venv/bin/python bench/gpu_batching.py --device cuda --batches 1 8 32 --images 256
    .venv/bin/python bench/gpu_batching.py --device cpu --batches 1 4 --images 8   # small, on a CPU

What is timed, per backend and batch size, over ``--images`` real shared X-rays (DICOMs of the
SIIM-ACR subset, ``--unique`` of them read once beforehand and cycled; noise of 1024 x 1024 where
the subset is missing):

- batched: ``Predictor.predict_batch`` on consecutive batches, what the batch task
  (``workers.tasks.analyse_images_batch``) calls once per batch: resize, one forward pass,
  probabilities back on the host, then the decision and the findings at each image's own size;
- unbatched: ``Predictor.predict`` one image at a time, what ``analyse_image`` does;
- network: ``Predictor.probability_maps`` alone (resize + forward + copy back), to show how much
  of a batch is the GPU's and how much the CPU's post-processing;
- render: the worker's mask and overlay PNGs for one image (CPU, per image, never batched),
  which bounds what one worker process can finish per second whatever the batch.

One warm-up pass per configuration, then the median of ``--repeats`` timed passes. Backends: on
CUDA the GPU worker's ``torch-bf16`` (channels-last, autocast bf16, fp16 where the GPU has no
bf16; ``ml.serving.backends``) and the fp32 reference ``torch``, whose operating point the model
was validated with; their agreement on the unique images is reported (largest probability
difference, calls that differ, mask pixels that differ), and so is batch invariance (batched vs
one at a time). Prints the device (``torch.cuda.get_device_name``) and a table; writes
``bench/results/gpu_batching-<device>.json``. Figures depend on what else the machine runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ml.core.reading import XRay, read_xray  # noqa: E402
from ml.serving.inference import Predictor, configured_model_path  # noqa: E402
from tests.support.data import REPO, subset_images  # noqa: E402
from webapp.cases.services import rendering  # noqa: E402  (numpy and Pillow only)


def load_images(unique: int) -> tuple[list[XRay], str]:
    paths = subset_images("dcm")[:unique]
    if not paths:
        rng = np.random.default_rng(0)
        return ([XRay(rng.integers(0, 256, (1024, 1024), dtype=np.uint8), "png")
                 for _ in range(unique)], "random 1024 x 1024 noise")
    xrays = [read_xray(path) for path in paths]
    sizes = sorted({f"{x.width}x{x.height}" for x in xrays})
    return xrays, f"{len(xrays)} shared DICOMs ({', '.join(sizes)})"


def chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def timed(function, repeats: int, warm_up=None) -> float:
    (warm_up or function)()  # CUDA context, cuDNN algorithms for this shape, allocator, caches
    samples = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        started = time.perf_counter()
        function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def agreement(reference: list, other: list) -> dict:
    probability = [abs(a.probability - b.probability) for a, b in zip(reference, other)]
    pixels = [float(np.mean(a.mask != b.mask)) for a, b in zip(reference, other)]
    return {"images": len(reference),
            "max_probability_difference": round(max(probability), 6),
            "calls_that_differ": sum(a.positive != b.positive for a, b in zip(reference, other)),
            "review_flags_that_differ": sum(a.review_first != b.review_first
                                            for a, b in zip(reference, other)),
            "max_mask_pixels_differing": round(max(pixels), 6),
            "mean_mask_pixels_differing": round(float(np.mean(pixels)), 8)}


def run_backend(name: str, args, device: torch.device, images: list[XRay], unique: list[XRay]):
    predictor = Predictor(args.model or configured_model_path(), device=str(device),
                          threads=args.threads, backend=name)
    rows = []
    seconds = timed(lambda: [predictor.predict(x) for x in images], args.repeats,
                    lambda: [predictor.predict(x) for x in images[:2]])
    rows.append({"backend": name, "mode": "unbatched", "batch": 1,
                 "images_per_s": round(len(images) / seconds, 2),
                 "ms_per_image": round(seconds * 1000 / len(images), 2)})
    for size in args.batches:
        batches = chunks(images, size)
        seconds = timed(lambda: [predictor.predict_batch(b) for b in batches], args.repeats,
                        lambda: predictor.predict_batch(batches[0]))
        network = timed(lambda: [predictor.probability_maps(b) for b in batches], args.repeats,
                        lambda: predictor.probability_maps(batches[0]))
        rows.append({"backend": name, "mode": "batched", "batch": size,
                     "images_per_s": round(len(images) / seconds, 2),
                     "ms_per_image": round(seconds * 1000 / len(images), 2),
                     "network_images_per_s": round(len(images) / network, 2),
                     "network_ms_per_image": round(network * 1000 / len(images), 2)})
    unbatched = rows[0]["images_per_s"]
    for row in rows:
        row["speedup_vs_unbatched"] = round(row["images_per_s"] / unbatched, 2)
    batched = [p for b in chunks(unique, max(args.batches)) for p in predictor.predict_batch(b)]
    alone = [predictor.predict(x) for x in unique]
    meta = {"backend": name, "backend_used": predictor.backend_name,
            "dtype": str(getattr(predictor.backend, "dtype", torch.float32)).replace("torch.", ""),
            "batch_invariance": agreement(alone, batched)}
    return rows, meta, batched


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--images", type=int, default=256, help="images per timed pass")
    parser.add_argument("--unique", type=int, default=32, help="distinct X-rays read and cycled")
    parser.add_argument("--backends", nargs="+", default=None,
                        help="default: torch-bf16 and torch on CUDA, torch on a CPU")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--model", default=None, help="model file (default: the shipped one)")
    parser.add_argument("--out", default=None, help="JSON file (default bench/results/...)")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here (use --device cpu)")
    backends = args.backends or (["torch-bf16", "torch"] if device.type == "cuda" else ["torch"])
    unique, source = load_images(min(args.unique, args.images))
    images = [unique[i % len(unique)] for i in range(args.images)]

    print(f"device: {device_name(device)} ({device}); torch {torch.__version__}"
          + (f", CUDA {torch.version.cuda}, bf16 {torch.cuda.is_bf16_supported()}"
             if device.type == "cuda" else "")
          + f"; load {os.getloadavg()[0]:.1f}")
    print(f"images: {args.images} per pass, cycled from {source}; median of {args.repeats} "
          "pass(es) after a warm-up\n")

    rows, metas, outputs = [], [], {}
    for name in backends:
        backend_rows, meta, outputs[name] = run_backend(name, args, device, images, unique)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # the last backend's model and cached blocks go first
        rows += backend_rows
        metas.append(meta)
    if "torch" in outputs:
        for meta in metas:
            if meta["backend"] != "torch":
                meta["agreement_with_fp32"] = agreement(outputs["torch"], outputs[meta["backend"]])

    sample, mask = unique[0], outputs[backends[0]][0].mask
    render_s = timed(lambda: (rendering.mask_png(mask), rendering.overlay_png(sample.pixels, mask)),
                     max(args.repeats, 3))

    print(f"{'backend':>11} {'mode':>9} {'batch':>5} {'images/s':>9} {'ms/image':>9} "
          f"{'x unbatched':>11} {'network img/s':>13}")
    for row in rows:
        print(f"{row['backend']:>11} {row['mode']:>9} {row['batch']:>5} {row['images_per_s']:>9.1f} "
              f"{row['ms_per_image']:>9.1f} {row['speedup_vs_unbatched']:>11.2f} "
              f"{row.get('network_images_per_s', float('nan')):>13.1f}")
    print(f"\nrender (mask + overlay PNG, CPU, per image, not batched): {render_s * 1000:.0f} ms "
          f"-> at most {1 / render_s:.1f} images/s per worker process on top of the model step")
    for meta in metas:
        print(f"{meta['backend']} ran as {meta['backend_used']} ({meta['dtype']}); "
              f"batched vs alone: {meta['batch_invariance']}")
        if "agreement_with_fp32" in meta:
            print(f"{meta['backend']} vs fp32 torch: {meta['agreement_with_fp32']}")

    summary = {"device": str(device), "device_name": device_name(device),
               "torch": torch.__version__, "cuda": torch.version.cuda if device.type == "cuda" else None,
               "images": args.images, "source": source, "repeats": args.repeats,
               "load_average": round(os.getloadavg()[0], 2),
               "render_ms_per_image": round(render_s * 1000, 1), "backends": metas, "rows": rows}
    out = Path(args.out) if args.out else REPO / "bench" / "results" / f"gpu_batching-{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
