"""Decode a dataset once into a compact cache at one resolution, so epochs never re-decode DICOM.

    python -m ml.cache --layout subset --root ../shared/data/siim-acr-subset --size 512 --out cache/subset-512

Layout of the cache: ``images/<id>.jpg`` (greyscale JPEG), ``masks/<id>.png`` (0/255) and
``index.csv`` (image_id, patient_id, has_pneumothorax, source_format). Every image is
re-encoded as JPEG at one quality whatever its source format, which also evens out the
compression signature that separates this subset's DICOM negatives from its JPEG positives.
At 512 px and quality 85 the shared subset is about 50 MB: small enough for the GPU machine.
"""

from __future__ import annotations

import argparse
import csv
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ml.datasets import Sample, load_dataset
from ml.reading import read_xray

INDEX_FIELDS = ("image_id", "patient_id", "has_pneumothorax", "source_format")


@dataclass(frozen=True)
class CachedSample:
    image_id: str
    patient_id: str
    has_pneumothorax: bool
    source_format: str
    image_path: Path
    mask_path: Path


def resize_image(pixels: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(pixels, (size, size), interpolation=cv2.INTER_AREA)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    # Area averaging then a half threshold keeps thin masks better than nearest neighbour.
    small = cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA)
    return np.where(small >= 128, 255, 0).astype(np.uint8)


def _cache_one(args: tuple[Sample, Path, int, int]) -> dict:
    sample, out, size, quality = args
    xray = read_xray(sample.image_path)
    mask = sample.load_mask(xray.height, xray.width)
    image_path = out / "images" / f"{sample.image_id}.jpg"
    cv2.imwrite(str(image_path), resize_image(xray.pixels, size), [cv2.IMWRITE_JPEG_QUALITY, quality])
    cv2.imwrite(str(out / "masks" / f"{sample.image_id}.png"), resize_mask(mask, size))
    return {
        "image_id": sample.image_id,
        "patient_id": sample.patient_id,
        "has_pneumothorax": int(sample.has_pneumothorax),
        "source_format": xray.source_format,
    }


def build_cache(samples: list[Sample], out: str | Path, size: int, quality: int = 85,
                workers: int = 2) -> Path:
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    jobs = [(sample, out, size, quality) for sample in samples]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        rows = list(tqdm(pool.map(_cache_one, jobs, chunksize=8), total=len(jobs),
                         desc=f"caching at {size}px", unit="img"))
    with open(out / "index.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=INDEX_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return out


def load_cache(root: str | Path) -> list[CachedSample]:
    root = Path(root)
    with open(root / "index.csv", newline="") as handle:
        return [
            CachedSample(
                image_id=row["image_id"],
                patient_id=row["patient_id"],
                has_pneumothorax=row["has_pneumothorax"] == "1",
                source_format=row["source_format"],
                image_path=root / "images" / f"{row['image_id']}.jpg",
                mask_path=root / "masks" / f"{row['image_id']}.png",
            )
            for row in csv.DictReader(handle)
        ]


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
