"""What the network sees: the film resized to the model's resolution, with the contrast step the
model was trained with (its file's ``input_contrast``).

``clahe`` equalises local contrast (CLAHE, clip limit 2, 8 x 8 tiles) at the model's resolution,
in training and in serving alike, so that a film's look (a DICOM's window, a PNG export's
stretch, a portable film's low contrast) matters less. The same step on both sides is the point:
a model trained on equalised films and served raw ones sees films it never learned.
"""

from __future__ import annotations

import cv2
import numpy as np

INPUT_CONTRASTS = ("none", "clahe")
CLAHE_CLIP_LIMIT = 2.0
CLAHE_TILES = (8, 8)


def apply_input_contrast(pixels: np.ndarray, contrast: str) -> np.ndarray:
    """``pixels`` (H, W) uint8 after the model's contrast step."""
    if contrast == "none":
        return pixels
    if contrast == "clahe":
        return cv2.createCLAHE(clipLimit=CLAHE_CLIP_LIMIT, tileGridSize=CLAHE_TILES).apply(
            np.ascontiguousarray(pixels, dtype=np.uint8))
    raise ValueError(f"Unknown input contrast {contrast!r}: one of {INPUT_CONTRASTS}")


def network_pixels(pixels: np.ndarray, size: int, contrast: str = "none") -> np.ndarray:
    """A film's 8-bit pixels as the network of a ``size`` px model with ``contrast`` reads them."""
    resized = cv2.resize(pixels, (size, size), interpolation=cv2.INTER_AREA)
    return apply_input_contrast(resized, contrast)
