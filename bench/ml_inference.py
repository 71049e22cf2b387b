"""CPU inference time per image, at the shipped model's resolution, with 2 torch threads.

    .venv/bin/python bench/ml_inference.py [--model PATH] [--image PATH] [--batch 8] [--repeats 5]

Times ``Predictor.predict_batch`` (resize, network, upsampling and decision at the image's
own size; reading the file is timed separately) for one image and for a batch, with and without
horizontal-flip TTA, and prints a table of milliseconds per image (median over repeats, after
one warm-up). The image is a real one from the shared subset where it is there, else noise of
the same size (1024 x 1024). Numbers depend on what else the machine is doing: say so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ml.core.reading import XRay, read_xray  # noqa: E402
from ml.serving.inference import Predictor, configured_model_path  # noqa: E402

SHARED_IMAGE = (Path(__file__).resolve().parents[2] / "shared/data/siim-acr-subset/images/"
                "1.2.276.0.7230010.3.1.4.8323329.5798.1517875190.796716.dcm")


def timed(function, repeats: int) -> float:
    function()  # warm-up
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model file (default: the shipped one)")
    parser.add_argument("--image", default=None, help="an X-ray file (default: a shared DICOM)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    model_path = Path(args.model) if args.model else configured_model_path()
    image_path = Path(args.image) if args.image else SHARED_IMAGE
    if image_path.is_file():
        read_s = timed(lambda: read_xray(image_path), args.repeats)
        xray = read_xray(image_path)
        source = f"{image_path.name} ({xray.source_format}, read {read_s * 1000:.0f} ms)"
    else:
        xray = XRay(np.random.default_rng(0).integers(0, 256, (1024, 1024), dtype=np.uint8), "png")
        source = "random 1024 x 1024 noise"

    predictors = {tta: Predictor(model_path, flip_tta=tta) for tta in (False, True)}
    info = predictors[False].info
    print(f"model {info.version} ({info.encoder}, {info.image_size} px), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"image {source}, {xray.width} x {xray.height}; median of {args.repeats} after a warm-up\n")
    print(f"{'batch':>5}  {'flip TTA':>8}  {'ms / batch':>10}  {'ms / image':>10}")
    for batch in (1, args.batch):
        images = [xray] * batch
        for tta, predictor in predictors.items():
            seconds = timed(lambda: predictor.predict_batch(images), args.repeats)
            print(f"{batch:>5}  {'yes' if tta else 'no':>8}  {seconds * 1000:>10.0f}  "
                  f"{seconds * 1000 / batch:>10.0f}")


if __name__ == "__main__":
    main()
