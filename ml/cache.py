"""Decode a dataset once into a compact cache at one resolution, so epochs never re-decode DICOM.

    python -m ml.cache --layout subset --root ../shared/data/siim-acr-subset --size 512 --out cache/subset-512

The cache's layout is described in ``ml.training.cache``: greyscale JPEGs, 0/255 PNG masks and an
``index.csv``. Every image is re-encoded as JPEG at one quality whatever its source format.
At 512 px and quality 85 the shared subset is about 50 MB: small enough for the GPU machine.
"""

from __future__ import annotations

import argparse

from ml.training.cache import build_cache
from ml.training.datasets import load_dataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layout", choices=("subset", "siim", "folders"), default="subset")
    parser.add_argument("--root", required=True, help="dataset folder (the DICOM tree for siim)")
    parser.add_argument("--rle-csv", help="siim layout: the challenge's annotation CSV")
    parser.add_argument("--encoding", choices=("relative", "standard"), default="relative")
    parser.add_argument("--patients-csv", help="siim layout: image_id,patient_id rows for the split")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--quality", type=int, default=85)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    samples = load_dataset(args.layout, args.root, args.rle_csv, args.encoding,
                           args.patients_csv)
    out = build_cache(samples, args.out, args.size, args.quality, args.workers)
    print(f"cached {len(samples)} images at {args.size}px into {out}")


if __name__ == "__main__":
    main()
