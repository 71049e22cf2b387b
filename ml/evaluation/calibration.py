"""Choosing the operating point that ships, on the calibration half only.

The image score (the classification head, or the mask's top pixel probability) is part of the
operating point: the grid search of ``ml.core.operating_point`` runs once for each, and the
better score on the calibration half is kept. The test half is then scored with that point alone.
"""

from __future__ import annotations

import numpy as np

from ml.core.decision import OperatingPoint
from ml.core.operating_point import CALIBRATION_GRID, search
from ml.evaluation.records import Record, with_image_score


def choose_operating_point(records: list[Record]) -> tuple[OperatingPoint, float]:
    """Grid search on the calibration records, maximising the challenge metric at 22%
    positives (the data's own mix where one class is missing)."""
    return search(np.array([r.sample.has_pneumothorax for r in records]),
                  np.array([r.probability for r in records]),
                  np.array([r.areas for r in records]), np.array([r.intersections for r in records]),
                  np.array([r.truth_pixels for r in records]), np.array([r.height * r.width for r in records]),
                  CALIBRATION_GRID)


def search_image_scores(records: list[Record], image_scores: tuple[str, ...]
                        ) -> dict[str, tuple[OperatingPoint, float]]:
    """The best operating point and its score for each image score, on ``records``."""
    searches = {}
    for image_score in image_scores:
        point, score = choose_operating_point(with_image_score(records, image_score))
        point.image_score = image_score
        searches[image_score] = (point, score)
    return searches
