"""The preprocessing cache: a dataset decoded once at one resolution, so epochs never re-decode DICOM.

Layout of the cache: ``images/<id>.jpg`` (greyscale JPEG), ``masks/<id>.png`` (0/255) and
``index.csv`` (image_id, patient_id, has_pneumothorax, source_format, has_mask). Every image is
re-encoded as JPEG at one quality whatever its source format, which also evens out the
compression signature that separates this subset's DICOM negatives from its JPEG positives.
Built by the command ``python -m ml.cache``; read by ``ml.train``.
"""

from __future__ import annotations

import csv
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ml.core.reading import read_xray
from ml.training.datasets import Sample

INDEX_FIELDS = ("image_id", "patient_id", "has_pneumothorax", "source_format", "has_mask")


@dataclass(frozen=True)
class CachedSample:
    image_id: str
    patient_id: str
    has_pneumothorax: bool
    source_format: str
    image_path: Path
    mask_path: Path
    # False: a true label without an outline (site feedback); the cached mask is an empty
    # placeholder that the pixel losses skip. Caches older than the column have outlines only.
    has_mask: bool = True


def resize_image(pixels: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(pixels, (size, size), interpolation=cv2.INTER_AREA)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    # Area averaging then a half threshold keeps thin masks better than nearest neighbour.
    small = cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA)
    return np.where(small >= 128, 255, 0).astype(np.uint8)


def _cache_one(args: tuple[Sample, Path, int, int]) -> dict:
    sample, out, size, quality = args
    xray = read_xray(sample.image_path)
    mask = (sample.load_mask(xray.height, xray.width) if sample.has_mask
            else np.zeros((xray.height, xray.width), dtype=np.uint8))
    image_path = out / "images" / f"{sample.image_id}.jpg"
    cv2.imwrite(str(image_path), resize_image(xray.pixels, size), [cv2.IMWRITE_JPEG_QUALITY, quality])
    cv2.imwrite(str(out / "masks" / f"{sample.image_id}.png"), resize_mask(mask, size))
    return {
        "image_id": sample.image_id,
        "patient_id": sample.patient_id,
        "has_pneumothorax": int(sample.has_pneumothorax),
        "source_format": xray.source_format,
        "has_mask": int(sample.has_mask),
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
                has_mask=row.get("has_mask", "1") == "1",
            )
            for row in csv.DictReader(handle)
        ]
