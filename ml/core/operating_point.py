"""Choosing an operating point: the grid of thresholds and the search over it.

One search serves two callers. ``ml.training.validation`` runs it every epoch on the coarse
``VALIDATION_GRID`` to select the checkpoint; ``ml.evaluation.calibration`` runs it on the
calibration half over the fine ``CALIBRATION_GRID`` to choose the point that ships. The coarse
grid is a subset of the fine one, so a checkpoint is selected on the same terms it will later be
judged on: a model whose masks are too wide at 0.5 may be the best one at 0.9, and selecting at
0.5 alone would throw that checkpoint away.

The objective is the challenge metric at 22% positives (the data's own mix where one class is
missing), scored with the product's decision rule (``ml.core.decision.decide``): an image is
positive when its probability reaches the image threshold and its mask is non-empty and at least
the minimum area; a negative call is an empty mask, Dice 1 on an empty truth and 0 on a lesion.
Masks are kept as pixel counts per pixel threshold, so that every point of the grid is scored
without keeping a mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.core import metrics
from ml.core.decision import OperatingPoint


@dataclass(frozen=True)
class Grid:
    pixel_thresholds: tuple[float, ...]
    min_area_fractions: tuple[float, ...]
    image_thresholds: tuple[float, ...]


CALIBRATION_GRID = Grid(
    pixel_thresholds=tuple(round(float(t), 2) for t in np.arange(0.20, 0.951, 0.05)),
    min_area_fractions=(0.0, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2e-3, 3e-3, 5e-3),
    # Finer at the top: a mask's top pixel probability (image_score "mask_max") is near 1 on most films.
    image_thresholds=(tuple(round(float(t), 2) for t in np.arange(0.02, 0.981, 0.01))
                      + (0.99, 0.995, 0.998, 0.999, 0.9995)),
)
# Coarse, because it runs every epoch: three pixel thresholds, no minimum area, 19 image thresholds.
VALIDATION_GRID = Grid(pixel_thresholds=(0.5, 0.7, 0.9), min_area_fractions=(0.0,),
                       image_thresholds=tuple(float(t) for t in np.linspace(0.05, 0.95, 19)))


def pixel_counts(probability_map: np.ndarray, truth: np.ndarray,
                 pixel_thresholds: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Predicted pixels and their intersection with ``truth`` (bool) at each pixel threshold."""
    areas, intersections = [], []
    for threshold in pixel_thresholds:
        predicted = probability_map >= threshold
        areas.append(int(predicted.sum()))
        intersections.append(int(np.logical_and(predicted, truth).sum()))
    return np.array(areas), np.array(intersections)


def dice_from_counts(positive, area, intersection, truth) -> np.ndarray:
    """Per-image Dice of the decision rule from pixel counts (1 when both empty)."""
    area = np.where(positive, area, 0)
    intersection = np.where(positive, intersection, 0)
    total = area + truth
    return np.where(total == 0, 1.0, 2.0 * intersection / np.maximum(total, 1))


def challenge_weights(labels: np.ndarray) -> np.ndarray:
    """Per-image weights whose dot product with the Dice is the challenge metric at 22% positives,
    or the plain mean where one class is missing (a tiny validation set may miss one)."""
    labels = np.asarray(labels, dtype=bool)
    if not labels.any() or labels.all():
        return np.ones(len(labels)) / len(labels)
    fraction = metrics.CHALLENGE_POSITIVE_FRACTION
    return np.where(labels, fraction / labels.sum(), (1 - fraction) / (~labels).sum())


def decision_dices(probabilities, areas, intersections, truth, pixels, min_area_fraction: float,
                   image_thresholds) -> np.ndarray:
    """Dice of each image (rows) at each image threshold (columns), for the counts of one pixel
    threshold (``areas``, ``intersections``: one value per image) and one minimum area."""
    probabilities = np.asarray(probabilities, dtype=float)[:, None]
    area, intersection = np.asarray(areas)[:, None], np.asarray(intersections)[:, None]
    pixels = np.asarray(pixels)[:, None]
    positive = ((probabilities >= np.asarray(image_thresholds)[None, :]) & (area > 0)
                & (area / pixels >= min_area_fraction))
    return dice_from_counts(positive, area, intersection, np.asarray(truth)[:, None])


def search(labels, probabilities, areas, intersections, truth, pixels,
           grid: Grid) -> tuple[OperatingPoint, float]:
    """The operating point of ``grid`` with the highest challenge metric at 22% positives, and
    that score. ``areas`` and ``intersections`` are (images, pixel thresholds of the grid); the
    first best point wins a tie."""
    weights = challenge_weights(labels)
    areas, intersections = np.asarray(areas), np.asarray(intersections)
    best_score, best = -1.0, OperatingPoint()
    for t_index, pixel_threshold in enumerate(grid.pixel_thresholds):
        for min_area in grid.min_area_fractions:
            scores = weights @ decision_dices(probabilities, areas[:, t_index], intersections[:, t_index],
                                              truth, pixels, min_area, grid.image_thresholds)
            i = int(np.argmax(scores))
            if scores[i] > best_score + 1e-12:
                best_score = float(scores[i])
                best = OperatingPoint(pixel_threshold=float(pixel_threshold),
                                      min_area_fraction=float(min_area),
                                      image_threshold=float(grid.image_thresholds[i]))
    return best, best_score
