"""What the model said on each held-out image, as the product would say it.

Images are read from the original files (``ml.core.reading.read_xray``), predicted with the
predictor's own code (``Predictor.probability_maps``) and decided with
``ml.core.decision.decide`` at the image's own (1024 px) size, exactly as the product decides.
A record keeps the map at model resolution and, for the operating-point search, the mask's
pixel counts at each pixel threshold of the calibration grid.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from tqdm import tqdm

from ml.core import metrics
from ml.core.decision import OperatingPoint, decide, image_probability, upsample
from ml.core.errors import XRayError
from ml.core.operating_point import CALIBRATION_GRID, pixel_counts
from ml.core.reading import read_xray
from ml.serving.inference import Predictor
from ml.training.datasets import Sample


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


def predict_records(predictor: Predictor, parts: dict[str, list[Sample]], batch_size: int,
                    quiet: bool = False) -> tuple[list[Record], list[dict]]:
    """Records of every readable image of ``parts`` (part name -> samples), and the unreadable."""
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
                truth = (sample.load_mask(xray.height, xray.width) > 0 if sample.has_mask
                         else np.zeros((xray.height, xray.width), dtype=bool))  # label only
                areas, intersections = pixel_counts(upsample(probability_map, xray.height, xray.width),
                                                    truth, CALIBRATION_GRID.pixel_thresholds)
                records.append(Record(sample, part, xray.source_format, xray.height, xray.width,
                                      float(probability), np.ascontiguousarray(probability_map),
                                      int(truth.sum()), areas, intersections, float(probability)))
        bar.update(len(jobs[start : start + batch_size]))
    bar.close()
    return records, unreadable


def with_image_score(records: list[Record], image_score: str) -> list[Record]:
    """The records with ``probability`` read as ``image_score`` (see OperatingPoint), always
    from the map and the head's own probability, so records can be rescored again."""
    return [replace(r, probability=image_probability(r.probability_map, r.head_probability, image_score))
            for r in records]


def decide_and_score(record: Record, point: OperatingPoint) -> tuple[np.ndarray, bool, float, float]:
    """The product's call on ``record`` at ``point`` (mask, positive, area fraction) and its Dice."""
    mask, positive, area_fraction = decide(record.probability_map, record.probability, point,
                                           record.height, record.width)
    truth = record.sample.load_mask(record.height, record.width)
    return mask, positive, area_fraction, metrics.dice(mask, truth)
