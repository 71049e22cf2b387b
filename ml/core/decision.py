"""The decision rule: an operating point, and the call a probability map makes at it.

One rule for the product and for the figures measured of it: ``ml.serving.inference.Predictor``
decides with ``decide``, and ``ml.evaluation`` scores exactly this rule at each image's own size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

IMAGE_SCORES = ("head", "mask_max")


@dataclass
class OperatingPoint:
    pixel_threshold: float = 0.5  # a pixel is inside the mask at or above this probability
    min_area_fraction: float = 0.0  # smaller predicted masks are cleared (noise)
    image_threshold: float = 0.5  # the image is positive at or above this probability
    # Which probability the image threshold reads: "head", the image-level classification head;
    # "mask_max", the highest pixel probability of the mask (the "top score" of sneddy's triplet
    # thresholding in the SIIM-ACR challenge: top score, minimum area, bottom pixel threshold).
    image_score: str = "head"
    # The worklist's second, high-sensitivity threshold on the same image probability: at or
    # above it an image is flagged "review first" even when the call is negative. Chosen by
    # ml.evaluate for 90% sensitivity on the calibration half; None in models never evaluated.
    review_threshold: float | None = None


def review_first(probability: float, positive: bool, point: OperatingPoint) -> bool:
    """Put the image on top of the worklist: called positive, or above the review threshold."""
    return bool(positive or (point.review_threshold is not None
                             and probability >= point.review_threshold))


def upsample(probability_map: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixel probabilities at the model's resolution -> at the image's own size (bilinear)."""
    return cv2.resize(probability_map, (width, height), interpolation=cv2.INTER_LINEAR)


def image_probability(probability_map: np.ndarray, head_probability: float, image_score: str) -> float:
    """The probability the image threshold is applied to (OperatingPoint.image_score). The maximum
    of the map at model resolution equals that of its bilinear upsampling."""
    if image_score == "mask_max":
        return float(probability_map.max())
    if image_score != "head":
        raise ValueError(f"image_score must be one of {IMAGE_SCORES}, not {image_score!r}")
    return float(head_probability)


def decide(probability_map: np.ndarray, probability: float, point: OperatingPoint,
           height: int, width: int) -> tuple[np.ndarray, bool, float]:
    """The call at an operating point: (mask (H, W) bool, positive, area fraction).

    Shared by the predictor and by ``ml.evaluation``, so that the figures measured there are the
    figures of exactly this decision rule.
    """
    mask = upsample(probability_map, height, width) >= point.pixel_threshold
    area_fraction = float(mask.mean())
    positive = bool(probability >= point.image_threshold and mask.any()
                    and area_fraction >= point.min_area_fraction)
    if not positive:
        mask[:] = False
        area_fraction = 0.0
    return mask, positive, area_fraction
